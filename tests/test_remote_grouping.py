"""Shared write pipelines on the real servers: writes that wait while a write of the same
client is under way go together in one pipeline, each as its own request, and each caller
gets exactly its own result, error, timeout or outcome-unknown."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import sqlstore
from sqlstore.errors import (
    AuthenticationError,
    OutcomeUnknownError,
    QueryError,
    UnavailableError,
)
from tests.conftest import unique
from tests.faultproxy import FaultProxy, Policy, is_write
from tests.servers import ServerProcess, SqldServer
from tests.test_remote import remote
from tests.test_remote_auth import AuthServer
from tests.test_remote_faults import write_lock_held


def calls_in(body: bytes) -> int:
    """How many callers' requests a pipeline body carries."""
    requests = json.loads(body)["requests"]
    pragma = {"type": "execute", "stmt": {"sql": "PRAGMA foreign_keys = ON"}}
    return sum(1 for r in requests if r != pragma and r.get("type") != "close")


def drop_first_shared_write() -> Policy:
    """A policy that drops the answer of the first pipeline carrying several writes."""
    done = False

    def policy(body: bytes) -> str:
        nonlocal done
        if done or not is_write(body) or calls_in(body) < 2:
            return "pass"
        done = True
        return "drop"

    return policy


def delaying(writes: list[bytes]) -> Callable[[bytes], str]:
    """A fault-proxy rule that delays every write (recording its body in ``writes``) and
    passes everything else."""

    def rule(body: bytes) -> str:
        if is_write(body):
            writes.append(body)
            return "delay"
        return "pass"

    return rule


