"""Hostile inputs: every public method of every domain and adapter that stores a value either
stores it exactly as given (it reads back equal) or refuses it with a SqlStoreError before
any I/O, the same on every backend.

"Before any I/O" is observed, not assumed: the store's client is wrapped in a counter that
sees every call that passes the drivers' own pre-I/O check (``normalize_*``, the code every
driver runs before it sends or binds anything); a refused case must leave it at zero.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import math
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from agent_squad.types import ConversationMessage  # type: ignore[import-untyped]
from langgraph.checkpoint.base import empty_checkpoint

import sqlstore
from sqlstore.compat.agent_squad import SqlChatStorage
from sqlstore.compat.agentomatic import LibSQLStore
from sqlstore.compat.langgraph import LibSQLSaver
from sqlstore.domains.team_models import Message as TeamMessage
from sqlstore.domains.team_models import Run, Session, Team
from sqlstore.drivers import Args, Client, Result, Statement
from sqlstore.drivers.base import normalize_batch, normalize_execute
from sqlstore.errors import SqlStoreError
from sqlstore.values import MAX_JSON_BYTES
from tests.conftest import unique


class Counting:
    """A client that counts the calls which get past the drivers' pre-I/O checks."""

    def __init__(self, inner: Client) -> None:
        self.inner = inner
        self.backend = inner.backend
        self.calls = 0

    async def execute(self, sql: str, args: Args = ()) -> Result:
        normalize_execute(sql, args)  # what every driver checks before any I/O
        self.calls += 1
        return await self.inner.execute(sql, args)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        normalize_batch(statements)
        self.calls += 1
        return await self.inner.batch(statements)

    async def close(self) -> None:
        await self.inner.close()


def counted(store: sqlstore.Store) -> Counting:
    """Put a counter between ``store`` (initialized) and its client."""
    counter = Counting(store.client)
    store._client = counter
    return counter


REFUSED = object()
"""The expected outcome of a value no backend can store as given."""


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    ONE = 1


class Text(str):
    pass


@dataclasses.dataclass
class Point:
    x: int


def _deep(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


JSON_CASES: list[tuple[str, Any, Any]] = [
    # (name, value, what reads back: the value itself, a documented conversion, or REFUSED)
    ("int64 max", 2**63 - 1, 2**63 - 1),
    ("int64 min", -(2**63), -(2**63)),
    ("2**53+1", 2**53 + 1, 2**53 + 1),
    ("float", 0.1, 0.1),
    ("subnormal", 5e-324, 5e-324),
    ("max float", 1.7976931348623157e308, 1.7976931348623157e308),
    ("1e16", 1e16, 1e16),
    ("integral float", 3.0, 3.0),
    ("unicode", "héllo wörld ☃ 日本語 🚀", "héllo wörld ☃ 日本語 🚀"),
    ("nul", "a\x00b", "a\x00b"),
    ("empty text", "", ""),
    ("quotes", "'\"\\ \n\t\r", "'\"\\ \n\t\r"),
    ("line separators", "\u2028\u2029", "\u2028\u2029"),
    ("bom and noncharacters", "\ufeff\uffff\U0010ffff", "\ufeff\uffff\U0010ffff"),
    ("true", True, True),
    ("false", False, False),
    ("null in a list", [None], [None]),
    ("nested", {"a": [1, 2.5, None, True, {"b": "c"}]}, {"a": [1, 2.5, None, True, {"b": "c"}]}),
    ("empty containers", {"": [], "x": {}}, {"": [], "x": {}}),
    ("json-looking text", '{"a": 1}', '{"a": 1}'),
    ("sql-looking text", "'); DROP TABLE messages; --", "'); DROP TABLE messages; --"),
    ("tuple", (1, "a"), [1, "a"]),  # documented: a tuple is stored as a JSON array
    ("ordered dict of tuples", collections.OrderedDict(a=(1,)), {"a": [1]}),
    ("deep 200", _deep(200), _deep(200)),
    ("nan", math.nan, REFUSED),
    ("inf", math.inf, REFUSED),
    ("-inf", -math.inf, REFUSED),
    ("nested nan", {"a": [1, {"b": math.nan}]}, REFUSED),
    ("datetime", datetime.datetime(2024, 1, 2, 3, 4, 5), REFUSED),
    ("aware datetime", datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC), REFUSED),
    ("date", datetime.date(2024, 1, 2), REFUSED),
    ("time", datetime.time(3, 4), REFUSED),
    ("uuid", uuid.UUID(int=7), REFUSED),
    ("enum", Color.RED, REFUSED),
    ("int enum", Level.ONE, 1),  # documented: a str / int subclass is stored as its value
    ("str subclass", Text("x"), "x"),
    ("set", {1, 2}, REFUSED),
    ("frozenset", frozenset({1}), REFUSED),
    ("bytes", b"x", REFUSED),
    ("bytearray", bytearray(b"x"), REFUSED),
    ("decimal", decimal.Decimal("1.1"), REFUSED),
    ("complex", 1j, REFUSED),
    ("object", object(), REFUSED),
    ("dataclass", Point(1), REFUSED),
    ("lone surrogate", "a\ud800b", REFUSED),
    ("lone low surrogate", "\udc00", REFUSED),
    ("surrogate key", {"\udfff": 1}, REFUSED),
    ("2**63", 2**63, REFUSED),
    ("-2**63-1", -(2**63) - 1, REFUSED),
    ("2**64", 2**64, REFUSED),
    ("nested 2**70", [2**70], REFUSED),
    ("int key", {1: "a"}, REFUSED),
    ("deep 400", _deep(400), REFUSED),
    ("deep 3000", _deep(3000), REFUSED),  # deeper than Python's recursion limit
    ("too big", "x" * (MAX_JSON_BYTES + 1), REFUSED),
]

