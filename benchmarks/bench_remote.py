"""Remote benchmark: sqlstore against the other Python libSQL clients on a real sqld.

Each contender gets a fresh sqld of its own (tests/servers.py) and runs the same four
figures: sequential ``SELECT 1``, sequential single-row inserts, atomic 100-statement
batches (rows/s) and inserts with 64 in flight at once. The contenders take turns in
interleaved rounds and each figure is the median of its rounds, so that a change of load
on a shared machine hits them alike. sqlstore's figures on tursodb are printed beside.
Prints ``name value unit`` lines. Run in the benchmark environment
(``bash benchmarks/setup.sh``): ``.venv-bench/bin/python benchmarks/bench_remote.py``
(``--quick`` for a smoke run). A peer that is not installed is reported and left out.

Contenders:

- ``sqlstore``: ``sqlstore.connect("http://...")`` as it comes: one request per execute /
  batch (writes that wait while one is under way share the next pipeline), Hrana streams
  kept across calls (``keep_streams=4``, the default);
- ``sqlstore_no_kept``: the same with ``keep_streams=0`` (a stream per call, ended with
  ``close``);
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
STALL = 120.0
"""Seconds after which one figure's run counts as stalled (the server stopped answering)."""


class Sizes:
    """How much work each figure does."""

    def __init__(self, quick: bool) -> None:
        self.selects = 200 if quick else 1000
        self.inserts = 200 if quick else 500
        self.batches = 5 if quick else 10
        self.rounds = 2 if quick else 8  # of CONCURRENCY inserts each
        self.repeats = 1 if quick else 5  # interleaved rounds; each figure is their median


def report(name: str, value: float, unit: str) -> None:
    """One result line."""
    print(f"{name} {value:.0f} {unit}", flush=True)


class Contender(Protocol):
    """One client under test: the four figures, each returning a rate."""

    async def select1(self, n: int) -> float: ...
    async def inserts(self, n: int) -> float: ...
    async def batches(self, n: int) -> float: ...
    async def concurrent(self, rounds: int) -> float: ...
    async def refresh(self) -> None: ...
    async def close(self) -> None: ...


def rows(start: int, n: int) -> list[tuple[int, str]]:
    return [(i, f"row {i}") for i in range(start, start + n)]


class SqlstoreContender:
    """sqlstore's remote client (asyncio)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    async def open(cls, url: str, **options: Any) -> SqlstoreContender:
        client = await sqlstore.connect(url, **options)
        await client.execute(CREATE)
        return cls(client)

    @classmethod
    async def open_no_kept(cls, url: str) -> SqlstoreContender:
        """Without kept streams (``keep_streams=0``)."""
        return await cls.open(url, keep_streams=0)

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

    async def refresh(self) -> None:
        """Nothing to do: the client recovers from idle time by itself."""

    async def close(self) -> None:
        await self.client.close()


class WsContender(SqlstoreContender):
    """libsql-client over ws:// (asyncio; its batch is one transaction)."""

    @classmethod
    async def open(cls, url: str, **options: Any) -> SqlstoreContender:
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
        self.pool = ThreadPoolExecutor(CONCURRENCY)
        self.conn = connect()
        self.conn.execute(CREATE)
        self._commit(self.conn)
        self.conns: list[Any] = []
        self.failed = 0
        """Concurrent inserts that raised (not counted in the rate; reported apart)."""

    async def refresh(self) -> None:
        """New connections before each round (untimed): while the other contenders take
        their turns, sqld expires an idle stream, and the libsql SDK does not recover from
        that (STREAM_EXPIRED on the next call)."""
        for conn in [self.conn, *self.conns]:
            conn.close()
        self.conn = self.connect()
        self.conns = list(self.pool.map(lambda _: self.connect(), range(CONCURRENCY)))

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
        def insert(i: int, r: tuple[int, str]) -> bool:
            conn = self.conns[i]
            try:
                conn.execute(INSERT, r)
                self._commit(conn)
            except Exception:  # "database is locked": 64 server connections contend
                self.failed += 1
                return False
            return True

        start = time.perf_counter()
        stored = 0
        for k in range(rounds):
            outcomes = self.pool.map(insert, range(CONCURRENCY), rows(k * CONCURRENCY, CONCURRENCY))
            stored += sum(outcomes)
        return stored / (time.perf_counter() - start)

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
    ("sqlstore_no_kept", "sqlstore", SqlstoreContender.open_no_kept),
    ("libsql", "libsql", open_libsql),
    ("libsql_client_ws", "libsql_client", WsContender.open),
    ("turso_serverless", "turso_serverless", open_turso_serverless),
]


FIGURES = [
    # (name, method, size attribute, unit)
    ("select1", "select1", "selects", "queries/s"),
    ("insert", "inserts", "inserts", "rows/s"),
    ("batch100", "batches", "batches", "rows/s"),
    (f"concurrent{CONCURRENCY}", "concurrent", "rounds", "rows/s"),
]


async def run_all(entries: list[tuple[str, ServerProcess, Any]], sizes: Sizes) -> None:
    """Every figure of every contender, in interleaved rounds (one round runs each
    contender once, so a change of load on this shared machine hits all of them alike);
    each figure is the median of its rounds."""
    opened: list[tuple[str, ServerProcess, Contender]] = []
    try:
        for name, server, opener in entries:
            contender: Contender = await opener(server.url)
            opened.append((name, server, contender))
            await contender.select1(min(100, sizes.selects))  # warm up: connections, caches
        for figure, method, size, unit in FIGURES:
            runs: dict[str, list[float]] = {}
            for _ in range(sizes.repeats):
                for entry in list(opened):
                    name, server, contender = entry
                    await contender.refresh()
                    try:  # an asyncio contender that stalls (its sqld wedged) or fails
                        rate = await asyncio.wait_for(  # is reported and left out after
                            getattr(contender, method)(getattr(sizes, size)), STALL
                        )
                    except Exception as exc:
                        print(f"# {server.name}.{name}.{figure}: {type(exc).__name__}: {exc}")
                        report(f"{server.name}.{name}.{figure}_failed", 1, "runs")
                        opened.remove(entry)
                        continue
                    runs.setdefault(f"{server.name}.{name}", []).append(rate)
            for key, rates in runs.items():
                report(f"{key}.{figure}", statistics.median(rates), unit)
        for name, server, contender in opened:
            failed = getattr(contender, "failed", 0)
            if failed:
                report(f"{server.name}.{name}.concurrent{CONCURRENCY}_failed", failed, "calls")
    finally:
        for _, _, contender in opened:
            await asyncio.wait_for(contender.close(), STALL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--only", help="comma-separated contender names")
    args = parser.parse_args()
    sizes = Sizes(args.quick)
    only = set(args.only.split(",")) if args.only else None
    plan: list[tuple[str, type[ServerProcess], str, Any]] = [
        (name, SqldServer, module, opener) for name, module, opener in CONTENDERS
    ]
    plan.append(("sqlstore", TursoServer, "sqlstore", SqlstoreContender.open))
    servers: list[ServerProcess] = []
    entries: list[tuple[str, ServerProcess, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for i, (name, kind, module, opener) in enumerate(plan):
                if only is not None and name not in only:
                    continue
                if importlib.util.find_spec(module) is None:
                    print(f"# {name}: not installed (pip install -e '.[bench]'); left out")
                    continue
                server = kind(Path(tmp) / f"{i}-{name}.db")  # a fresh server each
                server.start()
                servers.append(server)
                entries.append((name, server, opener))
            asyncio.run(run_all(entries, sizes))
        finally:
            for server in servers:
                server.stop()


if __name__ == "__main__":
    main()
