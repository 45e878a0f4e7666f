"""Remote driver: Hrana over HTTP (``POST /v2/pipeline``), one Hrana request per call.

``execute`` sends one ``execute`` request; ``batch`` sends one ``batch`` request whose
steps are chained by conditions so the whole batch is one transaction. A read, and a
PRAGMA, goes in an HTTP request of its own; writes go one pipeline at a time, and the
writes that wait meanwhile share the next pipeline, each as its own request
(``grouping``): the retry rules below then apply to every call in it.

A read (an ``execute`` of a SELECT, VALUES or EXPLAIN, or a batch of only those) is sent
as it is, so that a read-only token can run it, and is re-sent after any transport
failure. A write is preceded by ``PRAGMA foreign_keys = ON`` (tursodb starts each request
with foreign keys off) and is re-sent only when it cannot have been processed: no
connection was made, the server answered 429 / 503, or the database was locked (the
statement was refused). Any other failure after a write was sent raises
OutcomeUnknownError. One ``timeout`` bounds the whole call, retries included.

With ``keep_streams=N`` (4 by default; 0 keeps none), Hrana streams are kept across
calls: an answer that carries a ``baton`` (sqld, Turso Cloud) leaves a stream open on the
server, and the next call continues it with that baton instead of opening another (a new
server connection, and for a write the ``PRAGMA`` again). A stream is used by one call at
a time; at most ``keep_streams`` are kept, counting new ones under way (a stream beyond
them ends its pipeline with ``close``), one idle for ``_STREAM_IDLE`` seconds is left to
expire, and ``close()`` closes the rest. A stream runs the ``PRAGMA`` before its first
write (never in a read's request) and again after a call that ran a PRAGMA of its own. A
stream whose request failed in any way other than an HTTP answer is dropped (its baton may
be gone); a baton the server refuses (HTTP 400, answered before anything runs: the stream
expired, or the server restarted) is sent again at once without one. A server that gives
no baton (tursodb, which rejects ``close``) gets plain one-shot pipelines, with nothing to
close.

Requests go over kept-alive HTTP/1.1 connections of a lean client (``transport``, which
raises httpx's exception types); it is imported when the first remote client is made, so
that ``import sqlstore`` stays fast for serverless cold starts.
"""

from __future__ import annotations

import asyncio
import copy
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

import orjson

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    OutcomeUnknownError,
    QueryError,
    SqlStoreError,
    UnavailableError,
)
from . import hrana
from .base import (
    Args,
    Result,
    Statement,
    leading_keyword,
    normalize_batch,
    normalize_execute,
    reads_only,
)
from .grouping import Call, WriteQueue

if TYPE_CHECKING:
    from .transport import HttpPool

_PRAGMAS = orjson.dumps(hrana.execute_request({"sql": "PRAGMA foreign_keys = ON"}))
"""Sent before every write (not before reads: sqld counts a PRAGMA as a write)."""

_T = TypeVar("_T")
_CLOSE = b'{"type":"close"}'
KEEP_STREAMS = 4
"""How many server streams a client keeps across calls by default (sqld answers 429
after about 129 in all; 0 ends every pipeline with ``close``). Kept streams are also what
keeps sqld 0.24.32 out of its write-queue wedge (README, Design, *Load*): far fewer server
connections close, and a live connection takes back a write slot handed to it."""
_Holder = Literal["read", "write"] | None
"""Which kind of call holds a place among the kept streams (None: it holds none)."""
_STREAM_IDLE = 5.0
"""Seconds an idle stream is reused for (sqld expires one after about 10 s)."""
_BODY_SHOWN = 200
"""How many characters of an error answer's body an exception shows (after redaction)."""


class _NotSent(Exception):
    """The request certainly did not reach the server: no connection, or the pool was full."""


class _AnswerLost(Exception):
    """The request was (maybe) sent but no answer came: it may have been processed."""