ID_CASES: list[tuple[str, Any, Any]] = [
    ("plain", "id-plain", "id-plain"),
    ("unicode", "ïd ☃ 🚀", "ïd ☃ 🚀"),
    ("sql-looking", "x'); DROP TABLE threads; --", "x'); DROP TABLE threads; --"),
    ("256 chars", "i" * 256, "i" * 256),
    ("empty", "", REFUSED),
    ("blank", "   ", REFUSED),
    ("257 chars", "i" * 257, REFUSED),
    ("lone surrogate", "id-\ud800", REFUSED),
    ("int", 7, REFUSED),
    ("bytes", b"id", REFUSED),
    ("list", ["id"], REFUSED),
]

NUMBER_CASES: list[tuple[str, Any]] = [
    # numbers no time, rating, index or TTL accepts
    ("2**63", 2**63),
    ("-2**63-1", -(2**63) - 1),
    ("2**64", 2**64),
    ("nan", math.nan),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("text", "1"),
    ("list", [1]),
    ("bytes", b"1"),
    ("object", object()),
]


CONVERTED_BY_FRAMEWORK = {
    ("saver_metadata", "nul"): "ab",
    ("checkpoint_payload", "bytes"): b"x",
    ("checkpoint_payload", "bytearray"): b"x",
    ("checkpoint_payload", "too big"): "x" * (MAX_JSON_BYTES + 1),
}
"""Where a slot's documented rule differs: LangGraph's own ``get_checkpoint_metadata``
removes NUL characters from metadata strings; a generic checkpoint's payload may be bytes
(stored as a BLOB) and has a limit of its own (MAX_CHECKPOINT_BYTES)."""


Check = Callable[[Any], Awaitable[Any]]
"""Store one hostile value through one public method and return what reads back."""


@dataclasses.dataclass
class World:
    """One database seen through the store and every adapter, each counted."""

    store: sqlstore.Store
    squad: SqlChatStorage
    ago: LibSQLStore
    saver: LibSQLSaver
    counters: list[Counting]
    tested: int | None = None
    """The I/O calls of the call under test (set by ``done``)."""

    def io(self) -> int:
        return sum(c.calls for c in self.counters)

    def mark(self) -> None:
        """The call under test starts: count its I/O from here (setup came before)."""
        for c in self.counters:
            c.calls = 0
        self.tested = None

    def done(self) -> None:
        """The call under test has ended: reads from here on check what it stored."""
        if self.tested is None:
            self.tested = self.io()


@pytest.fixture
async def world(db_url: str) -> AsyncIterator[World]:
    store = await sqlstore.Store(db_url).initialize()
    squad = SqlChatStorage(db_url)
    await squad.initialize()
    ago = LibSQLStore(db_url)
    await ago.initialize()
    saver = LibSQLSaver(store)
    await saver.setup()
    counters = [counted(store), counted(squad.store), counted(ago.store)]
    try:
        yield World(store, squad, ago, saver, counters)
    finally:
        await saver.aclose()
        await squad.close()
        await ago.close()
        await store.close()


