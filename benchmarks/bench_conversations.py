"""Conversation history benchmark: sqlstore vs agent-squad's SqlChatStorage vs raw sqlite3.

All in one run, side by side, on files in one temporary folder (WAL for sqlstore and raw
sqlite3; agent-squad's libsql ``file:`` client as it ships). The remote figures use a local
tursodb server started here. Prints ``name value unit`` lines, then the ratios. The save
and batch scenarios run five interleaved rounds (every contender once per round, each on
a new file) and report each contender's median round: this small VM moves single rounds
by 10-20 %.

Run: ``.venv-bench/bin/python benchmarks/bench_conversations.py`` (``--quick`` for a
smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
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

from agent_squad.storage.sql_chat_storage import (  # type: ignore[import-untyped]  # noqa: E402
    SqlChatStorage as PeerStorage,
)
from agent_squad.types import ConversationMessage  # type: ignore[import-untyped]  # noqa: E402

import sqlstore  # noqa: E402
from sqlstore.compat.agent_squad import SqlChatStorage  # noqa: E402
from sqlstore.domains.common import now_ms  # noqa: E402
from sqlstore.domains.conversations import save_statements  # noqa: E402
from sqlstore.domains.messages import encode_messages  # noqa: E402
from sqlstore.drivers.remote import RemoteClient  # noqa: E402
from sqlstore.migrations import schema_statements  # noqa: E402
from tests.servers import TursoServer  # noqa: E402

ROLES = ("user", "assistant")
RESULTS: dict[str, float] = {}


def report(name: str, value: float, unit: str) -> None:
    """One result line, remembered for the ratios."""
    RESULTS[name] = value
    print(f"{name} {value:.1f} {unit}", flush=True)


def ratio(name: str, numerator: str, denominator: str) -> None:
    if numerator in RESULTS and denominator in RESULTS and RESULTS[denominator] > 0:
        print(f"ratio {name} {RESULTS[numerator] / RESULTS[denominator]:.2f} x", flush=True)


def content(i: int) -> list[dict[str, str]]:
    return [{"text": f"message {i}: the quick brown fox jumps over the lazy dog"}]


def message(i: int) -> dict[str, Any]:
    return {"role": ROLES[i % 2], "content": content(i)}


def peer_message(i: int) -> ConversationMessage:
    return ConversationMessage(role=ROLES[i % 2], content=content(i))


async def rate(count: int, fn: Callable[[], Awaitable[None]]) -> float:
    start = time.perf_counter()
    await fn()
    return count / (time.perf_counter() - start)


# --- raw sqlite3: the same work, one transaction per save ------------------------------------

RAW_SCHEMA = """CREATE TABLE IF NOT EXISTS conv (
    user_id TEXT NOT NULL, session_id TEXT NOT NULL, agent_id TEXT NOT NULL,
    idx INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, ts INTEGER NOT NULL,
    PRIMARY KEY (user_id, session_id, agent_id, idx))"""
RAW_TIME_INDEX = "CREATE INDEX IF NOT EXISTS conv_time ON conv (user_id, session_id, ts)"
RAW_INSERT = """INSERT INTO conv SELECT ?1, ?2, ?3,
    (SELECT COALESCE(MAX(idx), 0) + 1 FROM conv WHERE user_id = ?1 AND session_id = ?2
     AND agent_id = ?3), ?4, ?5, ?6"""
RAW_TRIM = """DELETE FROM conv WHERE user_id = ?1 AND session_id = ?2 AND agent_id = ?3
    AND idx <= (SELECT MAX(idx) FROM conv WHERE user_id = ?1 AND session_id = ?2
    AND agent_id = ?3) - ?4"""
RAW_NEWEST = """SELECT * FROM (SELECT role, content, ts, idx FROM conv WHERE user_id = ?
    AND session_id = ? AND agent_id = ? ORDER BY idx DESC LIMIT ?) ORDER BY idx"""
RAW_SESSION = """SELECT agent_id, role, content, ts FROM conv WHERE user_id = ? AND session_id = ?
    ORDER BY ts, agent_id, idx LIMIT ?"""


def raw_connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(RAW_SCHEMA)
    conn.execute(RAW_TIME_INDEX)
    return conn


def raw_saves(path: Path, n: int, keep: int | None) -> float:
    conn = raw_connect(path)
    key = ("u", "s", "a")
    start = time.perf_counter()
    for i in range(n):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(RAW_INSERT, (*key, ROLES[i % 2], json.dumps(content(i)), time.time_ns()))
        if keep is not None:
            conn.execute(RAW_TRIM, (*key, keep))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def raw_same_sql_saves(path: Path, n: int, keep: int | None) -> float:
    """sqlstore's own schema and save statements, run by raw sqlite3 (no driver, no
    validation, no result decoding): the floor of sqlstore's schema (more indexes,
    counters)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    for statement in schema_statements():
        conn.execute(statement if isinstance(statement, str) else statement[0])
    key = ("u", "s", "a")
    thread_id = None  # as sqlstore: the first save finds the thread by key, later ones by id
    start = time.perf_counter()
    for i in range(n):
        encoded = encode_messages([message(i)], now_ms())
        statements = save_statements(
            key,
            encoded,
            thread_id=thread_id,
            now=now_ms(),
            max_history=keep,
            skip_same_role=False,
            history=0,
        )
        conn.execute("BEGIN IMMEDIATE")
        rows = [conn.execute(sql, args).fetchall() for sql, args in statements]
        conn.execute("COMMIT")
        thread_id = rows[-1][0][0]  # select_state: the thread's id
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def raw_batches(path: Path, total: int, size: int) -> float:
    conn = raw_connect(path)
    key = ("u", "s", "a")
    start = time.perf_counter()
    for b in range(total // size):
        conn.execute("BEGIN IMMEDIATE")
        top = conn.execute(
            "SELECT COALESCE(MAX(idx), 0) FROM conv WHERE user_id = ? AND session_id = ?"
            " AND agent_id = ?",
            key,
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO conv VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (*key, top + 1 + i, ROLES[i % 2], json.dumps(content(b * size + i)), i)
                for i in range(size)
            ],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return total / elapsed


def raw_fill(conn: sqlite3.Connection, key: tuple[str, str, str], n: int, t0: int = 0) -> None:
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO conv VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*key, i + 1, ROLES[i % 2], json.dumps(content(i)), t0 + i) for i in range(n)],
    )
    conn.execute("COMMIT")


