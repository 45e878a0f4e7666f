"""Team persistence (store.teams): upsert, get, delete, import and export on both backends."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

import sqlstore
from sqlstore.domains.team_models import Message, Run, Session, Team, config_hash
from sqlstore.domains.teams import TeamStore
from tests.conftest import unique
from tests.processes import run_workers


def team_config(label: str = "demo", n: int = 0) -> dict[str, Any]:
    """A small AutoGen-shaped team component config."""
    return {
        "provider": "autogen_agentchat.teams.RoundRobinGroupChat",
        "component_type": "team",
        "version": 1,
        "label": label,
        "config": {
            "participants": [
                {
                    "provider": "autogen_agentchat.agents.AssistantAgent",
                    "config": {"name": f"assistant_{n}", "temperature": 0.5},
                }
            ],
            "termination_condition": {"config": {"max_messages": 5}},
        },
    }


async def make_tree(teams: TeamStore, user: str) -> dict[str, Any]:
    """A team with two sessions, a run in each and two messages per run."""
    team = (await teams.upsert(Team(user_id=user, config=team_config(unique("t"))))).data
    ids: dict[str, Any] = {"team": team.id, "sessions": [], "runs": [], "messages": []}
    for s in range(2):
        session = (await teams.upsert(Session(team_id=team.id, name=f"s{s}"))).data
        run = (await teams.upsert(Run(session_id=session.id, task={"content": "go"}))).data
        ids["sessions"].append(session.id)
        ids["runs"].append(run.id)
        for role in ("user", "assistant"):
            m = await teams.upsert(
                Message(session_id=session.id, run_id=run.id, role=role, content=role)
            )
            ids["messages"].append(m.data.id)
    return ids


async def count(store: sqlstore.Store, table: str, ids: list[str]) -> int:
    marks = ", ".join("?" * len(ids))
    value = (
        await store.execute(f"SELECT count(*) FROM {table} WHERE id IN ({marks})", ids)
    ).scalar()
    assert isinstance(value, int)
    return value


# -- upsert ------------------------------------------------------------------------------


async def test_upsert_creates_then_updates_keeping_created_at_and_unset_fields(
    store: sqlstore.Store,
) -> None:
    user = unique("user")
    config = team_config("first")
    created = await store.teams.upsert(Team(user_id=user, config=config, created_at=1000))
    assert created.status and created.created is True
    team = created.data
    assert team.name == "first"  # taken from the config's label
    assert team.config == config and team.config_hash == config_hash(config)
    assert team.created_at == 1000 and team.version == 1

    updated = await store.teams.upsert(Team(id=team.id, name="renamed", version=2))
    assert updated.status and updated.created is False
    assert updated.message == "Team updated"
    again = updated.data
    assert again.created_at == 1000
    assert again.user_id == user and again.config == config  # not given: kept
    assert again.config_hash == team.config_hash
    assert again.name == "renamed" and again.version == 2
    assert again.updated_at >= team.updated_at

    new_config = team_config("second")
    third = (await store.teams.upsert(Team(id=team.id, config=new_config))).data
    assert third.config == new_config and third.config_hash == config_hash(new_config)
    assert third.name == "renamed" and third.created_at == 1000
    stored = (await store.teams.get("team", {"user_id": user})).data
    assert stored == [third]


async def test_upsert_with_a_given_id_is_idempotent(store: sqlstore.Store) -> None:
    user, tid = unique("user"), unique("team")
    first = await store.teams.upsert(Team(id=tid, user_id=user, config=team_config()))
    second = await store.teams.upsert(Team(id=tid, user_id=user, config=team_config()))
    assert (first.created, second.created) == (True, False)
    assert first.data.created_at == second.data.created_at
    assert len((await store.teams.get(Team, {"user_id": user})).data) == 1


async def test_upsert_of_a_missing_row_without_its_fields_writes_nothing(
    store: sqlstore.Store,
) -> None:
    tid = unique("team")
    r = await store.teams.upsert(Team(id=tid, name="ghost"))
    assert r.status is False and r.data is None and "not found" in r.message
    assert (await store.teams.get("team", {"id": tid})).data == []
    r = await store.teams.upsert(Session(team_id=unique("no-team")))
    assert r.status is False
    r = await store.teams.upsert(Run(session_id=unique("no-session")))
    assert r.status is False
    r = await store.teams.upsert(Message(id=unique("m"), content="x"))
    assert r.status is False


async def test_sessions_runs_and_messages(store: sqlstore.Store) -> None:
    user = unique("user")
    team = (await store.teams.upsert(Team(user_id=user, config=team_config()))).data
    session = (await store.teams.upsert(Session(team_id=team.id, name="chat"))).data
    assert session.user_id == user  # inherited from the team
    assert session.team_id == team.id and session.metadata == {}

    run = await store.teams.upsert(Run(session_id=session.id, task={"content": "plan"}))
    assert run.created and run.data.status == "created" and run.data.user_id == user
    done = await store.teams.upsert(Run(id=run.data.id, status="complete", result={"ok": 1}))
    assert done.created is False
    assert done.data.task == {"content": "plan"} and done.data.result == {"ok": 1}
    assert done.data.status == "complete" and done.data.created_at == run.data.created_at

    seqs = []
    for i, role in enumerate(["user", "assistant", "assistant"]):
        m = await store.teams.upsert(
            Message(
                session_id=session.id,
                run_id=run.data.id,
                role=role,
                content=[{"type": "text", "text": f"m{i}"}],
                metadata={"source": f"agent{i}"},
            )
        )
        assert m.status and m.created
        seqs.append(m.data.seq)
    assert seqs == [1, 2, 3]
    first = (await store.teams.get("message", {"run_id": run.data.id}, limit=1)).data[0]
    edited = await store.teams.upsert(Message(id=first.id, content="edited"))
    assert edited.created is False
    assert edited.data.content == "edited" and edited.data.seq == 1
    assert edited.data.metadata == {"source": "agent0"} and edited.data.role == "user"

    messages = (await store.teams.get("message", {"session_id": session.id})).data
    assert [m.seq for m in messages] == [1, 2, 3]
    thread = await store.execute(
        "SELECT message_count, last_seq FROM threads WHERE id = ?", (session.id,)
    )
    assert tuple(thread.rows[0]) == (3, 3)
    runs = (await store.teams.get("run", {"session_id": session.id, "status": "complete"})).data
    assert [r.id for r in runs] == [run.data.id]


async def thread_counters(store: sqlstore.Store, thread_id: str) -> tuple[Any, ...]:
    thread = await store.execute(
        "SELECT message_count, last_seq FROM threads WHERE id = ?", (thread_id,)
    )
    return tuple(thread.rows[0])


@pytest.mark.parametrize("deleted", ["run", "message"])
async def test_deleting_runs_or_messages_keeps_the_session_counters_right(
    store: sqlstore.Store, deleted: str
) -> None:
    """A run's messages go with it (cascade), and messages can be deleted by filter: the
    session's message_count follows, last_seq (the high-water mark) stays, and the next
    message's seq is above every seq the session ever had."""
    user = unique("user")
    team = (await store.teams.upsert(Team(user_id=user, config=team_config()))).data
    session = (await store.teams.upsert(Session(team_id=team.id, name="chat"))).data
    first = (await store.teams.upsert(Run(session_id=session.id))).data
    second = (await store.teams.upsert(Run(session_id=session.id))).data
    for run in (first, first, second, second, second):  # seq 1-2 in the first, 3-5 in the last
        added = await store.teams.upsert(
            Message(session_id=session.id, run_id=run.id, role="user", content="x")
        )
        assert added.status
    assert await thread_counters(store, session.id) == (5, 5)

    if deleted == "run":
        gone = await store.teams.delete("run", {"id": second.id})
    else:
        gone = await store.teams.delete("message", {"run_id": second.id})
    assert gone.status and gone.data == {"deleted": 1 if deleted == "run" else 3}
    assert await thread_counters(store, session.id) == (2, 5)

    after = await store.teams.upsert(
        Message(session_id=session.id, run_id=first.id, role="assistant", content="y")
    )
    assert after.data.seq == 6  # never a seq the session had before
    assert await thread_counters(store, session.id) == (3, 6)
    messages = (await store.teams.get("message", {"session_id": session.id})).data
    assert [m.seq for m in messages] == [1, 2, 6]


