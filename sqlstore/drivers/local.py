"""Local driver: one long-lived sqlite3 connection, used on the event loop when that is
quick and safe, and otherwise on its own worker thread.

Inline path. A call runs on the calling (event loop) thread when the worker is idle, the
database is in ``durability="normal"`` and the call is not known to run long. It never
waits there: the connection's busy timeout is 0 outside worker jobs, so a lock held by
another connection or process fails at once and the call goes to the worker instead; a
progress handler stops the call once it has used ``inline_budget`` seconds of SQLite time,
rolls it back and hands it to the worker too (and that SQL's next calls go to the
worker: 1, then 2, 4, ... after each further stop; see ``_SLOW_WAIT_MAX``). Commits there
never fsync (WAL with ``synchronous=NORMAL``), and WAL checkpoints, which do, run on the
worker (see ``_checkpoint``). After ``inline_budget`` of inline work a call yields to the
event loop once, so a loop of awaited calls does not starve other tasks.

Worker path. Everything else is one hop to the worker thread, which holds the connection
for the whole job with the full ``busy_timeout``: a batch runs there under
``BEGIN IMMEDIATE`` in that one hop, and single ``execute`` calls that arrive while the
worker is busy are committed together (group commit): each keeps its own savepoint, so
one failing statement rolls back only itself, and every caller is answered only after the
shared COMMIT.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import queue
import sqlite3
import threading
import time
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
    READ_WORDS,
    Args,
    PlainArgs,
    Result,
    Statement,
    leading_keyword,
    normalize_batch,
    normalize_execute,
    reads_only,
)

Durability = Literal["normal", "full"]

DEFAULT_INLINE_BUDGET = 0.002
"""Seconds of SQLite work one call may do on the event loop before it moves to the worker."""

_GROUP_LIMIT = 256
"""The most single statements one group commit takes."""

_SOLO_WORDS = frozenset({"PRAGMA", "VACUUM", "ATTACH", "DETACH", "REINDEX", "ANALYZE"})
"""Statements that must not run inside a transaction, so never join a group commit (and
never run inline: some of them can take long)."""

_PROGRESS_STEPS = 1000
"""SQLite VM instructions between two looks at the inline deadline."""

_CHECKPOINT_EVERY = 200
"""Write commits between two WAL checkpoints (which run on the worker)."""

_RESTART_FRAMES = 2048
"""WAL frames (8 MiB of 4 KiB pages) past which a checkpoint also holds the connection
while it copies the last frames (an fsync or two), so the WAL starts over even though
writes never pause. A WAL let grow further costs more than those milliseconds: every
commit then extends the file, and the copy under the lock that ends it takes longer
(measured: 2,048 frames, 85 us a save with trim and at most 5 ms for one save; 16,384
frames, 95 us and 24 ms)."""

_WAL_KEEP_BYTES = 16 * 1024 * 1024
"""The size a WAL file is cut back to when it starts over (journal_size_limit): above
what _RESTART_FRAMES lets it reach, so a busy WAL is written over in place, not cut
back and grown again each time."""

_SLOW_LIMIT = 1024
"""The most statement lists remembered as too slow to run inline."""

_SLOW_WAIT_MAX = 1024
"""The most calls of a statement list that go to the worker before it is tried inline
again: a list stopped for running past the budget waits 1 call, then 2, 4, ... up to
this many after each further stop. (A first run may be slow only because SQLite
compiles its statements; and a list that ran slow under load may be quick again.)"""

_HAND_OVER = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_INTERRUPT")
"""Inline failures (error-name prefixes) that mean "let the worker do it", not "tell the
caller": the database was locked, or the work ran past the budget."""


class _Job:
    __slots__ = ("args", "future", "kind", "loop", "sql")

    def __init__(
        self,
        kind: str,
        loop: asyncio.AbstractEventLoop | None,
        future: asyncio.Future[Any] | None,
        sql: Any = None,
        args: Any = None,
    ) -> None:
        self.kind = kind
        self.loop = loop
        self.future = future
        self.sql = sql
        self.args = args


