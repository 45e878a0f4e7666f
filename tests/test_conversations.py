"""Conversations domain: atomic saves, trimming, same-role rule, bounded reads, both backends."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import sqlstore
from sqlstore.domains.common import new_id, now_ms
from sqlstore.domains.conversations import (
    MAX_READ,
    save_statements,
    select_conversation_newest,
)
from sqlstore.domains.messages import MAX_CONTENT_BYTES, NewMessage, encode_messages
from sqlstore.drivers.local import LocalClient
from sqlstore.drivers.remote import RemoteClient
from sqlstore.errors import ValidationError
from tests.conftest import unique
from tests.processes import run_workers
from tests.vm_steps import vm_steps

Key = tuple[str, str, str]


def key() -> Key:
    return (unique("user"), unique("session"), "agent-a")


def msg(role: str, text: str, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": [{"text": text}], **extra}


RICH_CONTENT: list[Any] = [
    {"text": "Here is the chart you asked for."},
    {"toolUse": {"toolUseId": "t-1", "name": "plot", "input": {"x": [1, 2.5, None], "y": "é"}}},
    {"toolResult": {"toolUseId": "t-1", "content": [{"json": {"ok": True}}], "status": "ok"}},
    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgoAAAANSUhEUgAAAAE="}}},
    {"citations": [{"title": "doc", "location": {"start": 0, "end": 5}}]},
    {"nested": {"deep": [[["x"]], {"k": -1}]}},
]


async def test_save_and_read_keep_content_verbatim(store: sqlstore.Store) -> None:
    k = key()
    first = await store.conversations.save(*k, msg("user", "hi"))
    assert [m.seq for m in first.inserted] == [1]
    assert first.message_count == 1 and first.messages == []
    rich = await store.conversations.save(
        *k, {"role": "assistant", "content": RICH_CONTENT, "metadata": {"model": "stub"}}
    )
    assert rich.thread_id == first.thread_id
    newest = await store.conversations.newest(*k, 10)
    assert [(m.seq, m.role) for m in newest] == [(1, "user"), (2, "assistant")]
    assert newest[1].content == RICH_CONTENT
    assert newest[1].metadata == {"model": "stub"}
    assert await store.conversations.count(*k) == 2
    assert await store.conversations.newest("nobody", "none", "none") == []
    assert await store.conversations.count("nobody", "none", "none") == 0


async def test_many_messages_go_in_with_one_batch_and_contiguous_seq(store: sqlstore.Store) -> None:
    k = key()
    roles = ["user", "assistant"] * 50
    result = await store.conversations.save_many(*k, [msg(r, str(i)) for i, r in enumerate(roles)])
    assert [m.seq for m in result.inserted] == list(range(1, 101))
    assert [m.content[0]["text"] for m in result.inserted] == [str(i) for i in range(100)]
    more = await store.conversations.save_many(*k, [msg("user", "a"), msg("assistant", "b")])
    assert [m.seq for m in more.inserted] == [101, 102]
    assert more.message_count == 102


async def test_batch_with_one_invalid_message_stores_nothing(store: sqlstore.Store) -> None:
    k = key()
    bad_batches: list[list[Any]] = [
        [msg("user", "ok"), msg("robot", "unknown role")],
        [msg("user", "ok"), {"role": "assistant", "content": [{"x": {1, 2}}]}],
        [msg("user", "ok"), {"role": "assistant", "content": "x" * (MAX_CONTENT_BYTES + 1)}],
        [msg("user", "ok"), msg("assistant", "empty id", id="")],
        [msg("user", "ok", id="same"), msg("assistant", "dup", id="same")],
    ]
    for batch in bad_batches:
        with pytest.raises(ValidationError):
            await store.conversations.save_many(*k, batch)
    assert await store.conversations.count(*k) == 0
    rows = await store.execute(
        "SELECT count(*) FROM threads WHERE user_id = ? AND session_id = ?", k[:2]
    )
    assert rows.scalar() == 0  # not even the thread row: validation ran before any I/O


@pytest.mark.parametrize(
    "args",
    [("", "s", "a"), ("u", "", "a"), ("u", "s", "  "), (None, "s", "a"), ("u", "s", 3)],
)
async def test_bad_keys_are_validation_errors(
    store: sqlstore.Store, args: tuple[Any, Any, Any]
) -> None:
    user_id, session_id, agent_id = args
    with pytest.raises(ValidationError):
        await store.conversations.save(user_id, session_id, agent_id, msg("user", "x"))


async def test_bad_input_raises_before_any_request(store: sqlstore.Store) -> None:
    k = key()
    client = store.client
    before = client.requests_sent if isinstance(client, RemoteClient) else 0
    for bad in (
        lambda: store.conversations.save(*k, msg("user", "x"), max_history=0),
        lambda: store.conversations.save(*k, msg("user", "x"), max_history=-3),
        lambda: store.conversations.save(*k, msg("user", "x"), max_history=True),
        lambda: store.conversations.save(*k, msg("user", "x"), history=MAX_READ + 1),
        lambda: store.conversations.save_many(*k, []),
        lambda: store.conversations.save(*k, {"role": "user"}),
        lambda: store.conversations.newest(*k, 0),
        lambda: store.conversations.session(k[0], k[1], before=(1, 2)),  # type: ignore[arg-type]
    ):
        with pytest.raises(ValidationError):
            await bad()
    if isinstance(client, RemoteClient):
        assert client.requests_sent == before


async def test_same_ids_saved_twice_are_stored_once(store: sqlstore.Store) -> None:
    k = key()
    batch = [msg("user", "q", id=new_id()), msg("assistant", "a", id=new_id())]
    first = await store.conversations.save_many(*k, batch)
    again = await store.conversations.save_many(*k, batch)  # a retry after a lost response
    assert len(first.inserted) == 2 and first.retried == 0
    # An idempotent retry reports what the first call stored, and stores nothing twice.
    assert again.inserted == first.inserted and again.skipped == 0 and again.retried == 2
    partly = await store.conversations.save_many(*k, [*batch, msg("user", "new", id=new_id())])
    assert [m.seq for m in partly.inserted] == [1, 2, 3] and partly.retried == 2
    assert await store.conversations.count(*k) == 3
    assert [m.seq for m in await store.conversations.newest(*k)] == [1, 2, 3]


async def test_one_message_save_reports_what_was_stored(store: sqlstore.Store) -> None:
    """One message has an INSERT of its own (it returns only the seq): the reported message
    equals the stored row; a retried id stores nothing and reports the stored message; the
    id in another conversation is a ConflictError naming it, and nothing is stored."""
    k, other = key(), key()
    mid = new_id()
    first = await store.conversations.save(
        *k, msg("user", "q", id=mid, metadata={"m": [1]}, run_id=None), max_history=5
    )
    (stored,) = await store.conversations.newest(*k)
    assert first.inserted == [stored] and stored.id == mid and stored.seq == 1
    assert stored.thread_id == first.thread_id and stored.metadata == {"m": [1]}
    assert first.skipped == 0 and first.message_count == 1
    again = await store.conversations.save(
        *k, msg("user", "q", id=mid, metadata={"m": [1]}), max_history=5
    )
    assert again.inserted == [stored] and again.skipped == 0 and again.retried == 1
    assert again.message_count == 1
    with pytest.raises(sqlstore.ConflictError, match=mid):
        await store.conversations.save(*other, msg("user", "q", id=mid), history=5)
    assert await store.conversations.count(*other) == 0
    assert await store.conversations.newest(*other) == []
    second = await store.conversations.save(*k, NewMessage(role="assistant", content="a"))
    assert [m.seq for m in second.inserted] == [2] and second.message_count == 2
    assert second.inserted == (await store.conversations.newest(*k, 1))


async def test_trimming_keeps_exactly_the_newest_n(store: sqlstore.Store) -> None:
    k = key()
    for i in range(10):
        result = await store.conversations.save(
            *k, msg("user" if i % 2 == 0 else "assistant", str(i)), max_history=3, history=3
        )
        assert result.message_count == min(i + 1, 3)
        assert [m.content[0]["text"] for m in result.messages] == [
            str(j) for j in range(max(0, i - 2), i + 1)
        ]
    newest = await store.conversations.newest(*k, 100)
    assert [m.seq for m in newest] == [8, 9, 10]  # odd N kept as asked: no rounding
    assert await store.conversations.count(*k) == 3
    big = await store.conversations.save_many(
        *k, [msg("user", f"b{i}") for i in range(7)], max_history=4, history=4
    )
    assert [m.content[0]["text"] for m in big.messages] == ["b3", "b4", "b5", "b6"]
    assert len(big.inserted) == 7 and big.message_count == 4
    assert await store.conversations.count(*k) == 4
    untouched = await store.conversations.save(*k, msg("assistant", "no limit"))
    assert untouched.message_count == 5 and untouched.messages == []


async def test_history_option_bounds_what_a_save_returns(store: sqlstore.Store) -> None:
    k = key()
    await store.conversations.save_many(*k, [msg("user", str(i)) for i in range(20)])
    result = await store.conversations.save(*k, msg("assistant", "last"), history=5)
    assert [m.seq for m in result.messages] == [17, 18, 19, 20, 21]
    trimmed = await store.conversations.save(*k, msg("user", "x"), max_history=8, history=2)
    assert [m.seq for m in trimmed.messages] == [21, 22]
    assert trimmed.message_count == 8


async def test_same_role_rule_is_applied_inside_the_batch(store: sqlstore.Store) -> None:
    k = key()
    await store.conversations.save(*k, msg("user", "q1"), skip_same_role=True)
    skipped = await store.conversations.save(
        *k, msg("user", "q1 again"), skip_same_role=True, history=10
    )
    assert skipped.inserted == [] and skipped.skipped == 1
    assert [m.content[0]["text"] for m in skipped.messages] == ["q1"]
    batch = await store.conversations.save_many(
        *k,
        [
            msg("user", "dup of last"),
            msg("assistant", "a1"),
            msg("assistant", "a1 dup"),
            msg("user", "q2"),
        ],
        skip_same_role=True,
    )
    assert [m.content[0]["text"] for m in batch.inserted] == ["a1", "q2"]
    assert [m.seq for m in batch.inserted] == [2, 3]
    assert batch.skipped == 2
    off = await store.conversations.save(*k, msg("user", "rule off by default"))
    assert [m.seq for m in off.inserted] == [4]
    roles = [m.role for m in await store.conversations.newest(*k)]
    assert roles == ["user", "assistant", "user", "user"]


@pytest.mark.parametrize("given_ids", [False, True])
async def test_many_messages_are_numbered_alike_with_or_without_given_ids(
    store: sqlstore.Store, given_ids: bool
) -> None:
    """Messages whose ids this call made go in with a cheaper statement (no id can be
    stored yet) than messages with given ids: both number the same, past the 100 rows of
    one statement and after a first message dropped by the same-role rule."""

    def m(role: str, text: str) -> dict[str, Any]:
        return msg(role, text, id=new_id()) if given_ids else msg(role, text)

    k = key()
    await store.conversations.save(*k, m("user", "q0"))
    roles = ["user"] + ["assistant" if i % 2 else "user" for i in range(1, 151)]
    saved = await store.conversations.save_many(
        *k, [m(role, str(i)) for i, role in enumerate(roles)], skip_same_role=True
    )
    assert saved.skipped == 1  # the first: a user message after the stored user message
    assert [m.seq for m in saved.inserted] == list(range(2, 152))
    assert [m.content[0]["text"] for m in saved.inserted] == [str(i) for i in range(1, 151)]
    assert saved.message_count == 151
    newest = await store.conversations.newest(*k, 200)
    assert [m.seq for m in newest] == list(range(1, 152))


async def test_timestamps_are_kept_or_taken_from_the_clock(store: sqlstore.Store) -> None:
    k = key()
    start = now_ms()
    given = await store.conversations.save_many(
        *k,
        [
            msg("user", "old", created_at=1_000),
            msg("assistant", "old reply", created_at=2_000),
            msg("user", "now"),
            msg("assistant", "now too"),
        ],
    )
    times = [m.created_at for m in given.inserted]
    assert times[:2] == [1_000, 2_000]
    assert start <= times[2] <= times[3] <= now_ms()
    with pytest.raises(ValidationError):
        await store.conversations.save(*k, msg("user", "x", created_at=-1))


async def test_ten_concurrent_saves_to_one_conversation(db_url: str) -> None:
    k = key()
    stores = [sqlstore.Store(db_url) for _ in range(10)]
    try:
        for s in stores:
            await s.initialize()
        results = await asyncio.gather(
            *(s.conversations.save(*k, msg("user", str(i))) for i, s in enumerate(stores))
        )
        assert sorted(r.inserted[0].seq for r in results) == list(range(1, 11))
        shared = stores[0]
        # one store, ten concurrent saves too
        more = await asyncio.gather(
            *(shared.conversations.save(*k, msg("assistant", f"m{i}")) for i in range(10))
        )
        assert sorted(r.inserted[0].seq for r in more) == list(range(11, 21))
        newest = await shared.conversations.newest(*k, 100)
        assert [m.seq for m in newest] == list(range(1, 21))
        assert sorted(m.content[0]["text"] for m in newest[:10]) == sorted(map(str, range(10)))
        assert await shared.conversations.count(*k) == 20
    finally:
        for s in stores:
            await s.close()


async def test_four_processes_save_to_one_conversation(store: sqlstore.Store, db_url: str) -> None:
    user = unique("procs")
    n = 500
    outcomes = await run_workers(
        *(["converse", db_url, user, str(w), str(n)] for w in range(4)), timeout=240
    )
    for code, _, err in outcomes:
        assert code == 0, err
        assert "locked" not in err
    k = (user, "shared", "agent")
    assert await store.conversations.count(*k) == 4 * n
    seqs = await store.execute(
        "SELECT count(*), count(DISTINCT seq), MIN(seq), MAX(seq) FROM messages"
        " WHERE thread_id = (SELECT id FROM threads WHERE user_id = ? AND session_id = ?"
        " AND agent_id = ?)",
        k,
    )
    assert tuple(seqs.rows[0]) == (4 * n, 4 * n, 1, 4 * n)
    texts = {m.content[0]["text"] for m in await store.conversations.newest(*k, MAX_READ)}
    assert texts == {f"{w}:{i}" for w in range(4) for i in range(n)}


async def test_newest_pages_to_older_messages(store: sqlstore.Store) -> None:
    k = key()
    await store.conversations.save_many(*k, [msg("user", str(i)) for i in range(25)])
    page = await store.conversations.newest(*k, 10)
    assert [m.seq for m in page] == list(range(16, 26))
    seen = [m.seq for m in page]
    while page:
        page = await store.conversations.newest(*k, 10, before_seq=page[0].seq)
        seen = [m.seq for m in page] + seen
    assert seen == list(range(1, 26))


async def test_session_read_is_chronological_across_agents(store: sqlstore.Store) -> None:
    user, session = unique("user"), unique("session")
    conv = store.conversations
    await conv.save_many(
        user,
        session,
        "billing",
        [
            msg("user", "b-q1", created_at=1_000),
            msg("assistant", "b-a1", created_at=3_000),
        ],
    )
    await conv.save_many(
        user,
        session,
        "tech",
        [
            msg("user", "t-q1", created_at=2_000),
            msg("assistant", "t-a1", created_at=3_000),  # same ms as b-a1: tie broken by id
            msg("user", "t-q2", created_at=4_000),
        ],
    )
    await conv.save(user, unique("other-session"), "tech", msg("user", "elsewhere"))
    entries = await conv.session(user, session)
    texts = [e.message.content[0]["text"] for e in entries]
    assert texts == ["b-q1", "t-q1", "b-a1", "t-a1", "t-q2"]
    assert [e.agent_id for e in entries] == ["billing", "tech", "billing", "tech", "tech"]
    newest2 = await conv.session(user, session, 2)
    assert [e.message.content[0]["text"] for e in newest2] == ["t-a1", "t-q2"]
    first = newest2[0].message
    older = await conv.session(user, session, 2, before=(first.created_at, first.id))
    assert [e.message.content[0]["text"] for e in older] == ["t-q1", "b-a1"]
    first = older[0].message
    oldest = await conv.session(user, session, 10, before=(first.created_at, first.id))
    assert [e.message.content[0]["text"] for e in oldest] == ["b-q1"]


async def test_sessions_are_listed_newest_first_with_keyset_paging(store: sqlstore.Store) -> None:
    user = unique("user")
    conv = store.conversations
    for i in range(5):
        await conv.save(user, f"s{i}", "a", msg("user", "x"))
        await conv.save(user, f"s{i}", "b", msg("user", "y"))
        await asyncio.sleep(0.003)  # distinct activity times
    await conv.save(unique("stranger"), "s0", "a", msg("user", "not mine"))
    first = await conv.sessions(user, 2)
    assert [s.session_id for s in first] == ["s4", "s3"]
    assert first[0].agents == 2 and first[0].message_count == 2
    rest = await conv.sessions(user, 10, before=(first[-1].updated_at, first[-1].session_id))
    assert [s.session_id for s in rest] == ["s2", "s1", "s0"]


async def test_deletes_return_counts_and_leave_others_alone(store: sqlstore.Store) -> None:
    user, other = unique("user"), unique("user")
    conv = store.conversations
    for agent in ("a", "b", "c"):
        await conv.save_many(user, "s1", agent, [msg("user", "q"), msg("assistant", "r")])
    await conv.save_many(user, "s2", "a", [msg("user", "q")])
    await conv.save_many(other, "s1", "a", [msg("user", "q")])
    assert await conv.delete_conversation(user, "s1", "a") == conv_deleted(1, 2)
    assert await conv.delete_conversation(user, "s1", "a") == conv_deleted(0, 0)
    assert await conv.delete_session(user, "s1") == conv_deleted(2, 4)
    assert await conv.count(user, "s2", "a") == 1
    assert await conv.delete_user(user) == conv_deleted(1, 1)
    assert await conv.sessions(user) == []
    leftover = await store.execute(
        "SELECT count(*) FROM messages WHERE thread_id IN"
        " (SELECT id FROM threads WHERE user_id = ?)",
        (user,),
    )
    assert leftover.scalar() == 0
    assert await conv.count(other, "s1", "a") == 1


def conv_deleted(conversations: int, messages: int) -> Any:
    from sqlstore.domains.conversations import Deleted

    return Deleted(conversations=conversations, messages=messages)


# --- structure: a save never reads the whole history; reads are bounded in SQL ---------------


def _statements_of_a_save(k: Key, thread_id: str | None) -> list[tuple[str, Any]]:
    encoded = encode_messages([NewMessage(role="user", content=[{"text": "x"}])], now_ms())
    statements = save_statements(
        k,
        encoded,
        thread_id=thread_id,
        now=now_ms(),
        max_history=50,
        skip_same_role=True,
        history=50,
    )
    return [(s[0], s[1]) for s in statements if isinstance(s, tuple)]


async def test_save_statements_only_search_indexes(store: sqlstore.Store) -> None:
    k = key()
    saved = await store.conversations.save_many(*k, [msg("user", str(i)) for i in range(60)])
    statements = [
        *_statements_of_a_save(k, None),  # the thread found by its key (a first save)
        *_statements_of_a_save(k, saved.thread_id),  # and by its id (every later one)
        select_conversation_newest(k, 50),
    ]
    for sql, args in statements:
        plan = await store.execute("EXPLAIN QUERY PLAN " + sql, args)
        details = [str(row["detail"]) for row in plan.rows]
        for detail in details:
            assert not (detail.startswith("SCAN") and "messages" in detail), (sql, details)
            assert not (detail.startswith("SCAN") and "threads" in detail), (sql, details)
        if "messages" in sql:
            assert any("messages" in d and d.startswith("SEARCH") for d in details), details
    assert "LIMIT" in select_conversation_newest(k, 5)[0]


async def test_save_cost_does_not_grow_with_history(tmp_path: Any) -> None:
    """Count SQLite VM instructions of a save and of every read of messages: the same for
    a conversation of 100 messages as for one of 10,000 (and for a trimmed one that went
    through 10,000), for the first page and for a page deep in the history."""
    # Every call on the worker's connection, where the steps are counted.
    async with sqlstore.Store(f"file:{tmp_path / 'steps.db'}", inline_budget=0) as store:
        client = store.client
        assert isinstance(client, LocalClient)
        conv = store.conversations

        def turns(n: int) -> list[dict[str, Any]]:
            return [msg("assistant" if i % 2 else "user", str(i)) for i in range(n)]

        small, large, small_trimmed, large_trimmed = key(), key(), key(), key()
        await conv.save_many(*small, turns(100))
        await conv.save_many(*small_trimmed, turns(100), max_history=50)
        for _ in range(10):
            await conv.save_many(*large, turns(1000))
            await conv.save_many(*large_trimmed, turns(1000), max_history=50)
        assert await conv.count(*large) == 10_000
        assert await conv.count(*large_trimmed) == 50
        for k in (small, large):  # a second agent in each session
            await conv.save_many(k[0], k[1], "agent-b", turns(60))
        thread_of = {k: (await conv.save_many(*k, turns(1))).thread_id for k in (small, large)}
        middle = {  # a cursor 60 messages deep into the history
            k: (await conv.newest(*k, 60))[0] for k in (small, large)
        }
        threads = store.threads

        async def steps(call: Any) -> int:
            return await vm_steps(client, call)

        cases: list[tuple[str, Key, Key, Callable[[Key], Awaitable[Any]]]] = [
            (
                "save",
                small,
                large,
                lambda k: conv.save(*k, msg("user", "q"), skip_same_role=True, history=50),
            ),
            (
                "save+trim",
                small_trimmed,
                large_trimmed,
                lambda k: conv.save(*k, msg("user", "q"), max_history=50, skip_same_role=True),
            ),
            ("newest 50", small, large, lambda k: conv.newest(*k, 50)),
            (
                "newest 50, deep",
                small,
                large,
                lambda k: conv.newest(*k, 50, before_seq=middle[k].seq),
            ),
            ("session 50", small, large, lambda k: conv.session(k[0], k[1], 50)),
            (
                "session 50, deep",
                small,
                large,
                lambda k: conv.session(k[0], k[1], 50, before=(middle[k].created_at, middle[k].id)),
            ),
            ("sessions", small, large, lambda k: conv.sessions(k[0], 10)),
            ("thread recent 50", small, large, lambda k: threads.recent_messages(thread_of[k])),
            (
                "thread messages 50, deep",
                small,
                large,
                lambda k: threads.messages(thread_of[k], limit=50, after_seq=middle[k].seq),
            ),
            ("threads of a user", small, large, lambda k: threads.list(user_id=k[0])),
        ]
        for label, few, many, call in cases:
            few_steps = await steps(lambda c=call, k=few: c(k))
            many_steps = await steps(lambda c=call, k=many: c(k))
            assert few_steps > 0
            assert many_steps <= few_steps * 1.3 + 20, (label, few_steps, many_steps)


async def test_one_request_per_save_and_per_batch_remotely(turso_server: Any) -> None:
    async with sqlstore.Store(turso_server.url) as store:
        client = store.client
        assert isinstance(client, RemoteClient)
        k = key()
        for call in (
            lambda: store.conversations.save(*k, msg("user", "one")),
            lambda: store.conversations.save(
                *k, msg("assistant", "two"), max_history=5, skip_same_role=True
            ),
            lambda: store.conversations.save_many(
                *k, [msg("user", str(i)) for i in range(300)], max_history=50
            ),
            lambda: store.conversations.delete_conversation(*k),
        ):
            before = client.requests_sent
            await call()
            assert client.requests_sent == before + 1


async def test_demo_conversation_prints_a_trimmed_chat(
    store: sqlstore.Store, capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlstore.cli.demo_conversations import demo_conversation

    await demo_conversation(store)
    out = capsys.readouterr().out
    assert "billing kept to its newest 4" in out
    assert "Why was I charged twice?" not in out  # trimmed away
    assert "{'billing': 4, 'tech': 2}" in out


async def test_a_save_larger_than_one_insert_statement_stays_atomic_and_gap_free(
    store: sqlstore.Store,
) -> None:
    """Past VALUES_ROWS messages a save uses several INSERTs, still one batch (one request)."""
    from sqlstore.domains.messages import VALUES_ROWS

    k = key()
    n = VALUES_ROWS * 2 + 7
    client = store.client
    before = client.requests_sent if isinstance(client, RemoteClient) else 0
    result = await store.conversations.save_many(
        *k, [msg("user" if i % 2 else "assistant", str(i)) for i in range(n)], max_history=n - 3
    )
    if isinstance(client, RemoteClient):
        assert client.requests_sent - before == 1
    assert [m.seq for m in result.inserted] == list(range(1, n + 1))
    assert [m.content[0]["text"] for m in result.inserted] == [str(i) for i in range(n)]
    assert result.message_count == n - 3
    kept = await store.conversations.newest(*k, n)
    assert [m.seq for m in kept] == list(range(4, n + 1))
    bad = [msg("user", str(i)) for i in range(n)]
    bad[-1] = msg("robot", "late invalid")
    with pytest.raises(ValidationError):
        await store.conversations.save_many(*k, bad)
    assert await store.conversations.count(*k) == n - 3


@pytest.mark.parametrize("mode", ["one", "same_role", "many"])
async def test_a_save_after_the_thread_was_deleted_elsewhere_recreates_it(
    store: sqlstore.Store, db_url: str, mode: str
) -> None:
    """A store remembers which conversations have a thread row and leaves the thread
    upsert out of their saves; a thread deleted by someone else must not lose a save."""
    k = key()
    await store.conversations.save(*k, msg("user", "first"))
    async with sqlstore.Store(db_url) as other:
        gone = await other.conversations.delete_conversation(*k)
    assert gone.conversations == 1
    if mode == "many":
        saved = await store.conversations.save_many(
            *k, [msg("user", "again"), msg("assistant", "reply")]
        )
    else:
        saved = await store.conversations.save(
            *k, msg("user", "again"), skip_same_role=mode == "same_role"
        )
    assert [m.seq for m in saved.inserted] == ([1, 2] if mode == "many" else [1])
    assert saved.message_count == len(saved.inserted)
    newest = await store.conversations.newest(*k, 10)
    assert [m.content[0]["text"] for m in newest] == (
        ["again", "reply"] if mode == "many" else ["again"]
    )
    assert newest[0].thread_id == saved.thread_id
    # And the next save finds the new thread row without the upsert again.
    after = await store.conversations.save(*k, msg("user", "more"))
    assert after.thread_id == saved.thread_id and after.inserted[0].seq == len(newest) + 1


async def test_a_save_after_the_thread_was_recreated_elsewhere_finds_the_new_one(
    store: sqlstore.Store, db_url: str
) -> None:
    """The remembered thread id is stale once another store deletes the conversation and
    saves to its key again (a new thread row, a new id): the save goes to the new row."""
    k = key()
    first = await store.conversations.save(*k, msg("user", "first"))
    async with sqlstore.Store(db_url) as other:
        await other.conversations.delete_conversation(*k)
        recreated = await other.conversations.save(*k, msg("user", "from the other store"))
    assert recreated.thread_id != first.thread_id
    saved = await store.conversations.save(*k, msg("assistant", "reply"), max_history=10)
    assert saved.thread_id == recreated.thread_id
    assert [m.seq for m in saved.inserted] == [2] and saved.message_count == 2
    newest = await store.conversations.newest(*k, 10)
    assert [m.content[0]["text"] for m in newest] == ["from the other store", "reply"]
    leftover = await store.execute(
        "SELECT count(*) FROM messages WHERE thread_id = ?", (first.thread_id,)
    )
    assert leftover.scalar() == 0


@pytest.mark.parametrize("size", [1, 2, 150])
async def test_a_taken_message_id_is_a_conflict_and_stores_nothing(
    store: sqlstore.Store, size: int
) -> None:
    """A message id names one message in the whole database: saving an id that another
    conversation or thread holds, or this conversation holds with other content, raises
    ConflictError naming it, and nothing of the batch is stored (per-conversation ids such
    as "1" never lose a message silently)."""
    k, other = key(), key()
    mid = unique("m")
    await store.conversations.save(*other, msg("user", "theirs", id=mid))
    mine = await store.conversations.save(*k, msg("user", "mine", id=unique("m")))
    thread = await store.threads.create("u")
    in_thread = await store.threads.add_message(thread.id, "user", "x", message_id=unique("m"))
    mine_id = mine.inserted[0].id

    def batch(last: dict[str, Any]) -> list[dict[str, Any]]:
        return [msg("assistant", f"n{i}") for i in range(size - 1)] + [last]

    for last, match in (
        (msg("user", "theirs", id=mid), mid),
        (msg("user", "x", id=in_thread.id), in_thread.id),
        (msg("user", "changed", id=mine_id), f"{mine_id}.*other content"),
    ):
        for known in (True, False):  # the thread found by id, or by its key (a new object)
            conv = store.conversations if known else type(store.conversations)(store)
            with pytest.raises(sqlstore.ConflictError, match=match):
                await conv.save_many(*k, batch(last), max_history=10, history=5)
            with pytest.raises(sqlstore.ConflictError, match=last["id"]):
                await conv.save_many(*key(), batch(last))  # a conversation not yet stored
    assert [m.id for m in await store.conversations.newest(*k)] == [mine_id]
    assert await store.conversations.count(*k) == 1
    assert [m.content for m in await store.conversations.newest(*other)] == [[{"text": "theirs"}]]
    assert await store.threads.messages(thread.id) == [in_thread]