async def test_message_for_a_missing_session_is_not_stored(store: sqlstore.Store) -> None:
    mid = unique("m")
    r = await store.teams.upsert(
        Message(id=mid, session_id=unique("nope"), role="user", content="hi")
    )
    assert r.status is False
    assert await count(store, "messages", [mid]) == 0


async def test_session_upsert_leaves_a_plain_thread_alone(store: sqlstore.Store) -> None:
    user = unique("user")
    thread = unique("thread")
    await store.execute(
        "INSERT INTO threads (id, user_id, title, root_id, created_at, updated_at)"
        " VALUES (?, ?, 'plain', ?, 0, 0)",
        (thread, user, thread),
    )
    team = (await store.teams.upsert(Team(user_id=user, config=team_config()))).data
    r = await store.teams.upsert(Session(id=thread, team_id=team.id, name="hijack"))
    assert r.status is False
    row = (await store.execute("SELECT title, team_id FROM threads WHERE id = ?", (thread,))).rows
    assert tuple(row[0]) == ("plain", None)
    assert (await store.teams.get("session", {"id": thread})).data == []


# -- a team's config is decoded when first read ------------------------------------------


def undecoded(team: Team) -> bool:
    """Whether a team read back still holds its config as JSON text only."""
    return team._config_json is not None