def raw_reads(conn: sqlite3.Connection, sql: str, args: tuple[Any, ...], reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        rows = conn.execute(sql, args).fetchall()
        [json.loads(r[1] if sql is RAW_NEWEST else r[2]) for r in rows]
    return reps / (time.perf_counter() - start)


# --- agent-squad's own SqlChatStorage --------------------------------------------------------


async def peer_open(path: Path) -> Any:
    storage = PeerStorage(url=f"file:{path}")
    await storage.initialize()
    return storage


async def peer_saves(path: Path, n: int, keep: int | None) -> float:
    storage = await peer_open(path)

    async def run() -> None:
        for i in range(n):
            await storage.save_chat_message("u", "s", "a", peer_message(i), keep)

    return await rate(n, run)


async def peer_batches(path: Path, total: int, size: int) -> float:
    storage = await peer_open(path)

    async def run() -> None:
        for b in range(total // size):
            batch = [peer_message(b * size + i) for i in range(size)]
            await storage.save_chat_messages("u", "s", "a", batch)

    return await rate(total, run)


def peer_fill(path: Path, key: tuple[str, str, str], n: int, t0: int = 0) -> None:
    """Rows straight into agent-squad's own table (filling is not what is measured)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(*key, i, ROLES[i % 2], json.dumps(content(i)), t0 + i) for i in range(n)],
    )
    conn.execute("COMMIT")
    conn.close()


# --- sqlstore -------------------------------------------------------------------------------


async def store_saves(url: str, n: int, keep: int | None) -> float:
    async with sqlstore.Store(url) as store:
        conv = store.conversations
        key = ("u", f"s-{time.time_ns()}", "a")

        async def run() -> None:
            for i in range(n):
                await conv.save(*key, message(i), max_history=keep)

        return await rate(n, run)


async def compat_saves(url: str, n: int, keep: int | None) -> float:
    storage = SqlChatStorage(url)
    await storage.initialize()
    session = f"s-{time.time_ns()}"

    async def run() -> None:
        for i in range(n):
            await storage.save_chat_message("u", session, "a", peer_message(i), keep)

    try:
        return await rate(n, run)
    finally:
        await storage.close()


async def store_batches(url: str, total: int, size: int) -> float:
    async with sqlstore.Store(url) as store:
        conv = store.conversations
        key = ("u", f"s-{time.time_ns()}", "a")

        async def run() -> None:
            for b in range(total // size):
                await conv.save_many(*key, [message(b * size + i) for i in range(size)])

        return await rate(total, run)


async def store_fill(store: sqlstore.Store, key: tuple[str, str, str], n: int, t0: int) -> None:
    for start in range(0, n, 1000):
        await store.conversations.save_many(
            *key,
            [{**message(i), "created_at": t0 + i} for i in range(start, min(n, start + 1000))],
        )


# --- scenarios ------------------------------------------------------------------------------


async def median_rounds(
    rounds: int, run_round: Callable[[int], Awaitable[dict[str, float]]]
) -> dict[str, float]:
    """Each contender's median over ``rounds`` interleaved rounds (``run_round(r)`` runs
    every contender once and returns their rates)."""
    runs: dict[str, list[float]] = {}
    for r in range(rounds):
        for name, value in (await run_round(r)).items():
            runs.setdefault(name, []).append(value)
    return {name: statistics.median(values) for name, values in runs.items()}


async def saves(folder: Path, n: int, keep: int | None, label: str, rounds: int) -> None:
    """``n`` single saves per contender, each round on new files (see median_rounds)."""

    async def one_round(r: int) -> dict[str, float]:
        base = folder / f"{label}_{r}"
        return {
            "sqlstore": await store_saves(f"file:{base}_s.db", n, keep),
            "sqlstore_compat": await compat_saves(f"file:{base}_c.db", n, keep),
            "raw_sqlite3": raw_saves(Path(f"{base}_r.db"), n, keep),
            "raw_sqlite3_same_sql": raw_same_sql_saves(Path(f"{base}_q.db"), n, keep),
            "agent_squad": await peer_saves(Path(f"{base}_p.db"), n, keep),
        }

    for name, value in (await median_rounds(rounds, one_round)).items():
        report(f"{label}_{name}", value, "saves/s")


async def save_latency(folder: Path, n: int) -> None:
    """Each of ``n`` saves with trim timed on its own: the percentiles show the saves that
    wait for a checkpoint or a WAL restart, which a rate hides."""
    times: list[float] = []
    async with sqlstore.Store(f"file:{folder / 'latency.db'}") as store:
        for i in range(n):
            start = time.perf_counter()
            await store.conversations.save("u", "s", "a", message(i), max_history=50)
            times.append(time.perf_counter() - start)
    times.sort()
    for name, at in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999)):
        report(f"save_trim50_latency_{name}", times[int(n * at)] * 1e6, "us")
    report("save_trim50_latency_max", times[-1] * 1e6, "us")


async def batches(folder: Path, total: int, size: int, rounds: int) -> None:
    """``total`` messages in batches of ``size`` per contender, each round on new files
    (see median_rounds)."""

    async def one_round(r: int) -> dict[str, float]:
        base = folder / f"b_{r}"
        return {
            "sqlstore": await store_batches(f"file:{base}_s.db", total, size),
            "raw_sqlite3": raw_batches(Path(f"{base}_r.db"), total, size),
            "agent_squad": await peer_batches(Path(f"{base}_p.db"), total, size),
        }

    for name, value in (await median_rounds(rounds, one_round)).items():
        report(f"batch100_{name}", value, "msgs/s")


async def newest(folder: Path, small: int, large: int, reps: int, peer_reps: int) -> None:
    async with sqlstore.Store(f"file:{folder / 'n_s.db'}") as store:
        for n in (small, large):
            key = ("u", f"s{n}", "a")
            await store_fill(store, key, n, 0)
            conv = store.conversations

            async def run(k: tuple[str, str, str] = key, c: Any = conv) -> None:
                for _ in range(reps):
                    await c.newest(*k, 50)

            report(f"newest50_of_{n}_sqlstore", await rate(reps, run), "reads/s")
    raw = raw_connect(folder / "n_r.db")
    for n in (small, large):
        key = ("u", f"s{n}", "a")
        raw_fill(raw, key, n)
        report(
            f"newest50_of_{n}_raw_sqlite3", raw_reads(raw, RAW_NEWEST, (*key, 50), reps), "reads/s"
        )
    raw.close()
    peer = await peer_open(folder / "n_p.db")
    for n in (small, large):
        key = ("u", f"s{n}", "a")
        peer_fill(folder / "n_p.db", key, n)
        count = peer_reps if n == large else reps

        async def peer_run(k: tuple[str, str, str] = key, c: int = count) -> None:
            for _ in range(c):
                await peer.fetch_chat(*k, 50)

        report(f"newest50_of_{n}_agent_squad", await rate(count, peer_run), "reads/s")


async def session(folder: Path, agents: int, per_agent: int, reps: int) -> None:
    total = agents * per_agent
    async with sqlstore.Store(f"file:{folder / 'x_s.db'}") as store:
        for a in range(agents):
            await store_fill(store, ("u", "s", f"agent{a}"), per_agent, a)
        conv = store.conversations

        async def run() -> None:
            for _ in range(reps):
                assert len(await conv.session("u", "s", total)) == total

        report(f"session_{agents}x{per_agent}_sqlstore", await rate(reps, run), "reads/s")
    compat = SqlChatStorage(f"file:{folder / 'x_s.db'}", read_limit=total)

    async def compat_run() -> None:
        for _ in range(reps):
            await compat.fetch_all_chats("u", "s")

    report(f"session_{agents}x{per_agent}_sqlstore_compat", await rate(reps, compat_run), "reads/s")
    await compat.close()
    raw = raw_connect(folder / "x_r.db")
    for a in range(agents):
        raw_fill(raw, ("u", "s", f"agent{a}"), per_agent, a)
    report(
        f"session_{agents}x{per_agent}_raw_sqlite3",
        raw_reads(raw, RAW_SESSION, ("u", "s", total), reps),
        "reads/s",
    )
    raw.close()
    peer = await peer_open(folder / "x_p.db")
    for a in range(agents):
        peer_fill(folder / "x_p.db", ("u", "s", f"agent{a}"), per_agent, a)

    async def peer_run() -> None:
        for _ in range(reps):
            await peer.fetch_all_chats("u", "s")

    report(f"session_{agents}x{per_agent}_agent_squad", await rate(reps, peer_run), "reads/s")


async def remote(folder: Path, n: int, total: int, size: int) -> None:
    server = TursoServer(folder / "remote.db")
    server.start()
    try:
        async with sqlstore.Store(server.url) as store:
            client = store.client
            assert isinstance(client, RemoteClient)
            conv = store.conversations
            key = ("u", "remote", "a")
            before = client.requests_sent

            async def run_saves() -> None:
                for i in range(n):
                    await conv.save(*key, message(i), max_history=50)

            report("remote_save_trim50_sqlstore", await rate(n, run_saves), "saves/s")
            report("remote_requests_per_save", (client.requests_sent - before) / n, "requests")
            before = client.requests_sent
            batch_key = ("u", "remote-batch", "a")

            async def run_batches() -> None:
                for b in range(total // size):
                    await conv.save_many(*batch_key, [message(b * size + i) for i in range(size)])

            report("remote_batch100_sqlstore", await rate(total, run_batches), "msgs/s")
            report(
                "remote_requests_per_batch100",
                (client.requests_sent - before) / (total // size),
                "requests",
            )
            reps = max(20, n // 4)

            async def run_reads() -> None:
                for _ in range(reps):
                    await conv.newest(*batch_key, 50)

            report(f"remote_newest50_of_{total}_sqlstore", await rate(reps, run_reads), "reads/s")
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    quick = parser.parse_args().quick
    logging.getLogger("httpx").setLevel(logging.WARNING)
    saves_n = 200 if quick else 2000
    large = 10_000 if quick else 100_000
    batch_total = 200 if quick else 1000
    rounds = 1 if quick else 5  # interleaved rounds of the save and batch scenarios
    agents, per_agent = (5, 20) if quick else (20, 50)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        await saves(folder, saves_n, None, "save_nolimit", rounds)
        await saves(folder, saves_n, 50, "save_trim50", rounds)
        await save_latency(folder, 600 if quick else 6000)
        await batches(folder, batch_total, 100, rounds)
        await newest(folder, 500, large, 50 if quick else 300, 3 if quick else 5)
        await session(folder, agents, per_agent, 10 if quick else 50)
        await remote(folder, 100 if quick else 500, batch_total, 100)
    ratio("save_nolimit sqlstore/agent_squad", "save_nolimit_sqlstore", "save_nolimit_agent_squad")
    ratio("save_nolimit sqlstore/raw_sqlite3", "save_nolimit_sqlstore", "save_nolimit_raw_sqlite3")
    ratio("save_trim50 sqlstore/agent_squad", "save_trim50_sqlstore", "save_trim50_agent_squad")
    ratio(
        "save_trim50 sqlstore_compat/agent_squad",
        "save_trim50_sqlstore_compat",
        "save_trim50_agent_squad",
    )
    ratio("save_trim50 sqlstore/raw_sqlite3", "save_trim50_sqlstore", "save_trim50_raw_sqlite3")
    ratio(
        "save_trim50 sqlstore/raw_sqlite3_same_sql",
        "save_trim50_sqlstore",
        "save_trim50_raw_sqlite3_same_sql",
    )
    ratio("batch100 sqlstore/agent_squad", "batch100_sqlstore", "batch100_agent_squad")
    ratio("batch100 sqlstore/raw_sqlite3", "batch100_sqlstore", "batch100_raw_sqlite3")
    ratio(
        f"newest50 sqlstore {large}/500 (time)",
        "newest50_of_500_sqlstore",
        f"newest50_of_{large}_sqlstore",
    )
    ratio(
        f"newest50_of_{large} sqlstore/agent_squad",
        f"newest50_of_{large}_sqlstore",
        f"newest50_of_{large}_agent_squad",
    )
    ratio(
        f"newest50_of_{large} sqlstore/raw_sqlite3",
        f"newest50_of_{large}_sqlstore",
        f"newest50_of_{large}_raw_sqlite3",
    )
    s = f"session_{agents}x{per_agent}"
    ratio(f"{s} sqlstore/agent_squad", f"{s}_sqlstore", f"{s}_agent_squad")
    ratio(f"{s} sqlstore/raw_sqlite3", f"{s}_sqlstore", f"{s}_raw_sqlite3")


if __name__ == "__main__":
    asyncio.run(main())
