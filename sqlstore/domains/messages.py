"""Messages of a thread: the shared SQL every conversation-shaped domain builds on.

A thread's messages have a per-thread ``seq`` (1, 2, 3, ...) allocated inside SQL as
the thread's highest seq ever + 1 (``TOP_SEQ``) in the same transaction as the insert, so
concurrent writers never collide, nothing is read into Python first, and a seq is never
reused after a delete. Many messages go in with one statement
per VALUES_ROWS messages (``INSERT ... SELECT ... FROM (VALUES (?, ...), ...)``), all in
the caller's one batch: bound values cost SQLite less than parsing a JSON array per row
(``json_each``; 13 % slower for 100 messages on SQLite 3.40). Ids are made client-side,
and the insert ignores an id it already has, so a retried write never stores a message
twice.

The functions here build statements and decode rows; callers put the statements into
one ``batch`` together with their own (thread upserts, trimming, counters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..drivers import Executor, Result, Statement
from ..errors import ConflictError, ValidationError
from ..values import MAX_JSON_BYTES
from .common import dumps, loads, new_id, new_ids, require_dict, require_id, require_time

ROLES = frozenset({"user", "assistant", "system", "tool"})
"""The roles a message may have."""

MAX_CONTENT_BYTES = MAX_JSON_BYTES
"""The largest JSON-encoded content (1 MiB of UTF-8) one message may carry."""

MESSAGE_COLUMNS = "id, thread_id, seq, role, content, metadata, run_id, created_at"

TOP_SEQ = """COALESCE((SELECT MAX(last_seq, COALESCE(
    (SELECT MAX(seq) FROM messages WHERE thread_id = {thread}), 0))
    FROM threads WHERE id = {thread}), 0)"""
"""The highest ``seq`` the thread ever had (format ``thread`` with an SQL expression of its
id): its ``last_seq`` (the high-water mark, which deletes never lower), or a message above
it stored earlier in the same batch. A deleted newest message's seq is never reused."""


@dataclass(slots=True)
class Message:
    """A stored message. ``content`` is the JSON value as given (blocks kept verbatim).

    Not frozen: reads build many of these, and a frozen dataclass costs twice as much to make.
    """

    id: str
    thread_id: str
    seq: int
    role: str
    content: Any
    metadata: dict[str, Any]
    run_id: str | None
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        """The message as a plain dict."""
        return {
            "id": self.id,
            "thread_id": self.thread_id,
            "seq": self.seq,
            "role": self.role,
            "content": self.content,
            "metadata": self.metadata,
            "run_id": self.run_id,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store: a role and JSON content, with optional metadata, time and id."""

    role: str
    content: Any
    metadata: dict[str, Any] = field(default_factory=dict)
    created_at: int | None = None
    id: str | None = None
    run_id: str | None = None


def seq_cursor(name: str, value: Any) -> int | None:
    """A keyset position in a thread: a Message's ``seq`` (the boundary item of the page
    the caller has), a non-negative integer seq, or None for the first page."""
    if value is None:
        return None
    if isinstance(value, Message):
        return value.seq
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} must be a Message of the previous page or its seq")
    return value


def message_from_row(row: Sequence[Any]) -> Message:
    """Decode a row selected with MESSAGE_COLUMNS."""
    return Message(row[0], row[1], row[2], row[3], loads(row[4]), loads(row[5], {}), row[6], row[7])


MessageRow = tuple[str, str, str, str, str | None, int]
"""A validated message ready to bind: id, role, content JSON, metadata JSON, run_id, time."""

VALUES_ROWS = 100
"""Rows per INSERT: 7 parameters each stays under the 999 of SQLite builds before 3.32."""


def encode_messages(
    messages: Sequence[NewMessage | dict[str, Any]], now: int, *, roles: frozenset[str] = ROLES
) -> list[MessageRow]:
    """Validate messages (before any I/O) and encode them as rows to bind.

    Messages without a time get ``now``, kept increasing within the batch but never
    later than a caller-given time that follows them.
    """
    if type(messages) is not list and (
        isinstance(messages, str | bytes | dict) or not isinstance(messages, Sequence)
    ):
        raise ValidationError("messages must be a list of messages")
    if not messages:
        raise ValidationError("at least one message is needed")
    rows: list[MessageRow] = []
    last_time = 0
    ids = new_ids(len(messages)) if len(messages) > 1 else None  # one go for a bulk write
    for i, raw in enumerate(messages):
        # The common shape (a plain dict with known keys) is read directly; anything else
        # goes through _new_message, which also words the error for a bad one.
        msg = raw if type(raw) is dict and raw.keys() <= _FIELDS else _new_message(raw, i)
        if isinstance(msg, dict):
            if "role" not in msg or "content" not in msg:
                _new_message(msg, i)
            role, content_value = msg["role"], msg["content"]
            meta_value, created_value = msg.get("metadata"), msg.get("created_at")
            id_value, run_value = msg.get("id"), msg.get("run_id")
        else:
            role, content_value = msg.role, msg.content
            meta_value, created_value = msg.metadata, msg.created_at
            id_value, run_value = msg.id, msg.run_id
        if role not in roles:
            raise ValidationError(f"message {i}: unknown role {role!r}; allowed: {sorted(roles)}")
        if content_value is None:
            raise ValidationError(f"message {i} has no content (None); nothing was stored")
        content = dumps(content_value, f"message {i} content", MAX_CONTENT_BYTES)
        if meta_value is None or (type(meta_value) is dict and not meta_value):
            metadata = "{}"
        else:
            metadata = dumps(require_dict(f"message {i} metadata", meta_value), "metadata")
        if created_value is None:
            created = max(now, last_time)
        else:
            created = require_time(f"message {i} created_at", created_value)
        last_time = created
        if id_value is None:
            message_id = new_id() if ids is None else ids[i]
        else:
            message_id = require_id(f"message {i} id", id_value)
        run_id = None if run_value is None else require_id("run_id", run_value)
        rows.append((message_id, role, content, metadata, run_id, created))
    if len(rows) > 1 and len({r[0] for r in rows}) != len(rows):
        raise ValidationError("message ids within one call must be distinct")
    return rows


def any_id_given(messages: Sequence[NewMessage | dict[str, Any]]) -> bool:
    """Whether the caller gave any of these (validated) messages its id; if not, every id
    is made by this call and none can be stored yet."""
    return any((m.get("id") if isinstance(m, dict) else m.id) is not None for m in messages)


VALUE_COLUMNS = (
    "column1 AS k, column2 AS id, column3 AS role, column4 AS content, "
    "column5 AS metadata, column6 AS run_id, column7 AS created_at"
)
"""Names for the columns of values_table's rows (select them FROM the table)."""


