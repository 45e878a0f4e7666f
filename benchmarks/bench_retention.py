"""Retention benchmark: prune 1,000,000 old messages of a 100,000-thread database while
saves run, beside raw sqlite3's one ``DELETE`` of the same rows.

Prints ``name value unit`` lines: the prune's rows/s and raw sqlite3's, the saves' p99
latency at rest and during the prune, and the ratios against the targets (prune >= 0.5x
raw sqlite3's rate; saves' p99 during the prune <= 3x at rest). The database is built by
``make_retention_db.py`` (``--scale`` for a smaller one) and copied for raw sqlite3, so
both delete from the same file.

Run: ``.venv/bin/python benchmarks/bench_retention.py [--scale 0.1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from make_retention_db import AGE_MS, build  # noqa: E402

import sqlstore  # noqa: E402
from sqlstore.domains.common import now_ms  # noqa: E402
from sqlstore.retention import BatchOptions  # noqa: E402

SAVE_GAP = 0.002
"""Seconds between two saves of the save loop (an agent fleet's steady traffic)."""


def report(name: str, value: float, unit: str) -> None:
    print(f"{name} {value:.1f} {unit}", flush=True)


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) >= 2 else samples[0]


def raw_delete(path: Path, cutoff: int) -> tuple[int, float]:
    """Raw sqlite3: one DELETE of every old message in one transaction; (rows, seconds)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    start = time.perf_counter()
    with conn:
        rows = conn.execute("DELETE FROM messages WHERE created_at < ?", (cutoff,)).rowcount
    took = time.perf_counter() - start
    conn.close()
    return rows, took


async def save_loop(store: sqlstore.Store, stop: asyncio.Event, out: list[float]) -> None:
    """Save one message at a time to 100 conversations until ``stop``; latencies in ms."""
    i = 0
    while not stop.is_set():
        start = time.perf_counter()
        await store.conversations.save(
            "bench",
            f"live-{i % 100}",
            "agent",
            {"role": "user", "content": f"live {i}"},
            max_history=50,
        )
        out.append((time.perf_counter() - start) * 1000)
        i += 1
        await asyncio.sleep(SAVE_GAP)


async def run(path: Path, rest_seconds: float, options: BatchOptions) -> None:
    cutoff = now_ms() - AGE_MS // 2
    async with sqlstore.Store(f"file:{path}") as store:
        stop = asyncio.Event()
        rest: list[float] = []
        saver = asyncio.create_task(save_loop(store, stop, rest))
        await asyncio.sleep(rest_seconds)
        stop.set()
        await saver
        during: list[float] = []
        stop = asyncio.Event()
        saver = asyncio.create_task(save_loop(store, stop, during))
        start = time.perf_counter()
        result = await store.retention.messages(AGE_MS // 2, options=options)
        took = time.perf_counter() - start
        stop.set()
        await saver
        rows = result.counts.get("messages", 0)
        wrong = await store.execute(
            "SELECT count(*) FROM threads WHERE message_count <> "
            "(SELECT count(*) FROM messages WHERE thread_id = threads.id)"
        )
        assert wrong.scalar() == 0, "counters wrong after the prune"
        left = await store.execute("SELECT count(*) FROM messages WHERE created_at < ?", (cutoff,))
        assert left.scalar() == 0
    report("prune_rows", rows, "rows")
    report("prune_batches", result.batches, "batches")
    report("prune_rate", rows / took, "rows/s")
    report("saves_during_prune", len(during), "saves")
    report("save_p99_rest", p99(rest), "ms")
    report("save_p99_during_prune", p99(during), "ms")
    report("save_p50_rest", statistics.median(rest), "ms")
    report("save_p50_during_prune", statistics.median(during), "ms")
    globals()["_prune"] = (rows / took, p99(rest), p99(during))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size")
    parser.add_argument("--batch-rows", type=int, default=BatchOptions().batch_rows)
    parser.add_argument("--batch-seconds", type=float, default=BatchOptions().batch_seconds)
    parser.add_argument("--pause", type=float, default=BatchOptions().pause)
    parser.add_argument("--rest-seconds", type=float, default=5.0)
    parser.add_argument("--spread", choices=("live", "uniform"), default="live")
    parser.add_argument("--keep", type=Path, help="build the database here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "retention.db"
        start = time.perf_counter()
        threads, messages = build(path, args.scale, spread=args.spread)
        report("build_threads", threads, "threads")
        report("build_messages", messages, "messages")
        report("build_seconds", time.perf_counter() - start, "s")
        raw_path = Path(tmp) / "raw.db"
        shutil.copyfile(path, raw_path)
        rows, took = raw_delete(raw_path, now_ms() - AGE_MS // 2)
        raw_path.unlink()
        report("raw_sqlite3_delete_rows", rows, "rows")
        report("raw_sqlite3_delete_rate", rows / took, "rows/s")
        options = BatchOptions(
            batch_rows=args.batch_rows, batch_seconds=args.batch_seconds, pause=args.pause
        )
        asyncio.run(run(path, args.rest_seconds, options))
        rate, rest, during = globals()["_prune"]
        print(f"ratio prune_vs_raw_sqlite3 {rate / (rows / took):.2f} x (target >= 0.5)")
        print(f"ratio save_p99_during_vs_rest {during / rest:.2f} x (target <= 3)")


if __name__ == "__main__":
    main()
