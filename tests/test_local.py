"""Local driver specifics: the event loop keeps running, pragmas, durability, memory URLs."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

import sqlstore
from sqlstore.drivers.local import LocalClient
from sqlstore.errors import ConfigurationError


async def test_event_loop_keeps_running_during_a_large_batch(tmp_path: Path) -> None:
    client = await sqlstore.connect(f"file:{tmp_path / 'big.db'}")
    await client.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT)")
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    rows = [
        ("INSERT INTO big (payload) VALUES (?) RETURNING id", (f"row {i} " * 8,))
        for i in range(50_000)
    ]
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    results = await client.batch(rows)
    during = ticks - before
    stop.set()
    await task
    await client.close()
    assert len(results) == 50_000 and results[-1].rows[0][0] == 50_000
    # The batch ran on the worker thread: the ticker advanced many times while it ran.
    assert during > 100


async def test_run_in_worker_runs_on_the_worker_thread(tmp_path: Path) -> None:
    client = await sqlstore.connect(f"file:{tmp_path / 't.db'}")
    assert isinstance(client, LocalClient)
    seen: list[int] = []
    await client.run_in_worker(lambda conn: seen.append(threading.get_ident()))
    assert seen and seen[0] != threading.get_ident()
    await client.close()


@pytest.mark.parametrize("durability", ["normal", "full"])
async def test_connection_pragmas(tmp_path: Path, durability: str) -> None:
    client = await sqlstore.connect(f"file:{tmp_path / 'p.db'}", durability=durability)
    assert (await client.execute("PRAGMA journal_mode")).scalar() == "wal"
    assert (await client.execute("PRAGMA foreign_keys")).scalar() == 1
    assert (await client.execute("PRAGMA synchronous")).scalar() == (
        1 if durability == "normal" else 2
    )
    assert (await client.execute("PRAGMA busy_timeout")).scalar() == 30_000
    await client.close()


async def test_bad_local_options(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        await sqlstore.connect(f"file:{tmp_path / 'x.db'}", durability="sometimes")
    with pytest.raises(ConfigurationError):
        await sqlstore.connect(f"file:{tmp_path / 'missing-dir' / 'x.db'}")
    for budget in (-1, 2, "fast", True):
        with pytest.raises(ConfigurationError):
            await sqlstore.connect(f"file:{tmp_path / 'x.db'}", inline_budget=budget)


@pytest.mark.parametrize("url", [":memory:", "file::memory:"])
async def test_memory_urls_keep_one_database(url: str) -> None:
    client = await sqlstore.connect(url)
    await client.execute("CREATE TABLE m (x)")
    await client.batch([("INSERT INTO m VALUES (?)", (i,)) for i in range(3)])
    assert (await client.execute("SELECT count(*) FROM m")).scalar() == 3
    await client.close()


async def test_file_url_with_query_parameters(tmp_path: Path) -> None:
    path = tmp_path / "ro.db"
    writer = await sqlstore.connect(f"file:{path}")
    await writer.execute("CREATE TABLE r (x)")
    await writer.close()
    reader = await sqlstore.connect(f"file:{path}?mode=ro")
    assert (await reader.execute("SELECT count(*) FROM r")).scalar() == 0
    with pytest.raises(sqlstore.QueryError):
        await reader.execute("INSERT INTO r VALUES (1)")
    await reader.close()


async def test_a_large_batch_is_checked_on_the_worker_before_it_runs(tmp_path: Path) -> None:
    """A batch past _CHECK_ON_WORKER statements is checked on the worker thread (its values'
    check would hold the loop for ms), still before anything of it is written."""
    client = await sqlstore.connect(f"file:{tmp_path / 'checked.db'}")
    await client.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    rows = [("INSERT INTO t (v) VALUES (?)", (i,)) for i in range(5_000)]
    bad = [*rows, ("INSERT INTO t (v) VALUES (?)", (float("nan"),))]
    assert isinstance(client, LocalClient)
    before = client.worker_calls
    with pytest.raises(sqlstore.ValidationError):
        await client.batch(bad)
    assert client.worker_calls == before + 1  # refused there, not on the loop
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 0
    with pytest.raises(sqlstore.ValidationError):
        await client.batch([*rows, ("INSERT INTO t (v) VALUES (?)", (2**63,))])
    results = await client.batch(rows)
    assert len(results) == 5_000
    assert (await client.execute("SELECT count(*), sum(v) FROM t")).values[0] == (
        5_000,
        sum(range(5_000)),
    )
    await client.close()
