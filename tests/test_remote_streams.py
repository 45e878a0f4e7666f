"""The remote driver's transport: kept-alive HTTP connections and reused Hrana streams,
on real tursodb and sqld servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

import sqlstore
from sqlstore.drivers.remote import RemoteClient
from sqlstore.drivers.streams import StreamPool
from sqlstore.drivers.transport import HttpPool
from tests.servers import ServerProcess, SqldServer, TursoServer


async def remote(url: str) -> RemoteClient:
    client = await sqlstore.connect(url)
    assert isinstance(client, RemoteClient)
    return client


def parts(client: RemoteClient) -> tuple[HttpPool, int, int]:
    """The client's HTTP pool, streams opened and batons refused so far."""
    assert client._http is not None and client._streams is not None
    return client._http, client._streams.streams_opened, client._streams.batons_refused


async def test_sequential_calls_share_one_connection_and_one_stream(
    remote_server: ServerProcess, table: str
) -> None:
    client = await remote(remote_server.url)
    await client.execute(f"CREATE TABLE {table} (x)")
    for i in range(50):
        await client.execute(f"INSERT INTO {table} VALUES (?)", (i,))
        await client.batch([(f"INSERT INTO {table} VALUES (?)", (-i,))])
    assert (await client.execute(f"SELECT count(*) FROM {table}")).scalar() == 100
    http, opened, refused = parts(client)
    # sqld keeps the connection alive and hands out batons: one connection and one stream
    # serve every call; tursodb closes the connection after each answer and gives no baton.
    sqld = isinstance(remote_server, SqldServer)
    assert http.connections_made == (1 if sqld else 102) and refused == 0
    assert opened == (1 if sqld else 102)
    assert client.requests_sent == 102
    await client.close()


async def test_foreign_keys_hold_on_a_reused_stream(remote_server: ServerProcess) -> None:
    client = await remote(remote_server.url)
    for _ in range(3):  # the PRAGMA ran once on the stream; it still holds on later calls
        assert (await client.execute("PRAGMA foreign_keys")).scalar() == 1
    await client.close()


async def test_many_clients_leave_no_streams_open(sqld_server: SqldServer) -> None:
    # sqld answers 429 once about 129 streams are open: each client closes its own.
    for _ in range(40):
        clients = [await remote(sqld_server.url) for _ in range(4)]
        await asyncio.gather(*(c.execute("SELECT 1") for c in clients for _ in range(3)))
        await asyncio.gather(*(c.close() for c in clients))
    assert (await (await remote(sqld_server.url)).execute("SELECT 1")).scalar() == 1


async def test_concurrent_calls_share_pipelines_and_a_few_streams(
    remote_server: ServerProcess, table: str
) -> None:
    client = await remote(remote_server.url)
    await client.execute(f"CREATE TABLE {table} (x UNIQUE)")
    await client.execute(f"INSERT INTO {table} VALUES (-1)")

    async def insert(x: int) -> str:
        try:
            await client.execute(f"INSERT INTO {table} VALUES (?)", (x,))
        except sqlstore.QueryError:
            return "duplicate"
        return "ok"

    outcomes: list[str] = []
    for round_ in range(5):
        xs = [round_ * 100 + i for i in range(63)] + [-1]  # one fails, alone
        outcomes += await asyncio.gather(*(insert(x) for x in xs))
    assert outcomes.count("ok") == 315 and outcomes.count("duplicate") == 5
    assert (await client.execute(f"SELECT count(*) FROM {table}")).scalar() == 316
    assert client._streams is not None
    # Calls that wait while pipelines are busy go together: far fewer requests than calls,
    # and no more streams than pipelines in flight at once.
    assert client._streams.pipelines_sent < 100
    if isinstance(remote_server, SqldServer):
        assert client._streams.streams_opened <= client._streams.max_pipelines
    await client.close()


async def test_a_refused_baton_is_sent_again_on_a_new_stream(fresh_sqld: SqldServer) -> None:
    client = await remote(fresh_sqld.url)
    await client.execute("CREATE TABLE r (x INTEGER)")
    await client.execute("INSERT INTO r VALUES (1)")
    fresh_sqld.restart()  # every baton of the old process is now unknown to the server
    await client.execute("INSERT INTO r VALUES (2)")  # refused baton: nothing ran, sent again
    assert (await client.execute("SELECT group_concat(x) FROM r")).scalar() == "1,2"
    _, opened, refused = parts(client)
    assert refused == 1 and opened == 2
    await client.close()


