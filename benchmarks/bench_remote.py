"""Remote benchmark: sqlstore against the other Python libSQL clients on a real sqld.

Each contender gets a fresh sqld (tests/servers.py) and runs the same four figures:
sequential ``SELECT 1``, sequential single-row inserts, atomic 100-statement batches
(rows/s) and inserts with 64 in flight at once. sqlstore's figures on tursodb are printed
beside. Prints ``name value unit`` lines. Run in the benchmark environment
(``bash benchmarks/setup.sh``): ``.venv-bench/bin/python benchmarks/bench_remote.py``
(``--quick`` for a smoke run). A peer that is not installed is reported and left out.

Contenders:

- ``sqlstore``: ``sqlstore.connect("http://...")``, one request per execute / batch;
- ``libsql``: the official SDK (PyPI ``libsql``), remote mode on ``http://``, one
  connection per thread (it is a blocking DB-API driver);
- ``libsql_client_ws``: libsql-client over ``ws://`` (sqld serves Hrana WebSocket on the
  same port), one client, asyncio;
- ``turso_serverless``: PyPI ``turso-serverless`` (blocking DB-API over ``/v3/cursor``),
  one connection per thread.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlstore  # noqa: E402
from tests.servers import ServerProcess, SqldServer, TursoServer  # noqa: E402

CREATE = "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, a INTEGER, b TEXT)"
INSERT = "INSERT INTO t (a, b) VALUES (?, ?)"
BATCH = 100
CONCURRENCY = 64


class Sizes:
    """How much work each figure does."""

    def __init__(self, quick: bool) -> None:
        self.selects = 200 if quick else 2000
        self.inserts = 200 if quick else 1000
        self.batches = 5 if quick else 30
        self.rounds = 2 if quick else 12  # of CONCURRENCY inserts each
        self.repeats = 1 if quick else 3  # the median of this many runs per figure


def report(name: str, value: float, unit: str) -> None:
    """One result line."""
    print(f"{name} {value:.0f} {unit}", flush=True)


class Contender(Protocol):
    """One client under test: the four figures, each returning a rate."""

    async def select1(self, n: int) -> float: ...
    async def inserts(self, n: int) -> float: ...
    async def batches(self, n: int) -> float: ...
    async def concurrent(self, rounds: int) -> float: ...
    async def close(self) -> None: ...


def rows(start: int, n: int) -> list[tuple[int, str]]:
    return [(i, f"row {i}") for i in range(start, start + n)]


class SqlstoreContender:
    """sqlstore's remote client (asyncio)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    async def open(cls, url: str) -> SqlstoreContender:
        client = await sqlstore.connect(url)
        await client.execute(CREATE)
        return cls(client)

    async def select1(self, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await self.client.execute("SELECT 1")
        return n / (time.perf_counter() - start)

    async def inserts(self, n: int) -> float:
        start = time.perf_counter()
        for a, b in rows(0, n):
            await self.client.execute(INSERT, (a, b))
        return n / (time.perf_counter() - start)

    async def batches(self, n: int) -> float:
        start = time.perf_counter()
        for k in range(n):
            await self.client.batch([(INSERT, r) for r in rows(k * BATCH, BATCH)])
        return n * BATCH / (time.perf_counter() - start)

    async def concurrent(self, rounds: int) -> float:
        start = time.perf_counter()
        for k in range(rounds):
            await asyncio.gather(
                *(self.client.execute(INSERT, r) for r in rows(k * CONCURRENCY, CONCURRENCY))
            )
        return rounds * CONCURRENCY / (time.perf_counter() - start)

    async def close(self) -> None:
        await self.client.close()


class WsContender(SqlstoreContender):
    """libsql-client over ws:// (asyncio; its batch is one transaction)."""

    @classmethod
    async def open(cls, url: str) -> SqlstoreContender:
        import libsql_client

        client = libsql_client.create_client(url.replace("http://", "ws://"))
        await client.execute(CREATE)
        return cls(client)

    async def batches(self, n: int) -> float:
        start = time.perf_counter()
        for k in range(n):
            await self.client.batch([(INSERT, list(r)) for r in rows(k * BATCH, BATCH)])
        return n * BATCH / (time.perf_counter() - start)


class BlockingContender:
    """A blocking DB-API driver: sequential figures on one connection, the concurrent
    one on CONCURRENCY threads with a connection each (DB-API connections are not shared
    between threads)."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self.connect = connect
        self.conn = connect()
        self.conn.execute(CREATE)
        self._commit(self.conn)
        self.pool = ThreadPoolExecutor(CONCURRENCY)
        self.conns = list(self.pool.map(lambda _: connect(), range(CONCURRENCY)))

    def _commit(self, conn: Any) -> None:
        if getattr(conn, "in_transaction", False):
            conn.commit()

    async def select1(self, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n):
            self.conn.execute("SELECT 1").fetchall()
        return n / (time.perf_counter() - start)

    async def inserts(self, n: int) -> float:
        start = time.perf_counter()
        for r in rows(0, n):
            self.conn.execute(INSERT, r)
            self._commit(self.conn)
        return n / (time.perf_counter() - start)

    async def batches(self, n: int) -> float:
        start = time.perf_counter()
        for k in range(n):
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(INSERT, rows(k * BATCH, BATCH))
            self.conn.commit()
        return n * BATCH / (time.perf_counter() - start)

    async def concurrent(self, rounds: int) -> float:
        def insert(i: int, r: tuple[int, str]) -> None:
            conn = self.conns[i]
            conn.execute(INSERT, r)
            self._commit(conn)

        start = time.perf_counter()
        for k in range(rounds):
            list(self.pool.map(insert, range(CONCURRENCY), rows(k * CONCURRENCY, CONCURRENCY)))
        return rounds * CONCURRENCY / (time.perf_counter() - start)

    async def close(self) -> None:
        for conn in [self.conn, *self.conns]:
            conn.close()
        self.pool.shutdown()


async def open_libsql(url: str) -> BlockingContender:
    import libsql

    return BlockingContender(lambda: libsql.connect(url, isolation_level=None))


async def open_turso_serverless(url: str) -> BlockingContender:
    import turso_serverless

    return BlockingContender(lambda: turso_serverless.connect(url, isolation_level=None))


CONTENDERS: list[tuple[str, str, Callable[[str], Awaitable[Any]]]] = [
    # (name, module it needs, opener)
    ("sqlstore", "sqlstore", SqlstoreContender.open),
    ("libsql", "libsql", open_libsql),
    ("libsql_client_ws", "libsql_client", WsContender.open),
    ("turso_serverless", "turso_serverless", open_turso_serverless),
]


async def run_one(name: str, server: ServerProcess, opener: Any, sizes: Sizes) -> None:
    """The four figures of one contender, each the median of ``sizes.repeats`` runs."""
    contender: Contender = await opener(server.url)
    try:
        await contender.select1(min(100, sizes.selects))  # warm up: connections, caches
        figures: list[tuple[str, Callable[[], Awaitable[float]], str]] = [
            ("select1", lambda: contender.select1(sizes.selects), "queries/s"),
            ("insert", lambda: contender.inserts(sizes.inserts), "rows/s"),
            ("batch100", lambda: contender.batches(sizes.batches), "rows/s"),
            (f"concurrent{CONCURRENCY}", lambda: contender.concurrent(sizes.rounds), "rows/s"),
        ]
        for figure, measure, unit in figures:
            runs = [await measure() for _ in range(sizes.repeats)]
            report(f"{server.name}.{name}.{figure}", statistics.median(runs), unit)
    finally:
        await contender.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--only", help="comma-separated contender names")
    args = parser.parse_args()
    sizes = Sizes(args.quick)
    only = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory() as tmp:
        runs: list[tuple[str, type[ServerProcess], str, Any]] = [
            (name, SqldServer, module, opener) for name, module, opener in CONTENDERS
        ]
        runs.append(("sqlstore", TursoServer, "sqlstore", SqlstoreContender.open))
        for i, (name, kind, module, opener) in enumerate(runs):
            if only is not None and name not in only:
                continue
            if importlib.util.find_spec(module) is None:
                print(f"# {name}: not installed (pip install -e '.[bench]'); left out")
                continue
            server = kind(Path(tmp) / f"{i}-{name}.db")
            server.start()
            try:
                asyncio.run(run_one(name, server, opener, sizes))
            finally:
                server.stop()


if __name__ == "__main__":
    main()
