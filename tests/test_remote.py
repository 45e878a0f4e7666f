"""Remote driver specifics: one request per call, retries over a restart, auth, secrecy."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import sqlstore
from sqlstore.drivers.remote import RemoteClient, parse_remote_url
from sqlstore.errors import AuthenticationError, ConfigurationError, UnavailableError
from tests.servers import TursoServer, free_port

SECRET = "s3cr3t-token-value"


async def remote(url: str, **options: Any) -> RemoteClient:
    client = await sqlstore.connect(url, **options)
    assert isinstance(client, RemoteClient)
    return client


async def test_one_http_request_per_execute_and_per_batch(
    turso_server: TursoServer, table: str
) -> None:
    client = await remote(turso_server.url)
    await client.execute("SELECT 1")  # learns once whether the server takes 'close'
    start = client.requests_sent
    await client.execute(f"CREATE TABLE {table} (x)")
    await client.batch([(f"INSERT INTO {table} VALUES (?)", (i,)) for i in range(1000)])
    await client.batch([f"SELECT count(*) FROM {table}"])
    assert (await client.execute(f"SELECT count(*) FROM {table}")).scalar() == 1000
    assert client.requests_sent - start == 4
    await client.close()


async def test_server_restarted_mid_run(fresh_server: TursoServer) -> None:
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


class _Refuse(BaseHTTPRequestHandler):
    status = 401

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(self.status)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"unauthorized")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[401, 403])
def refusing_server(request: pytest.FixtureRequest) -> Iterator[str]:
    """tursodb does not check tokens: a loopback endpoint that answers 401 or 403."""
    handler = type("Refuse", (_Refuse,), {"status": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_refused_credentials_are_an_authentication_error(refusing_server: str) -> None:
    client = await remote(refusing_server, retries=3)
    client_with_token = await sqlstore.connect(refusing_server, auth_token=SECRET)
    for c in (client, client_with_token):
        with pytest.raises(AuthenticationError) as info:
            await c.execute("SELECT 1")
        assert SECRET not in str(info.value)
        await c.close()
    assert client.requests_sent == 1  # not retried


async def test_token_never_shown(turso_server: TursoServer) -> None:
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
    with pytest.raises(ConfigurationError):
        parse_remote_url("libsql://h?tls=0")


async def test_concurrent_requests_share_the_pool(turso_server: TursoServer, table: str) -> None:
    client = await remote(turso_server.url)
    await client.execute(f"CREATE TABLE {table} (x)")
    await asyncio.gather(
        *(client.execute(f"INSERT INTO {table} VALUES (?)", (i,)) for i in range(200))
    )
    assert (await client.execute(f"SELECT count(DISTINCT x) FROM {table}")).scalar() == 200
    await client.close()
