"""The remote driver's transport: kept-alive HTTP/1.1 connections and Hrana streams,
answer framings, TLS, and how its failures count for the driver's retry rules."""

from __future__ import annotations

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
from sqlstore.drivers.transport import HttpPool
from sqlstore.errors import OutcomeUnknownError
from tests.servers import SqldServer


async def remote(url: str, **options: Any) -> RemoteClient:
    client = await sqlstore.connect(url, **options)
    assert isinstance(client, RemoteClient)
    return client


async def test_sequential_calls_share_one_connection(sqld_server: SqldServer, table: str) -> None:
    client = await remote(sqld_server.url, keep_streams=4)
    await client.execute(f"CREATE TABLE {table} (x)")
    for i in range(50):
        await client.execute(f"INSERT INTO {table} VALUES (?)", (i,))
        await client.batch([(f"INSERT INTO {table} VALUES (?)", (-i,))])
    assert (await client.execute(f"SELECT count(*) FROM {table}")).scalar() == 100
    # sqld keeps the connection alive and the stream: one connection and one stream serve
    # every call, each one request.
    assert client._http is not None and client._http.connections_made == 1
    assert client.requests_sent == 102 and len(client._streams) == 1
    await client.close()


async def test_a_refused_baton_is_sent_again_without_one(sqld_server: SqldServer) -> None:
    client = await remote(sqld_server.url, keep_streams=4)
    await client.execute("SELECT 1")
    (stream,) = client._streams
    stream.baton = "not-a-baton"  # as after a server restart: nothing of the request runs
    assert (await client.execute("SELECT 2")).scalar() == 2
    assert client.requests_sent == 3  # refused once, then on a new stream
    assert [s.baton for s in client._streams] != ["not-a-baton"]
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


class _AnswersOncePerConnection(BaseHTTPRequestHandler):
    """Answers the first request on each connection; reads the second and then closes the
    connection without answering (a request that reached the server on a reused
    kept-alive connection, whose answer was lost)."""

    protocol_version = "HTTP/1.1"
    result: ClassVar[dict[str, Any]] = {
        "type": "ok",
        "response": {
            "type": "execute",
            "result": {"cols": [], "rows": [], "affected_row_count": 1, "last_insert_rowid": None},
        },
    }

    def handle(self) -> None:
        self.handle_one_request()  # answered; the connection is kept alive
        self.handle_one_request()  # read, never answered

    def do_POST(self) -> None:
        requests = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
        if getattr(self, "answered", False):
            self.close_connection = True
            return
        self.answered = True
        results = [self.result] * len(requests["requests"])
        body = json.dumps({"baton": None, "base_url": None, "results": results}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


async def test_a_lost_answer_on_a_reused_connection_is_not_resent_for_a_write() -> None:
    with serving(_AnswersOncePerConnection) as url:
        client = await RemoteClient(url, retries=3, retry_backoff=0.01).open()
        await client.execute("INSERT INTO t VALUES (1)")  # a new connection: answered
        sent = client.requests_sent
        with pytest.raises(OutcomeUnknownError):  # the server read it: it may have run
            await client.execute("INSERT INTO t VALUES (2)")
        assert client.requests_sent == sent + 1  # never sent again
        await client.close()


async def test_a_lost_answer_on_a_reused_connection_is_resent_for_a_read() -> None:
    with serving(_AnswersOncePerConnection) as url:
        client = await RemoteClient(url, retries=3, retry_backoff=0.01).open()
        await client.execute("SELECT 1")
        await client.execute("SELECT 1")  # lost on the kept connection, sent again on a new one
        assert client.requests_sent == 3
        assert client._http is not None and client._http.connections_made == 2
        await client.close()
