"""The local driver's inline path: short calls run on the event loop, and anything that
would wait for a lock or run past the budget moves to the worker, with the loop free."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import sqlstore
from sqlstore.drivers import local
from sqlstore.drivers.local import LocalClient

# A query that takes far longer than the inline budget (local SQLite has recursive CTEs).
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)"
    " SELECT count(*) FROM c"
)


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[LocalClient]:
    opened = await sqlstore.connect(f"file:{tmp_path / 'inline.db'}")
    assert isinstance(opened, LocalClient)
    await opened.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    yield opened
    await opened.close()


class Ticker:
    """Counts how often the event loop gets to run another task."""

    def __init__(self) -> None:
        self.ticks = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.ticks += 1
            await asyncio.sleep(0)

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


async def test_short_calls_run_on_the_event_loop_thread(client: LocalClient) -> None:
    inline, worker = client.inline_calls, client.worker_calls
    await client.execute("INSERT INTO t (v) VALUES (?)", ("a",))
    results = await client.batch(
        [("INSERT INTO t (v) VALUES (?)", ("b",)), ("SELECT count(*) FROM t", ())]
    )
    assert results[1].scalar() == 2
    assert client.inline_calls == inline + 2
    assert client.worker_calls == worker


async def test_a_long_query_moves_to_the_worker_and_the_loop_keeps_running(
    client: LocalClient,
) -> None:
    inline, worker = client.inline_calls, client.worker_calls
    async with Ticker() as ticker:
        assert (await client.execute(SLOW, (3_000_000,))).scalar() == 3_000_000
        during = ticker.ticks
    assert client.worker_calls == worker + 1
    assert client.inline_calls == inline
    assert during > 100  # it ran on the worker after at most inline_budget on the loop
    # The same SQL goes straight to the worker next time, then is tried inline again.
    assert (await client.execute(SLOW, (10,))).scalar() == 10
    assert client.worker_calls == worker + 2
    assert (await client.execute(SLOW, (10,))).scalar() == 10
    assert client.inline_calls == inline + 1  # quick now: it ran inline


async def test_sql_that_keeps_running_long_is_tried_inline_ever_less_often(
    client: LocalClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    stops: list[int] = []
    ran_slow = LocalClient._ran_slow

    def counted(self: LocalClient, key: tuple[str, ...]) -> None:
        stops.append(self.worker_calls)
        ran_slow(self, key)

    monkeypatch.setattr(LocalClient, "_ran_slow", counted)
    worker = client.worker_calls
    for _ in range(7):
        assert (await client.execute(SLOW, (200_000,))).scalar() == 200_000
    # Stopped inline on calls 1, 3 and 6: after each stop it waits 1, 2, then 4 calls.
    assert [n - worker for n in stops] == [0, 2, 5]
    assert client.worker_calls == worker + 7


async def test_an_interrupted_batch_writes_nothing_inline_then_everything_on_the_worker(
    client: LocalClient,
) -> None:
    statements: list[tuple[str, tuple[object, ...]]] = [
        ("INSERT INTO t (v) VALUES (?)", (f"row {i}",)) for i in range(3)
    ]
    statements.append((SLOW, (2_000_000,)))
    results = await client.batch(statements)
    assert results[-1].scalar() == 2_000_000
    assert client.worker_calls >= 1
    rows = await client.execute("SELECT v FROM t ORDER BY id")
    assert [r[0] for r in rows.rows] == ["row 0", "row 1", "row 2"]  # once, not twice


async def test_a_locked_database_makes_the_call_wait_on_the_worker(
    client: LocalClient, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('other')")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    worker = client.worker_calls
    async with Ticker() as ticker:
        release.start()
        await client.batch([("INSERT INTO t (v) VALUES (?)", ("mine",))])
        during = ticker.ticks
    release.join()
    other.close()
    assert client.worker_calls == worker + 1
    assert during > 100  # the wait for the lock happened off the event loop
    rows = await client.execute("SELECT v FROM t ORDER BY id")
    assert [r[0] for r in rows.rows] == ["other", "mine"]
    # The lock is gone: the next call runs inline again.
    inline = client.inline_calls
    await client.execute("SELECT count(*) FROM t")
    assert client.inline_calls == inline + 1


async def test_a_loop_of_inline_calls_lets_other_tasks_run(
    client: LocalClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read is moved to the worker only when it was stopped past the budget, which a busy
    # machine can cause by preempting this thread in the middle of one: count those.
    stops: list[tuple[str, ...]] = []
    ran_slow = LocalClient._ran_slow

    def counted(self: LocalClient, key: tuple[str, ...]) -> None:
        stops.append(key)
        ran_slow(self, key)

    monkeypatch.setattr(LocalClient, "_ran_slow", counted)
    await client.batch([("INSERT INTO t (v) VALUES (?)", (str(i),)) for i in range(100)])
    async with Ticker() as ticker:
        start, worker, before = client.inline_calls, client.worker_calls, ticker.ticks
        for _ in range(3000):  # reads: no checkpoint ever takes the connection meanwhile
            await client.execute("SELECT count(*), max(v) FROM t WHERE v > ?", ("1",))
        during = ticker.ticks - before
    moved = client.worker_calls - worker
    assert client.inline_calls - start == 3000 - moved
    assert moved <= 2 * len(stops)  # each stop sends this call and at most the next away
    assert len(stops) < 30  # an occasional preemption, not a rule
    assert during > 0  # every inline_budget of work, a call yielded to the loop


async def test_errors_inline_are_the_callers_and_roll_back(client: LocalClient) -> None:
    await client.execute("INSERT INTO t (id, v) VALUES (1, 'a')")
    inline = client.inline_calls
    with pytest.raises(sqlstore.QueryError) as caught:
        await client.batch(
            [
                ("INSERT INTO t (id, v) VALUES (2, 'b')", ()),
                ("INSERT INTO t (id, v) VALUES (1, 'again')", ()),
            ]
        )
    assert caught.value.code == "SQLITE_CONSTRAINT_PRIMARYKEY"
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 1
    assert client.inline_calls == inline + 1  # the failed batch ran (and failed) inline


async def test_the_wal_starts_over_once_writes_pause(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A WAL under the restart threshold (no checkpoint holds the connection) and over the
    # size it is cut back to: 1,000 commits of a ~3 KB row write about 2,000 frames.
    monkeypatch.setattr(local, "_RESTART_FRAMES", 100_000)
    monkeypatch.setattr(local, "_WAL_KEEP_BYTES", 1024 * 1024)
    client = await sqlstore.connect(f"file:{tmp_path / 'inline.db'}")
    await client.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    payload = "x" * 3000
    for i in range(1000):  # five checkpoints are queued, the last by the 1,000th write
        await client.execute("INSERT INTO t (v) VALUES (?)", (f"{i}{payload}",))
    wal = tmp_path / "inline.db-wal"
    assert wal.stat().st_size > 4 * 1024 * 1024  # it never started over while writing
    await asyncio.sleep(0.3)  # writes pause: the worker's checkpoint catches up
    await client.execute("INSERT INTO t (v) VALUES ('after the pause')")
    probe = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    ((_, frames, _),) = probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    probe.close()
    assert frames < 50  # the last write started the WAL over (else: 2,000+ frames)
    assert wal.stat().st_size <= 1024 * 1024  # and cut it back
    await client.close()


async def test_the_wal_starts_over_under_writes_that_never_pause(
    client: LocalClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = "x" * 3000
    for i in range(3000):
        await client.execute("INSERT INTO t (v) VALUES (?)", (f"{i}{payload}",))
    # 3,000 commits of a ~3 KB row leave a WAL of 37 MB if it never starts over; past
    # _RESTART_FRAMES (8 MiB) a checkpoint holds the connection and it does, so the file
    # stays under the 16 MiB it would be cut back to.
    assert (tmp_path / "inline.db-wal").stat().st_size < local._WAL_KEEP_BYTES
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 3000
    assert client.worker_calls < 50  # only calls made while the last frames were copied


@pytest.mark.parametrize("options", [{"durability": "full"}, {"inline_budget": 0}])
async def test_inline_can_be_off(tmp_path: Path, options: dict[str, Any]) -> None:
    client = await sqlstore.connect(f"file:{tmp_path / 'off.db'}", **options)
    assert isinstance(client, LocalClient)
    await client.execute("CREATE TABLE t (v)")
    await client.batch([("INSERT INTO t VALUES (1)", ())])
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 1
    assert client.inline_calls == 0 and client.worker_calls == 3
    await client.close()


async def test_an_interrupt_during_an_inline_batch_rolls_back_and_propagates(
    client: LocalClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(cursor: sqlite3.Cursor) -> object:
        raise KeyboardInterrupt

    inline = client.inline_calls
    with monkeypatch.context() as patch:
        patch.setattr(local, "_rows", interrupted)
        with pytest.raises(KeyboardInterrupt):  # not turned into a QueryError
            await client.batch(
                [
                    ("INSERT INTO t (v) VALUES ('half')", ()),
                    ("SELECT count(*) FROM t", ()),
                ]
            )
    assert client.inline_calls == inline  # it never finished
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 0  # rolled back
    await client.execute("INSERT INTO t (v) VALUES ('next')")  # the connection still works
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 1


async def test_a_stop_reported_after_a_statement_finished_writes_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite may call the progress handler once more after a statement has finished,
    and report SQLITE_INTERRUPT for it although its changes are made (in autocommit mode:
    committed). Here the handler stops every inline statement exactly then, as soon as
    its changes are counted: each write must still be stored exactly once."""
    monkeypatch.setattr(local, "_PROGRESS_STEPS", 1)  # the handler runs at every VM step
    client = await sqlstore.connect(f"file:{tmp_path / 'late.db'}")
    assert isinstance(client, LocalClient)
    await client.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    assert client._conn is not None
    conn = client._conn
    start = {"changes": conn.total_changes}

    def stop_once_written(self: LocalClient) -> bool:
        # (past its deadline: an inline call, and its changes are counted: finished)
        return self._deadline != math.inf and conn.total_changes > start["changes"]

    real_inline_call = LocalClient._inline_call

    def inline_call(self: LocalClient, fn: Any, key: tuple[str, ...], *args: Any) -> Any:
        start["changes"] = conn.total_changes
        return real_inline_call(self, fn, key, *args)

    monkeypatch.setattr(LocalClient, "_past_deadline", stop_once_written)
    monkeypatch.setattr(LocalClient, "_inline_call", inline_call)
    conn.set_progress_handler(client._past_deadline, 1)  # installed at open: again, patched
    for i in range(20):  # distinct texts: each is tried inline (no back-off between them)
        await client.execute(f"INSERT INTO t (v) VALUES (?) -- {i}", (f"row {i}",))
        await client.batch([(f"INSERT INTO t (v) VALUES (?) -- batch {i}", (f"batch {i}",))])
    rows = await client.execute("SELECT v, count(*) FROM t GROUP BY v HAVING count(*) > 1")
    assert rows.values == []
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 40
    assert client.worker_calls >= 40  # every write was stopped inline and redone there
    await client.close()
