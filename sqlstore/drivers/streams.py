"""Hrana streams kept open across requests: each request carries a baton when one is free.

A pipeline sent without a baton makes sqld open a new stream (a new SQLite connection on
the server) and, unless it ends with ``close``, keep it until it expires; one sent with
the baton of an earlier answer continues that stream. Keeping streams (as the WebSocket
clients keep theirs) roughly doubled sqld's answers per second on loopback; see the
README's remote benchmark. A server that gives no baton (tursodb) gets plain one-shot
pipelines, with nothing to close.

Each request still runs on its own: ``execute`` is one autocommit statement and a batch
is one BEGIN ... COMMIT/ROLLBACK, so a stream never carries a transaction from one
request to the next. A stream runs its ``opening`` requests (the connection's PRAGMAs)
once, in its first pipeline. A baton the server refuses (HTTP 400: expired, or the server
restarted) means nothing of that request ran: it is sent once more without a baton.
Batons idle longer than ``idle_seconds`` are left to expire; the rest are closed by
``aclose``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from .transport import HttpPool, Response

JsonObj = dict[str, Any]

_CLOSE: JsonObj = {"type": "close"}


class _Stream:
    """A baton and what its stream has run."""

    __slots__ = ("baton", "opened", "used")

    def __init__(self, baton: str, opened: bool) -> None:
        self.baton = baton
        self.opened = opened
        self.used = time.monotonic()


class StreamPool:
    """Idle Hrana streams of one server, reused last-in first-out."""

    def __init__(
        self,
        http: HttpPool,
        max_streams: int,
        path: str = "/v2/pipeline",
        idle_seconds: float = 5.0,
    ) -> None:
        self.http = http
        self.path = path
        self.idle_seconds = idle_seconds
        self._slots = asyncio.Semaphore(max(1, max_streams))
        """Calls in flight, so that no more streams are opened than calls can use at once."""
        self._idle: list[_Stream] = []
        self.streams_opened = 0
        """How many pipelines were sent without a baton (for tests and benchmarks)."""
        self.batons_refused = 0
        """How many times the server refused a baton and the request went again without."""

    async def send(
        self, requests: list[JsonObj], opening: list[JsonObj]
    ) -> tuple[Response, list[JsonObj] | None]:
        """POST one pipeline of ``requests`` (after ``opening`` on a stream that has not run
        it yet); the answer, and on HTTP 200 the results of ``requests``."""
        async with self._slots:
            return await self._send(requests, opening)

    async def _send(
        self, requests: list[JsonObj], opening: list[JsonObj]
    ) -> tuple[Response, list[JsonObj] | None]:
        stream = self._take()
        while True:
            opened = stream is not None and stream.opened
            head = [] if opened else opening
            body = {"baton": stream.baton if stream else None, "requests": [*head, *requests]}
            if stream is None:
                self.streams_opened += 1
            response = await self.http.post(self.path, content=orjson.dumps(body))
            if response.status_code == 400 and stream is not None:
                self.batons_refused += 1  # the request did not run: again on a new stream
                stream = None
                continue
            break
        if response.status_code != 200:
            return response, None
        answer = orjson.loads(response.content)
        results: list[JsonObj] = answer["results"]
        baton = answer.get("baton")
        if baton and not answer.get("base_url"):
            ran = opened or all(r.get("type") == "ok" for r in results[: len(head)])
            self._idle.append(_Stream(baton, ran))
        return response, results[len(head) :]

    def _take(self) -> _Stream | None:
        now = time.monotonic()
        while self._idle:
            stream = self._idle.pop()
            if now - stream.used < self.idle_seconds:
                return stream
        return None

    async def aclose(self, timeout: float = 2.0) -> None:
        """Close the idle streams (best effort: a stream not closed expires on the server)."""
        idle, self._idle = self._idle, []

        async def close(stream: _Stream) -> None:
            body = {"baton": stream.baton, "requests": [_CLOSE]}
            await self.http.post(self.path, content=orjson.dumps(body))

        if idle:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*(close(s) for s in idle), return_exceptions=True)
            except TimeoutError:
                pass


__all__ = ["StreamPool"]