def values_table(rows: Sequence[MessageRow], start: int = 0) -> tuple[str, list[Any]]:
    """``(VALUES (?, ...), ...)`` of message rows, each led by its position ``k`` in the call
    (from ``start``), and the arguments to bind. Bound values, no JSON to parse per row.

    Its parameters are anonymous: SQLite numbers each one after the highest number used
    before it in the statement's text, so any numbered ``?N`` of the statement must come
    before the table. (Numbered ones, ``?5`` ... ``?704``, took SQLite twice as long to
    compile: 1.2 ms for 100 rows.)"""
    args: list[Any] = []
    for k, row in enumerate(rows, start):
        args.append(k)
        args.extend(row)
    return "(VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows)) + ")", args


def chunks(rows: Sequence[MessageRow]) -> list[tuple[int, Sequence[MessageRow]]]:
    """The rows cut into runs of at most VALUES_ROWS, each with its start position."""
    return [(i, rows[i : i + VALUES_ROWS]) for i in range(0, len(rows), VALUES_ROWS)]


_FIELDS = frozenset({"role", "content", "metadata", "created_at", "id", "run_id"})


def _new_message(raw: Any, i: int) -> NewMessage:
    if isinstance(raw, NewMessage):
        return raw
    if not isinstance(raw, dict):
        raise ValidationError(
            f"message {i} must be a NewMessage or a dict, not {type(raw).__name__}"
        )
    unknown = set(raw) - {"role", "content", "metadata", "created_at", "id", "run_id"}
    if unknown:
        raise ValidationError(f"message {i} has unknown fields {sorted(unknown)}")
    if "role" not in raw or "content" not in raw:
        raise ValidationError(f"message {i} needs a role and content")
    return NewMessage(
        role=raw["role"],
        content=raw["content"],
        metadata=raw.get("metadata") or {},
        created_at=raw.get("created_at"),
        id=raw.get("id"),
        run_id=raw.get("run_id"),
    )


def insert_messages(thread_id: str, rows: Sequence[MessageRow]) -> list[Statement]:
    """INSERTs of the rows (see encode_messages), numbered in SQL: one statement per
    VALUES_ROWS rows, all for the same batch (one message: see ``insert_message``).

    ``seq`` continues from the thread's highest; an id already stored is skipped. Each
    statement returns ``id, seq`` of the messages it stored (see ``stored_messages``).
    """
    statements: list[Statement] = []
    for start, part in chunks(rows):
        values, args = values_table(part, start)
        statements.append(
            (
                f"""INSERT INTO messages ({MESSAGE_COLUMNS})
                SELECT n.id, ?1, {TOP_SEQ.format(thread="?1")} + n.k - ?2 + 1,
                       n.role, n.content, n.metadata, n.run_id, n.created_at
                FROM (SELECT {VALUE_COLUMNS} FROM {values}) AS n
                WHERE 1
                ON CONFLICT (id) DO NOTHING
                RETURNING id, seq""",
                [thread_id, start, *args],
            )
        )
    return statements