async def test_a_stream_idle_too_long_is_not_reused(sqld_server: SqldServer) -> None:
    client = await remote(sqld_server.url)
    assert client._streams is not None
    client._streams.idle_seconds = 0.2
    await client.execute("SELECT 1")
    await asyncio.sleep(0.3)
    await client.execute("SELECT 1")
    assert parts(client)[1:] == (2, 0)
    await client.close()


class _Framing(BaseHTTPRequestHandler):
    """Answers a Hrana-shaped body in the framing named by the path."""

    protocol_version = "HTTP/1.1"
    body = b'{"baton":null,"base_url":null,"results":[]}'

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        if self.path.endswith("chunked"):
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for piece in (self.body[:7], self.body[7:]):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path.endswith("close"):
            self.send_header("connection", "close")
            self.end_headers()
            self.wfile.write(self.body)
            self.close_connection = True
        else:
            self.send_header("content-length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def serving(
    handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Run a loopback HTTP server on a thread (behind TLS with ``tls``); its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def framing_server() -> Iterator[str]:
    with serving(_Framing) as url:
        yield url


async def test_transport_reads_every_framing(framing_server: str) -> None:
    pool = HttpPool(framing_server, headers={}, timeout=5, connect_timeout=5, max_connections=2)
    for path, connections in (("/length", 1), ("/chunked", 0), ("/close", 2)):
        before = pool.connections_made
        for _ in range(3):
            answer = await pool.post(path, content=b"{}")
            assert answer.status_code == 200 and answer.content == _Framing.body
        assert pool.connections_made - before == connections
    await pool.aclose()


async def test_tursodb_gets_no_close_request(turso_server: TursoServer) -> None:
    # tursodb rejects 'close' and gives no baton: every call is one plain pipeline.
    client = await remote(turso_server.url)
    for _ in range(5):
        assert (await client.execute("SELECT 1")).scalar() == 1
    assert client.requests_sent == 5
    await client.close()


@pytest.fixture
def tls_framing_server(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The framing server behind TLS, with a self-signed certificate for 127.0.0.1 that
    this test's trust store (SSL_CERT_FILE) holds."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with serving(_Framing, context) as url:
        yield url


async def test_transport_speaks_tls(tls_framing_server: str) -> None:
    pool = HttpPool(tls_framing_server, headers={}, timeout=5, connect_timeout=5, max_connections=1)
    for path in ("/length", "/chunked", "/length"):
        answer = await pool.post(path, content=b"{}")
        assert answer.status_code == 200 and answer.content == _Framing.body
    assert pool.connections_made == 1
    await pool.aclose()


async def test_a_call_cancelled_while_waiting_is_never_sent(
    remote_server: ServerProcess, table: str
) -> None:
    client = await remote(remote_server.url)
    assert client._streams is not None
    client._streams.max_pipelines = 1
    await client.execute(f"CREATE TABLE {table} (x)")
    first = asyncio.create_task(client.execute(f"INSERT INTO {table} VALUES (1)"))
    await asyncio.sleep(0)  # the first call is in flight
    waiting = asyncio.create_task(client.execute(f"INSERT INTO {table} VALUES (2)"))
    await asyncio.sleep(0)  # the second waits for the pipeline
    waiting.cancel()
    await first
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await client.execute(f"SELECT group_concat(x) FROM {table}")).scalar() == "1"
    await client.close()


class _Elsewhere(BaseHTTPRequestHandler):
    """Answers every pipeline with a baton and a ``base_url`` (a stream to be continued at
    another URL), recording the request bodies."""

    protocol_version = "HTTP/1.1"
    bodies: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        self.bodies.append(body)
        results = [{"type": "ok", "response": {"type": "close"}} for _ in body["requests"]]
        answer = json.dumps({"baton": "b1", "base_url": "http://elsewhere", "results": results})
        self.send_response(200)
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args: object) -> None:
        pass


async def test_a_stream_to_be_continued_elsewhere_is_closed_instead() -> None:
    with serving(_Elsewhere) as url:
        http = HttpPool(url, headers={}, timeout=5, connect_timeout=5, max_connections=1)
        pool = StreamPool(http)
        request = {"type": "execute", "stmt": {"sql": "SELECT 1"}}
        for _ in range(3):
            _, results = await pool.send([request], opening=[])
            assert results is not None and len(results) == 1
        await pool.aclose()
    # The baton is never sent back; from the second pipeline on, each ends with 'close'.
    assert [b["baton"] for b in _Elsewhere.bodies] == [None, None, None]
    assert [b["requests"][-1]["type"] for b in _Elsewhere.bodies] == ["execute", "close", "close"]
    assert pool.one_shot
