"""Retention: every pruner, dry runs, batches that resume, nothing coming back after a
delete, stats and reclaimed space; on a local file and on both servers.

Tests that prune by age use a database of their own (``own_db_url``): a prune is global,
and the session servers are shared with other tests."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.graph import END, START, StateGraph

import sqlstore
from sqlstore.cli import main
from sqlstore.compat.langgraph import LibSQLSaver, born_ms
from sqlstore.domains.common import now_ms
from sqlstore.errors import ConflictError, ValidationError
from sqlstore.retention import BatchOptions, checkpoints_to_delete, parse_age
from tests.conftest import unique

DAY = 86_400_000


def msg(role: str, text: str, created_at: int | None = None, **extra: Any) -> dict[str, Any]:
    return {"role": role, "content": [{"text": text}], "created_at": created_at, **extra}


async def counters_match(store: sqlstore.Store) -> None:
    """Every thread's message_count is the number of its messages."""
    wrong = await store.execute(
        """SELECT id, message_count, (SELECT count(*) FROM messages WHERE thread_id = t.id)
           FROM threads AS t
           WHERE message_count <> (SELECT count(*) FROM messages WHERE thread_id = t.id)"""
    )
    assert wrong.values == []


async def build(store: sqlstore.Store) -> dict[str, str]:
    """One of everything, some of it old (40 days), some of it new."""
    old = now_ms() - 40 * DAY
    ids: dict[str, str] = {}
    idle = await store.threads.create("u", title="idle", created_at=old)
    await store.threads.add_messages(idle.id, [msg("user", f"i{i}", old) for i in range(3)])
    await store.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (old, idle.id))
    fork = await store.threads.fork(idle.id, 1)
    await store.feedback.add(thread_id=idle.id, rating=5)
    await store.approvals.save({"s": 1}, thread_id=idle.id)
    mixed = await store.threads.create("u", title="mixed")
    await store.threads.add_messages(mixed.id, [msg("user", f"o{i}", old) for i in range(5)])
    await store.threads.add_messages(mixed.id, [msg("user", f"n{i}") for i in range(3)])
    busy = await store.threads.create("u", title="busy")
    await store.execute(
        "INSERT INTO runs (id, thread_id, created_at, updated_at) VALUES ('r-old', ?, ?, ?)",
        (busy.id, old, old),
    )
    await store.threads.add_messages(busy.id, [msg("user", "r", run_id="r-old") for _ in range(2)])
    await store.threads.add_messages(busy.id, [msg("user", f"b{i}") for i in range(10)])
    await store.feedback.add(thread_id=mixed.id, rating=1, created_at=old)
    await store.feedback.add(thread_id=mixed.id, rating=2)
    await store.approvals.save({"s": 2}, ttl=timedelta(milliseconds=1))
    await store.approvals.save({"s": 3})
    await asyncio.sleep(0.01)  # the short approval expires
    ids.update(idle=idle.id, fork=fork.id, mixed=mixed.id, busy=busy.id)
    return ids


POLICY = {
    "approvals_expired": True,
    "feedback_older_than": "30d",
    "runs_older_than": "30d",
    "threads_idle": timedelta(days=30),
    "messages_older_than": "30d",
    "messages_keep_latest": 4,
}


async def test_a_policy_prunes_every_domain_and_keeps_counters_right(own_db_url: str) -> None:
    async with sqlstore.Store(own_db_url, retention=POLICY) as store:
        ids = await build(store)
        planned = await store.prune(dry_run=True)
        assert (await store.execute("SELECT count(*) FROM messages")).scalar() == 3 + 2 + 8 + 12
        result = await store.prune()
        assert planned.counts["threads"] == 1 and planned.total >= result.total  # an upper bound
        assert result.counts == {
            "approvals": 2,  # the expired one, and the idle thread's (with the thread)
            "feedback": 2,  # the old one, and the idle thread's
            "runs": 1,
            "threads": 1,
            # the idle thread's, the run's, the old ones (and the fork's old copies), and the
            # busy thread's beyond its newest 4
            "messages": 3 + 2 + (5 + 2) + (10 - 4),
        }
        assert await store.threads.get(ids["idle"]) is None
        fork = await store.threads.get(ids["fork"])
        assert fork is not None and fork.parent_id is None and fork.root_id == fork.id
        for name in ("mixed", "busy"):
            recent = await store.threads.recent_messages(ids[name], limit=50)
            assert len(recent) == min(4, 3 if name == "mixed" else 10)
        await counters_match(store)
        assert (await store.prune()).total == 0  # nothing left to do