def _json_slots(w: World) -> dict[str, Check]:
    """Each place a JSON value is stored, as ``store(value) -> read back``."""
    s = w.store

    async def thread_metadata(v: Any) -> Any:
        t = await s.threads.create(unique("u"), metadata={"v": v})
        got = await s.threads.get(t.id)
        return got.metadata["v"] if got else None

    async def message_content(v: Any) -> Any:
        t = await s.threads.create(unique("u"))
        w.mark()
        await s.threads.add_message(t.id, "user", v)
        return (await s.threads.messages(t.id))[-1].content

    async def message_metadata(v: Any) -> Any:
        t = await s.threads.create(unique("u"))
        w.mark()
        await s.threads.add_message(t.id, "user", "hi", metadata={"v": v})
        return (await s.threads.messages(t.id))[-1].metadata["v"]

    async def thread_update(v: Any) -> Any:
        t = await s.threads.create(unique("u"))
        w.mark()  # only the update itself must not reach the database
        await s.threads.update(t.id, metadata={"v": v})
        got = await s.threads.get(t.id)
        return got.metadata["v"] if got else None

    async def fork_metadata(v: Any) -> Any:
        t = await s.threads.create(unique("u"))
        await s.threads.add_message(t.id, "user", "hi")
        w.mark()
        child = await s.threads.fork(t.id, 0, metadata={"v": v})
        return child.metadata["v"]

    async def message_batch(v: Any) -> Any:
        t = await s.threads.create(unique("u"))
        w.mark()
        try:
            await s.threads.add_messages(
                t.id, [{"role": "user", "content": "ok"}, {"role": "assistant", "content": v}]
            )
        finally:
            w.done()
            stored = await s.threads.messages(t.id)
        return stored[-1].content if len(stored) == 2 else ("partial", len(stored))

    async def conversation_content(v: Any) -> Any:
        k = (unique("u"), "s", "a")
        await s.conversations.save(*k, {"role": "user", "content": v})
        return (await s.conversations.newest(*k))[-1].content

    async def conversation_batch(v: Any) -> Any:
        k = (unique("u"), "s", "a")
        try:
            await s.conversations.save_many(
                *k, [{"role": "user", "content": "ok"}, {"role": "assistant", "content": v}]
            )
        finally:
            w.done()
            stored = await s.conversations.newest(*k)
        return stored[-1].content if len(stored) == 2 else ("partial", len(stored))

    async def conversation_metadata(v: Any) -> Any:
        k = (unique("u"), "s", "a")
        await s.conversations.save(*k, {"role": "user", "content": "x", "metadata": {"v": v}})
        return (await s.conversations.newest(*k))[-1].metadata["v"]

    async def feedback_metadata(v: Any) -> Any:
        user = unique("u")
        await s.feedback.add(user_id=user, rating=1, metadata={"v": v})
        return (await s.feedback.list(user_id=user))[0].metadata["v"]

    async def approval_state(v: Any) -> Any:
        a = await s.approvals.save(v)
        got = await s.approvals.get(a.id)
        return got.state if got else None

    async def approval_metadata(v: Any) -> Any:
        a = await s.approvals.save({}, metadata={"v": v})
        got = await s.approvals.get(a.id)
        return got.metadata["v"] if got else None

    async def checkpoint_payload(v: Any) -> Any:
        t = unique("t")
        await s.checkpoints.save(t, "c1", v)
        got = await s.checkpoints.get(t, "c1")
        return got["payload"] if got else None

    async def checkpoint_metadata(v: Any) -> Any:
        t = unique("t")
        await s.checkpoints.save(t, "c1", {}, metadata={"v": v})
        got = await s.checkpoints.get(t, "c1")
        return got["metadata"]["v"] if got else None

    async def team_config(v: Any) -> Any:
        r = await s.teams.upsert(Team(user_id=unique("u"), config={"v": v}))
        got = await s.teams.get("team", {"id": r.data.id})
        return got.data[0].config["v"]

    async def team_import(v: Any) -> Any:
        r = await s.teams.import_team({"v": v, "n": unique("n")}, unique("u"))
        got = await s.teams.get("team", {"id": r.data.id})
        return got.data[0].config["v"]

    async def new_team(user: str) -> str:
        r = await s.teams.upsert(Team(user_id=user, config={"name": unique("team")}))
        return str(r.data.id)

    async def session_metadata(v: Any) -> Any:
        user = unique("u")
        team = await new_team(user)
        w.mark()
        r = await s.teams.upsert(Session(user_id=user, team_id=team, metadata={"v": v}))
        got = await s.teams.get("session", {"id": r.data.id})
        return got.data[0].metadata["v"]

    async def team_session(user: str) -> str:
        team = await new_team(user)
        r = await s.teams.upsert(Session(user_id=user, team_id=team))
        w.mark()
        return str(r.data.id)

    async def run_task(v: Any) -> Any:
        user = unique("u")
        session = await team_session(user)
        r = await s.teams.upsert(Run(session_id=session, user_id=user, task=v))
        got = await s.teams.get("run", {"id": r.data.id})
        return got.data[0].task

    async def team_message(v: Any) -> Any:
        user = unique("u")
        session = await team_session(user)
        r = await s.teams.upsert(
            TeamMessage(session_id=session, role="user", content=v, metadata={"v": v})
        )
        got = await s.teams.get("message", {"id": r.data.id})
        found = got.data[0]
        assert found.metadata["v"] == found.content
        return found.content

    async def squad_message(v: Any) -> Any:
        k = (unique("u"), "s", "a")
        message = ConversationMessage(role="user", content=[{"text": v}])
        await w.squad.save_chat_message(*k, message)
        return (await w.squad.fetch_chat(*k))[-1].content[0]["text"]

    async def squad_batch(v: Any) -> Any:
        k = (unique("u"), "s", "a")
        batch = [
            ConversationMessage(role="user", content=[{"text": "ok"}]),
            ConversationMessage(role="assistant", content=[{"text": v}]),
        ]
        try:
            await w.squad.save_chat_messages(*k, batch)
        finally:
            w.done()
            stored = await w.squad.fetch_chat(*k)
        return stored[-1].content[0]["text"] if len(stored) == 2 else ("partial", len(stored))

    async def ago_thread(v: Any) -> Any:
        t = unique("t")
        await w.ago.create_thread(t, "u", "agent", metadata={"v": v})
        got = await w.ago.get_thread(t)
        return got["metadata"]["v"] if got else None

    async def ago_message(v: Any) -> Any:
        t = unique("t")
        await w.ago.create_thread(t, "u", "agent")
        w.mark()
        await w.ago.add_message(t, "user", v)
        return (await w.ago.get_messages(t))[-1]["content"]

    async def ago_state(v: Any) -> Any:
        a, t = unique("a"), unique("t")
        await w.ago.create_thread(t, "u", "agent")
        w.mark()
        await w.ago.save_suspended_state(a, t, "agent", "node", {"v": v})
        got = await w.ago.get_suspended_state(a)
        return got["state_snapshot"]["v"] if got else None

    async def ago_checkpoint(v: Any) -> Any:
        t = unique("t")
        await w.ago.save_checkpoint(t, "", "c1", None, {"v": v}, {"m": v})
        got = await w.ago.get_checkpoint(t, "", "c1")
        assert got is None or got["metadata"]["m"] == got["checkpoint"]["v"]
        return got["checkpoint"]["v"] if got else None

    async def ago_log(v: Any) -> Any:
        log = await w.ago.create_invocation_log(agent_name="agent", input_data={"v": v})
        got = await w.ago.get_invocation_log(log["id"])
        return got["input"]["v"] if got else None

    async def saver_metadata(v: Any) -> Any:
        config: Any = {"configurable": {"thread_id": unique("t"), "checkpoint_ns": ""}}
        checkpoint = empty_checkpoint()
        saved = await w.saver.aput(config, checkpoint, {"v": v}, {})  # type: ignore[typeddict-unknown-key]
        got = await w.saver.aget_tuple(saved)
        return got.metadata["v"] if got else None  # type: ignore[typeddict-item]

    return {f.__name__: f for f in (
        thread_metadata, message_content, message_metadata, thread_update, fork_metadata,
        message_batch, conversation_content, conversation_batch, conversation_metadata,
        feedback_metadata, approval_state, approval_metadata, checkpoint_payload,
        checkpoint_metadata, team_config, team_import, session_metadata, run_task,
        team_message, squad_message, squad_batch, ago_thread, ago_message, ago_state,
        ago_checkpoint, ago_log, saver_metadata,
    )}  # fmt: skip


