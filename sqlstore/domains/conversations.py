"""Conversation history per (user, session, agent): atomic saves, trimming, bounded reads.

A conversation is one ``threads`` row keyed by ``(user_id, session_id, agent_id)`` (the
unique index ``threads_conversation``) and its ``messages``. Every write is ONE batch (one
transaction locally, one HTTP request remotely):

1. ``INSERT INTO threads ... ON CONFLICT DO NOTHING``: the conversation row exists from the
   first save on; its id is made client-side, and every later statement finds the thread
   by its key inside SQL, so nothing is read into Python first.
2. the messages: one message (the common save) goes in with a statement of its own (no
   table of numbered VALUES rows, no window function; it returns only the ``id, seq`` it got,
   the caller has the rest), more with one
   ``INSERT ... SELECT ... FROM (VALUES ...)`` per 100 messages (bound values, see
   ``messages.values_table``). Either way ``seq`` continues from
   the thread's highest (an index lookup), ids already stored are skipped (a retried save
   stores nothing twice), and with ``skip_same_role`` a first message whose role equals
   the last stored message's role is filtered out in the same statement.
3. the thread's counters (``message_count``, ``last_seq``, ``updated_at``), RETURNING them.
4. with ``max_history``: delete all but the newest ``max_history`` messages.
5. the newest messages after the save (at most ``history``), for callers that want the
   conversation back (agent-squad's contract), read in the same transaction.

No statement of a save reads the whole history: each touches the index range of the new
messages, the trimmed ones, or the ``history`` it was asked to return.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, QueryError, ValidationError
from .common import new_id, now_ms, require_id, require_limit
from .messages import (
    MESSAGE_COLUMNS,
    ROLES,
    TOP_SEQ,
    VALUE_COLUMNS,
    Message,
    MessageRow,
    NewMessage,
    any_id_given,
    chunks,
    encode_messages,
    id_guards,
    message_from_row,
    not_inserted,
    oldest_first,
    raise_id_conflict,
    read_by_ids,
    select_by_ids,
    seq_cursor,
    settle_stored,
    stored_messages,
    values_table,
)
from .tombstones import CONVERSATION, conversation_tombstones

if TYPE_CHECKING:
    from ..drivers import Executor

MAX_READ = 10_000
"""The most messages one read (or one save's returned history) may ask for."""

_FAR_FUTURE = 2**62

SqlArgs = tuple[str, tuple[Any, ...]]
"""A statement with positional arguments (a ``Statement`` for ``batch``)."""

_KEY_WHERE = "user_id = ?1 AND session_id = ?2 AND agent_id = ?3"
"""The condition on ``threads`` that selects a conversation by its key (?1-?3)."""

_BY_KEY = f"(SELECT id FROM threads WHERE {_KEY_WHERE})"
"""The conversation's thread id, looked up by its key inside SQL (NULL: no thread row)."""


@dataclass(frozen=True, slots=True)
class _Find:
    """How the statements of a save find the conversation's thread (three SQL fragments,
    all over the first three parameters).

    ``value``: an expression that is the thread's id, or NULL when there is no such thread
    row (stored into ``messages.thread_id``, whose NOT NULL then fails the batch).
    ``ref``: the thread's id for lookups in ``messages``.
    ``where``: a condition that selects the thread's row in ``threads``.
    """

    value: str
    ref: str
    where: str


_FIND_BY_KEY = _Find(_BY_KEY, _BY_KEY, _KEY_WHERE)
"""A thread known by its key only: ?1-?3 are the user, session and agent ids."""

_FIND_BY_ID = _Find("(SELECT id FROM threads WHERE id = ?1)", "?1", "id = ?1")
"""A thread whose id the caller knows: ?1 is its id, ?2 and ?3 are NULL. No statement
needs the key, so none looks it up (5 of them per save otherwise, about 4 us)."""


def _ref_args(key: tuple[str, str, str], thread_id: str | None) -> tuple[str | None, ...]:
    """The first three parameters of every save statement (see _Find)."""
    return key if thread_id is None else (thread_id, None, None)


_M_COLUMNS = ", ".join(f"m.{c.strip()}" for c in MESSAGE_COLUMNS.split(","))


@dataclass(frozen=True, slots=True)
class SaveResult:
    """What one save did.

    ``inserted``: the messages of this call that the conversation holds, in ``seq``
    order: those this call stored, and those an earlier identical call stored (an
    idempotent retry: same id, role, content, metadata and run; counted in ``retried``
    too), so a re-sent save reports what the first one did. A message left out by the
    same-role rule is not in it and is counted in ``skipped``.
    ``messages``: the conversation's newest messages after the save (and after trimming),
    oldest first, at most ``history`` of them (see ``Conversations.save_many``); empty
    unless ``history`` was asked for.
    ``message_count``: how many messages the conversation holds after the save.
    """

    thread_id: str
    inserted: list[Message]
    messages: list[Message]
    message_count: int
    skipped: int
    retried: int = 0


@dataclass(frozen=True, slots=True)
class _Shape:
    """How many statements of each part a save's batch has (see ``save_statements``)."""

    guards: int
    inserts: int
    checks: int
    trims: bool
    history: bool


@dataclass(slots=True)
class SessionMessage:
    """A message of a session, with the agent whose conversation holds it (not frozen:
    a session read makes one per message)."""

    agent_id: str
    message: Message


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """One session of a user: how many agent conversations and messages, and when."""

    session_id: str
    agents: int
    message_count: int
    created_at: int
    updated_at: int


@dataclass(frozen=True, slots=True)
class Deleted:
    """What a delete removed: conversations (thread rows) and their messages."""

    conversations: int
    messages: int


def require_max_history(value: Any) -> int | None:
    """None (keep everything) or a positive number of messages to keep."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"max_history must be None or an integer >= 1, not {value!r}")
    return value


def _require_history(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_READ:
        raise ValidationError(f"history must be an integer from 0 to {MAX_READ}, not {value!r}")
    return value


def drop_repeated_roles(rows: Sequence[MessageRow]) -> list[MessageRow]:
    """The encoded messages without any whose role equals the role of the one just before it.

    Only the first message still has to be compared with the stored conversation; that
    comparison happens inside SQL (see ``insert_conversation_messages``).
    """
    return [row for i, row in enumerate(rows) if i == 0 or row[1] != rows[i - 1][1]]


_TOMBSTONE_KEY = "json_array(?1, ?2, ?3)"
"""A conversation's key in ``tombstones`` (kind 'conversation')."""

# A save that began before the conversation was deleted (its time ?5 is before the
# tombstone's) does not bring it back: no thread row, so the save stores nothing.
_UPSERT_THREAD = f"""INSERT INTO threads
    (id, user_id, session_id, agent_id, root_id, created_at, updated_at)
    SELECT ?4, ?1, ?2, ?3, ?4, ?5, ?5
    WHERE NOT EXISTS (SELECT 1 FROM tombstones WHERE kind = 'conversation'
                      AND key = {_TOMBSTONE_KEY} AND deleted_at > ?5)
    ON CONFLICT DO NOTHING"""


def upsert_thread(key: tuple[str, str, str], thread_id: str, now: int) -> SqlArgs:
    """Create the conversation's thread row unless one exists for the key."""
    return (_UPSERT_THREAD, (*key, thread_id, now))


def _both(template: str) -> tuple[str, str]:
    """A save statement's text for a thread found by its key and by its id (see _Find):
    index it with ``thread_id is not None``."""

    def form(find: _Find) -> str:
        return template.format(
            value=find.value,
            ref=find.ref,
            where=find.where,
            columns=MESSAGE_COLUMNS,
            top=TOP_SEQ.format(thread=find.ref),
        )

    return form(_FIND_BY_KEY), form(_FIND_BY_ID)


# One message: no VALUES table and no window function (its seq is simply the highest + 1),
# no NOT EXISTS (for one row, ON CONFLICT (id) DO NOTHING is the whole idempotency rule),
# and RETURNING only id and seq: the caller has every other column already (RETURNING the
# content would copy it twice more). ?10 is 1 for skip_same_role.
_INSERT_ONE = _both("""INSERT INTO messages ({columns})
    SELECT ?4, t.id,
           MAX(t.last_seq, COALESCE((SELECT MAX(seq) FROM messages WHERE thread_id = t.id), 0))
           + 1,
           ?5, ?6, ?7, ?8, ?9
    FROM threads AS t
    WHERE {where}
      AND (?10 = 0 OR (SELECT role FROM messages WHERE thread_id = t.id
                       ORDER BY seq DESC LIMIT 1) IS NOT ?5)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, seq""")


# Without skip_same_role nothing filters the row, so it goes in as one VALUES row with scalar
# subqueries (the thread row exists: the upsert before it in the batch made it, or the store
# saw it; if it is gone, {value} is NULL and NOT NULL fails the batch). An INSERT
# ... SELECT that reads messages itself first copies its result into a temporary table,
# about 2 us of the 10 the statement above costs.
_INSERT_ONE_VALUES = _both("""INSERT INTO messages ({columns})
    VALUES (?4, {value}, {top} + 1,
            ?5, ?6, ?7, ?8, ?9)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, seq""")


def insert_conversation_message(
    key: tuple[str, str, str],
    row: MessageRow,
    *,
    skip_same_role: bool,
    thread_id: str | None = None,
) -> SqlArgs:
    """The INSERT of one message row (see messages.encode_messages): ``seq`` is the
    thread's highest + 1; an id already stored is skipped; with ``skip_same_role`` the
    message is skipped when its role equals the role of the conversation's last message.
    The thread is found by ``thread_id`` when given, else by ``key``; with no such thread
    the statement stores nothing (or fails). Returns ``id, seq`` when it inserted the
    row (see ``messages.stored_messages``), no row otherwise."""
    by_id = thread_id is not None
    ref = _ref_args(key, thread_id)
    if skip_same_role:
        return (_INSERT_ONE[by_id], (*ref, *row, 1))
    return (_INSERT_ONE_VALUES[by_id], (*ref, *row))


# One text for both ways of finding the thread (see _Find): SQLite compiles a statement of
# 700 parameters in about a millisecond, so a second text cost the second batch of a
# conversation as much as its insert. The condition costs one index seek more.
_EITHER = f"(id = ?1 AND ?2 IS NULL) OR ({_KEY_WHERE})"

# Two numberings of the rows. Exact: seq continues from the thread's highest without gaps,
# row_number() over the rows actually inserted (a message whose id is already stored is
# left out first). Fresh: when every id was made by this call, none can be stored, so seq
# is the highest + the row's place in the call (?5: the place of this statement's first
# row); that spares the window function and the id lookups, a third of the statement
# (150 of 440 us for 100 rows). Either way a first message dropped by the same-role rule
# (?4: the rule is on, ?6: the first message's role) is not numbered.
_INSERT_MANY = f"""INSERT INTO messages ({MESSAGE_COLUMNS})
    SELECT n.id, t.id, {{seq}}, n.role, n.content, n.metadata, n.run_id, n.created_at
    FROM (SELECT id,
                 MAX(last_seq, COALESCE((SELECT MAX(seq) FROM messages
                                         WHERE thread_id = threads.id), 0)) AS top,
                 (?4 <> 0 AND ?5 = 0 AND (SELECT role FROM messages WHERE thread_id = threads.id
                                          ORDER BY seq DESC LIMIT 1) IS ?6) AS first_dropped
          FROM threads WHERE {_EITHER}) AS t,
         (SELECT {VALUE_COLUMNS} FROM {{values}}) AS n
    WHERE {{stored}} (n.k > 0 OR NOT t.first_dropped)
    ON CONFLICT (id) DO NOTHING
    RETURNING id, seq"""

_INSERT_MANY_EXACT = _INSERT_MANY.format(
    seq="t.top + row_number() OVER (ORDER BY n.k)",
    stored="NOT EXISTS (SELECT 1 FROM messages AS old WHERE old.id = n.id) AND",
    values="{values}",
)
_INSERT_MANY_FRESH = _INSERT_MANY.format(
    seq="t.top + n.k - ?5 + 1 - t.first_dropped", stored="", values="{values}"
)


def insert_conversation_messages(
    key: tuple[str, str, str],
    rows: Sequence[MessageRow],
    *,
    skip_same_role: bool,
    thread_id: str | None = None,
    fresh_ids: bool = False,
) -> list[SqlArgs]:
    """INSERTs of every message row (see messages.encode_messages), one per
    VALUES_ROWS rows, all for the same batch (one message: see insert_conversation_message).

    ``seq`` continues from the thread's highest without gaps; ids already stored are
    skipped; with ``skip_same_role`` the first message is skipped when its role equals the
    role of the conversation's last message. Pass ``fresh_ids`` when this call made every
    id (none can be stored yet: a cheaper statement). The thread is found by ``thread_id``
    when given, else by ``key``; with no such thread nothing is stored. Each returns
    ``id, seq`` of the rows it inserted (see ``messages.stored_messages``).
    """
    ref = _ref_args(key, thread_id)
    sql = _INSERT_MANY_FRESH if fresh_ids else _INSERT_MANY_EXACT
    first_role = rows[0][1] if rows else None
    statements: list[SqlArgs] = []
    for start, part in chunks(rows):
        values, args = values_table(part, start)  # its ? follow ?1-?6
        head = (*ref, 1 if skip_same_role else 0, start, first_role)
        statements.append((sql.format(values=values), (*head, *args)))
    return statements


_UPDATE_COUNTERS = _both("""UPDATE threads SET
    message_count = MIN(?5, message_count + (
        SELECT count(*) FROM messages
        WHERE thread_id = threads.id AND seq > threads.last_seq)),
    last_seq = MAX(last_seq, COALESCE(
        (SELECT MAX(seq) FROM messages WHERE thread_id = threads.id), 0)),
    updated_at = MAX(updated_at, ?4)
    WHERE {where}""")


def update_counters(
    key: tuple[str, str, str], now: int, keep: int | None, thread_id: str | None = None
) -> SqlArgs:
    """Count the new messages (those above ``last_seq``) into the thread's counters, capped
    at ``keep`` when the save trims (read them back with ``select_state``)."""
    return (
        _UPDATE_COUNTERS[thread_id is not None],
        (*_ref_args(key, thread_id), now, keep if keep is not None else _FAR_FUTURE),
    )


_TRIM = _both("""DELETE FROM messages WHERE thread_id = {ref} AND seq < (
    SELECT seq FROM messages WHERE thread_id = {ref}
    ORDER BY seq DESC LIMIT 1 OFFSET ?4)""")


def trim_conversation(
    key: tuple[str, str, str], keep: int, thread_id: str | None = None
) -> SqlArgs:
    """Delete all but the newest ``keep`` messages of the conversation.

    The cut-off is the ``keep``-th newest ``seq`` (an index walk of ``keep`` entries);
    only the rows below it are visited and deleted. (``last_seq - keep`` would save that
    walk, about 1.5 us, but keeps fewer than ``keep`` if the newest messages have a gap,
    e.g. after a run's messages were deleted with it.)
    """
    return (_TRIM[thread_id is not None], (*_ref_args(key, thread_id), keep - 1))


# A SELECT after the writes, not RETURNING on the UPDATE: RETURNING cost the update
# about 3 us, the extra statement about 1.5.
_STATE = _both("SELECT id, message_count FROM threads WHERE {where}")


def select_state(key: tuple[str, str, str], thread_id: str | None = None) -> SqlArgs:
    """The thread's ``id, message_count`` (no row: no such thread)."""
    # No parameter follows the thread's: by id, only ?1 is bound.
    return (_STATE[thread_id is not None], key if thread_id is None else (thread_id,))


_NEWEST = _both("""SELECT {columns} FROM messages
    WHERE thread_id = {ref} AND seq < ?4 ORDER BY seq DESC LIMIT ?5""")


def select_conversation_newest(
    key: tuple[str, str, str],
    limit: int,
    before_seq: int | None = None,
    thread_id: str | None = None,
) -> SqlArgs:
    """The conversation's newest ``limit`` messages below ``before_seq``, NEWEST first
    (decode with ``messages.oldest_first``; see ``messages.select_newest`` for why)."""
    return (
        _NEWEST[thread_id is not None],
        (
            *_ref_args(key, thread_id),
            before_seq if before_seq is not None else _FAR_FUTURE,
            limit,
        ),
    )


def save_statements(
    key: tuple[str, str, str],
    rows: Sequence[MessageRow],
    *,
    thread_id: str | None,
    now: int,
    max_history: int | None,
    skip_same_role: bool,
    history: int,
    fresh_ids: bool = False,
    given_ids: bool = False,
) -> list[SqlArgs]:
    """The statements of one save, in the order they run in its batch: the thread upsert
    (left out when ``thread_id``, the conversation's thread id, is known: the others then
    find the thread by it, else by ``key``), with ``given_ids`` (the caller gave some
    ids) the id guards (see ``messages.id_guards``), the inserts (one for a single
    message, else one per VALUES_ROWS messages; ``fresh_ids``: the call made every id),
    with ``given_ids`` the reads of the stored messages with those ids
    (``messages.select_by_ids``), the counters, trimming, the thread's state (see
    ``select_state``), then reading the newest ``history`` messages."""
    statements = [] if thread_id is not None else [upsert_thread(key, new_id(), now)]
    if given_ids:
        thread = f"SELECT id FROM threads WHERE {_EITHER}"
        statements += id_guards(thread, _ref_args(key, thread_id), rows)
    if len(rows) == 1:
        statements.append(
            insert_conversation_message(
                key, rows[0], skip_same_role=skip_same_role, thread_id=thread_id
            )
        )
    else:
        statements += insert_conversation_messages(
            key, rows, skip_same_role=skip_same_role, thread_id=thread_id, fresh_ids=fresh_ids
        )
    if given_ids:
        statements += select_by_ids(rows)
    statements.append(update_counters(key, now, max_history, thread_id))
    if max_history is not None:
        statements.append(trim_conversation(key, max_history, thread_id))
    statements.append(select_state(key, thread_id))
    if history:
        statements.append(select_conversation_newest(key, history, thread_id=thread_id))
    return statements


def _key(user_id: Any, session_id: Any, agent_id: Any) -> tuple[str, str, str]:
    return (
        require_id("user_id", user_id),
        require_id("session_id", session_id),
        require_id("agent_id", agent_id),
    )


def _before(before: Any) -> tuple[int, str]:
    """The ``(time, id)`` keyset position of a session page: from the boundary item of the
    previous page (a SessionMessage, Message or SessionSummary) or its tuple."""
    if before is None:
        return (_FAR_FUTURE, "")
    if isinstance(before, SessionMessage):
        before = before.message
    if isinstance(before, Message):
        return (before.created_at, before.id)
    if isinstance(before, SessionSummary):
        return (before.updated_at, before.session_id)
    if (
        not isinstance(before, tuple)
        or len(before) != 2
        or isinstance(before[0], bool)
        or not isinstance(before[0], int)
        or not isinstance(before[1], str)
    ):
        raise ValidationError("before must be a (created_at, id) tuple from a previous page")
    return before


# A session's newest messages across its conversations. Each conversation's messages are
# read newest first from messages_thread_time, and SQLite's ORDER BY ... LIMIT
# optimization stops each one once its rows can no longer make the page: the read visits
# about ``limit`` messages per conversation, whatever the history (the VM-instruction test
# in tests/test_conversations.py proves it). ?1 user, ?2 session, ?3 / ?4 the cursor.
_SESSION_PAGE = f"""SELECT {_M_COLUMNS}, t.agent_id AS agent_id
    FROM threads AS t JOIN messages AS m ON m.thread_id = t.id
    WHERE t.user_id = ?1 AND t.session_id = ?2 AND t.agent_id IS NOT NULL
      AND (m.created_at < ?3 OR (m.created_at = ?3 AND m.id < ?4))
    ORDER BY m.created_at DESC, m.id DESC LIMIT ?5"""

_KNOWN_LIMIT = 4096
"""The most conversation keys a Conversations object remembers as having a thread row."""


class ConversationStore:
    """Conversation history per (user, session, agent): ``store.conversations``."""

    def __init__(self, store: Executor) -> None:
        self._store = store
        self._known: dict[tuple[str, str, str], str] = {}
        """The thread ids of keys a save of this object has seen: their saves find the
        thread by id and leave the thread upsert out. If the row was deleted meanwhile
        (elsewhere), that save fails or finds no thread, writing nothing (one
        transaction); the key is then forgotten and the save runs again by key, with the
        upsert."""

    async def save(
        self,
        user_id: str,
        session_id: str,
        agent_id: str,
        message: NewMessage | dict[str, Any],
        *,
        max_history: int | None = None,
        skip_same_role: bool = False,
        history: int | None = None,
    ) -> SaveResult:
        """Save one message; see ``save_many`` for the options."""
        return await self.save_many(
            user_id,
            session_id,
            agent_id,
            [message],
            max_history=max_history,
            skip_same_role=skip_same_role,
            history=history,
        )

    async def save_many(
        self,
        user_id: str,
        session_id: str,
        agent_id: str,
        messages: Sequence[NewMessage | dict[str, Any]],
        *,
        max_history: int | None = None,
        skip_same_role: bool = False,
        history: int | None = None,
    ) -> SaveResult:
        """Save messages to a conversation in one atomic batch (created on first save).

        - ``max_history``: keep exactly the newest N messages after the save (N >= 1);
          None keeps everything.
        - ``skip_same_role``: agent-squad's rule: a message whose role equals the role of
          the message before it (the previous one in ``messages``, or for the first one
          the conversation's last stored message) is not stored. Off by default.
        - ``history``: how many of the conversation's newest messages (after the save
          and the trim) to return in ``messages``, read in the same transaction
          (0 to MAX_READ; default 0: only ``inserted``). Pass ``history=max_history``
          to get the whole kept conversation back, as agent-squad's storages do. The
          cost of a save is bounded by this number, never by the history's length.

        Messages carry client-side ids (made when not given): saving the same ids again
        stores nothing twice. Invalid input raises ValidationError before any I/O.
        """
        key = _key(user_id, session_id, agent_id)
        keep = require_max_history(max_history)
        wanted = _require_history(0 if history is None else history)
        if not isinstance(skip_same_role, bool):
            raise ValidationError("skip_same_role must be True or False")
        now = now_ms()
        encoded = encode_messages(messages, now, roles=ROLES)  # validates all of them
        given = any_id_given(messages)
        fresh = len(encoded) > 1 and not given
        if skip_same_role:
            encoded = drop_repeated_roles(encoded)
        shape = _Shape(
            guards=len(chunks(encoded)) if given else 0,
            inserts=1 if len(encoded) == 1 else len(chunks(encoded)),
            checks=len(select_by_ids(encoded)) if given else 0,
            trims=keep is not None,
            history=wanted > 0,
        )

        def statements(thread_id: str | None) -> list[SqlArgs]:
            return save_statements(
                key,
                encoded,
                thread_id=thread_id,
                now=now,
                max_history=keep,
                skip_same_role=skip_same_role,
                history=wanted,
                fresh_ids=fresh,
                given_ids=given,
            )

        known = self._known.get(key)
        saved = None
        if known is not None:
            saved = await self._save(statements(known), encoded, shape, key, known)
        if saved is None:
            self._known.pop(key, None)
            try:
                saved = await self._save(statements(None), encoded, shape, key, None)
            except QueryError:
                await self._refuse_if_deleted(key, now)
                raise
            if saved is None:  # no thread row: the conversation was deleted meanwhile
                await self._refuse_if_deleted(key, now)
                raise ConflictError("the conversation's thread row is missing after the save")
        if len(self._known) >= _KNOWN_LIMIT:
            self._known.clear()
        self._known[key] = saved[0]
        thread_id, stored, history_rows, count, retried = saved
        if not shape.checks:  # ids made here: a re-sent save (answer lost) finds its own rows
            found = await read_by_ids(self._store, not_inserted(stored, encoded))
            stored, retried = settle_stored(stored, found, encoded, thread_id)
        return SaveResult(
            thread_id=thread_id,
            inserted=stored,
            messages=oldest_first(history_rows),
            message_count=count,
            skipped=len(messages) - len(stored),
            retried=retried,
        )

    async def _refuse_if_deleted(self, key: tuple[str, str, str], began: int) -> None:
        """Raise ConflictError when the conversation was deleted at or after ``began``
        (the save raced the delete and the delete won: nothing was stored)."""
        found = await self._store.execute(
            f"""SELECT deleted_at FROM tombstones
                WHERE kind = 'conversation' AND key = {_TOMBSTONE_KEY} AND deleted_at > ?4""",
            (*key, began),
        )
        if found.values:
            raise ConflictError(
                f"conversation {key!r} was deleted after this save began; nothing was stored"
            )

    async def _save(
        self,
        statements: list[SqlArgs],
        encoded: list[MessageRow],
        shape: _Shape,
        key: tuple[str, str, str],
        known: str | None,
    ) -> tuple[str, list[Message], Sequence[Sequence[Any]], int, int] | None:
        """One save's batch (see save_statements); ``known``: the thread id it finds the
        thread by, without the upsert, and None means that thread row turned out to be
        gone (nothing was written then). A given message id stored elsewhere or with
        other content is a ConflictError naming it (nothing written either)."""
        try:
            results = await self._store.batch(statements)
        except QueryError:
            if shape.guards:
                found = await self._store.execute(f"SELECT id FROM threads WHERE {_KEY_WHERE}", key)
                thread = found.scalar()
                await raise_id_conflict(
                    self._store, encoded, thread if isinstance(thread, str) else None
                )
            if known is not None:  # e.g. the one-message insert found no thread: NULL
                return None
            raise
        state = len(statements) - 1 - shape.history
        state_rows = results[state].values
        if not state_rows:  # no thread row (only possible for a known thread id)
            return None
        found_id, count = state_rows[0]
        first = (0 if known is not None else 1) + shape.guards
        stored = stored_messages(results, first, shape.inserts, str(found_id), encoded)
        retried = 0
        if shape.checks:
            at = first + shape.inserts
            rows = [r for result in results[at : at + shape.checks] for r in result.values]
            stored, retried = settle_stored(stored, rows, encoded, str(found_id))
        history_rows = results[-1].values if shape.history else ()
        return str(found_id), stored, history_rows, int(count or 0), retried

    async def newest(
        self,
        user_id: str,
        session_id: str,
        agent_id: str,
        limit: int = 50,
        *,
        before: Message | int | None = None,
        before_seq: int | None = None,
    ) -> list[Message]:
        """The newest ``limit`` messages, oldest first; pass the first one as ``before``
        (or its ``seq``; the older keyword ``before_seq`` still works) to page to older
        messages. Unknown conversation: empty list."""
        key = _key(user_id, session_id, agent_id)
        limit = require_limit(limit, MAX_READ)
        if before is not None:
            before_seq = seq_cursor("before", before)
        elif before_seq is not None and (
            isinstance(before_seq, bool) or not isinstance(before_seq, int)
        ):
            raise ValidationError(f"before_seq must be an integer, not {before_seq!r}")
        result = await self._store.execute(*select_conversation_newest(key, limit, before_seq))
        return oldest_first(result.values)

    async def session(
        self,
        user_id: str,
        session_id: str,
        limit: int = 100,
        *,
        before: SessionMessage | Message | tuple[int, str] | None = None,
    ) -> list[SessionMessage]:
        """The newest ``limit`` messages of a session across all its agents, oldest first.

        Order: ``created_at``, then message ``id`` (UUIDv7 when made by sqlstore, so ties
        within a millisecond follow creation order). To page to older messages pass the
        first one of the previous page as ``before`` (or
        ``(first.message.created_at, first.message.id)``).
        """
        user_id = require_id("user_id", user_id)
        session_id = require_id("session_id", session_id)
        limit = require_limit(limit, MAX_READ)
        at, after_id = _before(before)
        result = await self._store.execute(
            _SESSION_PAGE,
            (user_id, session_id, at, after_id if before is not None else "\uffff", limit),
        )
        # Newest first from SQL (one sort); turned chronological here, not by a second sort.
        return [SessionMessage(str(r[8]), message_from_row(r)) for r in reversed(result.values)]

    async def sessions(
        self,
        user_id: str,
        limit: int = 50,
        *,
        before: SessionSummary | tuple[int, str] | None = None,
    ) -> list[SessionSummary]:
        """A user's sessions, most recently active first. To page on, pass the last one
        of the previous page as ``before`` (or ``(last.updated_at, last.session_id)``)."""
        user_id = require_id("user_id", user_id)
        limit = require_limit(limit)
        at, after_session = _before(before)
        result = await self._store.execute(
            f"""SELECT session_id, count(*), SUM(message_count), MIN(created_at),
                      MAX(updated_at) AS last_update
            FROM threads
            WHERE user_id = ?1 AND {CONVERSATION}
            GROUP BY session_id
            HAVING MAX(updated_at) < ?2 OR (MAX(updated_at) = ?2 AND session_id < ?3)
            ORDER BY last_update DESC, session_id DESC LIMIT ?4""",
            (user_id, at, after_session if before is not None else "\uffff", limit),
        )
        return [
            SessionSummary(
                session_id=str(r[0]),
                agents=int(r[1]),
                message_count=int(r[2] or 0),
                created_at=int(r[3]),
                updated_at=int(r[4]),
            )
            for r in result.rows
        ]

    async def count(self, user_id: str, session_id: str, agent_id: str) -> int:
        """How many messages the conversation holds (its counter: one row read)."""
        key = _key(user_id, session_id, agent_id)
        result = await self._store.execute(
            f"SELECT message_count FROM threads WHERE {_KEY_WHERE}",
            key,
        )
        value = result.scalar()
        return int(value) if isinstance(value, int) else 0

    async def delete_conversation(self, user_id: str, session_id: str, agent_id: str) -> Deleted:
        """Delete one conversation and its messages (one batch)."""
        key = _key(user_id, session_id, agent_id)
        return await self._delete(_KEY_WHERE, key)

    async def delete_session(self, user_id: str, session_id: str) -> Deleted:
        """Delete every agent's conversation of a session (one batch)."""
        args = (require_id("user_id", user_id), require_id("session_id", session_id))
        return await self._delete("user_id = ?1 AND session_id = ?2 AND agent_id IS NOT NULL", args)

    async def delete_user(self, user_id: str) -> Deleted:
        """Delete all of a user's conversations (every session, every agent; one batch).

        Threads of the user that are not conversations (no session or agent: other
        domains' threads) are left alone.
        """
        args = (require_id("user_id", user_id),)
        return await self._delete(f"user_id = ?1 AND {CONVERSATION}", args)

    async def _delete(self, where: str, args: tuple[str, ...]) -> Deleted:
        now = f"?{len(args) + 1}"
        _, result = await self._store.batch(
            [
                (conversation_tombstones(where, now), (*args, now_ms())),
                (f"DELETE FROM threads WHERE {where} RETURNING message_count", args),
            ]
        )
        self._known.clear()  # (a key deleted elsewhere is caught by the save itself)
        return Deleted(
            conversations=len(result.rows),
            messages=sum(int(r[0] or 0) for r in result.rows),
        )


Conversations = ConversationStore
"""The older name of ``ConversationStore`` (every domain API class is ``<Item>Store``)."""


__all__ = [
    "MAX_READ",
    "ConversationStore",
    "Conversations",
    "Deleted",
    "NewMessage",
    "SaveResult",
    "SessionMessage",
    "SessionSummary",
]
