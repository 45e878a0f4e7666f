"""A lean HTTP/1.1 keep-alive client on asyncio streams, for the remote driver's POSTs.

The remote driver sends one small JSON POST per call and waits for its answer: a general
HTTP client spends most of such a round trip in its own layers (httpx took three times
as long per ``SELECT 1`` on loopback as this module; see the README's remote benchmark).
This one does only that: a bounded pool of kept-alive connections, each carrying one
request at a time, written in one piece; answers with ``content-length``, chunked, or
ended by the server closing. TLS for ``https`` URLs comes from the ssl module.

Its surface is the part of ``httpx.AsyncClient`` the driver uses (``post(path,
content=...)`` answering ``status_code``, ``content``, ``text``, ``headers``; ``aclose``),
and its failures are httpx's exception types, so the driver's error handling reads the
same whichever client sends: ``ConnectError`` / ``ConnectTimeout`` / ``PoolTimeout`` (the
request was never sent) apart from ``WriteError``, ``ReadError``, ``ReadTimeout`` and
``RemoteProtocolError`` (it may have reached the server).
"""

from __future__ import annotations

import asyncio
import select
import ssl
import time
from urllib.parse import urlsplit

import httpx


class Response:
    """One HTTP answer: status, lower-cased headers and the whole body."""

    __slots__ = ("content", "headers", "status_code")

    def __init__(self, status_code: int, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content

    @property
    def text(self) -> str:
        """The body as text (undecodable bytes replaced)."""
        return self.content.decode("utf-8", "replace")


class _Connection:
    """One TCP (or TLS) connection to the server."""

    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def usable(self) -> bool:
        """Whether the idle connection can carry another request: the server has not
        closed it, nor sent anything unasked (looked at on the socket itself, since the
        event loop may not have read the close yet). A request is never written to a
        connection known to be dead, where it could not tell whether it arrived."""
        if self.reader.at_eof() or self.writer.is_closing():
            return False
        sock = self.writer.get_extra_info("socket")
        if sock is None:
            return True
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        self.writer.close()


_MAX_HEAD = 64 * 1024


class HttpPool:
    """Keep-alive connections to one server, at most ``max_connections`` at once."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str],
        timeout: float,
        connect_timeout: float,
        max_connections: int,
    ) -> None:
        parts = urlsplit(base_url)
        self._tls = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if self._tls else 80)
        self._prefix = parts.path.rstrip("/")
        netloc = parts.netloc.rsplit("@", 1)[-1]
        lines = [f"host: {netloc}", "connection: keep-alive"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self._head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._slots = asyncio.Semaphore(max(1, max_connections))
        self._idle: list[_Connection] = []
        self._closing: set[asyncio.Future[None]] = set()
        self._ssl: ssl.SSLContext | None = ssl.create_default_context() if self._tls else None
        self.connections_made = 0
        """How many connections this pool has opened (for tests and benchmarks)."""

    async def post(self, path: str, *, content: bytes, timeout: float | None = None) -> Response:
        """POST ``content`` (JSON) to ``path`` and return the whole answer, all within
        ``timeout`` seconds (the pool's ``timeout`` when None): waiting for a free
        connection, connecting, sending and reading."""
        limit = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        if self._slots.locked():
            try:
                async with asyncio.timeout(limit):
                    await self._slots.acquire()
            except TimeoutError:
                raise httpx.PoolTimeout("no free connection within the timeout") from None
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            conn = await self._checkout(deadline)
            done = False
            try:
                response, keep = await self._exchange(conn, path, content, deadline)
                done = True
            finally:
                if done and keep:
                    self._idle.append(conn)
                else:  # failed or cancelled halfway, or the server ends it: closed
                    self._close(conn)
            return response
        finally:
            self._slots.release()

    async def aclose(self) -> None:
        """Close the idle connections and wait until every connection closed so far has
        let go of its socket (calls still running close theirs when done)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            self._close(conn)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _close(self, conn: _Connection) -> None:
        """Close ``conn``; ``aclose`` waits for the socket to be released."""
        conn.close()
        task = asyncio.ensure_future(conn.writer.wait_closed())
        self._closing.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Future[None]) -> None:
        self._closing.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a reset while closing is no error

    async def _checkout(self, deadline: float) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            self._close(conn)
        wait = min(self.connect_timeout, deadline - time.monotonic())
        try:
            if wait <= 0:
                raise TimeoutError
            async with asyncio.timeout(wait):
                reader, writer = await asyncio.open_connection(
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._tls else None,
                    limit=_MAX_HEAD,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection within {wait:.3g} s") from None
        except OSError as exc:
            raise httpx.ConnectError(f"{type(exc).__name__}: {exc}") from None
        self.connections_made += 1
        return _Connection(reader, writer)

    async def _exchange(
        self, conn: _Connection, path: str, content: bytes, deadline: float
    ) -> tuple[Response, bool]:
        request = b"POST %s HTTP/1.1\r\n%scontent-length: %d\r\n\r\n" % (
            (self._prefix + path).encode("latin-1"),
            self._head,
            len(content),
        )
        try:
            conn.writer.write(request + content)
        except OSError as exc:
            raise httpx.WriteError(f"{type(exc).__name__}: {exc}") from None
        try:
            async with asyncio.timeout_at(_loop_time(deadline)):
                return await _read_response(conn.reader)
        except TimeoutError:
            raise httpx.ReadTimeout("no answer within the timeout") from None
        except asyncio.IncompleteReadError as exc:
            if not exc.partial:
                raise httpx.RemoteProtocolError(
                    "the server closed the connection without an answer"
                ) from None
            raise httpx.ReadError("the server closed the connection mid-answer") from None
        except asyncio.LimitOverrunError:
            raise httpx.RemoteProtocolError("the answer's head is too long") from None
        except (OSError, ValueError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from None


def _loop_time(deadline: float) -> float:
    """A ``time.monotonic()`` deadline on the running loop's clock."""
    loop = asyncio.get_running_loop()
    return loop.time() + (deadline - time.monotonic())


async def _read_response(reader: asyncio.StreamReader) -> tuple[Response, bool]:
    """Read one answer; also whether the connection may carry another request."""
    while True:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
            raise httpx.RemoteProtocolError(f"not an HTTP/1.x answer: {lines[0][:80]!r}")
        status = int(status_line[1])
        if status >= 200 or status == 101:
            break  # 1xx interim answers (100 Continue) are skipped
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    keep = headers.get("connection", "").lower() != "close" and status_line[0] == "HTTP/1.1"
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                break
            chunks.append((await reader.readexactly(size + 2))[:-2])
        body = b"".join(chunks)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif status in (204, 304):
        body = b""
    else:
        body = await reader.read()  # ended by the server closing the connection
        keep = False
    return Response(status, headers, body), keep


__all__ = ["HttpPool", "Response"]
