"""Remote driver: Hrana over HTTP (``POST /v2/pipeline``), one HTTP request per call.

``execute`` sends one ``execute`` request; ``batch`` sends one ``batch`` request whose
steps are chained by conditions so the whole batch is one transaction. A trailing
``close`` request is sent where the server accepts it; a server that rejects it is
detected once per client and it is left out from then on.

The HTTP library (httpx) is imported when the first remote client is made, so that
``import sqlstore`` stays fast for serverless cold starts.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    QueryError,
    UnavailableError,
)
from . import hrana
from .base import (
    Args,
    Result,
    Statement,
    normalize_batch,
    normalize_execute,
)

if TYPE_CHECKING:
    import httpx

_PRAGMAS = hrana.execute_request({"sql": "PRAGMA foreign_keys = ON"})
"""Sent first in every pipeline: a server may open a new connection per request."""

_CLOSE = {"type": "close"}
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def parse_remote_url(url: str) -> tuple[str, str | None]:
    """The HTTP base URL for a libsql/https/http URL, and an ``authToken`` found in it."""
    parts = urlsplit(url)
    scheme = {"libsql": "https", "https": "https", "http": "http"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigurationError(f"not a remote URL: {url!r}")
    query = parse_qsl(parts.query, keep_blank_values=True)
    token = next((v for k, v in query if k == "authToken"), None)
    rest = urlencode([(k, v) for k, v in query if k != "authToken"])
    if rest:
        raise ConfigurationError(f"unknown query parameters in the URL: {rest.split('=')[0]}")
    base = urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return base, token


class RemoteClient:
    """A Hrana-over-HTTP client with a keep-alive pool and bounded retries."""

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
    ) -> None:
        base, url_token = parse_remote_url(url)
        if retries < 0 or retry_backoff < 0 or timeout <= 0:
            raise ConfigurationError("retries, retry_backoff and timeout must be positive")
        self.base_url = base
        self._token = auth_token if auth_token is not None else url_token
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.retry_backoff = retry_backoff
        self.retry_max_delay = retry_max_delay
        self.max_connections = max_connections
        self.requests_sent = 0
        """How many HTTP requests this client has sent (retries included)."""
        self.send_close: bool | None = None
        """Whether the server accepts a trailing ``close`` (None until the first answer)."""
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        self._pid = os.getpid()  # a forked child must not share this process's pool
        self._in_flight = 0  # requests under way (close() waits for them)
        self._idle: asyncio.Event | None = None

    def __repr__(self) -> str:
        token = "set" if self._token else "none"
        return f"RemoteClient({self.base_url!r}, auth_token={token})"

    async def open(self) -> RemoteClient:
        """Create the HTTP connection pool (no request is sent)."""
        if self._http is None:
            import httpx

            headers = {"content-type": "application/json"}
            if self._token:
                headers["authorization"] = f"Bearer {self._token}"
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                headers=headers,
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
                limits=httpx.Limits(
                    max_connections=self.max_connections,
                    max_keepalive_connections=self.max_connections,
                ),
            )
        return self

    async def close(self) -> None:
        """Close the connection pool; safe to call twice. (In a forked child, only forget
        it: its sockets, and their TLS sessions, belong to the parent.)"""
        self._closed = True
        if self._pid != os.getpid():
            self._http = None
        if self._in_flight:  # let requests under way finish, so their sockets close too
            self._idle = asyncio.Event()
            await self._idle.wait()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> RemoteClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement in one HTTP request."""
        stmt = hrana.encode_stmt(sql, normalize_execute(sql, args))
        results = await self._pipeline([hrana.execute_request(stmt)])
        return hrana.decode_result(hrana.response_of(results[0], sql)["result"])

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run all statements as one transaction in one HTTP request."""
        checked = normalize_batch(statements)
        if not checked:
            return []
        stmts = [hrana.encode_stmt(sql, args) for sql, args in checked]
        results = await self._pipeline([hrana.transaction_request(stmts)])
        response = hrana.response_of(results[0])
        return hrana.transaction_results(response, [sql for sql, _ in checked])

    async def _pipeline(self, requests: list[hrana.JsonObj]) -> list[hrana.JsonObj]:
        """Send one pipeline (with retries) and return the results of ``requests``."""
        if self._pid != os.getpid():
            raise UnavailableError(
                f"this client was opened by process {self._pid}; a forked child cannot share "
                "its parent's HTTP connections: open a new client in the child"
            )
        if self._closed:
            raise UnavailableError("the client is closed")
        if self._http is None:
            await self.open()
        attempt = 0
        while True:
            http = self._http
            if http is None or self._closed:  # closed while this call waited to retry
                raise UnavailableError("the client is closed")
            with_close = self.send_close is not False
            body = {
                "baton": None,
                "requests": [_PRAGMAS, *requests, *([_CLOSE] if with_close else [])],
            }
            try:
                self.requests_sent += 1
                self._in_flight += 1
                try:
                    response = await http.post("/v2/pipeline", content=orjson.dumps(body))
                finally:
                    self._in_flight -= 1
                    if self._idle is not None and not self._in_flight:
                        self._idle.set()
            except Exception as exc:  # httpx transport errors: connect, read, protocol
                if self._closed:  # close() ran while the request was under way
                    raise UnavailableError("the client was closed during the call") from None
                if not _is_transport_error(exc):
                    raise
                error: Exception = UnavailableError(
                    f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}"
                )
            else:
                status = response.status_code
                if status == 200:
                    if with_close:
                        self.send_close = True
                    answer = orjson.loads(response.content)
                    results: list[hrana.JsonObj] = answer["results"][1 : 1 + len(requests)]
                    return results
                text = response.text[:500]
                if (
                    with_close
                    and self.send_close is None
                    and "close" in text
                    and status in (400, 500)
                ):
                    # A server that does not know the ``close`` request (tursodb): leave it out.
                    self.send_close = False
                    continue
                if status in (401, 403):
                    raise AuthenticationError(
                        f"the server at {self.base_url} refused the credentials (HTTP {status})"
                    )
                if status not in _RETRY_STATUS or "Failed to parse" in text:
                    raise QueryError(
                        f"HTTP {status} from {self.base_url}: {text}", code=str(status)
                    )
                error = UnavailableError(f"HTTP {status} from {self.base_url}: {text}")
            if attempt >= self.retries:
                raise error
            await asyncio.sleep(self._delay(attempt))
            attempt += 1

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = min(self.retry_max_delay, self.retry_backoff * (2.0**attempt))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _is_transport_error(exc: Exception) -> bool:
    import httpx

    return isinstance(exc, httpx.TransportError)


__all__ = ["RemoteClient", "parse_remote_url"]
