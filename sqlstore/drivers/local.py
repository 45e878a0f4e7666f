"""Local driver: a sqlite3 connection on a worker thread for everything that may sync a
file or wait, and two more that serve short reads and writes on the event loop.

Worker. Every PRAGMA, and every call not served inline, runs on the worker thread, on its
own connection (full ``busy_timeout``, no progress handler). A batch is one transaction
(``BEGIN IMMEDIATE``, or a deferred ``BEGIN`` when every statement only reads); single
writes that arrive while the worker is busy are committed together (group commit), each
in its own savepoint. SQLite's autocheckpoint runs after its commits, and
``journal_size_limit`` cuts a WAL grown past 16 MiB back when it starts over.

Inline calls, in WAL mode only. They never wait (busy timeout 0); a progress handler stops
one after ``inline_budget`` seconds, and a value longer than ``_INLINE_MAX_VALUE`` stops it
at once; then the worker runs it (SQL stopped twice in a row goes to the worker for good),
and after ``inline_budget`` of inline work a call yields to the loop once. Reads (``SELECT``,
``VALUES``, ``EXPLAIN``) run on a connection opened ``mode=ro``, which cannot write. With
``durability="normal"``, writes run on a third connection (no autocheckpoint) while the
worker has no jobs, when the write appends to the WAL: then its commit syncs nothing
(see wal_index). Otherwise it rolls back and the worker runs it, so every fsync SQLite
makes is made on the worker; from CHECKPOINT_FRAMES on, an inline write also has the
worker checkpoint (PASSIVE: no write lock) while the loop's writes go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from ..errors import ConfigurationError, QueryError, UnavailableError
from .base import (
    Args,
    PlainArgs,
    Result,
    Statement,
    changes_connection,
    leading_keyword,
    normalize_batch,
    normalize_execute,
    reads_only,
)
from .sqlite_calls import result_of, run_batch, run_statement, translate_error
from .wal_index import WalIndex

Durability = Literal["normal", "full"]

DEFAULT_INLINE_BUDGET = 0.002
"""Seconds one read or write may run on the event loop before it moves to the worker."""

_CHECK_ON_WORKER = 1000
"""A batch of more statements than this is checked on the worker, not on the loop."""

_GROUP_LIMIT = 256
"""The most single statements one group commit takes."""

_SOLO_WORDS = frozenset({"PRAGMA", "VACUUM", "ATTACH", "DETACH", "REINDEX", "ANALYZE"})
"""Statements that must not run inside a transaction, so never join a group commit."""

_WORKER_WORDS = _SOLO_WORDS | {"CREATE", "DROP", "ALTER"}
"""Statements never run inline: those above, and schema changes, which SQLite parses
before its VM runs, where no progress handler can stop them (a schema of 40 statements
took 2.7 ms)."""

_PROGRESS_STEPS = 100
"""SQLite VM instructions between two looks at the inline deadline."""

_INLINE_MAX_VALUE = 256 * 1024
"""The longest string or blob (bytes) an inline read may load: reading one is a single VM
instruction that no progress handler can cut short (a 64 MiB blob holds the thread for
about 75 ms), so a longer one stops the read and sends it to the worker."""

_WAL_KEEP_BYTES = 16 * 1024 * 1024
"""journal_size_limit: when the WAL starts over, a file grown past this is cut back."""

_SLOW_LIMIT = 1024
"""The most statement lists remembered as stopped by the inline budget."""

_SLOW_STOPS = 2
"""Stops in a row after which a statement list always runs on the worker (one stop alone
may be the machine's doing: a thread preempted in the middle of a quick read)."""

_ON_WORKER = "SQLSTORE_ON_WORKER"
"""The code of an inline write that would make SQLite sync (see LocalClient._appends)."""

_HAND_OVER = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_INTERRUPT",
    "SQLITE_TOOBIG",
    "SQLITE_READONLY",
    _ON_WORKER,
)
"""Inline failures (error-name prefixes) that mean "let the worker do it": a lock, a call
past the budget or the value limit, recovery that the read-only connection may not do, or
a write that would sync."""


@dataclasses.dataclass(slots=True)
class _Job:
    kind: str
    loop: asyncio.AbstractEventLoop | None
    future: asyncio.Future[Any] | None
    sql: Any = None
    args: Any = None
    done: Callable[[], None] | None = None  # called on the loop once the worker is done


Outcome = tuple[Any, BaseException | None]


