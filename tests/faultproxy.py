"""A loopback HTTP proxy (asyncio) in front of a real server that loses answers on purpose.

Each request is read whole, then ``policy(body)`` says what to do with it:

- ``"pass"``: forward it and send the server's answer back;
- ``"drop"``: forward it (the server processes it) and close the connection unanswered;
- ``"delay"``: forward it and hold the answer for ``delay`` seconds before sending it;
- ``"hang"``: neither forward nor answer; the connection stays open and silent;
- ``"busy"``: answer 503 with ``Retry-After: retry_after`` without forwarding.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx

from sqlstore.drivers.base import reads_only

Policy = Callable[[bytes], str]


def always_pass(body: bytes) -> str:
    """The default policy: every request goes through."""
    return "pass"


def _calls(body: bytes) -> list[Any]:
    """A pipeline's own requests: without the stream's PRAGMA and a trailing ``close``."""
    requests = json.loads(body).get("requests", [])
    pragma = {"type": "execute", "stmt": {"sql": "PRAGMA foreign_keys = ON"}}
    return [r for r in requests if r != pragma and r.get("type") != "close"]


def is_write(body: bytes) -> bool:
    """Whether a pipeline body carries a write: an ``execute`` of anything but a read, or a
    batch that begins IMMEDIATE (sqlstore begins a read-only batch DEFERRED)."""
    for request in _calls(body):
        if request.get("type") == "execute":
            if not reads_only(request["stmt"]["sql"]):
                return True
        elif request.get("type") == "batch" and b"BEGIN IMMEDIATE" in json.dumps(request).encode():
            return True
    return False


def drop_first_answer_of_each_write() -> Policy:
    """A policy that drops the answer of each write the first time it is sent, so a
    re-sent copy of the same request goes through."""
    seen: set[bytes] = set()

    def policy(body: bytes) -> str:
        key = json.dumps(_calls(body)).encode()  # the same call, whichever stream it is on
        if not is_write(body) or key in seen:
            return "pass"
        seen.add(key)
        return "drop"

    return policy


def drop_every(n: int, what: Callable[[bytes], bool] = is_write) -> Policy:
    """A policy that drops the answer of every ``n``-th request that ``what`` selects."""
    count = 0

    def policy(body: bytes) -> str:
        nonlocal count
        if not what(body):
            return "pass"
        count += 1
        return "drop" if count % n == 0 else "pass"

    return policy


class FaultProxy:
    """``async with FaultProxy(upstream) as proxy:`` serves ``proxy.url`` on loopback."""

    def __init__(self, upstream: str, policy: Policy = always_pass) -> None:
        self.upstream = upstream
        self.policy = policy
        self.delay = 5.0
        self.retry_after = 0.2
        self.connections = 0
        """TCP connections accepted from clients."""
        self.requests = 0
        """Requests read from clients."""
        self.forwarded = 0
        """Requests forwarded to the server (which processed them)."""
        self.dropped = 0
        """Answers dropped after the server had processed the request."""
        self._server: asyncio.Server | None = None
        self._http: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The proxy's base URL."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> FaultProxy:
        self._http = httpx.AsyncClient(base_url=self.upstream, timeout=60)
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._http is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                headers = dict(
                    (k.strip().lower(), v.strip())
                    for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)
                )
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests += 1
                action = self.policy(body)
                if action == "hang":
                    await reader.read()  # until the client gives up and closes
                    return
                if action == "busy":
                    reply = self._reply(503, b"busy", {"retry-after": str(self.retry_after)})
                    writer.write(reply)
                    await writer.drain()
                    continue
                forward = {"content-type": "application/json"}
                if "authorization" in headers:
                    forward["authorization"] = headers["authorization"]
                assert self._http is not None
                response = await self._http.post(path, content=body, headers=forward)
                self.forwarded += 1
                if action == "drop":
                    self.dropped += 1
                    return
                if action == "delay":
                    await asyncio.sleep(self.delay)
                writer.write(self._reply(response.status_code, response.content, {}))
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            self._tasks.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    @staticmethod
    def _reply(status: int, content: bytes, extra: dict[str, str]) -> bytes:
        head = [f"HTTP/1.1 {status} X", "content-type: application/json"]
        head += [f"{k}: {v}" for k, v in extra.items()]
        head.append(f"content-length: {len(content)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + content