async def test_config_read_back_is_decoded_on_first_access(store: sqlstore.Store) -> None:
    user = unique("user")
    config = team_config("lazy")
    config["config"]["extra"] = {"ratio": 2.5, "n": 5.0, "text": "é ✓", "none": None}
    made = (await store.teams.upsert(Team(user_id=user, config=config))).data
    assert not undecoded(made)  # the upsert hands back the caller's own dict
    (team,) = (await store.teams.get("team", {"user_id": user})).data
    assert undecoded(team)
    assert team.id == made.id and team.config_hash == config_hash(config)
    decoded = team.config
    assert decoded == config and not undecoded(team)
    assert team.config is decoded  # decoded once, then kept
    decoded["label"] = "changed in memory"  # a mutation sticks, as on any dataclass
    assert team.config["label"] == "changed in memory"


async def test_a_team_read_back_equals_the_one_built_by_hand(store: sqlstore.Store) -> None:
    user = unique("user")
    config = team_config("equal")
    made = (await store.teams.upsert(Team(user_id=user, config=config, created_at=5))).data
    by_hand = Team(
        id=made.id,
        user_id=user,
        name="equal",
        config=team_config("equal"),
        config_hash=config_hash(config),
        version=1,
        created_at=5,
        updated_at=made.updated_at,
    )
    (read,) = (await store.teams.get("team", {"id": made.id})).data
    assert undecoded(read)
    assert read == by_hand and by_hand == read and read == made
    (read,) = (await store.teams.get("team", {"id": made.id})).data
    assert repr(read) == repr(by_hand)
    (read,) = (await store.teams.get("team", {"id": made.id})).data
    assert dataclasses.asdict(read) == dataclasses.asdict(by_hand)
    (read,) = (await store.teams.get("team", {"id": made.id})).data
    assert dataclasses.replace(read, name="x") == dataclasses.replace(by_hand, name="x")
    (read,) = (await store.teams.get("team", {"id": made.id})).data
    assert read != dataclasses.replace(by_hand, config={**config, "label": "other"})
    (read,) = (await store.teams.get("team", {"id": made.id})).data
    read.config = {"replaced": True}  # setting it before any read drops the stored text
    assert read.config == {"replaced": True} and not undecoded(read)


async def test_a_team_whose_config_was_never_read_upserts_and_exports(
    store: sqlstore.Store,
) -> None:
    user = unique("user")
    config = team_config("untouched")
    made = (await store.teams.upsert(Team(user_id=user, config=config))).data
    (team,) = (await store.teams.get("team", {"id": made.id})).data
    team.name = "renamed"
    assert undecoded(team)
    r = await store.teams.upsert(team)  # the whole team back, config never read by us
    assert r.status and r.created is False
    assert r.data.config == config and r.data.config_hash == made.config_hash
    assert r.data.name == "renamed"

    patched = (await store.teams.upsert(Team(id=made.id, version=3))).data
    assert undecoded(patched)  # not given, so returned as stored and decoded on read
    assert patched.config == config and patched.version == 3

    other = unique("user")
    (team,) = (await store.teams.get("team", {"id": made.id})).data
    copied = await store.teams.upsert(dataclasses.replace(team, id=None, user_id=other))
    assert copied.created and copied.data.config == config
    assert copied.data.config_hash == made.config_hash

    exported = await store.teams.export_team(made.id)
    assert exported.status and orjson.loads(exported.data) == config
    imported = await store.teams.import_team(exported.data, user, check_exists=True)
    assert imported.created is False and imported.data.id == made.id
    assert undecoded(imported.data) and imported.data.config == config
    fresh = await store.teams.import_team(exported.data, unique("user"), check_exists=True)
    assert fresh.created is True and fresh.data.config == config