async def test_idle_conversations_go_and_a_late_save_does_not_bring_one_back(
    own_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = now_ms() - 40 * DAY
    k = ("u", "s", "a")
    async with sqlstore.Store(own_db_url) as store:
        saved = await store.conversations.save(*k, msg("user", "hi", old))
        plain = await store.threads.create("u", created_at=old)  # not a conversation
        await store.execute("UPDATE threads SET updated_at = ?", (old,))
        began = now_ms()
        await asyncio.sleep(0.005)
        dry = await store.retention.conversations("30d", dry_run=True)
        done = await store.retention.conversations("30d")
        assert dry.counts == done.counts == {"threads": 1, "messages": 1}
        assert await store.threads.get(saved.thread_id) is None
        assert await store.threads.get(plain.id) is not None
        monkeypatch.setattr("sqlstore.domains.conversations.now_ms", lambda: began)
        with pytest.raises(ConflictError):  # a save that began before the prune
            await store.conversations.save(*k, msg("assistant", "late"))
        assert await store.conversations.count(*k) == 0


async def test_batches_are_bounded_and_an_interrupted_prune_resumes(own_db_url: str) -> None:
    old = now_ms() - 10 * DAY
    async with sqlstore.Store(own_db_url) as store:
        for i in range(30):
            t = await store.threads.create("u", thread_id=unique(f"t{i}"), created_at=old)
            await store.threads.add_messages(t.id, [msg("user", "x", old)] * 3)
            await store.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (old, t.id))
        assert (
            await store.retention.threads("1d", options=BatchOptions(max_seconds=0))
        ).complete is False

        class Stop(Exception):
            pass

        def stop_after_two(done: int) -> None:
            if done >= 8:
                raise Stop

        with pytest.raises(Stop):  # interrupted between batches
            await store.retention.threads(
                "1d", options=BatchOptions(batch_rows=4), progress=stop_after_two
            )
        left = await store.execute(
            "SELECT count(*), SUM(message_count = 3) FROM threads WHERE updated_at = ?", (old,)
        )
        assert left.values[0][0] == left.values[0][1] == 28  # whole threads gone, none half
        orphans = await store.execute(
            "SELECT count(*) FROM messages WHERE thread_id NOT IN (SELECT id FROM threads)"
        )
        assert orphans.scalar() == 0
        await counters_match(store)
        done = await store.retention.threads("1d", options=BatchOptions(batch_rows=4))
        assert done.complete and done.counts == {"threads": 28, "messages": 84}
        assert done.batches == 28  # a thread of 3 messages weighs 4 rows: one per batch
        rest = await store.retention.messages("1d", options=BatchOptions(batch_rows=5))
        assert rest.total == 0


