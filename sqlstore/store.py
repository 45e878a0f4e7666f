"""Store: owns a client, keeps the schema current, and hosts the domain APIs."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from .clock import now_ms
from .domains.approvals import ApprovalStore
from .domains.checkpoints import CheckpointStore
from .domains.conversations import ConversationStore
from .domains.feedback import FeedbackStore
from .domains.teams import TeamStore
from .domains.threads import ThreadStore
from .drivers import Args, Client, Result, Statement, backend_of, connect, redact_url
from .errors import (
    ConfigurationError,
    OutcomeUnknownError,
    QueryError,
    SqlStoreError,
    UnavailableError,
)
from .migrations import MIGRATIONS, SCHEMA_VERSION, owned_names, schema_statements
from .retention import PruneResult, Retention, check_policy
from .space import prepare_new_database

DEFAULT_URL = "file:sqlstore.db"

RESENDS = 3
"""How many times ``Store.resending`` sends again a write whose answer was lost."""

_RECORD_VERSION = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"


class Resending:
    """The executor the domains and adapters write through: the store's client, except that
    a write whose answer was lost (OutcomeUnknownError) is sent again, up to RESENDS times.
    Only for writes that are idempotent by id and report what a re-sent write found (every
    domain verb, the adapters' writes, retention's deletes); raw SQL goes through
    ``Store.execute`` / ``Store.batch``, which never send a write twice."""

    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def client(self) -> Client:
        """The store's client (opened by ``Store.initialize``)."""
        return self._store.client

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement; a lost answer re-sends it (see the class)."""
        return await _resent(lambda: self.client.execute(sql, args))

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run statements atomically; a lost answer re-sends them (see the class)."""
        return await _resent(lambda: self.client.batch(statements))


_T = TypeVar("_T")


async def _resent(send: Callable[[], Awaitable[_T]]) -> _T:
    """``send()``, sent again while its answer is lost (OutcomeUnknownError), at most
    RESENDS more times."""
    for _ in range(RESENDS):
        try:
            return await send()
        except OutcomeUnknownError:
            pass
    return await send()