_INSERT_ONE = f"""INSERT INTO messages ({MESSAGE_COLUMNS})
    VALUES (?1, ?2, {TOP_SEQ.format(thread="?2")} + 1, ?3, ?4, ?5, ?6, ?7)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, seq"""
"""One message: a single VALUES row (no numbered VALUES table, no temp table) that returns
only the ``id, seq`` it got; the caller has every other column already."""


def insert_message(thread_id: str, row: MessageRow) -> Statement:
    """The INSERT of one message row (the common append): ``seq`` is the thread's highest
    + 1; an id already stored is skipped. Returns ``id, seq`` when it stored the row (see
    ``stored_messages``), no row otherwise."""
    mid, role, content, metadata, run_id, created = row
    return (_INSERT_ONE, (mid, thread_id, role, content, metadata, run_id, created))


def stored_messages(
    results: Sequence[Result], first: int, count: int, thread_id: str, rows: Sequence[MessageRow]
) -> list[Message]:
    """The messages that ``count`` INSERTs returning ``id, seq`` (from ``results[first]``
    on) stored, oldest first, decoded from their encoded ``rows`` as a read would decode
    them: RETURNING only the two columns spares copying every content back out."""
    if count == 1 and len(rows) == 1:  # the common save: one statement, one message
        returned = results[first].values
        if not returned:
            return []
        (mid, role, content, meta, run_id, created) = rows[0]
        seq: Any = returned[0][1]
        return [
            Message(mid, thread_id, seq, role, loads(content), loads(meta, {}), run_id, created)
        ]
    seqs: dict[Any, Any] = {
        r[0]: r[1] for result in results[first : first + count] for r in result.values
    }
    found = [
        Message(mid, thread_id, seqs[mid], role, loads(content), loads(meta, {}), run_id, created)
        for mid, role, content, meta, run_id, created in rows
        if mid in seqs
    ]
    found.sort(key=lambda m: m.seq)
    return found


# Message ids: one id names one message in the whole database. A caller-given id that is
# already stored is an idempotent retry when the stored message is the same one (same
# thread, role, content, metadata and run); anything else is a ConflictError and nothing
# of the call is stored. The guard below runs in the call's batch before its inserts and
# fails the batch (malformed JSON: portable, no RAISE() outside triggers) on a conflict;
# the caller then names the conflicting ids (see ``id_conflict``). The thread's expression
# comes first in the text: the VALUES table's anonymous parameters follow its ?1...?N.
_ID_GUARD = f"""SELECT CASE WHEN EXISTS (
    SELECT 1 FROM (SELECT ({{thread}}) AS id) AS t,
                  (SELECT {VALUE_COLUMNS} FROM {{values}}) AS n
    JOIN messages AS m ON m.id = n.id
    WHERE m.thread_id IS NOT t.id OR m.role IS NOT n.role
       OR m.content IS NOT n.content OR m.metadata IS NOT n.metadata
       OR m.run_id IS NOT n.run_id)
    THEN json('a message id is stored with other content or in another thread') ELSE 1 END"""


def id_guards(
    thread: str, thread_args: Sequence[Any], rows: Sequence[MessageRow]
) -> list[tuple[str, tuple[Any, ...]]]:
    """Statements that fail the batch when one of ``rows``' ids is stored in another thread
    or with other content (one per VALUES_ROWS rows). ``thread`` is an SQL expression of the
    thread's id over exactly the parameters ``thread_args`` (numbered ?1...?N, all used);
    run them after the thread row is made and before the inserts."""
    statements: list[tuple[str, tuple[Any, ...]]] = []
    for start, part in chunks(rows):
        values, args = values_table(part, start)
        statements.append((_ID_GUARD.format(values=values, thread=thread), (*thread_args, *args)))
    return statements


MAX_IDS_PER_SELECT = 500
"""Ids per ``select_by_ids`` statement (bound parameters stay under 999)."""


def select_by_ids(rows: Sequence[MessageRow]) -> list[tuple[str, tuple[Any, ...]]]:
    """SELECTs of the stored messages (MESSAGE_COLUMNS) whose ids are among ``rows``'."""
    ids = [row[0] for row in rows]
    return [
        (
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id IN ({', '.join('?' * len(part))})",
            tuple(part),
        )
        for part in (
            ids[i : i + MAX_IDS_PER_SELECT] for i in range(0, len(ids), MAX_IDS_PER_SELECT)
        )
    ]


