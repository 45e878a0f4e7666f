"""Local driver: one long-lived sqlite3 connection on its own worker thread.

The event loop thread never runs SQLite. Every call is one hop to the worker: a whole
batch runs there under ``BEGIN IMMEDIATE`` in that one hop. Single ``execute`` calls that
arrive while the worker is busy are committed together (group commit): each keeps its own
savepoint, so one failing statement rolls back only itself, and every caller is answered
only after the shared COMMIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..errors import (
    ConfigurationError,
    QueryError,
    SqlStoreError,
    UnavailableError,
    ValidationError,
)
from .base import (
    EMPTY_RESULT,
    Args,
    PlainArgs,
    Result,
    Statement,
    leading_keyword,
    normalize_batch,
    normalize_execute,
)

Durability = Literal["normal", "full"]

_GROUP_LIMIT = 256
"""The most single statements one group commit takes."""

_SOLO_WORDS = frozenset({"PRAGMA", "VACUUM", "ATTACH", "DETACH", "REINDEX", "ANALYZE"})
"""Statements that must not run inside a transaction, so never join a group commit."""


class _Job:
    __slots__ = ("args", "future", "kind", "loop", "sql")

    def __init__(
        self,
        kind: str,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
        sql: Any = None,
        args: Any = None,
    ) -> None:
        self.kind = kind
        self.loop = loop
        self.future = future
        self.sql = sql
        self.args = args


def _resolve(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _answer(job: _Job, value: Any = None, error: BaseException | None = None) -> None:
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        job.loop.call_soon_threadsafe(_resolve, job.future, value, error)


def _translate(exc: BaseException, sql: str | None = None) -> SqlStoreError:
    """Map a sqlite3 exception onto sqlstore's hierarchy."""
    if isinstance(exc, SqlStoreError):
        return exc
    if isinstance(exc, OverflowError):
        return ValidationError(f"integer outside SQLite's signed 64-bit range: {exc}")
    if isinstance(exc, sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return ValidationError(f"bad statement or arguments: {exc}")
    code = getattr(exc, "sqlite_errorname", None)
    return QueryError(str(exc), code=code, sql=sql)


def _groupable(job: _Job) -> bool:
    return job.kind == "execute" and leading_keyword(job.sql) not in _SOLO_WORDS


def _rows(cursor: sqlite3.Cursor) -> Result:
    description = cursor.description
    if description is None:
        return EMPTY_RESULT
    return Result([d[0] for d in description], cursor.fetchall())


class LocalClient:
    """A sqlite3 connection owned by one worker thread, driven from asyncio."""

    backend = "local"

    def __init__(
        self,
        database: str,
        *,
        busy_timeout: float = 30.0,
        durability: Durability = "normal",
    ) -> None:
        if durability not in ("normal", "full"):
            raise ConfigurationError(f"durability must be 'normal' or 'full', not {durability!r}")
        if busy_timeout < 0:
            raise ConfigurationError("busy_timeout must be >= 0 seconds")
        self.database = database
        self.busy_timeout = busy_timeout
        self.durability: Durability = durability
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._conn: sqlite3.Connection | None = None

    def __repr__(self) -> str:
        return f"LocalClient({self.database!r}, durability={self.durability!r})"

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> LocalClient:
        """Start the worker thread and open the connection on it."""
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._run, name=f"sqlstore-local:{self.database}", daemon=True
        )
        self._thread.start()
        try:
            await self._submit("open")
        except BaseException:
            self._closed = True
            self._queue.put(_Job("close", asyncio.get_running_loop(), asyncio.Future()))
            raise
        return self

    async def close(self) -> None:
        """Close the connection and stop the worker thread; safe to call twice."""
        if self._closed or self._thread is None:
            self._closed = True
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Job("close", loop, done))
        await done

    async def __aenter__(self) -> LocalClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- public calls -----------------------------------------------------------------

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement in its own transaction (possibly group-committed)."""
        result: Result = await self._submit("execute", sql, normalize_execute(sql, args))
        return result

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run all statements in one ``BEGIN IMMEDIATE`` transaction, in one hop."""
        checked = normalize_batch(statements)
        if not checked:
            return []
        results: list[Result] = await self._submit("batch", checked)
        return results

    async def run_in_worker(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(connection)`` on the worker thread (for tools such as backups)."""
        return await self._submit("call", fn)

    def _submit(self, kind: str, sql: Any = None, args: Any = None) -> asyncio.Future[Any]:
        if self._closed and kind != "open":
            raise UnavailableError("the client is closed")
        if self._thread is None:
            raise UnavailableError("the client is not open; call open() or use connect()")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Job(kind, loop, future, sql, args))
        return future

    # -- worker thread ----------------------------------------------------------------

    def _run(self) -> None:
        carry: _Job | None = None
        while True:
            job = carry if carry is not None else self._queue.get()
            carry = None
            if not _groupable(job):
                self._do(job)
                if job.kind == "close":
                    return
                continue
            group = [job]
            while len(group) < _GROUP_LIMIT:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if _groupable(nxt):
                    group.append(nxt)
                else:
                    carry = nxt
                    break
            if len(group) == 1:
                self._do(job)
            else:
                self._group_commit(group)

    def _do(self, job: _Job) -> None:
        try:
            if job.kind == "execute":
                value: Any = self._execute_one(job.sql, job.args)
            elif job.kind == "batch":
                value = self._batch(job.sql)
            elif job.kind == "call":
                value = job.sql(self._connection())
            elif job.kind == "open":
                self._open()
                value = None
            elif job.kind == "close":
                if self._conn is not None:
                    self._conn.close()
                    self._conn = None
                value = None
            else:  # pragma: no cover - internal misuse
                raise RuntimeError(f"unknown job {job.kind}")
        except BaseException as exc:  # every failure goes back to the caller
            _answer(job, error=_translate(exc, job.sql if isinstance(job.sql, str) else None))
        else:
            _answer(job, value)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise UnavailableError("the connection is closed")
        return self._conn

    def _open(self) -> None:
        try:
            conn = sqlite3.connect(
                self.database,
                uri=self.database.startswith("file:"),
                isolation_level=None,
                check_same_thread=True,
                cached_statements=512,
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open {self.database!r}: {exc}") from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
                conn.execute("PRAGMA journal_mode = WAL")
            level = "FULL" if self.durability == "full" else "NORMAL"
            conn.execute(f"PRAGMA synchronous = {level}")
        except sqlite3.Error as exc:
            conn.close()
            raise UnavailableError(f"cannot set up {self.database!r}: {exc}") from None
        self._conn = conn

    def _execute_one(self, sql: str, args: PlainArgs) -> Result:
        return _rows(self._connection().execute(sql, args))

    def _batch(self, statements: list[tuple[str, PlainArgs]]) -> list[Result]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        results: list[Result] = []
        sql = ""
        try:
            i, n = 0, len(statements)
            while i < n:
                sql, args = statements[i]
                cursor = conn.execute(sql, args)
                if cursor.description is None:
                    # A run of the same row-less statement goes through executemany.
                    j = i + 1
                    while j < n and statements[j][0] == sql:
                        j += 1
                    if j > i + 1:
                        conn.executemany(sql, [a for _, a in statements[i + 1 : j]])
                    results.extend([EMPTY_RESULT] * (j - i))
                    i = j
                else:
                    results.append(_rows(cursor))
                    i += 1
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise _translate(exc, sql) from None
        return results

    def _group_commit(self, group: list[_Job]) -> None:
        """Run single statements from many callers in one transaction, one savepoint each.

        Every caller is answered exactly once, after the shared COMMIT; whatever goes wrong
        with the transaction itself fails the whole group and never stops the worker.
        """
        if self._conn is None:
            for job in group:
                self._do(job)
            return
        conn = self._conn
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in group:
                try:
                    conn.execute("SAVEPOINT sqlstore_group")
                    result = _rows(conn.execute(job.sql, job.args))
                    conn.execute("RELEASE sqlstore_group")
                    outcomes.append((result, None))
                except BaseException as exc:
                    if not conn.in_transaction:
                        # SQLite abandoned the whole transaction: redo each statement alone.
                        for member in group:
                            self._do(member)
                        return
                    conn.execute("ROLLBACK TO sqlstore_group")
                    conn.execute("RELEASE sqlstore_group")
                    outcomes.append((None, _translate(exc, job.sql)))
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            for job in group:
                _answer(job, error=_translate(exc))
            return
        for job, (value, error) in zip(group, outcomes, strict=True):
            _answer(job, value, error)


def parse_local_url(url: str) -> str:
    """The sqlite3 database argument for a ``file:`` or ``:memory:`` URL."""
    if url in (":memory:", "file::memory:"):
        return ":memory:"
    if url.startswith("file:"):
        if url == "file:":
            raise ConfigurationError("a file: URL needs a path, e.g. file:sqlstore.db")
        return url
    raise ConfigurationError(f"not a local URL: {url!r}")
