"""The token never shows: the fault and auth scenarios run with the token given as
``auth_token``, as ``?authToken=`` and as the URL's password; every exception message and
repr, log record (the driver's transport logs nothing; the fault proxy's httpx does),
returned dict and CLI output is collected and searched for it. One server echoes the
request's headers back in its error answers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

import sqlstore
from sqlstore.cli import main
from tests.faultproxy import FaultProxy, drop_first_answer_of_each_write
from tests.servers import TursoServer
from tests.test_remote_auth import AuthServer


class EchoServer:
    """Answers every request with ``status`` and the request's head (headers) as body."""

    def __init__(self, status: int) -> None:
        self.status = status
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(
                next(
                    (
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    b"0",
                )
            )
            await reader.readexactly(length)
            body = b"\r\n".join(reversed(head.split(b"\r\n"))) * 3  # the token comes early
            writer.write(
                f"HTTP/1.1 {self.status} X\r\ncontent-length: {len(body)}\r\n"
                "connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        writer.close()


async def initialized(url: str, token: str | None = None) -> sqlstore.Store:
    """An initialized Store (the constructor's errors raised in the same await)."""
    return await sqlstore.Store(url, auth_token=token).initialize()


def forms(base: str, token: str) -> list[tuple[str, str | None]]:
    """The three ways to give a token: (url, auth_token)."""
    host = base.split("://", 1)[1]
    return [(base, token), (f"{base}?authToken={token}", None), (f"http://me:{token}@{host}", None)]


async def scenarios(auth: AuthServer, tursodb: TursoServer, seen: list[Any]) -> None:
    async def attempt(call: Awaitable[Any]) -> None:
        try:
            seen.append(await call)
        except Exception as exc:
            seen.extend([str(exc), repr(exc), repr(exc.__cause__), repr(exc.__context__)])

    for url, token in forms(auth.url, auth.rw):
        store = sqlstore.Store(url, auth_token=token)
        seen.append(repr(store))
        await store.initialize()
        seen.extend([repr(store.client), await store.health_check()])
        await attempt(store.threads.create("u"))
        await store.close()
    for url, token in forms(auth.url, auth.ro):
        async with sqlstore.Store(url, auth_token=token) as ro:
            await attempt(ro.threads.create("u"))  # no write access
            await attempt(ro.client.execute("DELETE FROM threads"))
    for bad in (auth.keys.token("rw", expires_in=-600), auth.rw + "x"):
        for url, token in forms(auth.url, bad):
            await attempt(initialized(url, token))
    async with FaultProxy(auth.url, drop_first_answer_of_each_write()) as proxy:
        for url, token in forms(proxy.url, auth.rw):
            client = await sqlstore.connect(url, auth_token=token)
            await attempt(client.execute("CREATE TABLE IF NOT EXISTS s (x)"))
            await attempt(client.batch(["INSERT INTO s VALUES (1)"]))
            await client.close()
    for status in (400, 401, 403, 500, 503):
        async with EchoServer(status) as echo:
            for url, token in forms(echo, auth.rw):
                store = sqlstore.Store(url, auth_token=token, retries=1, retry_backoff=0.01)
                await attempt(store.initialize())
                seen.append(await store.health_check())
                client = await sqlstore.connect(url, auth_token=token, retries=1)
                await attempt(client.execute("SELECT 1"))
                await attempt(client.execute("INSERT INTO s VALUES (1)"))
                await client.close()
                await store.close()
    for url in (
        f"libsqll://h?authToken={auth.rw}",
        f"libsql://h?authToken={auth.rw}&tls=0",
        f"libsql://h?auth_token={auth.rw}",
        f"libsql://me:{auth.rw}@h?x=1",
        f"postgres://me:{auth.rw}@h",
    ):
        await attempt(sqlstore.connect(url))
        await attempt(initialized(url))
    for url, token in forms(tursodb.url, auth.rw):
        async with sqlstore.Store(url, auth_token=token) as store:
            seen.extend([repr(store), repr(store.client), await store.stats()])


def test_the_token_never_shows(
    tmp_path: Path,
    tursodb_server: TursoServer,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = AuthServer(tmp_path)
    auth.server.start()
    seen: list[Any] = []
    try:
        asyncio.run(scenarios(auth, tursodb_server, seen))
        for url, token in forms(tursodb_server.url, auth.rw):
            monkeypatch.setenv("SQLSTORE_AUTH_TOKEN", token or "")
            for command in ("demo", "health"):
                main(["--url", url, command])
        for url, token in forms(auth.url, auth.keys.token("ro")):
            monkeypatch.setenv("SQLSTORE_AUTH_TOKEN", token or "")
            main(["--url", url, "demo"])  # refused: no write access
        main(["--url", f"libsqll://h?authToken={auth.rw}", "health"])
    finally:
        auth.server.stop()
    out = capsys.readouterr()
    records = [f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records]
    text = "\n".join([*map(str, seen), out.out, out.err, *records])
    assert "HTTP Request: POST" in text  # log records were collected (the proxy's httpx lines)
    assert "no write access" in text and "HTTP 401" in text and "may or may not" in text
    assert "ConfigurationError" in out.err and "database http" in out.out
    for secret in (auth.rw, auth.ro):
        signed = secret.split(".", 1)[1]  # claims and signature: no piece of them may show
        for piece in (signed[i : i + 16] for i in range(0, len(signed) - 16, 4)):
            assert piece not in text