class Store:
    """An async store on one database.

    ``Store(url)`` only records its settings: ``await store.initialize()`` (or
    ``async with Store(url) as store``) opens the client and brings the schema up to date.
    """

    def __init__(
        self,
        url: Any = DEFAULT_URL,
        *,
        auth_token: str | None = None,
        retention: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.backend = backend_of(url)  # a bad URL fails here, before any I/O
        if retention is not None:
            check_policy(retention)  # a bad policy fails here too
        self._retention_policy = retention
        self._url = url
        self._auth_token = auth_token
        self._options = options
        self._client: Client | None = None
        self._opening: asyncio.Lock | None = None  # one initialize() opens at a time
        self._migrated = False
        self._closed = False
        self._pid = os.getpid()
        self.resending = Resending(self)
        """The executor the domains and adapters write through (see Resending)."""

    def __repr__(self) -> str:
        url = redact_url(self._url) if isinstance(self._url, str) else type(self._url).__name__
        return f"Store({url!r}, backend={self.backend!r})"

    @property
    def client(self) -> Client:
        """The open driver client (UnavailableError before ``initialize()``, after
        ``close()``, and in a process forked from the one that opened it)."""
        client = self._client
        if client is None or self._forked():
            raise UnavailableError(self._why_unavailable())
        return client

    def _forked(self) -> bool:
        """Whether this process is a fork of the one that opened the client (a store made
        but not opened before a fork opens in the child as usual)."""
        return self._client is not None and self._pid != os.getpid()

    def _why_unavailable(self) -> str:
        if self._forked():
            return (
                "this store was opened by process "
                f"{self._pid}; a forked child cannot use its parent's connection: "
                "make a new Store in the child"
            )
        if self._closed:
            return "the store is closed; make a new Store to open the database again"
        return "the store is not initialized; await store.initialize()"

    async def initialize(self) -> Store:
        """Open the client and apply schema.sql and pending migrations; idempotent, and
        concurrent calls share one client. A closed store stays closed (UnavailableError)."""
        if self._closed or self._forked():
            raise UnavailableError(self._why_unavailable())
        if self._migrated:
            return self
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self._client is None:
                client = await connect(self._url, auth_token=self._auth_token, **self._options)
                if self._closed:  # close() was called while the client was opening
                    await client.close()
                    raise UnavailableError(self._why_unavailable())
                self._client, self._pid = client, os.getpid()
            if not self._migrated:
                await migrate(self.client)
                self._migrated = True
        return self

    async def close(self) -> None:
        """Close the client; safe to call twice. Every later call raises UnavailableError.

        In a forked child the inherited client is dropped, not closed: its connection and
        worker belong to the parent."""
        self._closed = True
        forked = self._forked()
        client, self._client = self._client, None
        if client is not None and not forked:
            await client.close()

    async def __aenter__(self) -> Store:
        try:
            return await self.initialize()
        except BaseException:
            await self.close()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement on the store's client, as it is: a write whose answer was lost
        raises OutcomeUnknownError and is never sent twice (the domains write through
        ``store.resending`` instead; see Resending)."""
        return await self.client.execute(sql, args)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run statements atomically on the store's client, as it is (see ``execute``)."""
        return await self.client.batch(statements)

    # Domain APIs are attached below, one lazily built property per domain. Their modules
    # are imported with this one, not on first use: a first import runs their module code
    # (dataclasses, compiled statements) for about 10 ms, which would then hold the event
    # loop in the middle of an application's work (bench_loop_lag's first save).

    @property
    def threads(self) -> ThreadStore:
        """Threads, messages, forks and lineage (see domains.threads)."""
        api = self.__dict__.get("_threads")
        if api is None:
            api = self.__dict__["_threads"] = ThreadStore(self.resending)
        return api

    @property
    def feedback(self) -> FeedbackStore:
        """Ratings, comments and corrections (see domains.feedback)."""
        api = self.__dict__.get("_feedback")
        if api is None:
            api = self.__dict__["_feedback"] = FeedbackStore(self.resending)
        return api

    @property
    def approvals(self) -> ApprovalStore:
        """Suspended states awaiting approval, with a TTL (see domains.approvals)."""
        api = self.__dict__.get("_approvals")
        if api is None:
            api = self.__dict__["_approvals"] = ApprovalStore(self.resending)
        return api

    async def stats(self) -> dict[str, int]:
        """Row counts of threads, messages, feedback and live (unexpired) approvals."""
        row = (
            await self.client.execute(
                """SELECT (SELECT count(*) FROM threads), (SELECT count(*) FROM messages),
                (SELECT count(*) FROM feedback),
                (SELECT count(*) FROM approvals WHERE expires_at > ?)""",
                (now_ms(),),
            )
        ).first()
        assert row is not None
        return {"threads": row[0], "messages": row[1], "feedback": row[2], "approvals": row[3]}

    @property
    def conversations(self) -> ConversationStore:
        """Conversation history per (user, session, agent): saves, trimming, reads."""
        api = self.__dict__.get("_conversations")
        if api is None:
            api = self.__dict__["_conversations"] = ConversationStore(self.resending)
        return api

    @property
    def teams(self) -> TeamStore:
        """Team persistence: teams, sessions, runs, messages; import / export (domains.teams)."""
        api = self.__dict__.get("_teams")
        if api is None:
            api = self.__dict__["_teams"] = TeamStore(self.resending)
        return api

    @property
    def checkpoints(self) -> CheckpointStore:
        """Generic checkpoints: save, get, list, delete_thread (see domains.checkpoints)."""
        api = self.__dict__.get("_checkpoints")
        if api is None:
            api = self.__dict__["_checkpoints"] = CheckpointStore(self.resending)
        return api

    @property
    def retention(self) -> Retention:
        """Pruning by age / newest N / TTL in bounded batches (see sqlstore.retention)."""
        api = self.__dict__.get("_retention")
        if api is None:
            api = self.__dict__["_retention"] = Retention(self.resending, self._retention_policy)
        return api

    async def prune(self, *, dry_run: bool = False) -> PruneResult:
        """Apply the retention policy given as ``Store(url, retention={...})``."""
        return await self.retention.run(dry_run=dry_run)

    async def schema_version(self) -> int:
        """The schema version recorded in the database (0 when it has none)."""
        return await schema_version(self.client)

    async def health_check(self) -> dict[str, Any]:
        """Backend, round-trip latency in milliseconds and schema version."""
        client = self.client  # a closed store raises, like every other call
        start = time.perf_counter()
        try:
            version = await schema_version(client)
        except SqlStoreError as exc:
            return {"ok": False, "backend": self.backend, "error": str(exc)}
        latency = (time.perf_counter() - start) * 1000
        return {
            "ok": version == SCHEMA_VERSION,
            "backend": self.backend,
            "latency_ms": round(latency, 3),
            "schema_version": version,
            "expected_schema_version": SCHEMA_VERSION,
        }


async def schema_version(client: Client) -> int:
    """The highest version in schema_migrations, or 0 for a database without one."""
    found = await client.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
    )
    if not found.scalar():
        return 0
    try:  # every column of sqlstore's own table: another tool's schema_migrations fails here
        version = (
            await client.execute(
                "SELECT max(version), count(name), count(applied_at) FROM schema_migrations"
            )
        ).scalar()
    except QueryError:
        return 0  # not sqlstore's table: migrate() names it and changes nothing
    return int(version) if isinstance(version, int) else 0


