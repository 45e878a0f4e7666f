"""``sqlstore teams import / export / list`` through sqlstore.cli.main on both backends."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import yaml

from sqlstore.cli import main
from tests.conftest import unique
from tests.test_teams import team_config


def test_import_export_list_round_trip(
    db_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = unique("user")
    d = tmp_path / "teams"
    d.mkdir()
    configs = {name: team_config(name) for name in ("alpha", "beta", "gamma")}
    (d / "alpha.json").write_bytes(orjson.dumps(configs["alpha"]))
    (d / "beta.yaml").write_text(yaml.safe_dump(configs["beta"]))
    (d / "broken.json").write_text("{oops")
    single = tmp_path / "gamma.yml"
    single.write_text(yaml.safe_dump(configs["gamma"]))

    code = main(
        ["--url", db_url, "teams", "import", str(d), str(single), "--user", user, "--dedupe"]
    )
    out, err = capsys.readouterr()
    assert code == 1  # one file failed, and the exit status says so
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == ["created", "created", "failed", "created"]
    assert "broken.json" in lines[2] and "invalid JSON" in lines[2]
    assert "] 4/4" in err and "3 team(s) created, 0 already existed, 1 failed" in err
    ids = {Path(line.split()[2]).stem: line.split()[1] for line in lines if line[0] == "c"}

    # The URL from the environment, --url after the subcommand, a rerun that dedups.
    monkeypatch.setenv("SQLSTORE_URL", db_url)
    code = main(["teams", "import", str(d / "alpha.json"), "--user", user, "--dedupe"])
    out, err = capsys.readouterr()
    assert code == 0 and out.split()[:2] == ["exists", ids["alpha"]]
    assert "[" not in err  # one file: no progress bar

    code = main(["teams", "list", "--user", user])
    out, err = capsys.readouterr()
    assert code == 0
    listed = [line.split()[0] for line in out.splitlines()]
    assert sorted(listed) == sorted(ids.values())
    assert {line.split()[-1] for line in out.splitlines()} == set(configs)

    exported = tmp_path / "out.yaml"
    code = main(["teams", "export", ids["beta"], "--format", "yaml", "-o", str(exported)])
    assert code == 0
    assert yaml.safe_load(exported.read_text()) == configs["beta"]
    capsys.readouterr()
    code = main(["teams", "import", str(exported), "--user", user, "--dedupe", "--url", db_url])
    out, _ = capsys.readouterr()
    assert code == 0 and out.split()[:2] == ["exists", ids["beta"]]

    code = main(["teams", "export", ids["alpha"]])
    out, _ = capsys.readouterr()
    assert code == 0 and orjson.loads(out) == configs["alpha"]


def test_cli_errors_exit_with_status_1(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", db_url, "teams", "export", unique("missing")]) == 1
    assert "not found" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    assert main(["--url", db_url, "teams", "import", str(notes)]) == 1
    assert "ValidationError" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--url", db_url, "teams", "export", "x", "--format", "xml"])
