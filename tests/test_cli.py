"""The sqlstore command: demo and health on both backends."""

from __future__ import annotations

import os
import sys

import pytest

from sqlstore.cli import main
from sqlstore.migrations import SCHEMA_VERSION


def test_demo_writes_trims_and_reads(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", db_url, "demo"]) == 0
    out = capsys.readouterr().out
    assert f"schema v{SCHEMA_VERSION}" in out
    assert "messages kept per agent: {'billing': 4, 'tech': 2}" in out
    assert "Done: the hold is released." in out
    assert "deleted the demo session: 2 conversations, 6 messages" in out


def test_health(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", db_url, "health"]) == 0
    out = capsys.readouterr().out
    assert "ok True" in out and f"schema_version {SCHEMA_VERSION}" in out


def test_bad_url_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "postgres://nope", "health"]) == 1
    assert "ConfigurationError" in capsys.readouterr().err


def test_a_closed_output_pipe_stops_the_command_quietly(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `sqlstore demo | head -1` once head has exited
    out = open(write_end, "w", buffering=1)  # noqa: SIM115 - closed below
    monkeypatch.setattr(sys, "stdout", out)
    try:
        assert main(["--url", db_url, "demo"]) == 1  # no BrokenPipeError traceback
        print("after", flush=True)  # stdout now goes to /dev/null: no error either
    finally:
        monkeypatch.undo()
        out.close()