# -- get -----------------------------------------------------------------------------------


async def test_get_filters_orders_and_pages_with_ties(store: sqlstore.Store) -> None:
    user, other = unique("user"), unique("user")
    made = []
    for i in range(7):
        # Same created_at for several teams: the id breaks the tie, pages never repeat.
        r = await store.teams.upsert(
            Team(user_id=user, config=team_config(n=i), created_at=1000 + i // 3)
        )
        made.append(r.data)
    await store.teams.upsert(Team(user_id=other, config=team_config()))

    everything = (await store.teams.get("team", {"user_id": user}, limit=100)).data
    assert len(everything) == 7
    keys = [(t.created_at, t.id) for t in everything]
    assert keys == sorted(keys, reverse=True)  # default: newest first

    for order in ("created_at", "-created_at", "updated_at", "id", "-id"):
        seen: list[str] = []
        after: Any = None
        while True:
            page = await store.teams.get(
                "teams", {"user_id": user}, order_by=order, limit=3, after=after
            )
            seen += [t.id for t in page.data]
            if page.cursor is None:
                break
            after = page.cursor if len(seen) % 2 else page.data[-1]  # cursor or last item
        assert sorted(seen) == sorted(t.id for t in made) and len(seen) == 7, order

    some = [made[0].id, made[3].id, unique("absent")]
    found = (await store.teams.get("team", {"id": some}, order_by="id")).data
    assert [t.id for t in found] == sorted(some[:2])
    both = (await store.teams.get("team", {"user_id": [user, other]})).data
    assert len(both) == 8
    assert (await store.teams.get("team", {"user_id": []})).data == []


@pytest.mark.parametrize(
    ("kind", "filters", "order_by"),
    [
        ("team", {"config": "x"}, None),
        ("team", {"user_id; DROP TABLE teams": "x"}, None),
        ("team", {"user_id": "u"}, "created_at; DROP TABLE teams"),
        ("team", {"user_id": "u"}, "name"),
        ("session", {"title": "x"}, None),
        ("run", {"user_id": "u"}, "status"),
        ("message", {"content": "x"}, None),
        ("team", {"user_id": {"$ne": 1}}, None),
        ("widget", {}, None),
    ],
)
async def test_get_rejects_unknown_columns_and_sort_keys_before_io(
    db_url: str, kind: str, filters: dict[str, Any], order_by: str | None
) -> None:
    closed = sqlstore.Store(db_url)  # never initialized: any I/O would raise UnavailableError
    with pytest.raises(sqlstore.ValidationError) as info:
        await closed.teams.get(kind, filters, order_by=order_by)
    assert "allowed" in str(info.value) or "takes a string" in str(info.value)
    with pytest.raises(sqlstore.ValidationError):
        await closed.teams.delete(kind, {"nope": 1})


async def test_bad_input_raises_before_io(db_url: str) -> None:
    closed = sqlstore.Store(db_url)
    t = closed.teams
    bad: list[Any] = [
        t.upsert(Run(id="r", status="sideways")),
        t.upsert(Message(id="m", role="wizard")),
        t.upsert(Team(user_id="u", config=[1, 2])),  # type: ignore[arg-type]
        t.upsert(Team(user_id="u", config={"x": object()})),
        t.upsert("team"),  # type: ignore[arg-type]
        t.get("team", limit=0),
        t.get("team", after="nonsense"),
        t.delete("team", {}),
        t.delete("team"),
        t.import_team({"a": 1}, ""),
        t.import_team([1], "u"),
        t.import_team("{not json", "u"),
        t.import_team("team.txt", "u"),
        t.export_team("x", format="xml"),
    ]
    for call in bad:
        with pytest.raises(sqlstore.ValidationError):
            await call


# -- delete ----------------------------------------------------------------------------


async def test_delete_team_cascades_to_its_sessions_runs_and_messages_only(
    store: sqlstore.Store,
) -> None:
    user = unique("user")
    doomed = await make_tree(store.teams, user)
    kept = await make_tree(store.teams, user)
    plain = unique("thread")
    await store.execute(
        "INSERT INTO threads (id, user_id, root_id, created_at, updated_at) VALUES (?, ?, ?, 0, 0)",
        (plain, user, plain),
    )
    r = await store.teams.delete("team", {"id": doomed["team"]})
    assert r.status and r.data == {"deleted": 1}
    assert await count(store, "teams", [doomed["team"]]) == 0
    assert await count(store, "threads", doomed["sessions"]) == 0
    assert await count(store, "runs", doomed["runs"]) == 0
    assert await count(store, "messages", doomed["messages"]) == 0
    assert await count(store, "teams", [kept["team"]]) == 1
    assert await count(store, "threads", [*kept["sessions"], plain]) == 3
    assert await count(store, "runs", kept["runs"]) == 2
    assert await count(store, "messages", kept["messages"]) == 4

    again = await store.teams.delete("team", {"id": doomed["team"]})
    assert again.status and again.data == {"deleted": 0}
    gone = await store.teams.delete("run", {"id": kept["runs"][0]})
    assert gone.data == {"deleted": 1}
    assert await count(store, "messages", kept["messages"]) == 2  # the run's messages went
    r = await store.teams.delete("session", {"team_id": kept["team"]})
    assert r.data == {"deleted": 2}
    assert await count(store, "threads", [plain]) == 1  # not a session: never matched


async def test_delete_everything_needs_all_true(own_db_url: str) -> None:
    url = own_db_url  # a database of this test's own: the session servers are shared
    async with sqlstore.Store(url) as store:
        for user in ("a", "b"):
            await make_tree(store.teams, user)
        with pytest.raises(sqlstore.ValidationError, match="all=True"):
            await store.teams.delete("team", {})
        r = await store.teams.delete("team", all=True)
        assert r.data == {"deleted": 2}
        for table in ("teams", "threads", "runs", "messages"):
            assert (await store.execute(f"SELECT count(*) FROM {table}")).scalar() == 0


# -- import and export -----------------------------------------------------------------


async def test_import_dedups_by_canonical_hash_per_user(store: sqlstore.Store) -> None:
    user, other = unique("user"), unique("user")
    config = team_config("dedup")
    first = await store.teams.import_team(config, user, check_exists=True)
    assert first.status and first.created is True and first.message == "Team created"
    # Key order and 0.5 vs 5 as 5.0: the canonical JSON is the same.
    shuffled = orjson.loads(orjson.dumps(config, option=orjson.OPT_SORT_KEYS))
    shuffled["version"] = 1.0
    again = await store.teams.import_team(shuffled, user, check_exists=True)
    assert again.status and again.created is False
    assert again.message == "Identical team configuration already exists"
    assert again.data == first.data  # the whole stored team, not only its id
    elsewhere = await store.teams.import_team(config, other, check_exists=True)
    assert elsewhere.created is True and elsewhere.data.id != first.data.id
    dup = await store.teams.import_team(config, user, check_exists=False)
    assert dup.created is True and dup.data.id != first.data.id
    later = await store.teams.import_team(config, user, check_exists=True)
    assert later.data.id == first.data.id  # the oldest twin answers
    assert len((await store.teams.get("team", {"user_id": user})).data) == 2


async def test_concurrent_imports_from_20_coroutines_make_one_team(
    store: sqlstore.Store,
) -> None:
    user = unique("user")
    config = team_config(unique("race"))
    results = await asyncio.gather(
        *(store.teams.import_team(config, user, check_exists=True) for _ in range(20))
    )
    assert all(r.status for r in results)
    assert len({r.data.id for r in results}) == 1
    assert sum(1 for r in results if r.created) == 1
    assert len((await store.teams.get("team", {"user_id": user})).data) == 1


async def test_concurrent_imports_from_4_processes_make_one_team(
    store: sqlstore.Store, db_url: str, tmp_path: Path
) -> None:
    user = unique("user")
    path = tmp_path / "team.json"
    path.write_bytes(orjson.dumps(team_config(unique("race"))))
    outcomes = await run_workers(*(["import_team", db_url, user, str(path)] for _ in range(4)))
    lines = []
    for code, out, err in outcomes:
        assert code == 0, err
        lines.append(out.split())
    assert len({line[0] for line in lines}) == 1
    assert sorted(line[1] for line in lines) == ["False", "False", "False", "True"]
    assert len((await store.teams.get("team", {"user_id": user})).data) == 1


async def test_import_from_json_yaml_and_text(store: sqlstore.Store, tmp_path: Path) -> None:
    user = unique("user")
    config = team_config("files")
    (tmp_path / "a.json").write_bytes(orjson.dumps(config))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "c.yml").write_text(yaml.safe_dump(config))
    r = await store.teams.import_team(tmp_path / "a.json", user, check_exists=True)
    assert r.created
    for source in (str(tmp_path / "b.yaml"), tmp_path / "c.yml", orjson.dumps(config).decode()):
        again = await store.teams.import_team(source, user, check_exists=True)
        assert again.created is False and again.data.id == r.data.id
    missing = tmp_path / "missing.json"
    with pytest.raises(sqlstore.ValidationError, match="cannot read"):
        await store.teams.import_team(missing, user)