async def _foreign_names(client: Client) -> list[tuple[str, str]]:
    """``(type, name)`` of every table, index, view or trigger in the database whose name
    schema.sql uses (see ``migrations.owned_names``)."""
    names = owned_names()
    result = await client.execute(
        f"SELECT type, name FROM sqlite_master WHERE name IN ({', '.join('?' * len(names))})"
        " ORDER BY type DESC, name",
        names,
    )
    return [(str(r[0]), str(r[1])) for r in result.rows]


def _is_version_conflict(exc: QueryError) -> bool:
    text = f"{exc} {exc.code}".upper()
    return "UNIQUE" in text or "CONSTRAINT" in text or "PRIMARY KEY" in text


async def migrate(client: Client) -> int:
    """Bring the database to SCHEMA_VERSION; safe when several processes do it at once.

    Each step is one atomic batch that claims its version number first, so a racing
    initializer's batch fails on that primary key, rolls back whole, and re-reads.
    """
    for _ in range(SCHEMA_VERSION + 10):
        version = await schema_version(client)
        if version >= SCHEMA_VERSION:
            if version > SCHEMA_VERSION:
                raise SqlStoreError(
                    f"the database is at schema version {version}, newer than this "
                    f"sqlstore ({SCHEMA_VERSION}); upgrade sqlstore"
                )
            return version
        if version == 0:
            foreign = await _foreign_names(client)
            if foreign:
                if await schema_version(client) > 0:
                    continue  # a racing initializer made the schema meanwhile
                raise ConfigurationError(
                    "the database already holds "
                    + ", ".join(f"{kind} {name!r}" for kind, name in foreign)
                    + ", not created by sqlstore; sqlstore never adopts a table it did "
                    "not create: use a database (or a name) of its own. Nothing was changed."
                )
            await prepare_new_database(client)  # incremental vacuum, where the engine has it
            statements = schema_statements()
            steps: list[Statement] = [
                statements[0],  # CREATE TABLE schema_migrations
                (_RECORD_VERSION, (SCHEMA_VERSION, "schema.sql", now_ms())),
                *statements[1:],
            ]
        else:
            name, sqls = MIGRATIONS[version + 1]
            steps = [(_RECORD_VERSION, (version + 1, name, now_ms())), *sqls]
        try:
            await client.batch(steps)
        except QueryError as exc:
            # Lost the race for this version: another initializer applied it. Anything
            # else (or a conflict with no progress behind it) is a real failure.
            if not _is_version_conflict(exc) or await schema_version(client) == version:
                raise
    raise SqlStoreError("the schema could not be brought up to date")  # pragma: no cover