def _resolve(job: _Job, value: Any, error: BaseException | None) -> None:
    if job.done is not None:
        job.done()
    future = job.future
    if future is None or future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _answer(job: _Job, value: Any = None, error: BaseException | None = None) -> None:
    if job.loop is None:
        return
    with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
        job.loop.call_soon_threadsafe(_resolve, job, value, error)


@functools.lru_cache(maxsize=1024)
def _solo(sql: str) -> bool:
    """Whether a statement must run alone (see _SOLO_WORDS); cached, since domains reuse
    a few fixed texts."""
    return leading_keyword(sql) in _SOLO_WORDS


@functools.lru_cache(maxsize=1024)
def _worker_only(sql: str) -> bool:
    """Whether a statement always runs on the worker (see _WORKER_WORDS); cached."""
    return leading_keyword(sql) in _WORKER_WORDS


def _groupable(job: _Job) -> bool:
    return job.kind == "execute" and not _solo(job.sql) and not reads_only(job.sql)


def _read_only_url(database: str) -> str:
    """The same ``file:`` URL, opened read-only."""
    return f"{database}{'&' if '?' in database else '?'}mode=ro"


class LocalClient:
    """A sqlite3 database driven from asyncio: writes on a worker thread, short reads inline."""

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
        self._queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._pid = os.getpid()  # a forked child must not use this process's connections
        self._gone = False  # the worker thread has ended (closed, or died)
        self._conn: sqlite3.Connection | None = None  # the worker's
        self._reader: sqlite3.Connection | None = None  # read-only, for inline reads
        self._writer: sqlite3.Connection | None = None  # for inline writes (WAL, normal)
        self._wal_index: WalIndex | None = None  # SQLite's mapping, while the writer is open
        self._pending = 0  # jobs sent to the worker and not finished yet
        self._checkpointing = False  # a checkpoint asked for by inline writes is under way
        self._slow: dict[tuple[str, ...], int] = {}  # SQL stopped by the budget: stops in a row
        self._deadline = 0.0  # when the inline call under way must stop
        self._stopped = False  # whether the progress handler stopped it
        self._held = 0.0  # seconds of inline work since the last yield to the loop
        self.inline_calls = 0
        """How many calls ran on the event loop (the rest went to the worker)."""
        self.inline_writes = 0
        """How many of those wrote."""
        self.worker_calls = 0
        """How many calls went to the worker thread."""

    def __repr__(self) -> str:
        return f"LocalClient({self.database!r}, durability={self.durability!r})"

    # -- lifecycle -------------------------------------------------------------------

    async def open(self) -> LocalClient:
        """Start the worker thread and open the connections on it."""
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
            self._queue.put(_Job("close", None, None))
            raise
        return self

    async def close(self) -> None:
        """Close the connections and stop the worker thread; safe to call twice. (In a
        forked child, only forget them: they belong to the parent.)"""
        if self._closed or self._thread is None or self._forked():
            self._closed = True
            return
        self._closed = True
        self._stop_inline()  # the writer is closed on the worker, before its connection
        with contextlib.suppress(UnavailableError):
            await self._submit("close")

    async def __aenter__(self) -> LocalClient:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- public calls -----------------------------------------------------------------

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement in its own transaction (inline, or on the worker)."""
        self._forked(check=True)
        plain = normalize_execute(sql, args)
        results = self._inline((sql,), [(sql, plain)], not reads_only(sql))
        if results is not None:
            if self._held >= self.inline_budget:
                await self._share_loop()
            return results[0]
        answer: Result = await self._submit("execute", sql, plain)
        return answer

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run all statements in one transaction, in one go."""
        self._forked(check=True)
        if type(statements) is list and len(statements) > _CHECK_ON_WORKER:
            # Checking 10,000 statements' values takes several ms: the worker does it,
            # before the batch runs, so bad input still raises before any I/O.
            large: list[Result] = await self._submit("unchecked batch", list(statements))
            return large
        checked = normalize_batch(statements)
        if not checked:
            return []
        key = tuple([s for s, _ in checked])
        results = self._inline(key, checked, not all(map(reads_only, key)))
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
        if self._thread is None:
            raise UnavailableError("the client is not open; call open() or use connect()")
        if self._gone or (self._closed and kind not in ("open", "close")):
            raise UnavailableError("the client is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if kind in ("execute", "batch", "unchecked batch"):
            self.worker_calls += 1
        self._pending += 1
        self._queue.put(_Job(kind, loop, future, sql, args, self._job_done))
        if self._gone:  # the worker ended meanwhile: nobody would answer
            self._fail_pending()
        return future

    # -- inline calls (event loop thread) ----------------------------------------------

    def _inline(
        self, key: tuple[str, ...], statements: list[tuple[str, PlainArgs]], write: bool
    ) -> list[Result] | None:
        """The statements' results from an inline connection (reads from the reader, writes
        from the writer in one transaction), or None when the worker must run them (see
        _HAND_OVER). Other errors are the caller's."""
        conn = self._reader
        if write:
            if any(map(changes_connection, key)):
                self._stop_inline()  # for good: the inline connections would not share it
                return None
            # Writes never overtake the worker's jobs; PRAGMAs and DDL are the worker's.
            conn = None if self._pending or any(map(_worker_only, key)) else self._writer
        if conn is None or self._slow.get(key, 0) >= _SLOW_STOPS:
            return None
        start = time.perf_counter()
        self._deadline = start + self.inline_budget
        self._stopped = False
        try:
            if write:
                results = run_batch(conn, statements, appends=self._appends)
            elif len(statements) == 1:
                results = [run_statement(conn, *statements[0])]
            else:
                results = run_batch(conn, statements)
        except QueryError as exc:
            code = exc.code or ""
            if code == "SQLITE_INTERRUPT" and not self._stopped:
                # The progress handler raised (Ctrl-C) and sqlite3 swallowed it.
                raise KeyboardInterrupt from None
            if not code.startswith(_HAND_OVER):
                raise
            if code == "SQLITE_INTERRUPT":
                if len(self._slow) >= _SLOW_LIMIT:
                    self._slow.clear()
                self._slow[key] = self._slow.get(key, 0) + 1
            return None
        finally:
            self._held += time.perf_counter() - start
        if self._slow:
            self._slow.pop(key, None)  # quick this time: its stops are no longer in a row
        self.inline_calls += 1
        if write:
            self.inline_writes += 1
            if not self._checkpointing and self._wal_index and self._wal_index.wants_checkpoint():
                self._checkpointing = True  # the worker checkpoints while writes go on
                loop = asyncio.get_running_loop()
                self._queue.put(_Job("checkpoint", loop, None, done=self._checkpoint_done))
        return results

    def _appends(self) -> None:
        """Raise (and so roll back, and hand over to the worker) unless the inline write
        under way appends to the WAL, where its commit syncs nothing (see wal_index)."""
        assert self._wal_index is not None
        if not self._wal_index.appends():
            raise QueryError("the write would sync: the worker runs it", code=_ON_WORKER)

    def _job_done(self) -> None:
        """The worker finished a job (called on the loop)."""
        self._pending -= 1

    def _checkpoint_done(self) -> None:
        """The worker finished a checkpoint asked for by inline writes (on the loop)."""
        self._checkpointing = False

    def _stop_inline(self) -> None:
        """Run every later call on the worker: close the reader, and have the worker close
        the writer (closing may checkpoint, which syncs)."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()  # read-only: no checkpoint, no sync
        writer, self._writer = self._writer, None
        self._wal_index = None  # SQLite unmaps it when the last connection closes
        if writer is not None and not self._gone:
            self._queue.put(_Job("call", None, None, lambda _: writer.close()))

    def _past_deadline(self) -> bool:
        """The inline connections' progress handler: stop an inline call past its
        deadline."""
        self._stopped = time.perf_counter() > self._deadline
        return self._stopped

    async def _share_loop(self) -> None:
        """Yield to the event loop: ``inline_budget`` of inline work has piled up. (Callers
        test that first: a coroutine call per inline call would cost the hot path.)"""
        self._held = 0.0
        await asyncio.sleep(0)

    # -- worker thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._gone = True
            self._reader = self._writer = None
            self._fail_pending()

    def _fail_pending(self) -> None:
        """Answer every job still queued with UnavailableError (the worker has ended)."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            _answer(job, error=UnavailableError("the local worker thread has stopped"))

    def _serve(self) -> None:
        carry: _Job | None = None
        while True:
            job = carry if carry is not None else self._queue.get()
            carry = None
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
            try:
                outcomes = [self._do(job)] if len(group) == 1 else self._group_commit(group)
            except BaseException:
                for member in [*group, carry] if carry is not None else group:
                    _answer(member, error=UnavailableError("the local worker thread died"))
                raise
            for member, (value, error) in zip(group, outcomes, strict=True):
                _answer(member, value, error)
            if job.kind == "close":
                return

    def _do(self, job: _Job) -> Outcome:
        try:
            if job.kind == "execute":
                value: Any = run_statement(self._connection(), job.sql, job.args)
            elif job.kind == "batch":
                value = run_batch(self._connection(), job.sql)
            elif job.kind == "unchecked batch":
                value = run_batch(self._connection(), normalize_batch(job.sql))
            elif job.kind == "call":
                value = job.sql(self._connection())
            elif job.kind == "checkpoint":  # copies frames, syncs; takes no write lock
                value = self._connection().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
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
            return None, translate_error(exc, job.sql if isinstance(job.sql, str) else None)
        return value, None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise UnavailableError("the connection is closed")
        return self._conn

    def _open(self) -> None:
        uri = self.database.startswith("file:")
        try:
            conn = sqlite3.connect(
                self.database,
                uri=uri,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=512,
            )
        except sqlite3.Error as exc:
            raise ConfigurationError(f"cannot open {self.database!r}: {exc}") from None
        # Turning a fresh file into WAL takes an exclusive lock, and SQLite answers "locked"
        # at once (without waiting) to one of two connections that both try: retry then.
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                wal = self._set_up(conn)
                break
            except sqlite3.Error as exc:
                locked = str(getattr(exc, "sqlite_errorname", "")).startswith("SQLITE_BUSY")
                if locked and time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
                conn.close()
                raise UnavailableError(f"cannot set up {self.database!r}: {exc}") from None
        self._conn = conn
        if wal and uri and self.inline_budget > 0:
            self._reader = self._inline_connection(_read_only_url(self.database))
            if self._reader is not None and self.durability == "normal":
                self._open_writer()
            for inline in (self._reader, self._writer):  # (not while they are set up)
                if inline is not None:
                    inline.set_progress_handler(self._past_deadline, _PROGRESS_STEPS)

    def _inline_connection(self, url: str) -> sqlite3.Connection | None:
        """A connection for calls on the event loop: it never waits for a lock (the worker
        does), and stops at the inline budget or a value over _INLINE_MAX_VALUE."""
        try:
            conn = sqlite3.connect(  # opened here, used on the event loop thread
                url,
                uri=True,
                timeout=0,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=512,
            )
        except sqlite3.Error:
            return None  # then those calls go to the worker
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _INLINE_MAX_VALUE)
        return conn

    def _open_writer(self) -> None:
        """Open the inline writer and find the WAL index. The writer holds the WAL open from
        its first read on, so no one can take the database out of WAL mode, and SQLite
        keeps the WAL index mapped, until it closes."""
        writer = self._inline_connection(self.database)
        if writer is None:
            return
        try:
            for pragma in ("foreign_keys = ON", "synchronous = NORMAL", "wal_autocheckpoint = 0"):
                writer.execute(f"PRAGMA {pragma}")  # checkpoints are the worker's
            path = writer.execute("PRAGMA database_list").fetchone()[2]
            writer.execute("SELECT 1 FROM sqlite_schema LIMIT 1").fetchall()  # a read
            frames = _WAL_KEEP_BYTES // (writer.execute("PRAGMA page_size").fetchone()[0] + 24)
            if writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal" and path:
                self._wal_index = WalIndex.find(f"{path}-shm", frames)
        except (sqlite3.Error, OSError):
            pass
        if self._wal_index is None:
            writer.close()
        else:
            self._writer = writer

    def _set_up(self, conn: sqlite3.Connection) -> bool:
        """The connection's settings (each idempotent, so a retry is safe); whether the
        database is in WAL mode."""
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        if mode != "memory":
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if not str(getattr(exc, "sqlite_errorname", "")).startswith("SQLITE_READONLY"):
                    raise  # (a read-only file keeps the mode it has)
        conn.execute(f"PRAGMA synchronous = {'FULL' if self.durability == 'full' else 'NORMAL'}")
        # When the WAL starts over, a file grown past _WAL_KEEP_BYTES is cut back to it.
        conn.execute(f"PRAGMA journal_size_limit = {_WAL_KEEP_BYTES}")
        return bool(mode == "wal")

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
                    result = result_of(conn.execute(job.sql, job.args))
                    conn.execute("RELEASE sqlstore_group")
                    outcomes.append((result, None))
                except BaseException as exc:
                    if not conn.in_transaction:
                        # SQLite abandoned the whole transaction: redo each statement alone.
                        return [self._do(member) for member in group]
                    conn.execute("ROLLBACK TO sqlstore_group")
                    conn.execute("RELEASE sqlstore_group")
                    outcomes.append((None, translate_error(exc, job.sql)))
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            error = translate_error(exc)
            return [(None, error) for _ in group]
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
