"""LangGraph checkpointer benchmark: LibSQLSaver vs langgraph-checkpoint-sqlite's AsyncSqliteSaver.

Same checkpoints for every saver: an agent-like state with a context that never changes
after the first step (about 4 KB in the "small" workload, 64 KB in the "large" one), a window
of the last 10 messages (changes every step), a scratch dict (changes every 5th step) and a
step counter. Measured in one run, per workload:

* ``aput`` rate (checkpoints/s) and ``aget_tuple`` rate (by id) over N checkpoints;
* a full ``alist`` of the N-checkpoint thread (ms);
* a full ``alist`` of a thread whose checkpoints each carry 5 pending writes vs none (small);
* raw sqlite3 doing AsyncSqliteSaver's put (serialize the whole checkpoint, INSERT, COMMIT).

Local files for both savers (the peer's connection set to ``synchronous=NORMAL`` like
sqlstore's default), plus LibSQLSaver on a local tursodb server (small workload, fewer
checkpoints: every request is one round trip). Prints ``name value unit``
lines, then ratios. Run: ``.venv-bench/bin/python benchmarks/bench_langgraph.py``
(``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint, empty_checkpoint  # noqa: E402
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer  # noqa: E402
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver  # noqa: E402

from sqlstore.compat.langgraph import LibSQLSaver  # noqa: E402
from tests.servers import TursoServer  # noqa: E402


def context(paragraphs: int) -> dict[str, Any]:
    """A state channel written once and never changed (a loaded document, a system prompt)."""
    return {
        "doc": [
            {"id": i, "text": f"paragraph {i} " + "lorem ipsum " * 6} for i in range(paragraphs)
        ]
    }


WORKLOADS = {"small": context(48), "large": context(768)}
"""Context of about 4 KB (whole checkpoint about 7 KB) and about 64 KB."""
WRITES_PER_CHECKPOINT = 5


def report(name: str, value: float, unit: str) -> None:
    """One result line."""
    print(f"{name} {value:.1f} {unit}", flush=True)


def message(i: int) -> dict[str, Any]:
    role = "user" if i % 2 else "assistant"
    return {"role": role, "content": f"message {i}: " + "some words of an answer " * 5}


class Workload:
    """Builds the same sequence of checkpoints (and new_versions) for any saver."""

    def __init__(self, saver: BaseCheckpointSaver[Any], ctx: dict[str, Any]) -> None:
        self.saver = saver
        self.context = ctx
        self.versions: dict[str, Any] = {}
        self.values: dict[str, Any] = {}

    def step(self, i: int) -> tuple[Checkpoint, dict[str, Any]]:
        changed: dict[str, Any] = {
            "messages": [message(j) for j in range(max(0, i - 9), i + 1)],
            "step": i,
        }
        if i == 0:
            changed["context"] = self.context
        if i % 5 == 0:
            changed["scratch"] = {"plan": [f"subtask {i}-{k}" for k in range(8)], "at": i}
        new_versions = {}
        for channel, value in changed.items():
            self.values[channel] = value
            version = self.saver.get_next_version(self.versions.get(channel), None)
            self.versions[channel] = new_versions[channel] = version
        cp = empty_checkpoint()
        cp["channel_values"] = dict(self.values)
        cp["channel_versions"] = dict(self.versions)
        cp["versions_seen"] = {"agent": dict(self.versions)}
        return cp, new_versions


def config(thread: str, parent: str | None = None) -> Any:
    conf = {"thread_id": thread, "checkpoint_ns": ""}
    if parent:
        conf["checkpoint_id"] = parent
    return {"configurable": conf}


async def fill(
    saver: BaseCheckpointSaver[Any], ctx: dict[str, Any], thread: str, n: int, writes: bool = False
) -> tuple[float, list[str]]:
    """Put n checkpoints on a thread (optionally with pending writes); (rate, ids)."""
    work = Workload(saver, ctx)
    ids: list[str] = []
    parent: str | None = None
    elapsed = 0.0
    for i in range(n):
        cp, new_versions = work.step(i)
        meta: Any = {"source": "loop", "step": i, "parents": {}}
        start = time.perf_counter()
        stored = await saver.aput(config(thread, parent), cp, meta, new_versions)
        elapsed += time.perf_counter() - start
        parent = stored["configurable"]["checkpoint_id"]
        ids.append(parent)
        if writes:
            pending = [
                (f"ch{k}", {"value": k, "text": "w" * 40}) for k in range(WRITES_PER_CHECKPOINT)
            ]
            await saver.aput_writes(stored, pending, f"task-{i}", "~pull, agent")
    return n / elapsed, ids


async def get_rate(
    saver: BaseCheckpointSaver[Any], ctx: dict[str, Any], thread: str, ids: list[str]
) -> float:
    order = ids[::7] + ids[1::7] + ids[2::7] + ids[3::7] + ids[4::7] + ids[5::7] + ids[6::7]
    start = time.perf_counter()
    for cid in order:
        tup = await saver.aget_tuple(config(thread, cid))
        assert tup is not None and tup.checkpoint["channel_values"]["context"] == ctx
    return len(order) / (time.perf_counter() - start)


async def list_ms(saver: BaseCheckpointSaver[Any], thread: str, expect: int, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        count = 0
        async for tup in saver.alist({"configurable": {"thread_id": thread}}):
            count += 1
            assert "context" in tup.checkpoint["channel_values"]
        times.append((time.perf_counter() - start) * 1000)
        assert count == expect, (count, expect)
    return statistics.median(times)


async def measure(
    prefix: str, saver: BaseCheckpointSaver[Any], workload: str, n: int, runs: int
) -> dict[str, float]:
    """aput, aget_tuple and alist figures for one saver on one workload."""
    ctx = WORKLOADS[workload]
    prefix = f"{prefix}_{workload}"
    out: dict[str, float] = {}
    put, ids = await fill(saver, ctx, f"{prefix}-plain", n)
    out["aput"] = put
    report(f"{prefix}_aput", put, "checkpoints/s")
    out["aget"] = await get_rate(saver, ctx, f"{prefix}-plain", ids)
    report(f"{prefix}_aget_tuple", out["aget"], "reads/s")
    out["alist"] = await list_ms(saver, f"{prefix}-plain", n, runs)
    report(f"{prefix}_alist_{n}", out["alist"], "ms")
    if workload == "small":
        await fill(saver, ctx, f"{prefix}-writes", n, writes=True)
        out["alist_writes"] = await list_ms(saver, f"{prefix}-writes", n, runs)
        name = f"{prefix}_alist_{n}_with_{WRITES_PER_CHECKPOINT}_writes_each"
        report(name, out["alist_writes"], "ms")
    return out


@asynccontextmanager
async def sqlite_saver(path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        await saver.setup()
        await saver.conn.execute("PRAGMA synchronous = NORMAL")
        yield saver


def raw_put_rate(path: Path, ctx: dict[str, Any], n: int) -> float:
    """Raw sqlite3 doing what AsyncSqliteSaver's put does, with no event loop or thread hop."""
    serde = JsonPlusSerializer()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(
        "CREATE TABLE checkpoints (thread_id TEXT, checkpoint_ns TEXT, checkpoint_id TEXT, "
        "parent_checkpoint_id TEXT, type TEXT, checkpoint BLOB, metadata BLOB, "
        "PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id))"
    )

    class Versions:
        def get_next_version(self, current: Any, channel: None) -> int:
            return 1 if current is None else int(current) + 1

    work = Workload(Versions(), ctx)  # type: ignore[arg-type]
    elapsed = 0.0
    parent = None
    for i in range(n):
        cp, _ = work.step(i)
        start = time.perf_counter()
        type_, blob = serde.dumps_typed(cp)
        meta = json.dumps({"source": "loop", "step": i, "parents": {}}).encode()
        conn.execute(
            "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)",
            ("raw", "", cp["id"], parent, type_, blob, meta),
        )
        elapsed += time.perf_counter() - start
        parent = cp["id"]
    conn.close()
    return n / elapsed