Outcome = tuple[Any, BaseException | None]


def _resolve(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _answer(job: _Job, value: Any = None, error: BaseException | None = None) -> None:
    if job.loop is None or job.future is None:  # a job nobody waits for (a checkpoint)
        return
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


def _hand_over(exc: SqlStoreError) -> bool:
    """Whether an inline failure should be retried on the worker (busy or interrupted)."""
    code = getattr(exc, "code", None)
    return isinstance(code, str) and code.startswith(_HAND_OVER)


@functools.lru_cache(maxsize=1024)
def _solo(sql: str) -> bool:
    """Whether a statement must run alone, on the worker (see _SOLO_WORDS); cached, since
    domains reuse a few fixed texts."""
    return leading_keyword(sql) in _SOLO_WORDS


_READ_WORDS = READ_WORDS
"""Statements that only read: inline they run in autocommit mode. Every other inline
statement (a ``WITH ... SELECT`` too, since a WITH may lead a write: it only takes the
write lock it did not need) runs inside BEGIN IMMEDIATE ... COMMIT, and that COMMIT (or a
ROLLBACK) runs with no deadline. SQLite calls the progress handler once more after a statement has
finished, and a stop there reports SQLITE_INTERRUPT for a statement whose changes are
made: in autocommit mode they would be committed, and the call redone on the worker
would write them twice (seen under load: 3,002 rows for 3,000 inserts). Inside a
transaction such a stop is rolled back like any other; a COMMIT or ROLLBACK stopped the
same way would report failure for a transaction that ended, or leave one open."""


_reads_only = reads_only


def _groupable(job: _Job) -> bool:
    return job.kind == "execute" and not _solo(job.sql)


def _rows(cursor: sqlite3.Cursor) -> Result:
    description = cursor.description
    if description is None:
        return EMPTY_RESULT
    return Result([d[0] for d in description], cursor.fetchall())


class LocalClient:
    """A sqlite3 connection driven from asyncio: inline when quick, else on a worker thread."""

    backend = "local"

    def __init__(
        self,
        database: str,
        *,
        busy_timeout: float = 30.0,
        durability: Durability = "normal",
        inline_budget: float = DEFAULT_INLINE_BUDGET,
    ) -> None:
        if durability not in ("normal", "full"):
            raise ConfigurationError(f"durability must be 'normal' or 'full', not {durability!r}")
        if busy_timeout < 0:
            raise ConfigurationError("busy_timeout must be >= 0 seconds")
        if isinstance(inline_budget, bool) or not isinstance(inline_budget, int | float):
            raise ConfigurationError("inline_budget must be a number of seconds")
        if not 0 <= inline_budget <= 1:
            raise ConfigurationError("inline_budget must be from 0 (never inline) to 1 second")
        self.database = database
        self.busy_timeout = busy_timeout
        self.durability: Durability = durability
        self.inline_budget = float(inline_budget)
        self._inline = durability == "normal" and inline_budget > 0
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pid = os.getpid()  # a forked child must not use this process's connection
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # whoever uses the connection holds it
        self._wal = False
        self._submitted = 0  # jobs put on the queue (event loop side)
        self._finished = 0  # jobs the worker has done (worker side)
        self._writes = 0  # write commits since the last checkpoint
        self._checkpointer: sqlite3.Connection | None = None  # the worker's, for checkpoints
        self._slow: dict[tuple[str, ...], list[int]] = {}
        """Statement lists stopped for running past the inline budget: [calls still to go
        to the worker, the wait after its next stop] (see _SLOW_WAIT_MAX)."""
        self._held = 0.0  # seconds of inline work since the last yield to the loop
        self._deadline = math.inf  # when the inline call under way must stop (see _past_deadline)
        self.inline_calls = 0
        """How many calls ran on the event loop (the rest went to the worker)."""
        self.worker_calls = 0
        """How many calls went to the worker thread."""

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
            self._submitted += 1
            self._queue.put(_Job("close", None, None))
            raise
        return self

    async def close(self) -> None:
        """Close the connection and stop the worker thread; safe to call twice. (In a
        forked child, only forget them: they belong to the parent.)"""
        if self._closed or self._thread is None or self._forked():
            self._closed = True
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._submitted += 1
        self._queue.put(_Job("close", loop, done))
        await done

    async def __aenter__(self) -> LocalClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- public calls -----------------------------------------------------------------

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement in its own transaction (inline, or group-committed)."""
        self._forked(check=True)
        plain = normalize_execute(sql, args)
        if self._may_inline((sql,)) and not _solo(sql):
            result: Result | None
            if _reads_only(sql):
                result = self._inline_call(self._execute_one, (sql,), sql, plain)
            else:  # a write runs in a transaction of its own (see _READ_WORDS)
                results = self._inline_call(self._batch, (sql,), [(sql, plain)])
                result = None if results is None else results[0]
            if result is not None:
                if self._held >= self.inline_budget:
                    await self._share_loop()
                return result
        answer: Result = await self._submit("execute", sql, plain)
        return answer

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run all statements in one ``BEGIN IMMEDIATE`` transaction, in one go."""
        self._forked(check=True)
        checked = normalize_batch(statements)
        if not checked:
            return []
        if self._inline:
            key = tuple([s for s, _ in checked])
            if self._may_inline(key):
                results: list[Result] | None = self._inline_call(self._batch, key, checked)
                if results is not None:
                    if self._held >= self.inline_budget:
                        await self._share_loop()
                    return results
        answer: list[Result] = await self._submit("batch", checked)
        return answer

    async def run_in_worker(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(connection)`` on the worker thread (for tools such as backups)."""
        return await self._submit("call", fn)

    def _forked(self, *, check: bool = False) -> bool:
        """Whether this is a child forked after the client was made (SQLite forbids using a
        connection across fork, and the worker thread did not survive it); with ``check``,
        say so with UnavailableError."""
        forked = self._pid != os.getpid()
        if forked and check:
            raise UnavailableError(
                f"this client was opened by process {self._pid}; a forked child cannot use "
                "its parent's SQLite connection: open a new client in the child"
            )
        return forked

    def _submit(self, kind: str, sql: Any = None, args: Any = None) -> asyncio.Future[Any]:
        self._forked(check=True)
        if self._closed and kind != "open":
            raise UnavailableError("the client is closed")
        if self._thread is None:
            raise UnavailableError("the client is not open; call open() or use connect()")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._submitted += 1
        if kind in ("execute", "batch"):
            self.worker_calls += 1
        self._queue.put(_Job(kind, loop, future, sql, args))
        return future

    # -- inline path (event loop thread) ---------------------------------------------

    def _may_inline(self, key: tuple[str, ...]) -> bool:
        if not (
            self._inline
            and not self._closed
            and self._conn is not None
            and self._submitted == self._finished  # the worker has nothing queued
        ):
            return False
        slow = self._slow.get(key)
        if slow is None or slow[0] == 0:
            return True  # (a slow list's turn to try inline again)
        slow[0] -= 1
        return False

    def _ran_slow(self, key: tuple[str, ...]) -> None:
        """A statement list was stopped inline: send its next calls to the worker."""
        slow = self._slow.get(key)
        if slow is None:
            if len(self._slow) >= _SLOW_LIMIT:
                self._slow.clear()
            self._slow[key] = [1, 2]
        else:
            slow[0] = slow[1]
            slow[1] = min(2 * slow[1], _SLOW_WAIT_MAX)

    def _inline_call(self, fn: Callable[..., Any], key: tuple[str, ...], *args: Any) -> Any:
        """``fn(*args)`` on this thread, or None when the worker must do it instead
        (connection in use, database locked, or the work ran past the budget: in every
        such case nothing was written). Other errors are the caller's."""
        if not self._lock.acquire(blocking=False):
            return None
        conn = self._conn
        try:
            if conn is None:
                return None
            start = time.perf_counter()
            self._deadline = start + self.inline_budget
            changes = conn.total_changes
            try:
                value = fn(*args)
            except SqlStoreError as exc:
                if not _hand_over(exc):
                    raise
                if getattr(exc, "code", None) == "SQLITE_INTERRUPT":
                    self._ran_slow(key)
                return None
            finally:
                self._deadline = math.inf
                self._held += time.perf_counter() - start
            if conn.total_changes != changes:
                self._wrote()
            if self._slow:
                self._slow.pop(key, None)  # quick this time: no longer slow
            self.inline_calls += 1
            return value
        finally:
            self._lock.release()

    def _past_deadline(self) -> bool:
        """The progress handler: stop the inline call under way once it is past its
        deadline (installed once, at open; worker jobs run with no deadline)."""
        return time.perf_counter() > self._deadline

    def _wrote(self) -> None:
        """Count one write commit (either path, under the lock); every _CHECKPOINT_EVERY of
        them, queue a WAL checkpoint for the worker (not counted as a job: it runs apart)."""
        self._writes += 1
        if self._writes >= _CHECKPOINT_EVERY and self._wal:
            self._writes = 0
            self._queue.put(_Job("checkpoint", None, None))

    async def _share_loop(self) -> None:
        """Yield to the event loop: ``inline_budget`` of inline work has piled up. (Callers
        test that first: a coroutine call per inline call would cost the hot path.)"""
        self._held = 0.0
        await asyncio.sleep(0)

    # -- worker thread ----------------------------------------------------------------

    def _run(self) -> None:
        carry: _Job | None = None
        while True:
            job = carry if carry is not None else self._queue.get()
            carry = None
            if job.kind == "checkpoint":
                self._checkpoint()  # on its own connection: inline calls go on meanwhile
                continue
            group = [job]
            if _groupable(job):
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
            with self._lock:
                self._wait_when_busy(True)
                outcomes = [self._do(job)] if len(group) == 1 else self._group_commit(group)
                self._wait_when_busy(False)
            self._finished += len(group)
            for member, (value, error) in zip(group, outcomes, strict=True):
                _answer(member, value, error)
            if job.kind == "close":
                return

    def _wait_when_busy(self, wait: bool) -> None:
        """Worker jobs wait up to ``busy_timeout`` for a lock; inline calls never wait."""
        if self._inline and self._conn is not None:
            timeout = int(self.busy_timeout * 1000) if wait else 0
            self._conn.execute(f"PRAGMA busy_timeout = {timeout}")

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database (PASSIVE: it never waits for, or blocks,
        other connections), on a second connection of the worker's, without the lock:
        inline calls go on meanwhile.

        SQLite starts a WAL over from its beginning when a write begins while every frame
        has been copied. Once the writes pause, this copy catches up and the next write
        restarts the WAL, at no cost to anyone. Under writes that never pause it cannot
        catch up, so past _RESTART_FRAMES the copy of the last frames is made under the
        lock: calls go to the worker for those few milliseconds (its fsyncs), and the WAL
        restarts. The loop never waits for an fsync either way."""
        if not self._wal or self._closed:
            return
        with contextlib.suppress(sqlite3.Error):
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(
                    self.database,
                    uri=self.database.startswith("file:"),
                    isolation_level=None,
                    check_same_thread=False,
                )
            # fetchall: a statement left open would hold a read lock.
            ((_, frames, _),) = self._checkpointer.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchall()
            if frames >= _RESTART_FRAMES:
                with self._lock:
                    if self._conn is not None:
                        self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _do(self, job: _Job) -> Outcome:
        try:
            changes = self._conn.total_changes if self._conn is not None else 0
            if job.kind == "execute":
                value: Any = self._execute_one(job.sql, job.args)
            elif job.kind == "batch":
                value = self._batch(job.sql)
            elif job.kind == "call":
                value = job.sql(self._connection())
            elif job.kind == "open":
                self._open()
                return None, None
            elif job.kind == "close":
                for conn in (self._conn, self._checkpointer):
                    if conn is not None:
                        conn.close()
                self._conn = self._checkpointer = None
                return None, None
            else:  # pragma: no cover - internal misuse
                raise RuntimeError(f"unknown job {job.kind}")
            if self._conn is not None and self._conn.total_changes != changes:
                self._wrote()
        except BaseException as exc:  # every failure goes back to the caller
            return None, _translate(exc, job.sql if isinstance(job.sql, str) else None)
        return value, None

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
                check_same_thread=False,  # used inline and by the worker, under self._lock
                cached_statements=512,
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open {self.database!r}: {exc}") from None
        # Turning a fresh file into WAL takes an exclusive lock, and SQLite answers "locked"
        # at once (without waiting) to one of two connections that both try: retry then.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                self._set_up(conn)
                break
            except sqlite3.Error as exc:
                locked = str(getattr(exc, "sqlite_errorname", "")).startswith("SQLITE_BUSY")
                if locked and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                conn.close()
                raise UnavailableError(f"cannot set up {self.database!r}: {exc}") from None
        self._conn = conn

    def _set_up(self, conn: sqlite3.Connection) -> None:
        """The connection's settings (each idempotent, so a retry is safe)."""
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "memory":
            self._wal = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        conn.execute(f"PRAGMA synchronous = {'FULL' if self.durability == 'full' else 'NORMAL'}")
        if self._inline:
            # Checkpoints fsync: they run on the worker, never inside an inline commit.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            conn.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)
        # When the WAL starts over, a file grown past _WAL_KEEP_BYTES is cut back to it.
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_KEEP_BYTES}")

    def _execute_one(self, sql: str, args: PlainArgs) -> Result:
        try:
            return _rows(self._connection().execute(sql, args))
        except (sqlite3.Error, OverflowError) as exc:
            raise _translate(exc, sql) from None

    def _batch(self, statements: list[tuple[str, PlainArgs]]) -> list[Result]:
        conn = self._connection()
        results: list[Result] = []
        sql = "BEGIN IMMEDIATE"
        try:
            cursor = conn.cursor()  # one for the whole batch, not one per statement
            cursor.execute(sql)
            i, n = 0, len(statements)
            while i < n:
                sql, args = statements[i]
                cursor.execute(sql, args)
                if cursor.description is None:
                    # A run of the same row-less statement goes through executemany.
                    j = i + 1
                    while j < n and statements[j][0] == sql:
                        j += 1
                    if j > i + 1:
                        cursor.executemany(sql, [a for _, a in statements[i + 1 : j]])
                    results.extend([EMPTY_RESULT] * (j - i))
                    i = j
                else:
                    results.append(_rows(cursor))
                    i += 1
            sql = "COMMIT"
            self._deadline = math.inf  # the commit is never stopped (see _READ_WORDS)
            cursor.execute(sql)
        except BaseException as exc:
            self._deadline = math.inf  # nor is the rollback
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt and the like (inline, on the caller's thread) stay
            raise _translate(exc, sql) from None
        return results

    def _group_commit(self, group: list[_Job]) -> list[Outcome]:
        """Run single statements from many callers in one transaction, one savepoint each.

        Every caller gets exactly one outcome, answered after the shared COMMIT; whatever
        goes wrong with the transaction itself fails the whole group and never stops the
        worker.
        """
        if self._conn is None:
            return [self._do(job) for job in group]
        conn = self._conn
        outcomes: list[Outcome] = []
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
                        return [self._do(member) for member in group]
                    conn.execute("ROLLBACK TO sqlstore_group")
                    conn.execute("RELEASE sqlstore_group")
                    outcomes.append((None, _translate(exc, job.sql)))
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            error = _translate(exc)
            return [(None, error) for _ in group]
        self._wrote()
        return outcomes


def parse_local_url(url: str) -> str:
    """The sqlite3 database argument for a ``file:`` or ``:memory:`` URL."""
    if url in (":memory:", "file::memory:"):
        return ":memory:"
    if url.startswith("file:"):
        if url == "file:":
            raise ConfigurationError("a file: URL needs a path, e.g. file:sqlstore.db")
        return url
    raise ConfigurationError(f"not a local URL: {url!r}")
