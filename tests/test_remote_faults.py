"""Lost and late answers from real servers, through a loopback fault proxy: a write is
never applied twice, a raw write whose answer was lost raises OutcomeUnknownError, reads
and requests that cannot have been processed are re-sent, one timeout bounds a call."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator

import pytest

import sqlstore
from sqlstore.errors import OutcomeUnknownError, UnavailableError
from tests.faultproxy import FaultProxy, drop_first_answer_of_each_write, is_write
from tests.servers import ServerProcess, SqldServer
from tests.test_remote import remote


async def test_raw_write_with_lost_answer_is_outcome_unknown_and_applied_once(
    remote_server: ServerProcess, table: str
) -> None:
    direct = await remote(remote_server.url)
    await direct.batch(
        [
            f"CREATE TABLE {table} (k TEXT PRIMARY KEY, n INTEGER)",
            f"INSERT INTO {table} VALUES ('c', 0)",
        ]
    )
    async with FaultProxy(remote_server.url, drop_first_answer_of_each_write()) as proxy:
        client = await remote(proxy.url, retries=5, keep_streams=4)
        await client.execute("SELECT 1")  # sqld keeps its stream; the write goes on it
        assert len(client._streams) == (1 if isinstance(remote_server, SqldServer) else 0)
        with pytest.raises(OutcomeUnknownError) as info:
            await client.execute(f"UPDATE {table} SET n = n + 1 WHERE k = 'c'")
        assert "may or may not have been applied" in str(info.value)
        assert client._streams == [] and client._held == 0  # its stream went with the answer
        with pytest.raises(OutcomeUnknownError):
            await client.batch(
                [
                    (f"INSERT INTO {table} VALUES (?, ?)", ("b1", 1)),
                    (f"UPDATE {table} SET n = n + 1 WHERE k = 'c'", ()),
                ]
            )
        assert proxy.dropped == 2
        # The same requests sent again go through: each applied exactly once more.
        await client.execute(f"UPDATE {table} SET n = n + 1 WHERE k = 'c'")
        await client.close()
    assert (await direct.execute(f"SELECT n FROM {table} WHERE k = 'c'")).scalar() == 3
    assert (await direct.execute(f"SELECT count(*) FROM {table}")).scalar() == 2
    await direct.close()


async def test_a_raw_write_through_the_store_is_never_sent_twice(
    remote_server: ServerProcess, table: str
) -> None:
    """Store.execute / Store.batch run SQL as it is: a lost answer is OutcomeUnknownError,
    as on the client (only the domains' idempotent writes are re-sent, through
    store.resending), so `n = n + 1` lands once."""
    async with sqlstore.Store(remote_server.url) as direct:
        await direct.batch(
            [
                f"CREATE TABLE {table} (k TEXT PRIMARY KEY, n INTEGER)",
                f"INSERT INTO {table} VALUES ('c', 0)",
            ]
        )
        async with (
            FaultProxy(remote_server.url, drop_first_answer_of_each_write()) as proxy,
            sqlstore.Store(proxy.url, retries=5) as store,
        ):
            with pytest.raises(OutcomeUnknownError):
                await store.execute(f"UPDATE {table} SET n = n + 1 WHERE k = 'c'")
            with pytest.raises(OutcomeUnknownError):
                await store.batch([f"UPDATE {table} SET n = n + 1 WHERE k = 'c'"])
            dropped = proxy.dropped
        assert (await direct.execute(f"SELECT n FROM {table} WHERE k = 'c'")).scalar() == 2
    assert dropped == 2


async def test_write_slower_than_the_timeout_runs_once(
    remote_server: ServerProcess, table: str
) -> None:
    direct = await remote(remote_server.url)
    await direct.execute(f"CREATE TABLE {table} (x INTEGER)")
    async with FaultProxy(remote_server.url, lambda b: "delay" if is_write(b) else "pass") as proxy:
        proxy.delay = 3.0
        client = await remote(proxy.url, timeout=0.5, retries=5)
        start = time.monotonic()
        with pytest.raises(OutcomeUnknownError):
            await client.batch([(f"INSERT INTO {table} VALUES (?)", (i,)) for i in range(50)])
        assert time.monotonic() - start < 1.5
        assert proxy.forwarded == 1
        await client.close()
    assert (await direct.execute(f"SELECT count(*) FROM {table}")).scalar() == 50
    await direct.close()


async def test_reads_are_sent_again_after_a_lost_answer(remote_server: ServerProcess) -> None:
    seen: set[bytes] = set()

    def drop_first(body: bytes) -> str:
        if body in seen:
            return "pass"
        seen.add(body)
        return "drop"

    async with FaultProxy(remote_server.url, drop_first) as proxy:
        client = await remote(proxy.url, retry_backoff=0.01)
        assert (await client.execute("SELECT 41 + 1")).scalar() == 42
        results = await client.batch(["SELECT 1", ("VALUES (?)", (2,))])
        assert [r.scalar() for r in results] == [1, 2]
        assert proxy.dropped >= 2
        await client.close()


async def test_busy_answers_are_retried_after_retry_after(
    remote_server: ServerProcess, table: str
) -> None:
    direct = await remote(remote_server.url)
    await direct.execute(f"CREATE TABLE {table} (x INTEGER)")
    refusals = 2

    def busy_twice(body: bytes) -> str:
        nonlocal refusals
        if is_write(body) and refusals:
            refusals -= 1
            return "busy"
        return "pass"

    async with FaultProxy(remote_server.url, busy_twice) as proxy:
        proxy.retry_after = 0.3
        client = await remote(proxy.url, retry_backoff=0.001)
        await client.execute("SELECT 1")  # learns whether the server wants 'close'
        forwarded = proxy.forwarded
        start = time.monotonic()
        await client.execute(f"INSERT INTO {table} VALUES (1)")
        assert time.monotonic() - start >= 0.6  # Retry-After honoured, not the 1 ms backoff
        assert proxy.forwarded == forwarded + 1
        await client.close()
    assert (await direct.execute(f"SELECT count(*) FROM {table}")).scalar() == 1
    await direct.close()


async def test_one_timeout_bounds_the_whole_call(remote_server: ServerProcess) -> None:
    async with FaultProxy(remote_server.url, lambda b: "hang") as proxy:
        client = await remote(proxy.url, timeout=0.6, retries=50, retry_backoff=0.01)
        start = time.monotonic()
        with pytest.raises(UnavailableError):
            await client.execute("SELECT 1")  # a read: re-sent, but within the one timeout
        assert time.monotonic() - start < 1.2
        await client.close()


async def test_a_connection_the_server_stops_answering_is_dropped(
    remote_server: ServerProcess,
) -> None:
    actions: list[str] = []
    async with FaultProxy(
        remote_server.url, lambda b: actions.pop(0) if actions else "pass"
    ) as proxy:
        client = await remote(proxy.url, timeout=0.5, max_connections=1)
        assert (await client.execute("SELECT 1")).scalar() == 1
        assert proxy.connections == 1
        actions.append("hang")  # the pooled connection goes silent
        with pytest.raises(UnavailableError):
            await client.execute("SELECT 2")
        for i in range(5):  # a new connection, kept for the calls after it
            assert (await client.execute("SELECT ?", (i,))).scalar() == i
        assert proxy.connections == 2
        await client.close()


@contextlib.contextmanager
def write_lock_held(server: SqldServer, seconds: float) -> Iterator[None]:
    """Hold the write lock of sqld's database file from outside for ``seconds``."""
    holder = sqlite3.connect(
        server.db_path / "dbs" / "default" / "data",
        timeout=0,
        isolation_level=None,
        check_same_thread=False,
    )
    holder.execute("BEGIN IMMEDIATE")
    release = threading.Timer(seconds, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        yield
    finally:
        release.join()
        holder.close()


async def test_a_locked_database_is_waited_out(fresh_sqld: SqldServer) -> None:
    """sqld answers SQLITE_BUSY while another connection holds the write lock: the
    statement was refused, so it is sent again until the lock is gone (within the timeout)."""
    client = await remote(fresh_sqld.url, retries=1, retry_backoff=0.05)
    await client.execute("CREATE TABLE t (x INTEGER)")
    before = client.requests_sent
    with write_lock_held(fresh_sqld, 1.0):
        await client.execute("INSERT INTO t VALUES (1)")
        await client.batch([("INSERT INTO t VALUES (?)", (2,))])
    assert client.requests_sent - before > 2  # refused while locked, sent again
    assert (await client.execute("SELECT count(*) FROM t")).scalar() == 2
    await client.close()