def ratio(name: str, a: float, b: float) -> None:
    print(f"ratio_{name} {a / b:.2f} x", flush=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("-n", type=int, default=None, help="checkpoints per thread (local)")
    args = parser.parse_args()
    n = args.n or (100 if args.quick else 1000)
    n_remote = min(n, 50 if args.quick else 300)
    runs = 1 if args.quick else 3
    print(f"# checkpoints per thread: {n} local, {n_remote} on tursodb; alist median of {runs}")
    results: dict[str, dict[str, float]] = {}
    raw: dict[str, float] = {}
    sizes: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for workload in WORKLOADS:
            raw[workload] = raw_put_rate(folder / f"raw_{workload}.db", WORKLOADS[workload], n)
            report(f"raw_sqlite3_{workload}_put", raw[workload], "checkpoints/s")
            peer_db, ours_db = folder / f"peer_{workload}.db", folder / f"ours_{workload}.db"
            async with sqlite_saver(peer_db) as peer:
                results[f"peer_{workload}"] = await measure(
                    "asyncsqlitesaver_local", peer, workload, n, runs
                )
            async with LibSQLSaver.from_url(f"file:{ours_db}") as saver:
                results[f"ours_{workload}"] = await measure(
                    "libsqlsaver_local", saver, workload, n, runs
                )
            for label, path in (("asyncsqlitesaver", peer_db), ("libsqlsaver", ours_db)):
                sizes[f"{label}_{workload}"] = db_size_mb(path)
                report(f"{label}_{workload}_db_size", sizes[f"{label}_{workload}"], "MB")
        server = TursoServer(folder / "server.db")
        server.start()
        try:
            async with LibSQLSaver.from_url(server.url) as saver:
                start = time.perf_counter()
                for _ in range(20):
                    await saver.store.execute("SELECT 1")
                report("tursodb_round_trip", (time.perf_counter() - start) / 20 * 1000, "ms")
                remote = await measure("libsqlsaver_tursodb", saver, "small", n_remote, runs)
        finally:
            server.stop()

    for workload in WORKLOADS:
        ours, theirs = results[f"ours_{workload}"], results[f"peer_{workload}"]
        w = workload
        ratio(f"{w}_aput_libsqlsaver_vs_asyncsqlitesaver", ours["aput"], theirs["aput"])
        ratio(f"{w}_aget_tuple_libsqlsaver_vs_asyncsqlitesaver", ours["aget"], theirs["aget"])
        ratio(f"{w}_alist_speed_libsqlsaver_vs_asyncsqlitesaver", theirs["alist"], ours["alist"])
        ratio(f"{w}_aput_libsqlsaver_vs_raw_sqlite3", ours["aput"], raw[w])
        ratio(f"{w}_aput_asyncsqlitesaver_vs_raw_sqlite3", theirs["aput"], raw[w])
        ratio(
            f"{w}_db_size_asyncsqlitesaver_vs_libsqlsaver",
            sizes[f"asyncsqlitesaver_{w}"],
            sizes[f"libsqlsaver_{w}"],
        )
    ours, theirs = results["ours_small"], results["peer_small"]
    ratio("small_alist_with_writes_vs_none_libsqlsaver", ours["alist_writes"], ours["alist"])
    ratio(
        "small_alist_with_writes_vs_none_asyncsqlitesaver", theirs["alist_writes"], theirs["alist"]
    )
    ratio("small_aput_tursodb_vs_local_libsqlsaver", remote["aput"], ours["aput"])
    for w in WORKLOADS:
        met = results[f"ours_{w}"]["aput"] / results[f"peer_{w}"]["aput"] >= 2.0
        print(f"# {w}: target aput >= 2x AsyncSqliteSaver {'met' if met else 'NOT met'}")


def db_size_mb(path: Path) -> float:
    """The database file's size after folding its WAL in."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    return float(pages * size / 1e6)


if __name__ == "__main__":
    asyncio.run(main())