def parse_remote_url(url: str) -> tuple[str, str | None]:
    """The HTTP base URL for a libsql/https/http URL, and a token found in it (the
    ``authToken`` query parameter, or the URL's password)."""
    from . import redact_url

    parts = urlsplit(url)
    scheme = {"libsql": "https", "https": "https", "http": "http"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigurationError(f"not a remote URL: {redact_url(url)!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    token = next((v for k, v in query if k == "authToken"), None)
    unknown = sorted({k for k, _ in query if k != "authToken"})
    if unknown:
        raise ConfigurationError(f"unknown query parameters in the URL: {unknown}")
    host = parts.netloc.rsplit("@", 1)[-1]
    if token is None and parts.password:
        token = unquote(parts.password)
    base = urlunsplit((scheme, host, parts.path.rstrip("/"), "", ""))
    return base, token


class _Stream:
    """A kept server stream: its baton, whether its connection has run the PRAGMA, and
    when it was last used."""

    __slots__ = ("baton", "pragma", "used")

    def __init__(self, baton: str, pragma: bool) -> None:
        self.baton = baton
        self.pragma = pragma
        self.used = time.monotonic()


class RemoteClient:
    """A Hrana-over-HTTP client with a keep-alive pool and retries that never apply a
    write twice."""

    backend = "remote"

    def __init__(
        self,
        url: str,
        *,
        auth_token: str | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retries: int = 5,
        retry_backoff: float = 0.05,
        retry_max_delay: float = 2.0,
        max_connections: int = 32,
        keep_streams: int = KEEP_STREAMS,
    ) -> None:
        base, url_token = parse_remote_url(url)
        if retries < 0 or retry_backoff < 0 or timeout <= 0 or connect_timeout <= 0:
            raise ConfigurationError("retries, retry_backoff and the timeouts must be positive")
        if isinstance(keep_streams, bool) or not isinstance(keep_streams, int) or keep_streams < 0:
            raise ConfigurationError("keep_streams must be an integer >= 0")
        self.base_url = base
        self._token = auth_token if auth_token is not None else url_token
        self.timeout = timeout
        """Seconds one call may take in all, retries included."""
        self.connect_timeout = connect_timeout
        self.retries = retries
        """How many times a call may be re-sent (where re-sending is safe)."""
        self.retry_backoff = retry_backoff
        self.retry_max_delay = retry_max_delay
        self.max_connections = max_connections
        self.keep_streams = keep_streams
        """How many Hrana streams may be kept open on the server across calls."""
        self.requests_sent = 0
        """How many pipeline requests this client has sent (retries included)."""
        self.keeps_streams: bool | None = None
        """Whether the server keeps streams (None until it has answered once)."""
        self._streams: list[_Stream] = []  # idle kept streams, the newest last
        self._held = 0  # kept streams that a call is using
        self._held_reads = 0  # of which reads are using
        self._http: HttpPool | None = None
        self._closed = False
        self._pid = os.getpid()  # a forked child must not share this process's pool
        self._in_flight = 0  # requests under way (close() waits for them)
        self._idle: asyncio.Event | None = None
        self._writes = WriteQueue(self._send_writes, self.base_url)

    def __repr__(self) -> str:
        token = "set" if self._token else "none"
        return f"RemoteClient({self.base_url!r}, auth_token={token})"

    async def open(self) -> RemoteClient:
        """Create the HTTP connection pool (no request is sent)."""
        if self._http is None:
            from .transport import HttpPool

            headers = {"content-type": "application/json"}
            if self._token:
                headers["authorization"] = f"Bearer {self._token}"
            self._http = HttpPool(
                self.base_url,
                headers=headers,
                timeout=self.timeout,
                connect_timeout=self.connect_timeout,
                max_connections=self.max_connections,
            )
        return self

    async def close(self) -> None:
        """Close the connection pool; safe to call twice. (In a forked child, only forget
        it: its sockets, and their TLS sessions, belong to the parent.)"""
        self._closed = True
        if self._pid != os.getpid():
            self._http = None
            self._streams = []
        if self._in_flight:  # let requests under way finish, so their sockets close too
            self._idle = asyncio.Event()
            await self._idle.wait()
        streams, self._streams = self._streams, []
        if streams and self._http is not None:
            deadline = time.monotonic() + min(2.0, self.timeout)
            await asyncio.gather(*(self._close_stream(s.baton, deadline) for s in streams))
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> RemoteClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement in one Hrana request (a write maybe in a shared pipeline)."""
        stmt = hrana.encode_stmt(sql, normalize_execute(sql, args))
        pragma = leading_keyword(sql) == "PRAGMA"  # may change what the stream's PRAGMA set
        result = await self._call(hrana.execute_request(stmt), reads_only(sql), pragma)
        return self._decode(lambda: hrana.decode_result(hrana.response_of(result, sql)["result"]))

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run all statements as one transaction in one Hrana request."""
        checked = normalize_batch(statements)
        if not checked:
            return []
        stmts = [hrana.encode_stmt(sql, args) for sql, args in checked]
        read = all(reads_only(sql) for sql, _ in checked)
        begin = "BEGIN DEFERRED" if read else "BEGIN IMMEDIATE"
        result = await self._call(hrana.transaction_request(stmts, begin), read)
        sqls = [sql for sql, _ in checked]
        return self._decode(lambda: hrana.transaction_results(hrana.response_of(result), sqls))

    def _decode(self, decode: Callable[[], _T]) -> _T:
        """``decode()``, with the token taken out of any error it raises."""
        try:
            return decode()
        except QueryError as exc:
            if self._token and self._token in str(exc):
                raise QueryError(self._redact(str(exc)), code=exc.code) from None
            raise

    async def _call(
        self, request: hrana.JsonObj, read: bool, pragma: bool = False
    ) -> hrana.JsonObj:
        """The pipeline result of ``request``: a write goes through the write queue (in a
        shared pipeline when others wait); a read, or a PRAGMA (which would change the
        connection for the requests after it), in a pipeline of its own."""
        if self._pid != os.getpid():
            raise UnavailableError(
                f"this client was opened by process {self._pid}; a forked child cannot share "
                "its parent's HTTP connections: open a new client in the child"
            )
        if self._closed:
            raise UnavailableError("the client is closed")
        if self._http is None:
            await self.open()
        call = Call(orjson.dumps(request), time.monotonic() + self.timeout)
        if read or pragma:
            await self._send([call], read, pragma)
            return call.future.result()
        return await self._writes.run(call)

    async def _send_writes(self, calls: list[Call]) -> None:
        """Send a group of writes (the write queue's ``send``)."""
        await self._send(calls, False)

    async def _send(self, calls: list[Call], read: bool, pragma: bool = False) -> None:
        """Send ``calls`` in one pipeline, each as its own request, and resolve each
        call's future with its result or error, re-sending while that is safe (see the
        module docstring) and the latest deadline allows (a caller whose own deadline
        passes stops waiting). ``pragma``: the requests run a PRAGMA (the stream's own
        must run again)."""
        deadline = max(call.deadline for call in calls)
        attempt = 0
        while True:
            calls = [call for call in calls if not call.future.done()]
            if not calls:
                return
            stream = self._take_stream(read)
            head = [] if read or (stream is not None and stream.pragma) else [_PRAGMAS]
            # A new stream that may be kept takes its place among the kept ones now (so
            # that calls at once do not all open one); one beyond them ends with 'close'
            # (on a server known to keep streams; until one has answered, nothing is sent
            # that it may refuse).
            opening = stream is None and self.keeps_streams is not False and self._room(read)
            held: _Holder = None if stream is None and not opening else "read" if read else "write"
            if opening:
                self._hold(held)
            with_close = stream is None and self.keeps_streams is True and not opening
            baton = orjson.dumps(stream.baton if stream is not None else None)
            parts = [*head, *(call.request for call in calls), *([_CLOSE] if with_close else [])]
            body = b'{"baton":%b,"requests":[%b]}' % (baton, b",".join(parts))
            delay = self._delay(min(attempt, 8))
            limited = True  # whether this failure counts against ``retries``
            for call in calls:
                call.sent = True
            try:
                self.requests_sent += 1
                status, headers, content = await self._post(body, deadline - time.monotonic())
            except _NotSent as exc:
                self._drop_stream(held)
                error: SqlStoreError = UnavailableError(f"cannot reach {self.base_url}: {exc}")
            except _AnswerLost as exc:
                self._drop_stream(held)  # its baton went with the answer
                if not read:
                    _fail(calls, self._unknown(read, str(exc)))
                    return
                error = self._unknown(read, str(exc))
            except BaseException:
                self._drop_stream(held)
                raise
            else:
                if status == 200:
                    answer = orjson.loads(content)
                    results: list[hrana.JsonObj] = answer["results"]
                    ran = bool(head) and results[0].get("type") == "ok"
                    kept = (stream is not None and stream.pragma) or ran
                    await self._keep_stream(held, answer, kept and not pragma, deadline)
                    mine = results[len(head) : len(head) + len(calls)]
                    if len(mine) < len(calls):  # not an answer to this pipeline
                        _fail(calls, self._unknown(read, "an answer without all its results"))
                        return
                    refused = []
                    for call, result in zip(calls, mine, strict=True):
                        if hrana.refused_busy(result):
                            refused.append(call)
                        elif not call.future.done():
                            call.future.set_result(result)
                    if not refused:
                        return
                    # Refused, nothing applied: wait it out like a local busy timeout,
                    # for as long as the call's timeout allows (not counted in retries).
                    calls = refused
                    error = UnavailableError(f"the database at {self.base_url} stayed locked")
                    limited = False
                else:
                    self._drop_stream(held)
                    if status == 400 and stream is not None:
                        continue  # a refused baton: nothing ran; again on a new stream
                    error = self._refusal(status, content, read)
                    if status not in (429, 503):
                        _fail(calls, error)
                        return
                    delay = max(delay, _retry_after(headers))
            for call in calls:
                call.sent = False  # nothing of it was applied
            if (limited and attempt >= self.retries) or time.monotonic() + delay >= deadline:
                _fail(calls, error)
                return
            await asyncio.sleep(delay)
            attempt += 1

    def _unknown(self, read: bool, why: str) -> SqlStoreError:
        """The error for a request sent whose answer is lost or unusable."""
        if read:
            return UnavailableError(f"no usable answer from {self.base_url}: {why}")
        return OutcomeUnknownError(
            f"the write was sent to {self.base_url} but its answer was lost ({why}): "
            "it may or may not have been applied"
        )

    def _reads_full(self, read: bool) -> bool:
        """Whether a read may not hold another kept stream: reads hold at most all but one,
        so that the client's write pipeline (one at a time) always finds a kept stream and
        never needs one that closes after it (sqld 0.24.32 can wedge when a connection that
        queued for its write slot closes: README, Design, *Load*)."""
        return read and self.keep_streams > 1 and self._held_reads >= self.keep_streams - 1

    def _take_stream(self, read: bool) -> _Stream | None:
        """An idle kept stream that has not been idle too long (the newest), or None."""
        if self._reads_full(read):
            return None
        now = time.monotonic()
        while self._streams:
            stream = self._streams.pop()
            if now - stream.used < _STREAM_IDLE:
                self._hold("read" if read else "write")
                return stream
        return None

    def _room(self, read: bool = False) -> bool:
        """Whether one more stream may be kept (for a read, see ``_reads_full``)."""
        return self._held + len(self._streams) < self.keep_streams and not self._reads_full(read)

    def _hold(self, holder: _Holder) -> None:
        """A call takes a place among the kept streams (for a kept or a new stream)."""
        self._held += 1
        self._held_reads += holder == "read"

    def _drop_stream(self, holder: _Holder) -> None:
        """Forget the stream of a call whose request did not get an HTTP 200 (``holder``:
        whose place among the kept streams the call had, or None)."""
        if holder is not None:
            self._held -= 1
            self._held_reads -= holder == "read"

    async def _keep_stream(
        self, holder: _Holder, answer: hrana.JsonObj, pragma: bool, deadline: float
    ) -> None:
        """After an HTTP 200: keep the answer's stream for the next call, or close it
        when no more may be kept (or it is to be continued at another URL). ``holder``:
        as in ``_drop_stream``."""
        self._drop_stream(holder)
        baton = answer.get("baton")
        if self.keeps_streams is None:
            self.keeps_streams = baton is not None
        if baton is None:
            return
        if self._closed:
            return  # close() has closed the kept streams: this one expires on the server
        if answer.get("base_url") or not self._room():
            await self._close_stream(baton, deadline)
            return
        self._streams.append(_Stream(baton, pragma))

    async def _post(
        self, body: bytes, timeout: float, closing: bool = False
    ) -> tuple[int, Mapping[str, str], bytes]:
        """POST one pipeline: ``(status, headers, body)``. Raises _NotSent when the request
        certainly was not processed (no connection could be made, or none came free in
        time: the transport writes nothing then), _AnswerLost when it may have been (any
        failure once the request was written, on a new or a reused kept-alive connection:
        no answer, a timeout, the connection dropped; or HTTP 500 / 502 / 504)."""
        import httpx

        http = self._http
        if http is None or (self._closed and not closing):  # closed while waiting to retry
            raise UnavailableError("the client is closed")
        if timeout <= 0:
            raise _NotSent(f"the call's timeout of {self.timeout} s has passed")
        self._in_flight += 1
        try:
            response = await http.post("/v2/pipeline", content=body, timeout=timeout)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            if self._closed:  # close() ran while the request was under way
                raise UnavailableError("the client was closed during the call") from None
            raise _NotSent(self._redact(f"{type(exc).__name__}: {exc}")) from None
        except httpx.TransportError as exc:
            if self._closed:
                raise UnavailableError("the client was closed during the call") from None
            raise _AnswerLost(self._redact(f"{type(exc).__name__}: {exc}")) from None
        finally:
            self._in_flight -= 1
            if self._idle is not None and not self._in_flight:
                self._idle.set()
        if response.status_code in (500, 502, 504):
            raise _AnswerLost(f"HTTP {response.status_code}: {self._shown(response.content)}")
        return response.status_code, response.headers, response.content

    async def _close_stream(self, baton: str, deadline: float) -> None:
        """End a stream the server kept (best effort)."""
        body = b'{"baton":%b,"requests":[%b]}' % (orjson.dumps(baton), _CLOSE)
        try:
            self.requests_sent += 1
            await self._post(body, max(0.1, deadline - time.monotonic()), closing=True)
        except (_NotSent, _AnswerLost, UnavailableError):
            pass  # the server expires an idle stream by itself

    def _refusal(self, status: int, content: bytes, read: bool) -> SqlStoreError:
        """The error for an HTTP answer other than 200 (the request was not processed)."""
        where = f"the server at {self.base_url}"
        shown = self._shown(content)
        if status == 401:
            return AuthenticationError(f"{where} refused the credentials (HTTP 401): {shown}")
        if status == 403:
            if read:
                return AuthenticationError(f"{where} refused the token (HTTP 403): {shown}")
            return AuthenticationError(
                f"{where} refused the write: the token has no write access (HTTP 403)"
            )
        if status in (429, 503):
            return UnavailableError(f"{where} is busy (HTTP {status}): {shown}")
        return QueryError(f"HTTP {status} from {where}: {shown}", code=str(status))

    def _redact(self, text: str) -> str:
        """``text`` without the token (a server may echo the request's headers)."""
        if self._token:
            text = text.replace(self._token, "***")
        return _BEARER.sub("Bearer ***", text)

    def _shown(self, content: bytes) -> str:
        """An error answer's body as exceptions show it: redacted and trimmed."""
        text = self._redact(content.decode("utf-8", "replace"))
        return text if len(text) <= _BODY_SHOWN else text[:_BODY_SHOWN] + "…"

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = min(self.retry_max_delay, self.retry_backoff * (2.0**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


_BEARER = re.compile(r"Bearer\s+[^\s\"',;]+", re.IGNORECASE)


def _fail(calls: list[Call], error: SqlStoreError) -> None:
    """Give each call still waited for its own copy of ``error``."""
    for call in calls:
        if not call.future.done():
            call.future.set_exception(copy.copy(error))


def _retry_after(headers: Mapping[str, str]) -> float:
    """Seconds a ``Retry-After`` header asks for (0 when absent or a date)."""
    try:
        return max(0.0, float(headers.get("retry-after", "0")))
    except ValueError:
        return 0.0


__all__ = ["RemoteClient", "parse_remote_url"]
