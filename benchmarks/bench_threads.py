"""Threads benchmark: sqlstore vs Agentomatic's SQLAlchemyStore (sqlite+aiosqlite), side by side.

Workloads (default sizes; ``--quick`` shrinks them):
- add 2,000 messages to one thread, one call per message (and sqlstore's bulk add);
- read the newest 100 messages of a 500-message thread, x1,000;
- list one user's threads (50 per page) among 1,000 threads, x500;
- fork a 500-message thread at its last message, x50.

Each workload runs on Agentomatic's SQLAlchemyStore (temp file), sqlstore's native API and
its LibSQLStore adapter on a local file, raw sqlite3 doing the same SQL (a reference), and
sqlstore on a local tursodb server. Prints ``name value unit`` lines and the ratios.
Run: ``.venv-bench/bin/python benchmarks/bench_threads.py [--quick]``.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlstore  # noqa: E402
from sqlstore.compat.agentomatic import LibSQLStore  # noqa: E402
from sqlstore.domains.messages import NewMessage  # noqa: E402
from tests.servers import TursoServer  # noqa: E402

RESULTS: dict[str, float] = {}


def report(name: str, value: float, unit: str = "ops/s") -> None:
    """One result line, remembered for the ratios."""
    RESULTS[name] = value
    print(f"{name} {value:.1f} {unit}", flush=True)


async def rate(count: int, op: Callable[[int], Awaitable[Any]]) -> float:
    """Operations per second of ``count`` sequential awaits of ``op(i)``."""
    start = time.perf_counter()
    for i in range(count):
        await op(i)
    return count / (time.perf_counter() - start)


def sync_rate(count: int, op: Callable[[int], Any]) -> float:
    """Operations per second of ``count`` calls of ``op(i)``."""
    start = time.perf_counter()
    for i in range(count):
        op(i)
    return count / (time.perf_counter() - start)


class Sizes:
    """Workload sizes."""

    def __init__(self, quick: bool) -> None:
        self.adds = 200 if quick else 2000
        self.thread_len = 100 if quick else 500
        self.newest = 20 if quick else 100
        self.reads = 50 if quick else 1000
        self.threads = 100 if quick else 1000
        self.lists = 50 if quick else 500
        self.forks = 5 if quick else 50


# --- Agentomatic's SQLAlchemyStore -----------------------------------------------------


async def bench_sqlalchemy(folder: Path, n: Sizes) -> None:
    from agentomatic.storage import SQLAlchemyStore
    from loguru import logger

    logger.remove()
    store = SQLAlchemyStore(f"sqlite+aiosqlite:///{folder / 'sqlalchemy.db'}")
    await store.initialize()
    try:
        await store.create_thread("add", "u", "bot")
        report(
            "sqlalchemy.add_message",
            await rate(n.adds, lambda i: store.add_message("add", "user", f"message {i}")),
        )
        await store.create_thread("long", "u", "bot")
        for i in range(n.thread_len):
            await store.add_message("long", "user", f"message {i}")
        skip = n.thread_len - n.newest
        report(
            "sqlalchemy.newest_messages",
            await rate(n.reads, lambda i: store.get_messages("long", limit=n.newest, offset=skip)),
        )
        for i in range(n.threads):
            await store.create_thread(f"lt{i}", "lister" if i % 4 == 0 else f"o{i}", "bot")
        report(
            "sqlalchemy.list_threads",
            await rate(n.lists, lambda i: store.list_threads(user_id="lister", limit=50)),
        )
        report(
            "sqlalchemy.fork",
            await rate(n.forks, lambda i: store.fork_thread("long", n.thread_len - 1, f"fork{i}")),
        )
    finally:
        await store.close()


# --- sqlstore (native API, adapter) ------------------------------------------------------


async def bench_sqlstore(url: str, prefix: str, n: Sizes, adapter: bool) -> None:
    tag = uuid.uuid4().hex[:8]
    async with sqlstore.Store(url) as store:
        threads = store.threads
        add = await threads.create("u", thread_id=f"add-{tag}")
        report(
            f"{prefix}.add_message",
            await rate(n.adds, lambda i: threads.add_message(add.id, "user", f"message {i}")),
        )
        bulk = await threads.create("u", thread_id=f"bulk-{tag}")
        batch = [NewMessage("user", f"message {i}") for i in range(n.adds)]
        start = time.perf_counter()
        await threads.add_messages(bulk.id, batch)
        report(f"{prefix}.add_messages_bulk", n.adds / (time.perf_counter() - start))
        long = await threads.create("u", thread_id=f"long-{tag}")
        await threads.add_messages(
            long.id, [NewMessage("user", f"message {i}") for i in range(n.thread_len)]
        )
        report(
            f"{prefix}.newest_messages",
            await rate(n.reads, lambda i: threads.recent_messages(long.id, limit=n.newest)),
        )
        lister = f"lister-{tag}"
        for i in range(n.threads):
            await threads.create(lister if i % 4 == 0 else f"o{i}-{tag}", agent_id="bot")
        report(
            f"{prefix}.list_threads",
            await rate(n.lists, lambda i: threads.list(user_id=lister, limit=50)),
        )
        report(
            f"{prefix}.fork",
            await rate(n.forks, lambda i: threads.fork(long.id, n.thread_len - 1)),
        )
    if not adapter:
        return
    ago = LibSQLStore(url)
    await ago.initialize()
    try:
        await ago.create_thread(f"a-add-{tag}", "u", "bot")
        report(
            f"{prefix}_adapter.add_message",
            await rate(n.adds, lambda i: ago.add_message(f"a-add-{tag}", "user", f"m {i}")),
        )
        report(
            f"{prefix}_adapter.newest_messages",
            await rate(n.reads, lambda i: ago.get_messages(f"long-{tag}", limit=n.newest)),
        )
        report(
            f"{prefix}_adapter.list_threads",
            await rate(n.lists, lambda i: ago.list_threads(user_id=lister, limit=50)),
        )
        report(
            f"{prefix}_adapter.fork",
            await rate(
                n.forks,
                lambda i: ago.fork_thread(f"long-{tag}", n.thread_len - 1, f"af{i}-{tag}"),
            ),
        )
    finally:
        await ago.close()


# --- raw sqlite3: the same SQL, synchronous, no driver ---------------------------------


def bench_raw(folder: Path, n: Sizes) -> None:
    from sqlstore.migrations import schema_statements

    conn = sqlite3.connect(folder / "raw.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    for sql in schema_statements():
        conn.execute(sql)

    def thread(tid: str, user: str = "u") -> None:
        conn.execute(
            "INSERT INTO threads (id, user_id, root_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (tid, user, tid, time.time_ns() // 10**6, time.time_ns() // 10**6),
        )

    def add(tid: str, i: int) -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO messages (id, thread_id, seq, role, content, created_at) VALUES"
            " (?1, ?2, (SELECT COALESCE(MAX(seq), 0) + 1 FROM messages WHERE thread_id = ?2),"
            " 'user', ?3, ?4)",
            (uuid.uuid4().hex, tid, f'"message {i}"', time.time_ns() // 10**6),
        )
        conn.execute(
            "UPDATE threads SET message_count = message_count + 1, last_seq = last_seq + 1,"
            " updated_at = ? WHERE id = ?",
            (time.time_ns() // 10**6, tid),
        )
        conn.execute("COMMIT")

    thread("add")
    report("raw_sqlite3.add_message", sync_rate(n.adds, lambda i: add("add", i)))
    thread("long")
    for i in range(n.thread_len):
        add("long", i)
    newest = (
        "SELECT * FROM (SELECT id, thread_id, seq, role, content, metadata, run_id, created_at"
        " FROM messages WHERE thread_id = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq"
    )
    report(
        "raw_sqlite3.newest_messages",
        sync_rate(n.reads, lambda i: conn.execute(newest, ("long", n.newest)).fetchall()),
    )
    for i in range(n.threads):
        thread(f"lt{i}", "lister" if i % 4 == 0 else f"o{i}")
    listing = "SELECT * FROM threads WHERE user_id = ? ORDER BY updated_at DESC, id DESC LIMIT 50"
    report(
        "raw_sqlite3.list_threads",
        sync_rate(n.lists, lambda i: conn.execute(listing, ("lister",)).fetchall()),
    )

    def fork(i: int) -> None:
        child = f"fork{i}"
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO threads (id, user_id, parent_id, root_id, fork_seq, created_at,"
            " updated_at) VALUES (?, 'u', 'long', 'long', ?, 0, 0)",
            (child, n.thread_len),
        )
        conn.execute(
            "INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at)"
            " SELECT ?1 || ':' || seq, ?1, seq, role, content, metadata, created_at FROM messages"
            " WHERE thread_id = 'long' AND seq <= ?2",
            (child, n.thread_len),
        )
        conn.execute("COMMIT")

    report("raw_sqlite3.fork", sync_rate(n.forks, fork))
    conn.close()


WORKLOADS = ("add_message", "newest_messages", "list_threads", "fork")
TARGETS = {"add_message": 50.0, "newest_messages": 10.0, "list_threads": 10.0, "fork": 100.0}


def ratios() -> None:
    print("# ratios (x SQLAlchemyStore in the same run; target in brackets)")
    for work in WORKLOADS:
        base = RESULTS.get(f"sqlalchemy.{work}")
        if not base:
            continue
        for who in ("sqlstore_local", "sqlstore_local_adapter", "sqlstore_remote", "raw_sqlite3"):
            value = RESULTS.get(f"{who}.{work}")
            if value:
                print(f"ratio.{who}.{work}_vs_sqlalchemy {value / base:.1f} x [{TARGETS[work]}]")
        bulk = RESULTS.get("sqlstore_local.add_messages_bulk")
        if work == "add_message" and bulk:
            print(f"ratio.sqlstore_local.add_messages_bulk_vs_sqlalchemy {bulk / base:.1f} x")
    print("# ratios (x raw sqlite3 doing the same SQL)")
    for work in WORKLOADS:
        raw = RESULTS.get(f"raw_sqlite3.{work}")
        value = RESULTS.get(f"sqlstore_local.{work}")
        if raw and value:
            print(f"ratio.sqlstore_local.{work}_vs_raw {value / raw:.2f} x")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    n = Sizes(parser.parse_args().quick)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        await bench_sqlalchemy(folder, n)
        await bench_sqlstore(f"file:{folder / 'sqlstore.db'}", "sqlstore_local", n, True)
        bench_raw(folder, n)
        server = TursoServer(folder / "turso.db")
        server.start()
        try:
            await bench_sqlstore(server.url, "sqlstore_remote", n, False)
        finally:
            server.stop()
    ratios()


if __name__ == "__main__":
    asyncio.run(main())
