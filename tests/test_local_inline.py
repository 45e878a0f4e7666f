"""The local driver and the event loop: short reads run on the loop (on a read-only
connection), everything that may write or wait runs on the worker thread, and the loop
thread never syncs a file."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import sqlstore
from sqlstore.drivers import local
from sqlstore.drivers.local import LocalClient

ROOT = Path(__file__).resolve().parent.parent

# A query that takes far longer than the inline budget (local SQLite has recursive CTEs).
SLOW = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)"
    " SELECT count(*) FROM c"
)
SLOW_READ = SLOW.replace("WITH", "SELECT * FROM (WITH", 1) + ")"  # the same, led by SELECT


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


async def test_reads_and_writes_run_on_the_event_loop(client: LocalClient) -> None:
    inline, worker = client.inline_calls, client.worker_calls
    await client.execute("INSERT INTO t (v) VALUES (?)", ("a",))
    await client.batch([("INSERT INTO t (v) VALUES (?)", ("b",)), ("SELECT 1", ())])
    assert client.inline_calls == inline + 2 and client.inline_writes == 2
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 2  # sees the writes
    results = await client.batch([("SELECT min(v) FROM t", ()), ("VALUES (1)", ())])
    assert results[0].scalar() == "a"
    assert client.inline_calls == inline + 4 and client.worker_calls == worker


async def test_writes_that_would_sync_run_on_the_worker(
    client: LocalClient, tmp_path: Path
) -> None:
    """The first write to an empty WAL (the fixture's CREATE), and the first after another
    connection checkpointed every frame (the write starts the WAL over), sync the WAL's
    header: the worker runs them. Writes while the worker has jobs queue behind them."""
    assert (client.inline_writes, client.worker_calls) == (0, 1)  # the CREATE
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None)
    for mode in ("PASSIVE", "TRUNCATE"):
        assert other.execute(f"PRAGMA wal_checkpoint({mode})").fetchone()[0] == 0  # done
        await client.execute("INSERT INTO t (v) VALUES ('restart')")  # on the worker
        await client.execute("INSERT INTO t (v) VALUES ('append')")  # inline
    other.close()
    assert (client.inline_writes, client.worker_calls) == (2, 3)
    release = threading.Event()
    blocked = asyncio.create_task(client.run_in_worker(lambda conn: release.wait(5)))
    write = asyncio.create_task(client.execute("INSERT INTO t (v) VALUES ('queued')"))
    await asyncio.sleep(0.05)
    assert not write.done() and client.inline_writes == 2  # behind the worker's job
    release.set()
    await blocked
    await write
    await client.execute("INSERT INTO t (v) VALUES ('inline again')")
    assert (client.inline_writes, client.worker_calls) == (3, 4)
    rows = await client.execute("SELECT v FROM t ORDER BY id")
    assert [r[0] for r in rows.rows] == [
        *("restart", "append") * 2,
        "queued",
        "inline again",
    ]


async def test_every_client_of_a_file_writes_inline(client: LocalClient, tmp_path: Path) -> None:
    # A schema of some size: a new connection's first read loads it (many VM steps).
    await client.batch(
        [(f"CREATE TABLE t{i} (id INTEGER PRIMARY KEY, v TEXT)", ()) for i in range(50)]
    )
    other = await sqlstore.connect(f"file:{tmp_path / 'inline.db'}")
    assert isinstance(other, LocalClient)
    await other.execute("INSERT INTO t (v) VALUES ('other')")
    await client.execute("INSERT INTO t (v) VALUES ('first')")
    assert (other.inline_writes, client.inline_writes) == (1, 1)  # (DDL: on the worker)
    await other.close()


async def test_a_long_write_on_the_loop_is_redone_once_on_the_worker(
    client: LocalClient,
) -> None:
    await client.execute("INSERT INTO t (v) VALUES ('first')")
    slow = "INSERT INTO t (v) SELECT * FROM (" + SLOW + ")"
    async with Ticker() as ticker:
        await client.execute(slow, (3_000_000,))  # stopped after inline_budget, rolled back
        during = ticker.ticks
    assert during > 100  # it ran on the worker after at most inline_budget on the loop
    rows = await client.execute("SELECT v FROM t ORDER BY id")
    assert [r[0] for r in rows.rows] == ["first", "3000000"]  # done once
    assert (client.inline_writes, client.worker_calls) == (1, 2)  # the CREATE, the redo


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA foreign_keys = OFF",
        "pragma main.synchronous(FULL)",
        "ATTACH ':memory:' AS other",
        "/* temp */ CREATE TEMP TABLE scratch (x)",
    ],
)
async def test_sql_that_changes_its_connection_stops_inline_calls(
    client: LocalClient, sql: str
) -> None:
    await client.execute("INSERT INTO t (v) VALUES ('inline')")
    assert client.inline_writes == 1
    await client.execute(sql)
    await client.execute("INSERT INTO t (v) VALUES ('worker')")
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 2
    assert (client.inline_calls, client.inline_writes) == (1, 1)  # nothing more inline


async def test_a_long_read_moves_to_the_worker_for_good(client: LocalClient) -> None:
    inline, worker = client.inline_calls, client.worker_calls
    async with Ticker() as ticker:
        for _ in range(2):  # stopped after inline_budget on the loop, twice in a row
            assert (await client.execute(SLOW_READ, (3_000_000,))).scalar() == 3_000_000
        during = ticker.ticks
    assert client.worker_calls == worker + 2 and client.inline_calls == inline
    assert during > 100  # it ran on the worker after at most inline_budget on the loop
    for _ in range(3):  # the same SQL goes straight to the worker, even when quick
        assert (await client.execute(SLOW_READ, (10,))).scalar() == 10
    assert client.worker_calls == worker + 5 and client.inline_calls == inline
    await client.execute("SELECT count(*) FROM t")  # other SQL still runs inline
    assert client.inline_calls == inline + 1


async def test_one_stop_alone_does_not_send_sql_to_the_worker(client: LocalClient) -> None:
    sql = SLOW_READ + " -- once"
    assert (await client.execute(sql, (3_000_000,))).scalar() == 3_000_000  # stopped
    inline = client.inline_calls
    assert (await client.execute(sql, (10,))).scalar() == 10  # quick: inline again
    assert (await client.execute(sql, (3_000_000,))).scalar() == 3_000_000  # stopped
    assert (await client.execute(sql, (10,))).scalar() == 10  # not two stops in a row
    assert client.inline_calls == inline + 2


async def test_a_big_value_is_read_on_the_worker(client: LocalClient) -> None:
    big = "y" * (local._INLINE_MAX_VALUE + 1)
    await client.execute("INSERT INTO t (v) VALUES (?)", (big,))
    await client.execute("INSERT INTO t (v) VALUES ('small')")
    inline, worker = client.inline_calls, client.worker_calls
    rows = await client.execute("SELECT v FROM t ORDER BY id")
    assert [r[0] for r in rows.rows] == [big, "small"]
    assert client.worker_calls == worker + 1 and client.inline_calls == inline


async def test_read_only_batches_take_no_write_lock(client: LocalClient, tmp_path: Path) -> None:
    """A writer with no busy timeout (as another process would be) commits while a read-only
    batch is under way, inline or on the worker: the batch runs deferred."""
    await client.execute("INSERT INTO t (v) VALUES ('first')")
    for _ in range(2):
        await client.execute(SLOW_READ, (3_000_000,))  # from now on, on the worker
    written: list[float] = []

    def write_soon() -> None:
        time.sleep(0.05)
        other = sqlite3.connect(tmp_path / "inline.db", timeout=0, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # SQLITE_BUSY at once if the batch held the lock
        other.execute("INSERT INTO t (v) VALUES ('other')")
        other.execute("COMMIT")
        other.close()
        written.append(time.perf_counter())

    for slow_inline in (False, True):
        budget = client.inline_budget
        client.inline_budget = 1.0 if slow_inline else budget  # 1 s: the batch stays inline
        inline, worker = client.inline_calls, client.worker_calls
        writer = threading.Thread(target=write_soon)
        writer.start()
        statements: list[Any] = [("SELECT count(*) FROM t", ())]
        n = 800_000 if slow_inline else 8_000_000
        statements.append((SLOW_READ + (" -- inline" if slow_inline else ""), (n,)))
        results = await client.batch(statements)
        ended = time.perf_counter()
        client.inline_budget = budget
        writer.join()
        assert written and written.pop() < ended  # the write committed during the batch
        assert results[1].scalar() == n
        assert (client.inline_calls - inline, client.worker_calls - worker) == (
            (1, 0) if slow_inline else (0, 1)
        )


async def test_a_locked_database_makes_writes_wait_on_the_worker_not_reads(
    client: LocalClient, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "inline.db", isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('other')")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    async with Ticker() as ticker:
        release.start()
        write = asyncio.create_task(client.batch([("INSERT INTO t (v) VALUES ('mine')", ())]))
        await asyncio.sleep(0.05)
        inline = client.inline_calls
        assert (await client.execute("SELECT count(*) FROM t")).scalar() == 0  # not blocked
        assert client.inline_calls == inline + 1
        await write
        during = ticker.ticks
    release.join()
    other.close()
    assert during > 100  # the wait for the lock happened off the event loop
    rows = await client.execute("SELECT v FROM t ORDER BY id")
    assert [r[0] for r in rows.rows] == ["other", "mine"]


async def test_a_loop_of_inline_reads_lets_other_tasks_run(client: LocalClient) -> None:
    await client.batch([("INSERT INTO t (v) VALUES (?)", (str(i),)) for i in range(100)])
    async with Ticker() as ticker:
        before = ticker.ticks
        for _ in range(3000):
            await client.execute("SELECT count(*), max(v) FROM t WHERE v > ?", ("1",))
        during = ticker.ticks - before
    assert during > 0  # every inline_budget of work, a call yielded to the loop


async def test_errors_inline_are_the_callers(client: LocalClient) -> None:
    worker = client.worker_calls
    with pytest.raises(sqlstore.QueryError) as caught:
        await client.batch([("SELECT 1", ()), ("SELECT nope FROM t", ())])
    assert "no such column" in str(caught.value)
    assert client.worker_calls == worker  # not retried on the worker


@pytest.mark.parametrize(
    ("url", "options", "inline"),
    [
        ("file:{}", {"durability": "full"}, True),  # reads never sync: still inline
        ("file:{}", {"inline_budget": 0}, False),
        ("file:{}?nolock=1", {}, False),  # no WAL without locks: no second connection
        (":memory:", {}, False),
    ],
)
async def test_when_reads_run_inline(
    tmp_path: Path, url: str, options: dict[str, Any], inline: bool
) -> None:
    client = await sqlstore.connect(url.format(tmp_path / "modes.db"), **options)
    assert isinstance(client, LocalClient)
    await client.execute("CREATE TABLE t (v)")
    await client.batch([("INSERT INTO t VALUES (1)", ())])
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 1
    assert (client.inline_calls, client.worker_calls) == ((1, 2) if inline else (0, 3))
    await client.close()


async def test_the_wal_stays_bounded_under_big_rows(client: LocalClient, tmp_path: Path) -> None:
    wal = tmp_path / "inline.db-wal"
    largest = 0
    row = os.urandom(512 * 1024)
    for _ in range(190):  # 95 MiB of rows, with reads (WAL snapshots) in between
        await client.execute("INSERT INTO t (v) VALUES (?)", (row,))
        await client.execute("SELECT count(*) FROM t")
        largest = max(largest, wal.stat().st_size)
    assert largest <= 16 * 1024 * 1024
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 190


async def test_inline_writes_have_the_worker_checkpoint_and_the_wal_stays_bounded(
    client: LocalClient, tmp_path: Path
) -> None:
    """Past 1,000 WAL frames an inline write has the worker checkpoint while writes go on;
    at 16 MiB of WAL a write goes to the worker, and the WAL starts over."""
    wal, db = tmp_path / "inline.db-wal", tmp_path / "inline.db"
    row = "x" * 3000  # a page each
    for _ in range(1100):
        await client.execute("INSERT INTO t (v) VALUES (?)", (row,))
    assert (client.inline_writes, client.worker_calls) == (1100, 1)  # (the CREATE)
    for _ in range(200):  # the pages reach the database file: copied by a checkpoint
        if db.stat().st_size > 2 * 1024 * 1024:
            break
        await asyncio.sleep(0.01)
    assert db.stat().st_size > 2 * 1024 * 1024 and client.worker_calls == 1
    largest = 0
    for i in range(4900):
        await client.execute("INSERT INTO t (v) VALUES (?)", (row,))
        if i % 100 == 0:
            largest = max(largest, wal.stat().st_size)
    assert client.inline_writes > 5900 and client.worker_calls < 60
    assert largest <= 16 * 1024 * 1024
    copied = sqlite3.connect(tmp_path / "inline.db").execute("PRAGMA wal_checkpoint(PASSIVE)")
    assert copied.fetchone()[1] < 4000  # the WAL started over at least once
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 6000


def test_the_loop_thread_never_syncs_a_file(tmp_path: Path) -> None:
    strace = shutil.which("strace")
    assert strace, "strace is needed (tests/setup.sh installs it)"
    trace = tmp_path / "trace.txt"
    command = [
        strace,
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-e",
        "trace=fsync,fdatasync",
        "-o",
        str(trace),
    ]
    done = subprocess.run(
        [*command, sys.executable, "-m", "tests.loop_syscalls", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    loop_thread, inline_writes = (int(word) for word in done.stdout.split()[:2])
    assert inline_writes > 1000  # most WAL-mode writes ran on the loop thread...
    syncs = [
        int(m.group(1))
        for m in re.finditer(r"^(\d+) +f(?:data)?sync\(", trace.read_text(), re.MULTILINE)
    ]
    assert len(syncs) > 50  # ...the workload did sync, on other threads...
    assert loop_thread not in syncs  # ...and never on the loop thread


INTERRUPTED = """
import asyncio, signal, sqlite3, sys, threading, time
import sqlstore

async def main(url, budget, sql, counts):
    client = await sqlstore.connect(url, inline_budget=budget)
    await client.execute("CREATE TABLE IF NOT EXISTS t (v)")
    counts.append((client, client.inline_calls, client.worker_calls))
    main = threading.get_ident()
    threading.Timer(0.2, lambda: signal.pthread_kill(main, signal.SIGINT)).start()
    await client.execute(sql, (200_000_000,))
    print("finished")

url, counts, start = sys.argv[1], [], time.perf_counter()
new_loop = lambda m: asyncio.new_event_loop().run_until_complete(m)
for budget, run, sql in ((1.0, new_loop, sys.argv[2]), (0.002, asyncio.run, sys.argv[2]),
                         (1.0, new_loop, sys.argv[3])):
    try:
        run(main(url, budget, sql, counts))
    except KeyboardInterrupt:
        c, inline, worker = counts[-1]
        print("interrupted", c.inline_calls - inline, c.worker_calls - worker,
              round(time.perf_counter() - start))
print("rows", sqlite3.connect(url[5:]).execute("SELECT count(*) FROM t").fetchone()[0])
"""


def test_ctrl_c_raises_in_the_caller_and_nothing_is_redone(tmp_path: Path) -> None:
    """Ctrl-C during a read on the loop (default SIGINT handler: it raises inside SQLite's
    progress handler, where sqlite3 swallows it), during a read on the worker (under
    asyncio.run, which cancels the main task) and during a write on the loop:
    KeyboardInterrupt each time, at once, and the write rolled back."""
    write = "INSERT INTO t (v) SELECT * FROM (" + SLOW + ")"
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED, f"file:{tmp_path / 'c.db'}", SLOW_READ, write],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = done.stdout.splitlines()
    # (inline, worker) calls done by the read: it was not redone on the worker.
    assert [line.split()[:3] for line in lines] == [
        ["interrupted", "0", "0"],  # stopped inline, not finished there nor on the worker
        ["interrupted", "0", "1"],  # moved to the worker after 2 ms, then cancelled there
        ["interrupted", "0", "0"],  # the write: stopped inline, rolled back, not redone
        ["rows", "0"],
    ], done.stderr
    assert int(lines[-2].split()[3]) < 10  # never ran its whole (a minute or more)


async def test_a_cancelled_write_is_done_once(client: LocalClient) -> None:
    statements: list[Any] = [("INSERT INTO t (v) VALUES (?)", (str(i),)) for i in range(3)]
    statements.append((SLOW, (3_000_000,)))  # a write batch: on the worker
    task = asyncio.create_task(client.batch(statements))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await client.execute("INSERT INTO t (v) VALUES ('after')")  # queued behind it
    rows = await client.execute("SELECT v FROM t ORDER BY id")
    assert [r[0] for r in rows.rows] == ["0", "1", "2", "after"]  # all or nothing, once


async def test_a_dead_worker_fails_every_pending_and_later_call(
    client: LocalClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    deaths: list[Any] = []
    monkeypatch.setattr(threading, "excepthook", deaths.append)
    release = threading.Event()
    blocked = asyncio.create_task(client.run_in_worker(lambda conn: release.wait(5)))
    await asyncio.sleep(0.05)
    pending = [
        asyncio.create_task(client.batch([("INSERT INTO t (v) VALUES (?)", (str(i),))]))
        for i in range(3)
    ]
    await asyncio.sleep(0.05)

    def die(job: object) -> object:
        raise SystemExit("the worker dies")

    client._do = die  # type: ignore[method-assign,assignment]  # the next job kills the worker thread
    release.set()
    assert await blocked is True
    for task in pending:
        with pytest.raises(sqlstore.UnavailableError):
            await asyncio.wait_for(task, 5)
    for call in (client.execute("SELECT 1"), client.execute("INSERT INTO t (v) VALUES (1)")):
        with pytest.raises(sqlstore.UnavailableError):
            await call
    assert [type(d.exc_value) for d in deaths] == [SystemExit]  # the death is reported


async def test_read_only_files_open_and_serve_reads(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    writer = await sqlstore.connect(f"file:{path}")
    await writer.execute("CREATE TABLE r (x)")
    await writer.execute("INSERT INTO r VALUES (1)")
    reader = await sqlstore.connect(f"file:{path}?mode=ro")
    assert isinstance(reader, LocalClient)
    assert (await reader.execute("SELECT count(*) FROM r")).scalar() == 1
    assert reader.inline_calls == 1  # a WAL file: read inline
    with pytest.raises(sqlstore.QueryError) as caught:
        await reader.execute("INSERT INTO r VALUES (2)")
    assert caught.value.code == "SQLITE_READONLY"
    await reader.close()
    await writer.close()


def test_a_file_without_write_permission_opens_and_serves_reads(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    conn = sqlite3.connect(folder / "ro.db")
    conn.execute("CREATE TABLE r (x)")
    conn.execute("INSERT INTO r VALUES (7)")
    conn.commit()
    conn.close()
    (folder / "ro.db").chmod(0o444)
    folder.chmod(0o555)
    script = (
        "import asyncio, sys, sqlstore\n"
        "async def main():\n"
        "    client = await sqlstore.connect(sys.argv[1])\n"
        "    print((await client.execute('SELECT x FROM r')).scalar())\n"
        "    try:\n"
        "        await client.execute('INSERT INTO r VALUES (8)')\n"
        "    except sqlstore.QueryError as exc:\n"
        "        print(exc.code)\n"
        "    await client.close()\n"
        "asyncio.run(main())\n"
    )
    try:
        # Tests run as root, who may write any file: without these capabilities, not.
        drop = "--bounding-set=-dac_override,-dac_read_search,-fowner"
        done = subprocess.run(
            ["setpriv", drop, sys.executable, "-c", script, f"file:{folder / 'ro.db'}"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        folder.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["7", "SQLITE_READONLY"]