async def _run_cases(
    w: World, slots: dict[str, Check], cases: list[tuple[str, Any, Any]]
) -> tuple[int, list[str]]:
    """Run every case through every slot, one at a time (sqld answers "database is
    locked" to concurrent write transactions); the number run and what went wrong."""
    wrong: list[str] = []
    ran = 0
    for slot, check in slots.items():
        for name, value, expected in cases:
            ran += 1
            expected = CONVERTED_BY_FRAMEWORK.get((slot, name), expected)
            w.mark()
            try:
                got = await check(value)
            except SqlStoreError as exc:
                w.done()
                if expected is not REFUSED:
                    wrong.append(f"{slot} / {name}: refused ({type(exc).__name__}: {exc})")
                elif w.tested:
                    wrong.append(f"{slot} / {name}: refused only after {w.tested} call(s) of I/O")
                continue
            except Exception as exc:
                wrong.append(f"{slot} / {name}: escaped as {type(exc).__name__}: {exc}")
                continue
            if expected is REFUSED:
                wrong.append(f"{slot} / {name}: stored, reads back {str(got)[:60]!r}")
            elif got != expected or type(got) is not type(expected):
                wrong.append(f"{slot} / {name}: reads back {str(got)[:60]!r}")
    return ran, wrong


async def test_every_json_value_is_stored_as_given_or_refused_before_io(world: World) -> None:
    slots = _json_slots(world)
    ran, wrong = await _run_cases(world, slots, JSON_CASES)
    assert ran >= 27 * 50  # several hundred cases on each backend
    assert not wrong, f"{len(wrong)} of {ran} cases:\n" + "\n".join(wrong)