async def test_import_directory_in_sorted_order_reporting_each_file(
    store: sqlstore.Store, tmp_path: Path
) -> None:
    user = unique("user")
    d = tmp_path / "teams"
    d.mkdir()
    (d / "b.json").write_bytes(orjson.dumps(team_config("b")))
    (d / "a.yaml").write_text(yaml.safe_dump(team_config("a")))
    (d / "c.json").write_text("{not json")
    (d / "d.yml").write_text("- a list, not a mapping\n")
    (d / "e.json").write_bytes(orjson.dumps(team_config("a")))  # same as a.yaml
    (d / "notes.txt").write_text("ignored")
    (d / "sub").mkdir()
    (d / "sub" / "x.json").write_bytes(orjson.dumps(team_config("x")))
    calls: list[tuple[int, int]] = []
    r = await store.teams.import_teams_from_directory(
        d, user, check_exists=True, progress=lambda i, n: calls.append((i, n))
    )
    assert r.status is False  # two files failed, and says so
    names = [Path(x["file"]).name for x in r.data]
    assert names == ["a.yaml", "b.json", "c.json", "d.yml", "e.json"]
    assert [x["status"] for x in r.data] == [True, True, False, False, True]
    assert [x["created"] for x in r.data] == [True, True, None, None, False]
    assert "invalid JSON" in r.data[2]["message"] and "c.json" in r.data[2]["message"]
    assert "JSON object" in r.data[3]["message"]
    assert r.data[4]["id"] == r.data[0]["id"]
    assert calls == [(i, 5) for i in range(1, 6)]
    assert "2 team(s) created, 1 already existed, 2 failed" in r.message
    assert len((await store.teams.get("team", {"user_id": user})).data) == 2


