"""Build the retention benchmark's database: 100,000 threads and 1,000,000 messages (times
``--scale``), every message 60 days old, written interleaved across the 100 conversations
open at a time as live traffic writes them (``--spread uniform``: across all threads).
The schema is sqlstore's own (``Store.initialize``: incremental vacuum, WAL); the rows go
in with raw sqlite3 for speed, counters included.

Run: ``.venv/bin/python benchmarks/make_retention_db.py PATH [--scale 0.1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlstore  # noqa: E402
from sqlstore.domains.common import new_ids, now_ms  # noqa: E402

THREADS = 100_000
MESSAGES = 1_000_000
AGE_MS = 60 * 86_400_000
ACTIVE = 100
"""Conversations open at once while the database is written (``spread="live"``)."""


def build(path: Path, scale: float = 1.0, seed: int = 7, spread: str = "live") -> tuple[int, int]:
    """Make the database at ``path`` (replacing it); (threads, messages) written.

    ``spread``: ``live`` writes each message to one of ACTIVE conversations open at the
    time (a conversation ends after its share of messages and a new one starts), as an
    agent fleet does; ``uniform`` writes each to any thread at random (the worst case
    for a prune by age: every index page holds rows of every age)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    asyncio.run(_init(path))
    threads = max(1, int(THREADS * scale))
    messages = max(1, int(MESSAGES * scale))
    rng = random.Random(seed)
    old = now_ms() - AGE_MS
    thread_ids = [f"thread-{i:07d}" for i in range(threads)]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    with conn:
        conn.executemany(
            "INSERT INTO threads (id, user_id, session_id, agent_id, root_id, created_at, "
            "updated_at) VALUES (?1, 'user', ?1, 'agent', ?1, ?2, ?2)",
            ((tid, old) for tid in thread_ids),
        )
    seqs = [0] * threads
    per_thread = messages // threads  # the first threads take the remainder
    quota = [per_thread + (i < messages % threads) for i in range(threads)]
    active = list(range(min(ACTIVE, threads)))  # the conversations live right now
    following = len(active)
    chunk = 50_000
    written = 0
    while written < messages:
        n = min(chunk, messages - written)
        rows = []
        for mid in new_ids(n):
            if spread == "uniform":  # worst case: every thread active all the time
                t = rng.randrange(threads)
                while seqs[t] >= quota[t] and spread == "uniform":
                    t = (t + 1) % threads
            else:
                slot = rng.randrange(len(active))
                t = active[slot]
            seqs[t] += 1
            if spread != "uniform" and seqs[t] >= quota[t]:  # done: a new one starts
                if following < threads:
                    active[slot] = following
                    following += 1
                else:
                    active.pop(slot)
            text = f'[{{"text": "message {written} of a benchmark conversation, some words"}}]'
            rows.append((mid, thread_ids[t], seqs[t], "user", text, old + written))
            written += 1
        with conn:
            conn.executemany(
                "INSERT INTO messages (id, thread_id, seq, role, content, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rows,
            )
    with conn:
        conn.executemany(
            "UPDATE threads SET message_count = ?, last_seq = ? WHERE id = ?",
            ((seqs[i], seqs[i], tid) for i, tid in enumerate(thread_ids)),
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return threads, messages


async def _init(path: Path) -> None:
    async with sqlstore.Store(f"file:{path}"):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size")
    parser.add_argument("--spread", choices=("live", "uniform"), default="live")
    args = parser.parse_args()
    start = time.perf_counter()
    threads, messages = build(args.path, args.scale, spread=args.spread)
    took = time.perf_counter() - start
    print(f"built {args.path}: {threads} threads, {messages} messages in {took:.1f} s")


if __name__ == "__main__":
    main()