def _id_cases() -> list[tuple[str, Any, Any]]:
    """Ids as given (fresh ones for each slot: the remote databases are shared) or refused."""
    tag = uuid.uuid4().hex[:12]
    accepted = [
        ("plain", f"id-{tag}"),
        ("unicode", f"ïd ☃ 🚀 {tag}"),
        ("sql-looking", f"x'); DROP TABLE threads; -- {tag}"),
        ("json-looking", f'["{tag}"]'),
        ("nul inside", f"id\x00{tag}"),
        ("line separator", f"id\u2028{tag}"),
        ("256 chars", tag + "i" * 244),
    ]
    refused = [
        ("empty", ""),
        ("blank", "   "),
        ("257 chars", tag + "i" * 245),
        ("lone surrogate", f"id-\ud800{tag}"),
        ("int", 7),
        ("float", 1.5),
        ("bytes", b"id"),
        ("list", ["id"]),
    ]
    return [(n, v, v) for n, v in accepted] + [(n, v, REFUSED) for n, v in refused]


def _id_slots(w: World) -> dict[str, Check]:
    """Each place a caller names a row, as ``store(id) -> the id read back``."""
    s = w.store

    async def thread_id(v: Any) -> Any:
        await s.threads.create(unique("u"), thread_id=v)
        got = await s.threads.get(v)
        return got.id if got else None

    async def message_id(v: Any) -> Any:
        t = await s.threads.create(unique("u"))
        w.mark()
        await s.threads.add_message(t.id, "user", "x", message_id=v)
        return (await s.threads.messages(t.id))[-1].id

    async def fork_id(v: Any) -> Any:
        t = await s.threads.create(unique("u"))
        await s.threads.add_message(t.id, "user", "x")
        w.mark()
        await s.threads.fork(t.id, 0, new_thread_id=v)
        got = await s.threads.get(v)
        return got.id if got else None

    async def feedback_id(v: Any) -> Any:
        user = unique("u")
        await s.feedback.add(user_id=user, rating=1, feedback_id=v)
        return (await s.feedback.list(user_id=user))[0].id

    async def approval_id(v: Any) -> Any:
        await s.approvals.save({}, approval_id=v)
        got = await s.approvals.get(v)
        return got.id if got else None

    async def checkpoint_thread(v: Any) -> Any:
        await s.checkpoints.save(v, "c1", {})
        got = await s.checkpoints.get(v, "c1")
        return got["thread_id"] if got else None

    async def checkpoint_id(v: Any) -> Any:
        t = unique("t")
        await s.checkpoints.save(t, v, {})
        got = await s.checkpoints.get(t, v)
        return got["checkpoint_id"] if got else None

    async def conversation_user(v: Any) -> Any:
        await s.conversations.save(v, "s", "a", {"role": "user", "content": "x"})
        found = await s.conversations.newest(v, "s", "a")
        return v if len(found) == 1 else ("found", len(found))

    async def team_id(v: Any) -> Any:
        await s.teams.upsert(Team(id=v, user_id=unique("u"), config={"a": 1}))
        got = await s.teams.get("team", {"id": v})
        return got.data[0].id if got.data else None

    async def squad_user(v: Any) -> Any:
        message = ConversationMessage(role="user", content=[{"text": "x"}])
        await w.squad.save_chat_message(v, "s", "a", message)
        return v if len(await w.squad.fetch_chat(v, "s", "a")) == 1 else None

    async def ago_thread_id(v: Any) -> Any:
        await w.ago.create_thread(v, "u", "agent")
        got = await w.ago.get_thread(v)
        return got["id"] if got else None

    async def saver_thread_id(v: Any) -> Any:
        config: Any = {"configurable": {"thread_id": v, "checkpoint_ns": ""}}
        await w.saver.aput(config, empty_checkpoint(), {}, {})
        got = await w.saver.aget_tuple(config)
        return got.config["configurable"]["thread_id"] if got else None

    return {f.__name__: f for f in (
        thread_id, message_id, fork_id, feedback_id, approval_id, checkpoint_thread,
        checkpoint_id, conversation_user, team_id, squad_user, ago_thread_id, saver_thread_id,
    )}  # fmt: skip


