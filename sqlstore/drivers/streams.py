"""Hrana streams kept open across requests: each request carries a baton when one is free.

A pipeline sent without a baton makes sqld open a new stream (a new SQLite connection on
the server) and, unless it ends with ``close``, keep it until it expires; one sent with
the baton of an earlier answer continues that stream. Keeping streams (as the WebSocket
clients keep theirs) took sqld from about 1,200 to 1,550-3,650 ``SELECT 1`` a second on
loopback; see the README's remote benchmark. A server that gives no baton (tursodb) gets
plain one-shot pipelines, with nothing to close; one that names another ``base_url`` for
the stream gets one-shot pipelines ending with ``close`` from then on.

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


class _Call:
    """One caller's requests waiting for a pipeline."""

    __slots__ = ("future", "opening", "requests")

    def __init__(
        self, requests: list[JsonObj], opening: list[JsonObj], future: asyncio.Future[Any]
    ) -> None:
        self.requests = requests
        self.opening = opening
        self.future = future


Answer = tuple[Response, "list[JsonObj] | None"]
"""The HTTP answer, and on HTTP 200 the results of the caller's requests."""


class StreamPool:
    """Idle Hrana streams of one server, reused last-in first-out, and the calls waiting
    for a pipeline.

    At most ``max_pipelines`` pipelines are in flight; a call that arrives while they are
    busy waits, and all the calls waiting when one finishes go together in the next
    pipeline, each as its own request(s). The server runs a pipeline's requests one after
    the other on one connection, each on its own (autocommit statement or BEGIN ...
    COMMIT batch), as if they had come one by one: 64 concurrent inserts cost a few round
    trips instead of 64 round trips contending for the database's write lock on 64
    server connections.
    """

    def __init__(
        self,
        http: HttpPool,
        max_pipelines: int = 4,
        path: str = "/v2/pipeline",
        idle_seconds: float = 5.0,
        max_group: int = 256,
    ) -> None:
        self.http = http
        self.path = path
        self.idle_seconds = idle_seconds
        self.max_pipelines = max(1, max_pipelines)
        self.max_group = max_group
        self._in_flight = 0
        self._waiting: list[_Call] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._idle: list[_Stream] = []
        self.pipelines_sent = 0
        """How many HTTP requests were sent (for tests and benchmarks)."""
        self.streams_opened = 0
        """How many pipelines were sent without a baton."""
        self.batons_refused = 0
        """How many times the server refused a baton and the request went again without."""
        self.one_shot = False
        """Set once the server answers with a ``base_url`` (the stream must be continued
        at another URL, which this pool does not follow): from then on every pipeline
        opens a stream and ends with ``close``, as a server that counts open streams needs."""

    async def send(self, requests: list[JsonObj], opening: list[JsonObj]) -> Answer:
        """Send ``requests`` (after ``opening`` on a stream that has not run it yet) in a
        pipeline; the answer, and on HTTP 200 the results of ``requests``."""
        if self._in_flight < self.max_pipelines and not self._waiting:
            self._in_flight += 1
            try:
                return (await self._pipeline([(requests, opening)]))[0]
            finally:
                self._in_flight -= 1
                self._next()
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Call(requests, opening, future))
        return await future  # a caller that stops waiting leaves its requests to be sent

    def _next(self) -> None:
        """Send the waiting calls (those still waited for) in pipelines of up to
        ``max_group`` calls, while fewer than ``max_pipelines`` are in flight."""
        while self._waiting and self._in_flight < self.max_pipelines:
            group = [c for c in self._waiting[: self.max_group] if not c.future.done()]
            del self._waiting[: self.max_group]
            if group:
                self._in_flight += 1
                task = asyncio.get_running_loop().create_task(self._run(group))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _run(self, group: list[_Call]) -> None:
        try:
            answers = await self._pipeline([(c.requests, c.opening) for c in group])
        except Exception as exc:
            for call in group:
                if not call.future.done():
                    call.future.set_exception(exc)
        except BaseException:
            for call in group:
                call.future.cancel()
            raise
        else:
            for call, answer in zip(group, answers, strict=True):
                if not call.future.done():
                    call.future.set_result(answer)
        finally:
            self._in_flight -= 1
            self._next()

    async def _pipeline(self, calls: list[tuple[list[JsonObj], list[JsonObj]]]) -> list[Answer]:
        """One HTTP request carrying every call's requests, on a reused stream if any."""
        stream = self._take()
        while True:
            opened = stream is not None and stream.opened
            head = [] if opened else next((o for _, o in calls if o), [])
            requests = list(head)
            spans: list[tuple[int, int]] = []
            for reqs, _ in calls:
                spans.append((len(requests), len(requests) + len(reqs)))
                requests.extend(reqs)
            if self.one_shot:
                requests.append(_CLOSE)
            body = {"baton": stream.baton if stream else None, "requests": requests}
            self.pipelines_sent += 1
            if stream is None:
                self.streams_opened += 1
            response = await self.http.post(self.path, content=orjson.dumps(body))
            if response.status_code == 400 and stream is not None:
                self.batons_refused += 1  # nothing of it ran: again on a new stream
                stream = None
                continue
            break
        if response.status_code != 200:
            return [(response, None)] * len(calls)
        answer = orjson.loads(response.content)
        results: list[JsonObj] = answer["results"]
        baton = answer.get("baton")
        if baton and answer.get("base_url"):
            self.one_shot = True  # the stream lives elsewhere: close every stream from now on
        elif baton and not self.one_shot:
            ran = opened or all(r.get("type") == "ok" for r in results[: len(head)])
            self._idle.append(_Stream(baton, ran))
        return [(response, results[a:b]) for a, b in spans]

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
