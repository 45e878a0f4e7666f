"""Feedback: ratings (1-5), comments and corrections on a thread, a message or an agent.

Lists are newest first, keyset paged on ``(created_at, id)`` and served by one index per
filter (thread, user, agent, or none).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, NotFoundError, QueryError, ValidationError
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

FEEDBACK_COLUMNS = (
    "id, thread_id, message_id, user_id, agent_id, rating, comment, correction, query, "
    "response, metadata, created_at"
)
MAX_TEXT_LENGTH = 1_000_000

# An id already stored inserts nothing; the stored row, read in the same batch, tells an
# idempotent retry (identical content: answered with the stored row) from a conflict.
_ADD = f"""INSERT INTO feedback ({FEEDBACK_COLUMNS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (id) DO NOTHING
    RETURNING {FEEDBACK_COLUMNS}"""

_GET = f"SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE id = ?"


@dataclass(frozen=True, slots=True)
class Feedback:
    """A stored piece of feedback."""

    id: str
    thread_id: str | None
    message_id: str | None
    user_id: str | None
    agent_id: str | None
    rating: int | None
    comment: str | None
    correction: str | None
    query: str | None
    response: str | None
    metadata: dict[str, Any]
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        """The feedback as a plain dict."""
        return {name: getattr(self, name) for name in self.__slots__}


def feedback_from_row(row: Sequence[Any]) -> Feedback:
    """Decode a row selected with FEEDBACK_COLUMNS."""
    return Feedback(
        id=row[0],
        thread_id=row[1],
        message_id=row[2],
        user_id=row[3],
        agent_id=row[4],
        rating=row[5],
        comment=row[6],
        correction=row[7],
        query=row[8],
        response=row[9],
        metadata=loads(row[10], {}),
        created_at=row[11],
    )


def _rating(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
        raise ValidationError(f"rating must be an integer from 1 to 5 or None, not {value!r}")
    return value


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be a string or None, not {type(value).__name__}")
    if len(value) > MAX_TEXT_LENGTH:
        raise ValidationError(f"{name} is longer than {MAX_TEXT_LENGTH} characters")
    return value


class FeedbackStore:
    """Feedback on threads, messages and agents (``store.feedback``)."""

    def __init__(self, store: Executor) -> None:
        self._store = store

    async def add(
        self,
        *,
        thread_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        rating: int | None = None,
        comment: str | None = None,
        correction: str | None = None,
        query: str | None = None,
        response: str | None = None,
        metadata: dict[str, Any] | None = None,
        message_id: str | None = None,
        feedback_id: str | None = None,
        created_at: int | None = None,
    ) -> Feedback:
        """Store one piece of feedback. A missing thread is a NotFoundError.

        With ``feedback_id`` (the ``add`` rule): an id already stored with the same content
        (every field; ``created_at`` too when given) is an idempotent retry answered with
        the stored row; with other content it is a ConflictError, and nothing changes.
        """
        args = (
            require_id("feedback_id", feedback_id) if feedback_id is not None else new_id(),
            optional_id("thread_id", thread_id),
            optional_id("message_id", message_id),
            optional_id("user_id", user_id),
            optional_id("agent_id", agent_id),
            _rating(rating),
            _text("comment", comment),
            _text("correction", correction),
            _text("query", query),
            _text("response", response),
            dumps(require_dict("metadata", metadata), "metadata"),
            now_ms() if created_at is None else require_time("created_at", created_at),
        )
        try:
            # The stored row is read in the same batch, also for an id made here: a write
            # re-sent after its first answer was lost finds the row it made.
            added, stored = await self._store.batch([(_ADD, args), (_GET, (args[0],))])
        except QueryError as exc:
            if thread_id is not None and "FOREIGN" in f"{exc} {exc.code}".upper():
                raise NotFoundError(f"no thread {thread_id!r}") from exc
            raise
        if added.values:
            return feedback_from_row(added.values[0])
        kept = stored.values[0]
        same = tuple(kept[1:11]) == args[1:11] and (created_at is None or kept[11] == args[11])
        if not same:
            raise ConflictError(
                f"feedback {args[0]!r} is already stored with other content; nothing changed"
            )
        return feedback_from_row(kept)

    async def list(
        self,
        *,
        thread_id: str | None = None,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 50,
        before: Feedback | tuple[int, str] | None = None,
    ) -> list[Feedback]:
        """Feedback newest first, filtered by thread, user and/or agent.

        Pass the last one as ``before`` for the next page.
        """
        filters = (
            ("thread_id", optional_id("thread_id", thread_id)),
            ("user_id", optional_id("user_id", user_id)),
            ("agent_id", optional_id("agent_id", agent_id)),
        )
        limit = require_limit(limit)
        cursor = keyset_cursor(before, Feedback, "created_at")
        sql, args = newest_first_page(
            f"SELECT {FEEDBACK_COLUMNS} FROM feedback", "created_at", filters, cursor, limit
        )
        bound: Args = args
        return [feedback_from_row(r) for r in (await self._store.execute(sql, bound)).values]