def _number_slots(w: World) -> dict[str, Check]:
    """Each place a caller gives a time, rating, index, TTL or size."""
    s = w.store

    async def thread_created_at(v: Any) -> Any:
        return await s.threads.create(unique("u"), created_at=v)

    async def message_created_at(v: Any) -> Any:
        t = await s.threads.create(unique("u"))
        w.mark()
        return await s.threads.add_message(t.id, "user", "x", created_at=v)

    async def fork_index(v: Any) -> Any:
        t = await s.threads.create(unique("u"))
        await s.threads.add_message(t.id, "user", "x")
        w.mark()
        return await s.threads.fork(t.id, v)

    async def messages_limit(v: Any) -> Any:
        return await s.threads.messages("t", limit=v)

    async def messages_after(v: Any) -> Any:
        return await s.threads.messages("t", after_seq=v)

    async def feedback_rating(v: Any) -> Any:
        return await s.feedback.add(user_id=unique("u"), rating=v)

    async def approval_ttl(v: Any) -> Any:
        return await s.approvals.save({}, ttl=v)

    async def conversation_max_history(v: Any) -> Any:
        k = (unique("u"), "s", "a")
        return await s.conversations.save(*k, {"role": "user", "content": "x"}, max_history=v)

    async def conversation_created_at(v: Any) -> Any:
        k = (unique("u"), "s", "a")
        return await s.conversations.save(*k, {"role": "user", "content": "x", "created_at": v})

    async def team_version(v: Any) -> Any:
        return await s.teams.upsert(Team(user_id=unique("u"), config={}, version=v))

    async def squad_history(v: Any) -> Any:
        message = ConversationMessage(role="user", content=[{"text": "x"}])
        return await w.squad.save_chat_message(unique("u"), "s", "a", message, v)

    async def ago_fork_index(v: Any) -> Any:
        t = unique("t")
        await w.ago.create_thread(t, "u", "agent")
        await w.ago.add_message(t, "user", "x")
        w.mark()
        return await w.ago.fork_thread(t, v, unique("t"))

    return {f.__name__: f for f in (
        thread_created_at, message_created_at, fork_index, messages_limit, messages_after,
        feedback_rating, approval_ttl, conversation_max_history, conversation_created_at,
        team_version, squad_history, ago_fork_index,
    )}  # fmt: skip


async def test_every_id_is_kept_as_given_or_refused_before_io(world: World) -> None:
    slots = _id_slots(world)
    ran, wrong = 0, list[str]()
    for name, check in slots.items():
        n, w = await _run_cases(world, {name: check}, _id_cases())
        ran, wrong = ran + n, wrong + w
    assert ran >= 12 * 13
    assert not wrong, f"{len(wrong)} of {ran} cases:\n" + "\n".join(wrong)