@pytest.mark.parametrize("fmt", ["json", "yaml"])
async def test_export_then_import_is_a_fixed_point(
    store: sqlstore.Store, tmp_path: Path, fmt: str
) -> None:
    user = unique("user")
    config = team_config("roundtrip")
    config["config"]["extra"] = {"ratio": 2.5, "yes": "yes", "none": None, "list": [1, "2"]}
    first = (await store.teams.import_team(config, user)).data
    path = tmp_path / f"team.{'yaml' if fmt == 'yaml' else 'json'}"
    exported = await store.teams.export_team(first.id, fmt, path)
    assert exported.status and path.read_text() == exported.data
    back = await store.teams.import_team(path, user, check_exists=True)
    assert back.created is False and back.data.id == first.id
    other = unique("user")
    second = (await store.teams.import_team(path, other)).data
    assert second.config == config and second.config_hash == first.config_hash
    again = await store.teams.export_team(second.id, fmt)
    assert again.data == exported.data


async def test_export_of_a_missing_team_is_status_false(store: sqlstore.Store) -> None:
    r = await store.teams.export_team(unique("team"))
    assert r.status is False and "not found" in r.message


def test_config_hash_is_canonical() -> None:
    a = {"b": [1, 2.0, {"y": 1, "x": 2}], "a": 5}
    b = {"a": 5.0, "b": (1, 2, {"x": 2, "y": 1})}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({**a, "a": 5.5})
    assert config_hash({"s": "5"}) != config_hash({"s": 5})
    assert config_hash({"s": "1.0,", "f": -0.0}) == config_hash({"f": 0, "s": "1.0,"})
    assert config_hash({"s": "1.0,"}) != config_hash({"s": "1,"})
    assert config_hash({"f": 10.05}) != config_hash({"f": 10})
    assert config_hash({"f": 1e16}) != config_hash({"f": 10**16})  # beyond 2**53: kept


# -- scope: the teams API never reaches a conversation's or a thread's rows ---------------