async def test_a_thread_touched_after_it_was_chosen_stays(
    own_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = now_ms() - 10 * DAY
    async with sqlstore.Store(own_db_url) as store:
        ids = []
        for _ in range(3):
            t = await store.threads.create("u", created_at=old)
            await store.threads.add_messages(t.id, [msg("user", "x", old)])
            ids.append(t.id)
        await store.execute("UPDATE threads SET updated_at = ?", (old,))
        real_batch = store.resending.batch  # (the executor retention writes through)

        async def touch_then_batch(statements: Any) -> Any:
            # between the prune's choice and its batch, an agent writes to one thread
            monkeypatch.setattr(store.resending, "batch", real_batch)
            await store.threads.add_message(ids[1], "user", "still here")
            return await real_batch(statements)

        monkeypatch.setattr(store.resending, "batch", touch_then_batch)
        done = await store.retention.threads("1d")
        assert done.counts == {"threads": 2, "messages": 2}
        assert [await store.threads.get(i) is not None for i in ids] == [False, True, False]
        await counters_match(store)


async def test_messages_by_age_in_small_windows_keep_counters(own_db_url: str) -> None:
    old = now_ms() - 10 * DAY
    async with sqlstore.Store(own_db_url) as store:
        threads = [await store.threads.create("u") for _ in range(4)]
        for round_ in range(5):
            for t in threads:  # interleaved, as live traffic writes them
                await store.threads.add_messages(
                    t.id, [msg("user", f"{round_}", old if round_ < 3 else None)]
                )
        result = await store.retention.messages("1d", options=BatchOptions(batch_rows=3))
        assert result.counts == {"messages": 12} and result.batches >= 4  # <= 3 rows each
        await counters_match(store)
        for t in threads:
            assert [m.content[0]["text"] for m in await store.threads.messages(t.id)] == ["3", "4"]


async def test_keep_latest_trims_a_long_thread_in_bounded_batches(own_db_url: str) -> None:
    async with sqlstore.Store(own_db_url) as store:
        long, short = await store.threads.create("u"), await store.threads.create("u")
        await store.threads.add_messages(long.id, [msg("user", f"{i}") for i in range(25)])
        await store.threads.add_messages(short.id, [msg("user", f"{i}") for i in range(3)])
        dry = await store.retention.keep_latest_messages(4, dry_run=True)
        done = await store.retention.keep_latest_messages(4, options=BatchOptions(batch_rows=6))
        assert dry.counts == done.counts == {"messages": 21}
        assert done.batches == 4  # 6 + 6 + 6 + 3 rows
        kept = await store.threads.messages(long.id)
        assert [m.content[0]["text"] for m in kept] == ["21", "22", "23", "24"]
        await counters_match(store)


async def test_bad_input_is_rejected_before_io(db_url: str) -> None:
    with pytest.raises(ValidationError):
        sqlstore.Store(db_url, retention={"threads_idel": "30d"})
    with pytest.raises(ValidationError):
        sqlstore.Store(db_url, retention={"threads_idle": "30 days"})
    for bad in ("-1d", "1y", 1.5, None, True):
        with pytest.raises(ValidationError):
            parse_age(bad)
    assert parse_age("90m") == 90 * 60_000 and parse_age(timedelta(hours=1)) == 3_600_000
    async with sqlstore.Store(db_url) as store:
        with pytest.raises(ValidationError):
            await store.retention.keep_latest_messages(0)
        with pytest.raises(ValidationError):
            await store.prune()  # no policy set
        with pytest.raises(ValidationError):
            BatchOptions(batch_rows=0)


# -- nothing comes back ------------------------------------------------------------------


async def test_a_conversation_save_that_raced_a_delete_does_not_recreate_it(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = (unique("user"), unique("session"), "agent")
    async with sqlstore.Store(db_url) as store, sqlstore.Store(db_url) as other:
        await store.conversations.save(*k, msg("user", "hello"))
        began = now_ms()  # a save begins...
        await asyncio.sleep(0.005)
        await other.conversations.delete_conversation(*k)  # ...the delete lands first
        monkeypatch.setattr("sqlstore.domains.conversations.now_ms", lambda: began)
        with pytest.raises(ConflictError):
            await store.conversations.save(*k, msg("assistant", "late reply"))
        with pytest.raises(ConflictError):  # by key too (a store that never saw the key)
            await other.conversations.save_many(*k, [msg("user", "a"), msg("assistant", "b")])
        assert await store.conversations.count(*k) == 0
        assert await store.conversations.newest(*k) == []
        monkeypatch.undo()
        fresh = await store.conversations.save(*k, msg("user", "a new conversation"))
        assert fresh.message_count == 1


async def test_langgraph_writes_after_delete_thread_do_not_come_back(db_url: str) -> None:
    thread = unique("thread")
    cfg: Any = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    async with LibSQLSaver.from_url(db_url) as saver:
        cp = empty_checkpoint()
        assert abs((born_ms(cp["id"]) or 0) - now_ms()) < 60_000
        stored = await saver.aput(cfg, cp, {"source": "input", "step": 0}, {})
        await asyncio.sleep(0.005)
        await saver.adelete_thread(thread)
        await saver.aput_writes(stored, [("a", 1), ("b", 2)], "task-late")
        late: Any = {**empty_checkpoint(), "id": cp["id"]}
        await saver.aput(cfg, late, {"source": "loop", "step": 1}, {})  # born before
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
            n = await saver.store.execute(
                f"SELECT count(*) FROM {table} WHERE thread_id = ?", (thread,)
            )
            assert n.scalar() == 0, table
        assert await saver.aget_tuple(cfg) is None
        new = empty_checkpoint()  # a new run on the same thread id, after the delete
        again = await saver.aput(cfg, new, {"source": "input", "step": 0}, {})
        await saver.aput_writes(again, [("a", 1)], "task-new")
        tup = await saver.aget_tuple(cfg)
        assert tup is not None and tup.checkpoint["id"] == new["id"]
        assert len(tup.pending_writes or []) == 1
        assert born_ms("not-a-uuid") is None and born_ms(str(uuid6().hex)) is not None


async def test_threads_delete_leaves_tombstones_too(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """threads.delete follows the same rule as delete_conversation and adelete_thread: a
    conversation save that began before it, and a LangGraph write born before it, store
    nothing."""
    k = (unique("user"), unique("session"), "agent")
    async with sqlstore.Store(db_url) as store, LibSQLSaver(store) as saver:
        saved = await store.conversations.save(*k, msg("user", "hello"))
        tid = saved.thread_id
        cfg: Any = {"configurable": {"thread_id": tid, "checkpoint_ns": ""}}
        stored = await saver.aput(cfg, empty_checkpoint(), {"source": "input", "step": 0}, {})
        began = now_ms()  # a save and a run's write begin...
        await asyncio.sleep(0.005)
        assert await store.threads.delete(tid)  # ...the delete lands first
        await saver.aput_writes(stored, [("a", 1)], "task-late")
        monkeypatch.setattr("sqlstore.domains.conversations.now_ms", lambda: began)
        with pytest.raises(ConflictError):
            await store.conversations.save(*k, msg("assistant", "late reply"))
        monkeypatch.undo()
        assert await store.conversations.count(*k) == 0
        for table in ("checkpoints", "checkpoint_writes"):
            n = await store.execute(f"SELECT count(*) FROM {table} WHERE thread_id = ?", (tid,))
            assert n.scalar() == 0, table
        kinds = await store.execute(
            "SELECT kind FROM tombstones WHERE key IN (?, json_array(?, ?, ?)) ORDER BY kind",
            (tid, *k),
        )
        assert [r[0] for r in kinds.rows] == ["checkpoints", "conversation"]


# -- checkpoints: keep N, DeltaChannel ---------------------------------------------------


def test_delta_ancestors_are_kept() -> None:
    # newest first: (id, parent, delta counters, blob_versions)
    chain = [
        ("5", "4", '{"log": [2, 2]}', '{"doc": "5"}'),
        ("4", "3", '{"log": [1, 1]}', None),
        ("3", "2", None, '{"log": "3"}'),  # the snapshot of "log"
        ("2", "1", '{"log": [2, 2]}', None),
        ("1", None, None, None),
    ]
    assert checkpoints_to_delete(chain, 1) == ["2", "1"]
    assert checkpoints_to_delete(chain, 4) == []  # "2" needs the log back to the root
    plain = [(r[0], r[1], None, r[3]) for r in chain]
    assert checkpoints_to_delete(plain, 2) == ["3", "2", "1"]


def append_all(state: list[str], writes: Any) -> list[str]:
    """The delta channel's reducer: every write's items appended."""
    return [*state, *(item for write in writes for item in write)]


class DeltaState(TypedDict, total=False):
    log: Annotated[
        list[str],
        DeltaChannel(append_all, snapshot_frequency=3),
    ]
    n: int


def delta_graph() -> Any:
    def step(state: DeltaState) -> DeltaState:
        return {"log": [f"step{state.get('n', 0)}"], "n": state.get("n", 0) + 1}

    builder = StateGraph(DeltaState)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder


async def test_aprune_keep_latest_keeps_delta_channels_whole(db_url: str) -> None:
    thread = unique("delta")
    cfg: Any = {"configurable": {"thread_id": thread}}
    async with LibSQLSaver.from_url(db_url) as saver:
        graph = delta_graph().compile(checkpointer=saver)
        for _ in range(7):
            await graph.ainvoke({}, cfg)
        before = (await graph.aget_state(cfg)).values
        assert before["log"] == [f"step{i}" for i in range(7)]
        count = "SELECT count(*) FROM checkpoints WHERE thread_id = ?"
        total = (await saver.store.execute(count, (thread,))).scalar()
        await saver.aprune([thread], keep=1)
        kept = (await saver.store.execute(count, (thread,))).scalar()
        assert isinstance(total, int) and isinstance(kept, int) and 1 <= kept < total
        assert (await graph.aget_state(cfg)).values == before
        await graph.ainvoke({}, cfg)
        assert (await graph.aget_state(cfg)).values["log"][-2:] == ["step6", "step7"]


async def test_adelete_for_runs_keeps_what_delta_channels_need(db_url: str) -> None:
    thread = unique("runs")
    cfg: Any = {"configurable": {"thread_id": thread}}
    count = "SELECT count(*) FROM checkpoints WHERE thread_id = ? AND run_id = ?"
    async with LibSQLSaver.from_url(db_url) as saver:
        graph = delta_graph().compile(checkpointer=saver)
        for run in ("r1", "r2"):  # two updates: no snapshot of the log yet
            await graph.ainvoke({}, {**cfg, "metadata": {"run_id": f"{thread}-{run}"}})
        before = (await graph.aget_state(cfg)).values
        assert before["log"] == ["step0", "step1"]
        await saver.adelete_for_runs([f"{thread}-r1"])  # r2 is rebuilt from r1's writes
        assert (await graph.aget_state(cfg)).values == before
        for run in ("r3", "r4"):  # the third update writes a snapshot
            await graph.ainvoke({}, {**cfg, "metadata": {"run_id": f"{thread}-{run}"}})
        before = (await graph.aget_state(cfg)).values
        await saver.adelete_for_runs([f"{thread}-r1", f"{thread}-r2", f"{thread}-r3"])
        assert (await graph.aget_state(cfg)).values == before
        left = [
            (await saver.store.execute(count, (thread, f"{thread}-{run}"))).scalar()
            for run in ("r1", "r2", "r3", "r4")
        ]
        # r4 is rebuilt from r3's snapshot: that one checkpoint stays, nothing before it
        assert left[:2] == [0, 0] and left[2] == 1 and isinstance(left[3], int) and left[3] > 1


async def test_store_prunes_checkpoints_and_unreferenced_blobs(own_db_url: str) -> None:
    thread = unique("cp")
    cfg: Any = {"configurable": {"thread_id": thread}}
    async with LibSQLSaver.from_url(own_db_url) as saver:
        graph = delta_graph().compile(checkpointer=saver)
        for _ in range(5):
            await graph.ainvoke({}, cfg)
        before = (await graph.aget_state(cfg)).values
        await saver.store.execute(
            "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type) "
            "VALUES (?, '', 'orphan', '1', 'null')",
            (thread,),
        )
        retention = saver.store.retention
        dry = await retention.checkpoints(2, dry_run=True)
        done = await retention.checkpoints(2)
        assert dry.counts["checkpoints"] == done.counts["checkpoints"] > 0
        blobs = await retention.checkpoint_blobs()
        assert blobs.counts == {} or blobs.counts == {"checkpoint_blobs": 1}
        orphan = await saver.store.execute(
            "SELECT count(*) FROM checkpoint_blobs WHERE channel = 'orphan'"
        )
        assert orphan.scalar() == 0
        assert (await graph.aget_state(cfg)).values == before


# -- space ----------------------------------------------------------------------------------


async def test_stats_show_rows_and_bytes_where_offered(db_url: str, remote_name: str) -> None:
    async with sqlstore.Store(db_url) as store:
        t = await store.threads.create("u")
        await store.threads.add_message(t.id, "user", "hello")
        stats = await store.retention.stats()
    by_name = {s.name: s for s in stats.tables}
    assert by_name["threads"].rows >= 1 and by_name["messages"].rows >= 1
    if remote_name == "tursodb":  # no dbstat there: rows only
        assert all(s.bytes is None for s in stats.tables)
    else:
        assert by_name["messages"].bytes and by_name["messages"].bytes >= 4096
    assert stats.page_size > 0 and stats.page_count > 0
    assert stats.auto_vacuum == ("incremental" if remote_name == "local" else "none")


@pytest.fixture
def remote_name(db_url: str, request: pytest.FixtureRequest) -> str:
    """The backend of ``db_url``: local, tursodb or sqld."""
    return str(request.node.callspec.params["db_url"])


async def test_reclaim_where_the_engine_cannot_says_so(own_db_url: str) -> None:
    async with sqlstore.Store(own_db_url) as store:
        freed = await store.retention.reclaim()
        assert freed.supported is (own_db_url.startswith("file:"))


async def test_half_pruned_and_reclaimed_file_is_at_most_60_percent(tmp_path: Path) -> None:
    path = tmp_path / "space.db"
    old = now_ms() - 10 * DAY
    async with sqlstore.Store(f"file:{path}") as store:
        assert (await store.retention.stats()).auto_vacuum == "incremental"
        for i in range(400):  # the older half was written first, as it would have been
            t = await store.threads.create("u", created_at=old if i < 200 else None)
            await store.threads.add_messages(t.id, [msg("user", "x" * 1000)] * 20)
            if i < 200:
                await store.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (old, t.id))
        await store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = await asyncio.to_thread(os.path.getsize, path)
        pruned = await store.retention.threads("1d")
        assert pruned.counts["threads"] == 200
        freed = await store.retention.reclaim(step_pages=64)
        assert freed.supported and freed.steps > 1 and freed.free_pages == 0
        await store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        after = await asyncio.to_thread(os.path.getsize, path)
    assert after <= 0.6 * before, (before, after)


async def test_an_older_database_moves_to_incremental_vacuum_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "older.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE keepme (a)")  # made before sqlstore, without the mode
    async with sqlstore.Store(f"file:{path}") as store:
        assert (await store.retention.stats()).auto_vacuum == "none"
        assert not (await store.retention.reclaim()).supported
        assert await store.retention.enable_incremental_vacuum() is True
        assert (await store.retention.stats()).auto_vacuum == "incremental"
        assert (await store.retention.reclaim()).supported


# -- CLI ----------------------------------------------------------------------------------


async def test_cli_prune_and_stats(own_db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    old = now_ms() - 40 * DAY
    async with sqlstore.Store(own_db_url) as store:
        for _ in range(3):
            t = await store.threads.create("u", created_at=old)
            await store.threads.add_messages(t.id, [msg("user", "x", old)] * 2)
            await store.execute("UPDATE threads SET updated_at = ? WHERE id = ?", (old, t.id))
        live = await store.threads.create("u")
        await store.threads.add_messages(live.id, [msg("user", f"{i}") for i in range(6)])
    args = ["--url", own_db_url, "prune", "--older-than", "30d", "--keep-latest", "4"]
    assert await asyncio.to_thread(main, [*args, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would delete" in out and "threads" in out  # (an upper bound: rules overlap)
    assert await asyncio.to_thread(main, [*args, "--reclaim"]) == 0
    captured = capsys.readouterr()
    assert "deleted 11 rows from 2 tables" in captured.out
    assert "[" in captured.err and "#" in captured.err  # the progress bar
    assert await asyncio.to_thread(main, ["--url", own_db_url, "stats"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split()[1] for line in out.splitlines()[1:] if line}
    assert lines["threads"] == "1" and lines["messages"] == "4"
    assert await asyncio.to_thread(main, ["--url", own_db_url, "prune"]) == 1
