"""Driver benchmark: raw sqlite3's ceilings and sqlstore's drivers doing the same work.

Prints ``name value unit`` lines, then the ratios. Run: ``.venv/bin/python
benchmarks/bench_drivers.py`` (``--quick`` for a smoke run). The remote figures use a
local tursodb server started by this script (see tests/setup.sh for the binary).
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlstore  # noqa: E402
from tests.servers import TursoServer  # noqa: E402

CREATE = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT)"
INSERT = "INSERT INTO t (a, b) VALUES (?, ?)"


def report(name: str, value: float, unit: str) -> None:
    """One result line."""
    print(f"{name} {value:.1f} {unit}", flush=True)


def median_rate(runs: list[float]) -> float:
    """The median of several rates (robust to one slow run)."""
    return statistics.median(runs)


def raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(CREATE)
    return conn


def raw_bulk(folder: Path, rows: int, run: int) -> float:
    conn = raw_connection(folder / f"raw_bulk_{run}.db")
    data = [(i, f"row {i}") for i in range(rows)]
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany(INSERT, data)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return rows / elapsed


def raw_single(folder: Path, rows: int, run: int) -> float:
    conn = raw_connection(folder / f"raw_single_{run}.db")
    start = time.perf_counter()
    for i in range(rows):
        conn.execute(INSERT, (i, f"row {i}"))  # autocommit: one transaction each
    elapsed = time.perf_counter() - start
    conn.close()
    return rows / elapsed


def raw_select1(folder: Path, n: int) -> float:
    """Microseconds per ``SELECT 1`` fetched by raw sqlite3 (no event loop)."""
    conn = raw_connection(folder / "raw_select1.db")
    start = time.perf_counter()
    for _ in range(n):
        conn.execute("SELECT 1").fetchall()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed / n * 1e6


async def timed(fn: Callable[[], Awaitable[None]], rows: int) -> float:
    start = time.perf_counter()
    await fn()
    return rows / (time.perf_counter() - start)


async def store_bulk(url: str, rows: int) -> float:
    client = await sqlstore.connect(url)
    await client.execute(CREATE)
    statements = [(INSERT, (i, f"row {i}")) for i in range(rows)]

    async def run() -> None:
        await client.batch(statements)

    rate = await timed(run, rows)
    await client.close()
    return rate


async def store_single(url: str, rows: int) -> float:
    client = await sqlstore.connect(url)
    await client.execute(CREATE)

    async def run() -> None:
        for i in range(rows):
            await client.execute(INSERT, (i, f"row {i}"))

    rate = await timed(run, rows)
    await client.close()
    return rate


async def store_single_concurrent(url: str, rows: int, tasks: int) -> float:
    client = await sqlstore.connect(url)
    await client.execute(CREATE)
    per_task = rows // tasks

    async def writer(k: int) -> None:
        for i in range(per_task):
            await client.execute(INSERT, (k * per_task + i, "row"))

    async def run() -> None:
        await asyncio.gather(*(writer(k) for k in range(tasks)))

    rate = await timed(run, per_task * tasks)
    await client.close()
    return rate


async def round_trips(url: str, n: int, **options: Any) -> float:
    client = await sqlstore.connect(url, **options)
    await client.execute("SELECT 1")

    async def run() -> None:
        for _ in range(n):
            await client.execute("SELECT 1")

    rate = await timed(run, n)
    await client.close()
    return rate


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run each")
    opts = parser.parse_args()
    bulk_rows, single_rows, runs = (2_000, 1_000, 1) if opts.quick else (10_000, 5_000, 3)
    folder = Path(tempfile.mkdtemp(prefix="sqlstore-bench-"))

    raw_bulk_rate = median_rate([raw_bulk(folder, bulk_rows, r) for r in range(runs)])
    report(f"raw_sqlite3_executemany_{bulk_rows}_rows_one_txn", raw_bulk_rate, "rows/s")
    raw_single_rate = median_rate([raw_single(folder, single_rows, r) for r in range(runs)])
    report(f"raw_sqlite3_single_row_commits_{single_rows}", raw_single_rate, "rows/s")

    def url(name: str, r: int) -> str:
        return f"file:{folder / f'{name}_{r}.db'}"

    local_bulk = median_rate([await store_bulk(url("bulk", r), bulk_rows) for r in range(runs)])
    report(f"sqlstore_local_batch_{bulk_rows}_inserts", local_bulk, "rows/s")
    local_single = median_rate(
        [await store_single(url("single", r), single_rows) for r in range(runs)]
    )
    report(f"sqlstore_local_execute_{single_rows}_sequential", local_single, "rows/s")
    local_group = median_rate(
        [await store_single_concurrent(url("group", r), single_rows, 64) for r in range(runs)]
    )
    report(f"sqlstore_local_execute_{single_rows}_from_64_tasks", local_group, "rows/s")
    # SELECT 1: the best of 5 interleaved runs each (a floor: this VM's noise only adds).
    raw_us, hops = [], []
    for r in range(5):
        raw_us.append(raw_select1(folder, 2 * single_rows))
        hops.append(await round_trips(url("hop", r), 2 * single_rows))
    report("raw_sqlite3_select1", min(raw_us), "us")
    report("sqlstore_local_select1_round_trip", 1e6 / max(hops), "us")
    worker = [
        await round_trips(url("worker", r), 2 * single_rows, inline_budget=0) for r in range(5)
    ]
    report("sqlstore_local_select1_round_trip_on_the_worker", 1e6 / max(worker), "us")

    report("ratio_local_batch_vs_raw_executemany", local_bulk / raw_bulk_rate, "x")
    report("ratio_local_execute_sequential_vs_raw_commits", local_single / raw_single_rate, "x")
    report("ratio_local_execute_64_tasks_vs_raw_commits", local_group / raw_single_rate, "x")

    server = TursoServer(folder / "remote.db")
    server.start()
    try:
        rtt = await round_trips(server.url, 200 if opts.quick else 1_000)
        report("sqlstore_remote_round_trips_sequential", rtt, "req/s")
        report("sqlstore_remote_round_trip_latency", 1e3 / rtt, "ms")
        remote_bulk = await store_bulk(server.url, bulk_rows)
        report(f"sqlstore_remote_batch_{bulk_rows}_inserts_one_request", remote_bulk, "rows/s")
        remote_single = await store_single(server.url, single_rows // 10)
        report(f"sqlstore_remote_execute_{single_rows // 10}_sequential", remote_single, "rows/s")
        remote_group = await store_single_concurrent(server.url, single_rows, 64)
        report(f"sqlstore_remote_execute_{single_rows}_from_64_tasks", remote_group, "rows/s")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