async def test_concurrent_writes_each_get_their_own_result_and_error(
    remote_server: ServerProcess, table: str
) -> None:
    client = await remote(remote_server.url)
    await client.execute(f"CREATE TABLE {table} (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    await client.execute(f"INSERT INTO {table} VALUES (0, 'taken')")
    before = client.requests_sent
    insert = f"INSERT INTO {table} VALUES (?, ?) RETURNING k, v"
    calls: list[Awaitable[Any]] = []
    for i in range(1, 61):
        if i % 10 == 3:  # the key is taken: a constraint error for this caller only
            calls.append(client.execute(insert, (0, f"dup {i}")))
        elif i % 10 == 5:  # a batch whose second statement fails: rolled back whole
            failing = (f"INSERT INTO {table} VALUES (?, NULL)", (-i,))
            calls.append(client.batch([(insert, (i, "kept?")), failing]))
        elif i % 10 == 7:  # a batch that commits
            calls.append(client.batch([(insert, (i, f"b{i}")), (insert, (1000 + i, f"b{i}"))]))
        elif i == 9:
            calls.append(client.execute("INSERT INTO no_such_table VALUES (1)"))
        else:
            calls.append(client.execute(insert, (i, f"v{i}")))
    outcomes: list[Any] = await asyncio.gather(*calls, return_exceptions=True)
    stored = {0}
    for i, outcome in enumerate(outcomes, start=1):
        if i % 10 == 3:
            assert isinstance(outcome, QueryError) and "UNIQUE" in str(outcome), (i, outcome)
        elif i % 10 == 5:
            assert isinstance(outcome, QueryError) and "NOT NULL" in str(outcome), (i, outcome)
        elif i % 10 == 7:
            assert not isinstance(outcome, BaseException)
            assert [r.values[0] for r in outcome] == [(i, f"b{i}"), (1000 + i, f"b{i}")]
            stored |= {i, 1000 + i}
        elif i == 9:
            assert isinstance(outcome, QueryError) and "no_such_table" in str(outcome)
        else:
            assert not isinstance(outcome, BaseException), (i, outcome)
            assert list(outcome.values) == [(i, f"v{i}")]
            stored.add(i)
    # The first call went alone; the 59 that waited for it shared a few pipelines.
    assert client.requests_sent - before <= 4
    keys = await client.execute(f"SELECT k FROM {table} ORDER BY k")
    assert {row[0] for row in keys.values} == stored
    assert (await client.execute(f"SELECT v FROM {table} WHERE k = 0")).scalar() == "taken"
    await client.close()


async def test_a_shared_pipeline_carries_at_most_64_calls(
    remote_server: ServerProcess, table: str
) -> None:
    client = await remote(remote_server.url)
    await client.execute(f"CREATE TABLE {table} (x INTEGER PRIMARY KEY)")
    before = client.requests_sent
    await asyncio.gather(
        *(client.execute(f"INSERT INTO {table} VALUES (?)", (i,)) for i in range(200))
    )
    assert client.requests_sent - before == 1 + 4  # one alone, then 64 + 64 + 64 + 7
    assert (await client.execute(f"SELECT count(*) FROM {table}")).scalar() == 200
    await client.close()


async def test_a_lost_shared_answer_is_outcome_unknown_for_every_caller(
    remote_server: ServerProcess, table: str
) -> None:
    direct = await remote(remote_server.url)
    await direct.execute(f"CREATE TABLE {table} (k INTEGER PRIMARY KEY, n INTEGER)")
    async with FaultProxy(remote_server.url, drop_first_shared_write()) as proxy:
        client = await remote(proxy.url, retries=5)
        await client.execute("SELECT 1")  # learns whether the server wants 'close'
        forwarded = proxy.forwarded
        outcomes = await asyncio.gather(
            *(client.execute(f"INSERT INTO {table} VALUES (?, ?)", (i, i)) for i in range(20)),
            return_exceptions=True,
        )
        assert proxy.dropped == 1
        # The first went alone and was answered; the 19 that shared the lost answer all
        # raise OutcomeUnknownError, and none of them was sent again.
        assert not isinstance(outcomes[0], BaseException)
        assert all(isinstance(o, OutcomeUnknownError) for o in outcomes[1:]), outcomes
        assert proxy.forwarded == forwarded + 2
        await client.close()
    totals = await direct.execute(f"SELECT count(*), sum(n) FROM {table}")
    assert list(totals.values) == [(20, 190)]
    await direct.close()


async def test_domain_writes_sharing_a_lost_answer_are_stored_once(
    remote_server: ServerProcess,
) -> None:
    user = unique("u")
    async with (
        sqlstore.Store(remote_server.url) as direct,
        FaultProxy(remote_server.url, drop_first_shared_write()) as proxy,
        sqlstore.Store(proxy.url) as store,
    ):
        await store.initialize()
        threads = await asyncio.gather(
            *(store.threads.create(user, title=f"t{i}") for i in range(12))
        )
        messages = await asyncio.gather(
            *(store.threads.add_message(t.id, "user", f"hello {t.title}") for t in threads)
        )
        assert proxy.dropped == 1
        assert sorted(str(t.title) for t in threads) == sorted(f"t{i}" for i in range(12))
        assert all(m.seq == 1 for m in messages)
        rows = await direct.client.execute(
            "SELECT count(*), sum(message_count) FROM threads WHERE user_id = ?", (user,)
        )
        assert list(rows.values) == [(12, 12)]
        stored = await direct.client.execute(
            "SELECT count(*) FROM messages WHERE thread_id IN "
            "(SELECT id FROM threads WHERE user_id = ?)",
            (user,),
        )
        assert stored.scalar() == 12


async def test_a_caller_whose_timeout_passes_while_queued_sends_nothing(
    remote_server: ServerProcess, table: str
) -> None:
    direct = await remote(remote_server.url)
    await direct.execute(f"CREATE TABLE {table} (x INTEGER)")
    writes: list[bytes] = []
    async with FaultProxy(remote_server.url, delaying(writes)) as proxy:
        proxy.delay = 1.5
        client = await remote(proxy.url, timeout=1.0)
        await client.execute("SELECT 1")  # learns whether the server wants 'close'
        first = asyncio.ensure_future(client.execute(f"INSERT INTO {table} VALUES (0)"))
        await asyncio.sleep(0.05)  # the first write is under way; the next ones wait
        client.timeout = 0.3  # for the calls made from now on
        queued = [client.execute(f"INSERT INTO {table} VALUES (?)", (i,)) for i in range(1, 6)]
        cancelled = asyncio.ensure_future(client.execute(f"INSERT INTO {table} VALUES (99)"))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        start = time.monotonic()
        outcomes = await asyncio.gather(*queued, return_exceptions=True)
        assert time.monotonic() - start < 0.5
        for outcome in outcomes:  # never sent: the timeout error, nothing applied
            assert type(outcome) is UnavailableError, outcome
            assert "nothing of it was applied" in str(outcome)
        with pytest.raises(OutcomeUnknownError):  # sent: its answer comes too late
            await first
        await asyncio.sleep(0.7)  # the delayed answer of the first comes back meanwhile
        assert len(writes) == 1  # only the first write reached the server
        await client.close()
    assert (await direct.execute(f"SELECT group_concat(x) FROM {table}")).scalar() == "0"
    await direct.close()


async def test_a_locked_database_is_waited_out_by_a_shared_pipeline(
    fresh_sqld: SqldServer,
) -> None:
    client = await remote(fresh_sqld.url, retries=1, retry_backoff=0.05)
    await client.execute("CREATE TABLE t (x INTEGER)")
    with write_lock_held(fresh_sqld, 1.0):
        await asyncio.gather(
            *(client.execute("INSERT INTO t VALUES (?)", (i,)) for i in range(10)),
            client.batch([("INSERT INTO t VALUES (?)", (x,)) for x in (10, 11)]),
        )
    assert list((await client.execute("SELECT count(*), sum(x) FROM t")).values) == [(12, 66)]
    await client.close()


async def test_read_only_reads_beside_writes(tmp_path: Path) -> None:
    """A read is never in a pipeline with a write: with a read-only token, reads that run
    while writes of the same client wait all succeed (the writes get 403), and another
    client's writes at the same time change nothing for them."""
    auth = AuthServer(tmp_path)
    auth.server.start()
    try:
        writer = await remote(auth.url, auth_token=auth.rw)
        await writer.execute("CREATE TABLE t (x INTEGER)")
        reader = await remote(auth.url, auth_token=auth.ro)
        own_writes = [reader.execute("INSERT INTO t VALUES (?)", (i,)) for i in range(8)]
        reads = [reader.execute("SELECT ?", (i,)) for i in range(16)]
        batch_reads = [reader.batch([("SELECT count(*) >= 0 FROM t", ())]) for _ in range(4)]
        other_writes = [writer.execute("INSERT INTO t VALUES (?)", (i,)) for i in range(16)]
        outcomes: list[Any] = await asyncio.gather(
            *own_writes, *reads, *batch_reads, *other_writes, return_exceptions=True
        )
        assert all(isinstance(o, AuthenticationError) for o in outcomes[:8]), outcomes[:8]
        assert not any(isinstance(o, BaseException) for o in outcomes[8:]), outcomes[8:]
        assert [o.scalar() for o in outcomes[8:24]] == list(range(16))
        assert all(o[0].scalar() == 1 for o in outcomes[24:28])
        assert (await writer.execute("SELECT count(*) FROM t")).scalar() == 16
        await reader.close()
        await writer.close()
    finally:
        auth.server.stop()


async def test_writes_waiting_when_the_client_closes_are_not_sent(
    remote_server: ServerProcess, table: str
) -> None:
    direct = await remote(remote_server.url)
    await direct.execute(f"CREATE TABLE {table} (x INTEGER)")
    writes: list[bytes] = []
    async with FaultProxy(remote_server.url, delaying(writes)) as proxy:
        proxy.delay = 0.5
        client = await remote(proxy.url)
        first = asyncio.ensure_future(client.execute(f"INSERT INTO {table} VALUES (0)"))
        await asyncio.sleep(0.05)  # the first write is under way; the next ones wait
        queued = [client.execute(f"INSERT INTO {table} VALUES (?)", (i,)) for i in range(1, 6)]
        outcomes = await asyncio.gather(*queued, client.close(), return_exceptions=True)
        await first  # close() let the write under way finish
        for outcome in outcomes[:-1]:
            assert isinstance(outcome, UnavailableError) and "closed" in str(outcome), outcome
            assert not isinstance(outcome, OutcomeUnknownError)
        assert len(writes) == 1
    assert (await direct.execute(f"SELECT group_concat(x) FROM {table}")).scalar() == "0"
    await direct.close()


async def test_reads_leave_a_kept_stream_for_the_write_pipeline(
    sqld_server: ServerProcess, table: str
) -> None:
    """With 4 kept streams, reads hold at most 3: a write that comes while many reads are
    under way still goes on a kept stream, never on one that closes after it (sqld
    0.24.32 can wedge when a connection that queued for its write slot closes)."""
    direct = await remote(sqld_server.url)
    await direct.execute(f"CREATE TABLE {table} (x INTEGER)")
    bodies: list[bytes] = []

    def delay_reads(body: bytes) -> str:
        bodies.append(body)
        return "pass" if is_write(body) else "delay"

    async with FaultProxy(sqld_server.url, delay_reads) as proxy:
        proxy.delay = 0.3
        client = await remote(proxy.url)
        await client.execute(f"SELECT count(*) FROM {table}")  # learns that sqld keeps streams
        bodies.clear()
        reads = [client.execute("SELECT ?", (i,)) for i in range(6)]
        pending = asyncio.gather(*reads)
        await asyncio.sleep(0.1)  # the reads are under way, holding their streams
        await client.execute(f"INSERT INTO {table} VALUES (1)")
        assert [r.scalar() for r in await pending] == list(range(6))
        closing = [json.loads(b) for b in bodies if b'"close"' in b]
        assert closing and not any(is_write(json.dumps(b).encode()) for b in closing)
        assert len(closing) == 3  # six reads: three on kept streams, three closed after
        await client.close()
    await direct.close()
