"""Approvals: suspended states awaiting a human, each with a time to live.

An expired approval is never returned, even before ``cleanup_expired`` deletes it: every
read filters ``expires_at > now`` in SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, QueryError, ValidationError
from .common import (
    dumps,
    keyset_cursor,
    loads,
    new_id,
    newest_first_page,
    now_ms,
    optional_id,
    require_dict,
    require_id,
    require_limit,
    require_time,
)

if TYPE_CHECKING:
    from ..drivers import Args, Executor

DEFAULT_TTL = timedelta(days=7)
"""How long an approval lives unless the caller says otherwise."""

APPROVAL_COLUMNS = "id, thread_id, agent_id, user_id, node, state, metadata, created_at, expires_at"

# Saving an id again replaces its state and refreshes its expiry; created_at is kept.
_SAVE = f"""INSERT INTO approvals ({APPROVAL_COLUMNS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO UPDATE SET
        thread_id = excluded.thread_id, agent_id = excluded.agent_id,
        user_id = excluded.user_id, node = excluded.node, state = excluded.state,
        metadata = excluded.metadata, expires_at = excluded.expires_at
    RETURNING {APPROVAL_COLUMNS}"""

_GET = f"SELECT {APPROVAL_COLUMNS} FROM approvals WHERE id = ? AND expires_at > ?"
_DELETE = "DELETE FROM approvals WHERE id = ? RETURNING id"
_CLEANUP = "DELETE FROM approvals WHERE expires_at <= ? RETURNING id"


@dataclass(frozen=True, slots=True)
class Approval:
    """A suspended state awaiting approval; ``state`` is the JSON value saved."""

    id: str
    thread_id: str | None
    agent_id: str | None
    user_id: str | None
    node: str | None
    state: Any
    metadata: dict[str, Any]
    created_at: int
    expires_at: int

    def to_dict(self) -> dict[str, Any]:
        """The approval as a plain dict."""
        return {name: getattr(self, name) for name in self.__slots__}


def approval_from_row(row: Sequence[Any]) -> Approval:
    """Decode a row selected with APPROVAL_COLUMNS."""
    return Approval(
        id=row[0],
        thread_id=row[1],
        agent_id=row[2],
        user_id=row[3],
        node=row[4],
        state=loads(row[5]),
        metadata=loads(row[6], {}),
        created_at=row[7],
        expires_at=row[8],
    )


def ttl_ms(ttl: Any) -> int:
    """A time to live (timedelta or seconds, > 0) in milliseconds, or a ValidationError."""
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, int | float) and not isinstance(ttl, bool):
        seconds = float(ttl)
    else:
        raise ValidationError(f"ttl must be a timedelta or seconds, not {ttl!r}")
    if not seconds > 0 or seconds > 100 * 365 * 86400:
        raise ValidationError(f"ttl must be positive and under 100 years, not {ttl!r}")
    return max(1, int(seconds * 1000))


class ApprovalStore:
    """Suspended states with a TTL (``store.approvals``)."""

    def __init__(self, store: Executor) -> None:
        self._store = store

    async def save(
        self,
        state: Any,
        *,
        approval_id: str | None = None,
        thread_id: str | None = None,
        agent_id: str | None = None,
        user_id: str | None = None,
        node: str | None = None,
        metadata: dict[str, Any] | None = None,
        ttl: timedelta | float = DEFAULT_TTL,
    ) -> Approval:
        """Save (or replace) a suspended state that expires ``ttl`` from now (7 days).

        A missing thread is a NotFoundError.
        """
        now = now_ms()
        args = (
            require_id("approval_id", approval_id) if approval_id is not None else new_id(),
            optional_id("thread_id", thread_id),
            optional_id("agent_id", agent_id),
            optional_id("user_id", user_id),
            optional_id("node", node),
            dumps(state, "state"),
            dumps(require_dict("metadata", metadata), "metadata"),
            now,
            now + ttl_ms(ttl),
        )
        try:
            row = (await self._store.execute(_SAVE, args)).first()
        except QueryError as exc:
            if thread_id is not None and "FOREIGN" in f"{exc} {exc.code}".upper():
                raise NotFoundError(f"no thread {thread_id!r}") from exc
            raise
        assert row is not None  # an upsert with RETURNING answers one row
        return approval_from_row(row)

    async def get(self, approval_id: str) -> Approval | None:
        """One approval that has not expired, or None."""
        aid = require_id("approval_id", approval_id)
        row = (await self._store.execute(_GET, (aid, now_ms()))).first()
        return None if row is None else approval_from_row(row)

    async def list(
        self,
        *,
        thread_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 50,
        before: Approval | tuple[int, str] | None = None,
    ) -> list[Approval]:
        """Approvals not yet expired, newest first; the last one as ``before`` pages on."""
        filters = (
            ("thread_id", optional_id("thread_id", thread_id)),
            ("agent_id", optional_id("agent_id", agent_id)),
        )
        limit = require_limit(limit)
        cursor = keyset_cursor(before, Approval, "created_at")
        sql, args = newest_first_page(
            f"SELECT {APPROVAL_COLUMNS} FROM approvals",
            "created_at",
            filters,
            cursor,
            limit,
            where=["expires_at > ?"],  # an expired approval is never listed
            args=[now_ms()],
        )
        bound: Args = args
        return [approval_from_row(r) for r in (await self._store.execute(sql, bound)).values]

    async def delete(self, approval_id: str) -> bool:
        """Delete an approval (expired or not); False when there was none."""
        aid = require_id("approval_id", approval_id)
        return bool((await self._store.execute(_DELETE, (aid,))).rows)

    async def cleanup_expired(self, *, now: int | None = None) -> int:
        """Delete every expired approval; the number deleted."""
        cutoff = now_ms() if now is None else require_time("now", now)
        return len((await self._store.execute(_CLEANUP, (cutoff,))).rows)


Approvals = ApprovalStore
"""The older name of ``ApprovalStore`` (every domain API class is ``<Item>Store``)."""