def id_conflict(
    stored: Sequence[Sequence[Any]], rows: Sequence[MessageRow], thread_id: str | None
) -> ConflictError | None:
    """The ConflictError naming each of ``rows``' ids that is stored (``stored``: rows of
    ``select_by_ids``) in another thread than ``thread_id`` (None: the thread does not
    exist yet) or with other content; None when there is no such id."""
    given = {row[0]: row for row in rows}
    problems: list[str] = []
    for found in stored:
        mid, where = found[0], found[1]
        row = given.get(mid)
        if row is None:
            continue
        if where != thread_id:
            problems.append(f"message id {mid!r} is already stored in thread {where!r}")
        elif (found[3], found[4], found[5], found[6]) != (row[1], row[2], row[3], row[4]):
            problems.append(f"message id {mid!r} is already stored with other content")
    if not problems:
        return None
    return ConflictError("; ".join(problems) + "; nothing of this call was stored")


async def read_by_ids(db: Executor, rows: Sequence[MessageRow]) -> list[Sequence[Any]]:
    """The stored messages (rows of MESSAGE_COLUMNS) whose ids are among ``rows``', in one
    request; no request when ``rows`` is empty."""
    if not rows:
        return []
    return [r for result in await db.batch(select_by_ids(rows)) for r in result.values]


async def raise_id_conflict(
    db: Executor, rows: Sequence[MessageRow], thread_id: str | None
) -> None:
    """After a batch with ``id_guards`` failed: raise the ConflictError naming the ids that
    made it fail, if any (the caller re-raises the batch's own error otherwise)."""
    error = id_conflict(await read_by_ids(db, rows), rows, thread_id)
    if error is not None:
        raise error


def not_inserted(inserted: Sequence[Message], rows: Sequence[MessageRow]) -> list[MessageRow]:
    """Those of ``rows`` whose message is not among ``inserted``."""
    new = {m.id for m in inserted}
    return [row for row in rows if row[0] not in new]


def settle_stored(
    inserted: list[Message],
    found: Sequence[Sequence[Any]],
    rows: Sequence[MessageRow],
    thread_id: str,
) -> tuple[list[Message], int]:
    """The messages of a call that are stored, in ``seq`` order, and how many of them were
    retries. ``inserted``: those its INSERTs stored; ``found``: rows of ``select_by_ids``
    for (at least) the others. A message of ``rows`` whose insert was skipped counts as
    stored when its id holds the identical message (same thread, role, content, metadata
    and run; the stored time is kept): an earlier send of this very write whose answer
    was lost, or a retry of the call. The one rule for given ids and for ids made here."""
    if not found:  # the common case: every message was inserted, nothing read
        return inserted, 0
    waiting = {row[0]: row for row in not_inserted(inserted, rows)}
    retried: list[Message] = []
    for r in found:
        row = waiting.pop(r[0], None)
        if row is not None and r[1] == thread_id and tuple(r[3:7]) == row[1:5]:
            retried.append(message_from_row(r))
    if not retried:
        return inserted, 0
    both = [*inserted, *retried]
    both.sort(key=lambda m: m.seq)
    return both, len(retried)


def update_thread_counters(thread_id: str, now: int) -> Statement:
    """Bring a thread's ``last_seq``, ``message_count`` and ``updated_at`` up to date
    after inserts (and before any trimming), touching only the new messages' index range."""
    return (
        """UPDATE threads SET
            message_count = message_count + (
                SELECT count(*) FROM messages WHERE thread_id = ?1 AND seq > threads.last_seq),
            last_seq = MAX(last_seq, COALESCE(
                (SELECT MAX(seq) FROM messages WHERE thread_id = ?1), 0)),
            updated_at = MAX(updated_at, ?2)
        WHERE id = ?1""",
        (thread_id, now),
    )


_NEWEST = f"""SELECT {MESSAGE_COLUMNS} FROM messages
    WHERE thread_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"""


def select_newest(thread_id: str, limit: int, before_seq: int | None = None) -> Statement:
    """The newest ``limit`` messages (older than ``before_seq`` when given), NEWEST first:
    decode them with ``oldest_first``. (Re-sorting them oldest first in SQL would copy
    every row through a temporary b-tree: a third of the read's time for 100 messages.)"""
    return (_NEWEST, (thread_id, before_seq if before_seq is not None else 2**62, limit))


def oldest_first(rows: Sequence[Sequence[Any]]) -> list[Message]:
    """Messages from rows read newest first (see ``select_newest``), in chronological order."""
    return [message_from_row(r) for r in reversed(rows)]


def select_oldest(thread_id: str, limit: int, after_seq: int = 0) -> Statement:
    """The oldest ``limit`` messages after ``after_seq``, oldest first."""
    return (
        f"""SELECT {MESSAGE_COLUMNS} FROM messages
        WHERE thread_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3""",
        (thread_id, after_seq, limit),
    )
