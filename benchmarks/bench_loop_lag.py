"""Loop-lag benchmark: how long the local driver ever holds the event loop.

A ticker task asks to wake every millisecond and records how late it wakes (a stall)
while a mixed load runs on local files: conversation saves with trim (WAL restarts and
autocheckpoints), a 64 MiB value written and read, batches of 10,000 rows written and
read, 512 KiB rows, and a file in ``journal_mode=DELETE``. Prints the largest stall and
the 99.9th percentile (target: at most 5 ms), then how much slower a long query on the
worker runs while the loop is busy in Python than alone (target: at most 1.2x).

Run: ``.venv/bin/python benchmarks/bench_loop_lag.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Awaitable, Callable, Coroutine, Generator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlstore  # noqa: E402
from sqlstore.drivers import Client  # noqa: E402
from sqlstore.drivers.local import LocalClient  # noqa: E402

TICK = 0.001
COUNT = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?)"
    " SELECT count(*) FROM c"
)


def report(name: str, value: float, unit: str) -> None:
    """One result line."""
    print(f"{name} {value:.2f} {unit}", flush=True)


class Ticker:
    """Wakes every TICK seconds and records how late each wake-up is (a stall), and how
    much of that the loop thread spent running (CPU time: work that held the loop, as
    opposed to waiting for the GIL or for a CPU on a busy machine)."""

    def __init__(self) -> None:
        self.stalls: list[float] = []
        self.held: list[float] = []
        self.running = True

    async def run(self) -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while self.running:
            await asyncio.sleep(TICK)
            now, cpu = time.perf_counter(), time.thread_time()
            self.stalls.append(max(0.0, now - last - TICK))
            self.held.append(cpu - last_cpu)
            last, last_cpu = now, cpu


HOLDS: list[tuple[float, float, str]] = []
"""Every stretch a driver call ran on the event loop without yielding: (the loop thread's
CPU time, the wall time, the SQL). Wall time also counts waits for the GIL, which the
worker holds while it builds result objects, and for a CPU on a busy machine."""


def held(coro: Coroutine[Any, Any, Any], label: str) -> Awaitable[Any]:
    """Await ``coro`` step by step, recording how long each step holds the loop."""

    @types.coroutine
    def steps() -> Generator[Any, Any, Any]:
        value: Any = None
        error: BaseException | None = None
        while True:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                out = coro.throw(error) if error is not None else coro.send(value)
            except StopIteration as stop:
                HOLDS.append((time.thread_time() - cpu, time.perf_counter() - start, label))
                return stop.value
            HOLDS.append((time.thread_time() - cpu, time.perf_counter() - start, label))
            try:
                value, error = (yield out), None
            except BaseException as exc:  # a cancellation: pass it in
                value, error = None, exc

    return steps()


def measure_calls() -> None:
    """Make every LocalClient.execute and .batch record its holds (see held)."""
    for name in ("execute", "batch"):
        method: Callable[..., Coroutine[Any, Any, Any]] = getattr(LocalClient, name)

        def wrapper(self: LocalClient, *args: Any, _m: Any = method) -> Awaitable[Any]:
            return held(_m(self, *args), str(args[0])[:60])

        setattr(LocalClient, name, wrapper)


async def saves(folder: Path, n: int) -> None:
    async with sqlstore.Store(f"file:{folder / 'saves.db'}") as store:
        for i in range(n):
            message = {"role": ("user", "assistant")[i % 2], "content": [{"text": "x" * 2000}]}
            await store.conversations.save("u", "s", "a", message, max_history=50)


async def big_value(client: Client, reads: int) -> None:
    await client.execute("CREATE TABLE big (v BLOB)")
    await client.execute("INSERT INTO big VALUES (zeroblob(64 * 1024 * 1024))")
    for _ in range(reads):
        (await client.execute("SELECT v FROM big")).scalar()


def batch_rows() -> list[tuple[str, tuple[int, str]]]:
    """The 10,000 statements of a batch, built before the ticker starts: building them is
    the benchmark's own work (about 5 ms of Python), not the driver's."""
    return [("INSERT INTO rows (a, b) VALUES (?, ?)", (i, f"row {i}")) for i in range(10_000)]


async def row_batches(client: Client, rounds: int, rows: list[tuple[str, tuple[int, str]]]) -> None:
    await client.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, a INTEGER, b TEXT)")
    for r in range(rounds):
        await client.batch(rows)
        await client.execute("SELECT * FROM rows ORDER BY id DESC LIMIT 10000")
        await client.execute("SELECT count(*) FROM rows WHERE a = ?", (r,))


async def big_rows(client: Client, n: int) -> None:
    await client.execute("CREATE TABLE wide (id INTEGER PRIMARY KEY, v BLOB)")
    row = os.urandom(512 * 1024)
    for _ in range(n):
        await client.execute("INSERT INTO wide (v) VALUES (?)", (row,))
        await client.execute("SELECT v FROM wide ORDER BY id DESC LIMIT 1")


async def delete_journal(folder: Path, n: int) -> None:
    client = await sqlstore.connect(f"file:{folder / 'delete.db'}")
    await client.execute("PRAGMA journal_mode = DELETE")
    await client.execute("CREATE TABLE d (id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(n):
        await client.execute("INSERT INTO d (v) VALUES (?)", (str(i),))
        await client.execute("SELECT count(*) FROM d")
    await client.close()


async def mixed_load(folder: Path, scale: int, big: bool = True) -> tuple[list[float], list[float]]:
    """Run every load at once under the ticker (the 64 MiB value only if ``big``); the
    ticker's stalls and the loop thread's CPU time per tick."""
    rows = batch_rows()
    ticker = Ticker()
    tick_task = asyncio.create_task(ticker.run())
    shared = await sqlstore.connect(f"file:{folder / 'mixed.db'}")
    wal = folder / "mixed.db-wal"
    largest_wal = 0

    async def watch_wal() -> None:
        nonlocal largest_wal
        while ticker.running:
            largest_wal = max(largest_wal, wal.stat().st_size if wal.exists() else 0)
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch_wal())
    start = time.perf_counter()
    await asyncio.gather(
        saves(folder, 2000 * scale),
        big_value(shared, 3 * scale) if big else asyncio.sleep(0),
        row_batches(shared, 5 * scale, rows),
        big_rows(shared, 100 * scale),
        delete_journal(folder, 200 * scale),
    )
    elapsed = time.perf_counter() - start
    ticker.running = False
    await tick_task
    await watcher
    await shared.close()
    report(f"mixed_load{'' if big else '_without_64MiB'}_duration", elapsed, "s")
    report(f"mixed_load{'' if big else '_without_64MiB'}_largest_wal", largest_wal / 2**20, "MiB")
    return ticker.stalls, ticker.held


async def raw_thread_read(path: Path) -> list[float]:
    """The ticker's stalls while raw sqlite3, in a plain thread, reads the 64 MiB value
    three times (what any thread costs the loop: it holds the GIL to build the bytes)."""
    ticker = Ticker()
    tick_task = asyncio.create_task(ticker.run())

    def read() -> None:
        conn = sqlite3.connect(path)
        for _ in range(3):
            conn.execute("SELECT v FROM big").fetchall()
        conn.close()

    await asyncio.to_thread(read)
    ticker.running = False
    await tick_task
    return ticker.stalls


async def worker_query(folder: Path, rows: int, busy: bool) -> tuple[float, float]:
    """A long query on the worker's connection, alone or while the loop is busy in Python:
    its wall time and its thread's CPU time, in seconds (on a machine with no idle core,
    the busy loop also takes CPU from the worker; the CPU time leaves that out)."""
    client = await sqlstore.connect(f"file:{folder / 'q.db'}", inline_budget=0)
    assert isinstance(client, LocalClient)
    stop = False

    async def spin() -> None:  # Python work on the loop, yielding as a server would
        while not stop:
            sum(range(2000))
            await asyncio.sleep(0)

    def query(conn: sqlite3.Connection) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.thread_time()
        conn.execute(COUNT, (rows,)).fetchall()
        return time.perf_counter() - start, time.thread_time() - cpu

    spinner = asyncio.create_task(spin()) if busy else None
    await asyncio.sleep(0.01)
    wall, cpu = await client.run_in_worker(query)
    stop = True
    if spinner is not None:
        await spinner
    await client.close()
    return wall, cpu


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller load")
    opts = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sqlstore-lag-"))
    measure_calls()
    stalls, busy = await mixed_load(folder, 1)
    small, _ = await mixed_load(Path(tempfile.mkdtemp(prefix="sqlstore-lag-")), 1, big=False)
    raw = await raw_thread_read(folder / "mixed.db")
    for cpu, wall, label in sorted(HOLDS)[-3:]:
        print(f"# a longest hold: {cpu * 1e3:.1f} ms CPU ({wall * 1e3:.1f} ms wall) by {label!r}")
    for name, values in (
        ("driver_call_hold_cpu", sorted(cpu for cpu, _, _ in HOLDS)),
        ("driver_call_hold_wall", sorted(wall for _, wall, _ in HOLDS)),
        ("loop_stall", sorted(stalls)),
        ("loop_stall_without_64MiB_read", sorted(small)),
        ("loop_stall_raw_sqlite3_thread_reading_64MiB", sorted(raw)),
        ("loop_thread_cpu_per_tick", sorted(busy)),
    ):
        report(f"{name}_max", values[-1] * 1e3, "ms")
        report(f"{name}_p99.9", values[int(len(values) * 0.999)] * 1e3, "ms")
        report(f"{name}_p50", statistics.median(values) * 1e3, "ms")
    report("driver_call_steps", len(HOLDS), "steps")

    rows = 1_000_000 if opts.quick else 5_000_000
    runs: dict[str, list[tuple[float, float]]] = {"alone": [], "loop_busy": []}
    for _ in range(1 if opts.quick else 3):
        runs["alone"].append(await worker_query(folder, rows, busy=False))
        runs["loop_busy"].append(await worker_query(folder, rows, busy=True))
    medians = {}
    for name, pairs in runs.items():
        for i, kind in enumerate(("wall", "cpu")):
            medians[name, kind] = statistics.median(p[i] for p in pairs)
            report(f"worker_query_{name}_{kind}", medians[name, kind] * 1e3, "ms")
    for kind in ("wall", "cpu"):
        ratio = medians["loop_busy", kind] / medians["alone", kind]
        report(f"ratio_worker_query_busy_vs_alone_{kind}", ratio, "x")


if __name__ == "__main__":
    asyncio.run(main())