async def test_teams_reads_updates_and_deletes_reach_only_team_rows(own_db_url: str) -> None:
    """A conversation's and a thread's messages and runs survive every teams delete and
    update, and no teams read returns them (a database of the test's own: ``all=True``)."""
    async with sqlstore.Store(own_db_url) as store:
        saved = await store.conversations.save_many(
            "u", "s", "a", [{"role": "user", "content": "q"}, {"role": "tool", "content": "r"}]
        )
        thread = await store.threads.create("u")
        added = await store.threads.add_messages(
            thread.id, [{"role": "tool", "content": "t"}, {"role": "assistant", "content": "a"}]
        )
        plain_run = unique("run")
        await store.execute(
            "INSERT INTO runs (id, thread_id, status, created_at, updated_at)"
            " VALUES (?, ?, 'active', 0, 0)",
            (plain_run, thread.id),
        )
        await store.execute("UPDATE messages SET run_id = ? WHERE id = ?", (plain_run, added[1].id))
        tree = await make_tree(store.teams, "u")
        team_tool = await store.teams.upsert(
            Message(session_id=tree["sessions"][0], role="tool", content="team tool")
        )
        outside = [m.id for m in saved.inserted] + [m.id for m in added]

        async def snapshot() -> list[tuple[Any, ...]]:
            rows = await store.execute(
                "SELECT id, thread_id, seq, role, content, run_id FROM messages"
                " WHERE thread_id IN (?, ?) ORDER BY id",
                (saved.thread_id, thread.id),
            )
            runs = await store.execute("SELECT id, status FROM runs WHERE id = ?", (plain_run,))
            return [tuple(r) for r in rows.rows] + [tuple(r) for r in runs.rows]

        before = await snapshot()
        assert len(before) == 5

        for mid in outside:
            assert (await store.teams.get("message", {"id": mid})).data == []
        assert (await store.teams.get("run", {"id": plain_run})).data == []
        listed = (await store.teams.get("message", limit=1000)).data
        assert not {m.id for m in listed} & set(outside)

        gone = await store.teams.delete("message", {"role": "tool"})
        assert gone.data == {"deleted": 1}
        assert await count(store, "messages", [team_tool.data.id]) == 0
        assert (await store.teams.delete("message", {"id": outside})).data == {"deleted": 0}
        assert (await store.teams.delete("run", {"id": plain_run})).data == {"deleted": 0}
        with pytest.raises(sqlstore.ConflictError, match=outside[0]):
            await store.teams.upsert(Message(id=outside[0], content="hijacked"))
        r = await store.teams.upsert(Run(id=plain_run, status="error"))
        assert r.status is False
        r = await store.teams.upsert(Run(id=plain_run, session_id=tree["sessions"][0]))
        assert r.status is False
        assert await snapshot() == before

        for kind in ("message", "run", "session", "team"):
            await store.teams.delete(kind, all=True)
        assert await snapshot() == before
        assert await store.conversations.count("u", "s", "a") == 2
        assert (await store.threads.get(thread.id)) is not None


async def test_a_message_id_held_elsewhere_is_a_conflict(store: sqlstore.Store) -> None:
    """An upsert of a message whose id a conversation, a thread or another session holds
    raises ConflictError naming it and writes nothing; in its own session it updates."""
    tree = await make_tree(store.teams, unique("user"))
    ckey = (unique("u"), "s", "a")
    conv = await store.conversations.save(*ckey, {"role": "user", "content": "c"})
    thread = await store.threads.create("u")
    in_thread = await store.threads.add_message(thread.id, "user", "t", message_id=unique("m"))
    own = tree["messages"][0]  # in the first session
    for mid, session in (
        (conv.inserted[0].id, tree["sessions"][0]),
        (conv.inserted[0].id, None),
        (in_thread.id, tree["sessions"][0]),
        (own, tree["sessions"][1]),
    ):
        with pytest.raises(sqlstore.ConflictError, match=mid):
            await store.teams.upsert(
                Message(id=mid, session_id=session, role="user", content="hijack")
            )
    assert await store.conversations.newest(*ckey) == conv.inserted
    assert await store.threads.messages(thread.id) == [in_thread]
    assert await count(store, "messages", [own]) == 1
    updated = await store.teams.upsert(
        Message(id=own, session_id=tree["sessions"][0], content="new")
    )
    assert updated.status and updated.created is False and updated.data.content == "new"
    second = (await store.teams.get("message", {"session_id": tree["sessions"][1]})).data
    assert len(second) == 2 and all(m.content != "hijack" for m in second)
