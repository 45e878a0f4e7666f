"""Store: owns a client, keeps the schema current, and hosts the domain APIs."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .domains.common import now_ms
from .drivers import Args, Client, Result, Statement, backend_of, connect, redact_url
from .errors import OutcomeUnknownError, QueryError, SqlStoreError, UnavailableError
from .migrations import MIGRATIONS, SCHEMA_VERSION, schema_statements

if TYPE_CHECKING:
    from .domains.approvals import Approvals
    from .domains.checkpoints import Checkpoints
    from .domains.conversations import Conversations
    from .domains.feedback import FeedbackStore
    from .domains.teams import TeamStore
    from .domains.threads import Threads

DEFAULT_URL = "file:sqlstore.db"

RESENDS = 3
"""How many times ``Store.execute`` / ``batch`` send again a write whose answer was lost."""

_RECORD_VERSION = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"


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
        **options: Any,
    ) -> None:
        self.backend = backend_of(url)  # a bad URL fails here, before any I/O
        self._url = url
        self._auth_token = auth_token
        self._options = options
        self._client: Client | None = None

    def __repr__(self) -> str:
        url = redact_url(self._url) if isinstance(self._url, str) else type(self._url).__name__
        return f"Store({url!r}, backend={self.backend!r})"

    @property
    def client(self) -> Client:
        """The open driver client (raises if the store is not initialized)."""
        if self._client is None:
            raise UnavailableError("the store is not initialized; await store.initialize()")
        return self._client

    async def initialize(self) -> Store:
        """Open the client and apply schema.sql and pending migrations; idempotent."""
        if self._client is None:
            self._client = await connect(self._url, auth_token=self._auth_token, **self._options)
        await migrate(self._client)
        return self

    async def close(self) -> None:
        """Close the client; safe to call twice."""
        if self._client is not None:
            client, self._client = self._client, None
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
        """Run one statement on the store's client: the executor every domain uses.

        A write whose answer was lost (OutcomeUnknownError) is sent again, up to
        RESENDS times: the domains' writes are idempotent by id and report what a re-sent
        write found. Run a write that must never apply twice (``n = n + 1``) on
        ``store.client``, which raises OutcomeUnknownError instead.
        """
        for _ in range(RESENDS):
            try:
                return await self.client.execute(sql, args)
            except OutcomeUnknownError:
                pass
        return await self.client.execute(sql, args)

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run statements atomically on the store's client; a batch whose answer was lost
        is sent again, as in ``execute``."""
        for _ in range(RESENDS):
            try:
                return await self.client.batch(statements)
            except OutcomeUnknownError:
                pass
        return await self.client.batch(statements)

    # Domain APIs are attached below, one lazily built property per domain.

    @property
    def threads(self) -> Threads:
        """Threads, messages, forks and lineage (see domains.threads)."""
        api = self.__dict__.get("_threads")
        if api is None:
            from .domains.threads import Threads

            api = self.__dict__["_threads"] = Threads(self)
        return api

    @property
    def feedback(self) -> FeedbackStore:
        """Ratings, comments and corrections (see domains.feedback)."""
        api = self.__dict__.get("_feedback")
        if api is None:
            from .domains.feedback import FeedbackStore

            api = self.__dict__["_feedback"] = FeedbackStore(self)
        return api

    @property
    def approvals(self) -> Approvals:
        """Suspended states awaiting approval, with a TTL (see domains.approvals)."""
        api = self.__dict__.get("_approvals")
        if api is None:
            from .domains.approvals import Approvals

            api = self.__dict__["_approvals"] = Approvals(self)
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
    def conversations(self) -> Conversations:
        """Conversation history per (user, session, agent): saves, trimming, reads."""
        api = self.__dict__.get("_conversations")
        if api is None:
            from .domains.conversations import Conversations

            api = self.__dict__["_conversations"] = Conversations(self)
        return api

    @property
    def teams(self) -> TeamStore:
        """Team persistence: teams, sessions, runs, messages; import / export (domains.teams)."""
        api = self.__dict__.get("_teams")
        if api is None:
            from .domains.teams import TeamStore

            api = self.__dict__["_teams"] = TeamStore(self)
        return api

    @property
    def checkpoints(self) -> Checkpoints:
        """Generic checkpoints: save, get, list, delete_thread (see domains.checkpoints)."""
        api = self.__dict__.get("_checkpoints")
        if api is None:
            from .domains.checkpoints import Checkpoints

            api = self.__dict__["_checkpoints"] = Checkpoints(self)
        return api

    async def schema_version(self) -> int:
        """The schema version recorded in the database (0 when it has none)."""
        return await schema_version(self.client)

    async def health_check(self) -> dict[str, Any]:
        """Backend, round-trip latency in milliseconds and schema version."""
        start = time.perf_counter()
        try:
            version = await schema_version(self.client)
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
    version = (await client.execute("SELECT max(version) FROM schema_migrations")).scalar()
    return int(version) if isinstance(version, int) else 0


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
