"""Remote driver specifics: one request per call, retries over a restart, auth, secrecy."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import sqlstore
from sqlstore.drivers.remote import RemoteClient, parse_remote_url
from sqlstore.errors import ConfigurationError, QueryError, UnavailableError
from tests.servers import ServerProcess, free_port

SECRET = "s3cr3t-token-value"


async def remote(url: str, **options: Any) -> RemoteClient:
    client = await sqlstore.connect(url, **options)
    assert isinstance(client, RemoteClient)
    return client


async def test_one_http_request_per_execute_and_per_batch(
    remote_server: ServerProcess, table: str
) -> None:
    client = await remote(remote_server.url)
    await client.execute("SELECT 1")  # learns once whether the server wants 'close'
    start = client.requests_sent
    await client.execute(f"CREATE TABLE {table} (x)")
    await client.batch([(f"INSERT INTO {table} VALUES (?)", (i,)) for i in range(1000)])
    await client.batch([f"SELECT count(*) FROM {table}"])
    assert (await client.execute(f"SELECT count(*) FROM {table}")).scalar() == 1000
    assert client.requests_sent - start == 4
    await client.close()


@pytest.mark.parametrize(("server", "keeps"), [("tursodb", False), ("sqld", True)])
async def test_streams_are_kept_where_the_server_keeps_them(
    server: str, keeps: bool, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue(f"{server}_server").url
    client = await remote(url, keep_streams=4)
    assert client.keeps_streams is None
    for _ in range(5):
        await client.execute("SELECT 1")
        await client.batch([("SELECT ?", (1,))])
    # sqld answered with a baton: its stream serves every later call and is closed by
    # close(). tursodb kept none: nothing to close (it rejects 'close').
    assert client.keeps_streams is keeps
    assert client.requests_sent == 10
    assert len(client._streams) == (1 if keeps else 0)
    await client.close()
    assert client.requests_sent == (11 if keeps else 10)


async def test_by_default_four_streams_are_kept(sqld_server: ServerProcess, table: str) -> None:
    client = await remote(sqld_server.url)
    assert client.keep_streams == 4
    await client.execute(f"CREATE TABLE {table} (x)")
    sent = client.requests_sent
    await asyncio.gather(*(client.execute("SELECT ?", (i,)) for i in range(8)))
    for i in range(5):
        await client.execute(f"INSERT INTO {table} VALUES (?)", (i,))
    assert client.keeps_streams is True and 1 <= len(client._streams) <= 4
    assert client.requests_sent - sent == 8 + 5  # no request of its own for a 'close'
    await client.close()


async def test_with_keep_streams_0_no_stream_is_kept(
    sqld_server: ServerProcess, table: str
) -> None:
    """keep_streams=0: after the first answer shows that sqld keeps streams, every
    pipeline ends with 'close', and no stream outlives its call."""
    client = await remote(sqld_server.url, keep_streams=0)
    await client.execute(f"CREATE TABLE {table} (x)")  # its stream is closed after it
    sent = client.requests_sent
    for i in range(20):
        await client.execute(f"INSERT INTO {table} VALUES (?)", (i,))
    assert client.keeps_streams is True and client._streams == []
    assert client.requests_sent - sent == 20  # 'close' rides in each pipeline
    assert (await client.execute(f"SELECT count(*) FROM {table}")).scalar() == 20
    await client.close()


async def test_a_stream_opened_by_a_read_runs_the_pragma_before_a_write(
    remote_server: ServerProcess, table: str
) -> None:
    client = await remote(remote_server.url, keep_streams=4)
    await client.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
    await client.execute(f"CREATE TABLE {table}_c (p INTEGER REFERENCES {table}(id))")
    for _ in range(3):
        await client.execute("SELECT 1")  # a read: no PRAGMA in its request
        with pytest.raises(QueryError, match="FOREIGN KEY"):
            await client.execute(f"INSERT INTO {table}_c VALUES (42)")
        await client.execute("PRAGMA foreign_keys = OFF")  # the caller's own PRAGMA
        with pytest.raises(QueryError, match="FOREIGN KEY"):  # ours runs again after it
            await client.execute(f"INSERT INTO {table}_c VALUES (43)")
    await client.close()


async def test_many_fresh_clients_at_once(remote_server: ServerProcess) -> None:
    async def one_client(n: int) -> list[int]:
        client = await remote(remote_server.url)
        try:
            rows = await asyncio.gather(
                *(client.execute("SELECT ?", (n * 8 + i,)) for i in range(8))
            )
            return [int(r.scalar() or 0) for r in rows]
        finally:
            await client.close()

    results = await asyncio.gather(*(one_client(n) for n in range(10)))
    assert sorted(v for r in results for v in r) == list(range(80))


async def test_server_restarted_mid_run(fresh_remote: ServerProcess) -> None:
    fresh_server = fresh_remote
    client = await remote(fresh_server.url, retries=8, retry_backoff=0.05)
    await client.execute("CREATE TABLE r (x INTEGER)")
    await client.execute("INSERT INTO r VALUES (1)")
    fresh_server.stop()
    restarter = threading.Timer(0.3, fresh_server.start)
    restarter.start()
    try:
        # The server is down when this call starts; it succeeds once the server is back.
        await client.batch([("INSERT INTO r VALUES (?)", (2,))])
    finally:
        restarter.join()
    assert (await client.execute("SELECT count(*) FROM r")).scalar() == 2
    await client.close()


async def test_unreachable_server_is_unavailable_after_bounded_retries() -> None:
    client = await remote(f"http://127.0.0.1:{free_port()}", retries=2, retry_backoff=0.01)
    with pytest.raises(UnavailableError):
        await client.execute("SELECT 1")
    assert client.requests_sent == 3
    await client.close()


async def test_token_never_shown(turso_server: ServerProcess) -> None:
    client = await sqlstore.connect(turso_server.url, auth_token=SECRET)
    assert SECRET not in repr(client)
    assert (await client.execute("SELECT 1")).scalar() == 1
    await client.close()
    store = sqlstore.Store(f"{turso_server.url}?authToken={SECRET}")
    assert SECRET not in repr(store)
    down = await sqlstore.connect(f"http://127.0.0.1:{free_port()}", auth_token=SECRET, retries=0)
    with pytest.raises(UnavailableError) as info:
        await down.execute("SELECT 1")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    await down.close()


def test_remote_url_forms() -> None:
    assert parse_remote_url("libsql://db.example.com") == ("https://db.example.com", None)
    assert parse_remote_url("https://db.example.com/") == ("https://db.example.com", None)
    assert parse_remote_url("http://127.0.0.1:8080") == ("http://127.0.0.1:8080", None)
    assert parse_remote_url("libsql://h?authToken=abc") == ("https://h", "abc")
    assert parse_remote_url("libsql://user:abc@h:8080") == ("https://h:8080", "abc")
    with pytest.raises(ConfigurationError):
        parse_remote_url("libsql://h?tls=0")


async def test_concurrent_requests_share_the_pool(remote_server: ServerProcess, table: str) -> None:
    client = await remote(remote_server.url)
    await client.execute(f"CREATE TABLE {table} (x)")
    await asyncio.gather(
        *(client.execute(f"INSERT INTO {table} VALUES (?)", (i,)) for i in range(200))
    )
    assert (await client.execute(f"SELECT count(DISTINCT x) FROM {table}")).scalar() == 200
    await client.close()