async def test_every_number_out_of_range_is_refused_before_io(world: World) -> None:
    cases = [(name, value, REFUSED) for name, value in NUMBER_CASES]
    ran, wrong = await _run_cases(world, _number_slots(world), cases)
    assert ran >= 12 * 10
    assert not wrong, f"{len(wrong)} of {ran} cases:\n" + "\n".join(wrong)


async def test_a_message_without_content_is_refused_with_its_whole_batch(world: World) -> None:
    s = world.store
    t = await s.threads.create(unique("u"))
    k = (unique("u"), "s", "a")
    batch: list[dict[str, Any]] = [
        {"role": "user", "content": "ok"},
        {"role": "assistant", "content": None},
    ]
    for call in (
        lambda: s.threads.add_message(t.id, "user", None),
        lambda: s.threads.add_messages(t.id, batch),
        lambda: s.conversations.save(*k, batch[1]),
        lambda: s.conversations.save_many(*k, batch),
        lambda: world.squad.save_chat_messages(
            *k,
            [
                ConversationMessage(role="user", content=[{"text": "ok"}]),
                ConversationMessage(role="assistant", content=None),
            ],
        ),
        lambda: world.squad.save_chat_message(*k, ConversationMessage(role="user", content=None)),
    ):
        world.mark()
        with pytest.raises(sqlstore.ValidationError):
            await call()
        assert world.io() == 0
    assert await s.threads.messages(t.id) == []
    assert await s.conversations.newest(*k) == []


async def test_fork_with_an_empty_new_id_is_refused(world: World) -> None:
    s = world.store
    t = await s.threads.create(unique("u"))
    await s.threads.add_message(t.id, "user", "x")
    world.mark()
    with pytest.raises(sqlstore.ValidationError):
        await s.threads.fork(t.id, 0, new_thread_id="")
    assert world.io() == 0


# -- YAML and size limits ----------------------------------------------------------------

ALIAS_BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)
"""A billion laughs in a few hundred bytes: nine levels of nine aliases."""


async def test_a_yaml_alias_bomb_is_refused_fast_with_bounded_memory(
    world: World, tmp_path: Path
) -> None:
    assert len(ALIAS_BOMB) < 400
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    tracemalloc.start()
    world.mark()
    try:
        with pytest.raises(sqlstore.ValidationError, match="alias"):
            await world.store.teams.import_team(path, unique("u"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert world.io() == 0
    assert peak < 5_000_000  # expanded, it was 469 MB of JSON and 1.37 GiB of memory
    # A config without aliases imports as usual.
    path.write_text("name: plain\nparticipants: [a, b]\n")
    r = await world.store.teams.import_team(path, unique("u"))
    assert r.status and r.data.config == {"name": "plain", "participants": ["a", "b"]}


async def test_json_limits_hold_for_every_json_value(world: World) -> None:
    s = world.store
    t = await s.threads.create(unique("u"))
    fits = "x" * (MAX_JSON_BYTES - 2)  # its JSON text, quotes and all, is the limit
    stored = await s.threads.add_message(t.id, "user", fits)
    assert (await s.threads.messages(t.id))[-1].content == fits == stored.content
    big = "é" * (MAX_JSON_BYTES // 2)  # 2 bytes of UTF-8 each: counted in bytes, not characters
    world.mark()
    for call in (
        lambda: s.threads.add_message(t.id, "user", big),
        lambda: s.approvals.save(big),
        lambda: s.threads.update(t.id, metadata={"v": big}),
        lambda: s.teams.import_team({"v": big}, "u"),
        lambda: s.checkpoints.save("t", "c", "x" * (16 * MAX_JSON_BYTES)),
    ):
        with pytest.raises(sqlstore.ValidationError, match="limit"):
            await call()
    assert world.io() == 0


async def test_read_filters_refuse_what_no_backend_compares_alike(world: World) -> None:
    s = world.store
    values: list[Any] = [math.nan, math.inf, [math.nan], {"a": math.inf}, "\ud800", 2**63]
    for value in values:
        world.mark()
        with pytest.raises(SqlStoreError):
            async for _ in world.saver.alist(None, filter={"v": value}):
                pass
        with pytest.raises(SqlStoreError):
            await s.teams.get("message", {"content": value})
        with pytest.raises(SqlStoreError):
            await world.ago.list_threads(user_id=value)
        assert world.io() == 0, value
