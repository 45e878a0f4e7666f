"""Threads: conversations with metadata, their messages, forks and lineage.

Every write is one atomic batch. A fork copies the parent's messages with one
``INSERT ... SELECT`` (timestamps, content and ``seq`` kept) and fails whole when the
index is outside the parent. Lineage is read with one indexed query on ``root_id`` and
assembled in Python (no recursive SQL). Each thread's ``lineage`` column holds its chain
of JSON-quoted ids (root first), so deleting a thread re-roots its forks' subtrees with
one ``UPDATE`` on that prefix in the same batch as the delete.
"""

from __future__ import annotations

import builtins
from base64 import urlsafe_b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from ..errors import ConflictError, NotFoundError, QueryError, ValidationError
from .checkpoints import delete_thread_statements
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
from .messages import (
    Message,
    NewMessage,
    any_id_given,
    encode_messages,
    id_guards,
    insert_message,
    insert_messages,
    message_from_row,
    not_inserted,
    oldest_first,
    raise_id_conflict,
    read_by_ids,
    select_by_ids,
    select_newest,
    select_oldest,
    seq_cursor,
    settle_stored,
    stored_messages,
    update_thread_counters,
)
from .tombstones import checkpoint_tombstones, conversation_tombstones

if TYPE_CHECKING:
    from ..drivers import Args, Executor, Result, Statement

THREAD_COLUMNS = (
    "id, user_id, session_id, agent_id, team_id, title, metadata, parent_id, fork_seq, "
    "root_id, message_count, last_seq, created_at, updated_at"
)
MAX_LINEAGE_THREADS = 10_000
"""The most threads one lineage read loads (one tree of forks)."""

_NO_SEQ = 2**62


@dataclass(slots=True)
class Thread:
    """A stored thread. ``root_id`` is the top of its fork tree (its own id for a root)."""

    id: str
    user_id: str
    session_id: str | None
    agent_id: str | None
    team_id: str | None
    title: str | None
    metadata: dict[str, Any]
    parent_id: str | None
    fork_seq: int | None
    root_id: str
    message_count: int
    last_seq: int
    created_at: int
    updated_at: int

    def to_dict(self) -> dict[str, Any]:
        """The thread as a plain dict."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class Lineage:
    """A thread with its ancestors (root first) and its whole descendant tree.

    ``descendants`` is breadth first, children ordered by creation time.
    """

    thread: Thread
    ancestors: list[Thread]
    descendants: list[Thread]


def thread_from_row(row: Sequence[Any]) -> Thread:
    """Decode a row selected with THREAD_COLUMNS."""
    # Positional and not frozen: lists build many of these (frozen doubles the cost).
    r = row
    return Thread(r[0], r[1], r[2], r[3], r[4], r[5], loads(r[6], {}), *r[7:14])


def _segment(thread_id: str) -> str:
    """One thread's part of a lineage chain: its JSON-quoted id and a comma."""
    return dumps(thread_id) + ","


segment = _segment
"""(public name: the retention module deletes threads with the same re-rooting)"""


def _title(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"title must be a string or None, not {type(value).__name__}")
    return value


_CREATE = f"""INSERT INTO threads
    (id, user_id, session_id, agent_id, title, metadata, root_id, created_at, updated_at)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?1, ?7, ?7)
    ON CONFLICT DO NOTHING
    RETURNING {THREAD_COLUMNS}"""

_GET = f"SELECT {THREAD_COLUMNS} FROM threads WHERE id = ?"

_UPDATE = f"""UPDATE threads SET
    title = CASE WHEN ?2 THEN ?3 ELSE title END,
    metadata = json_patch(metadata, ?4),
    updated_at = MAX(updated_at, ?5)
    WHERE id = ?1
    RETURNING {THREAD_COLUMNS}"""

# The deleted thread's lineage chain (a root without one gets its own segment, ?2).
_X_CHAIN = "(SELECT COALESCE(x.lineage, ?2) FROM threads AS x WHERE x.id = ?1)"

# Every descendant of ?1 gets the thread right below ?1 on its chain as its new root, and
# its chain loses the prefix down to ?1: forks of a deleted thread become roots.
_REROOT_DESCENDANTS = f"""UPDATE threads SET
    root_id = json_extract('[' || rtrim(substr(lineage, length({_X_CHAIN}) + 1), ',') || ']',
                           '$[0]'),
    lineage = substr(lineage, length({_X_CHAIN}) + 1)
    WHERE root_id = (SELECT root_id FROM threads WHERE id = ?1)
      AND id <> ?1 AND lineage IS NOT NULL
      AND substr(lineage, 1, length({_X_CHAIN})) = {_X_CHAIN}"""

REROOT_DESCENDANTS = _REROOT_DESCENDANTS
"""The re-rooting of a deleted thread's forks over ?1 (its id) and ?2 (its segment)."""

_DELETE = "DELETE FROM threads WHERE id = ? RETURNING id"

_FORK = f"""INSERT INTO threads
    (id, user_id, agent_id, team_id, title, metadata, parent_id, fork_seq, root_id, lineage,
     message_count, last_seq, created_at, updated_at)
    SELECT ?1, p.user_id, p.agent_id, p.team_id,
           COALESCE(?3, 'Fork of ' || COALESCE(p.title, p.id)), json_patch(p.metadata, ?4),
           p.id, m.seq, p.root_id, COALESCE(p.lineage, ?5) || ?6, ?7 + 1, m.seq, ?8, ?8
    FROM threads AS p
    JOIN (SELECT seq FROM messages WHERE thread_id = ?2 ORDER BY seq LIMIT 1 OFFSET ?7) AS m
    WHERE p.id = ?2
    RETURNING {THREAD_COLUMNS}"""

# Fails the batch (malformed JSON) when the fork row was not inserted: no such parent, or
# no message at that index. Portable: no RAISE() outside triggers is needed.
_FORK_GUARD = """SELECT CASE WHEN EXISTS (SELECT 1 FROM threads WHERE id = ?1)
    THEN 1 ELSE json('fork: no such parent thread or message index') END"""


def _copy_prefix() -> str:
    """The id prefix of one fork's message copies (``PREFIX:seq``): a new UUIDv7 written in
    22 base64url characters instead of 36, since every copied row carries it in the
    messages table and its id index (a fork of 500 messages: ~8 % less to write)."""
    return urlsafe_b64encode(UUID(new_id()).bytes).decode("ascii")[:22] + ":"


_FORK_COPY = """INSERT INTO messages
    (id, thread_id, seq, role, content, metadata, run_id, created_at)
    SELECT ?3 || m.seq, ?1, m.seq, m.role, m.content, m.metadata, NULL, m.created_at
    FROM messages AS m
    WHERE m.thread_id = ?2 AND m.seq <= (SELECT fork_seq FROM threads WHERE id = ?1)"""

_LINEAGE = f"""SELECT {THREAD_COLUMNS} FROM threads
    WHERE root_id = (SELECT root_id FROM threads WHERE id = ?1)
    ORDER BY created_at, id LIMIT ?2"""


def select_threads(
    *,
    user_id: str | None,
    agent_id: str | None,
    limit: int,
    before: tuple[int, str] | None = None,
    offset: int = 0,
) -> Statement:
    """A page of threads, newest updated first, filtered by user and/or agent.

    Pages with ``before`` (keyset). ``offset`` exists only for adapters whose framework
    pages by offset (Agentomatic); native callers use ``before``.
    """
    sql, args = newest_first_page(
        f"SELECT {THREAD_COLUMNS} FROM threads",
        "updated_at",
        (("user_id", user_id), ("agent_id", agent_id)),
        before,
        limit,
        offset=offset,
    )
    bound: Args = args
    return sql, bound


def select_messages_page(thread_id: str, limit: int, offset: int) -> Statement:
    """Messages oldest first from position ``offset`` (for offset-paging adapters)."""
    return (
        """SELECT id, thread_id, seq, role, content, metadata, run_id, created_at
        FROM messages WHERE thread_id = ? ORDER BY seq LIMIT ? OFFSET ?""",
        (thread_id, limit, offset),
    )


def _same_fork(
    stored: Thread, parent: str, index: int, title: str | None, metadata: dict[str, Any] | None
) -> bool:
    """Whether ``stored`` is the fork these arguments make: the same parent, the same
    number of copied messages, the given title and the given metadata keys."""
    return (
        stored.parent_id == parent
        and stored.message_count == index + 1
        and (title is None or stored.title == title)
        and all(stored.metadata.get(k) == v for k, v in (metadata or {}).items())
    )


def _require_index(index: Any) -> int:
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValidationError(f"message index must be an integer >= 0, not {index!r}")
    return index


class ThreadStore:
    """Threads, their messages, forks and lineage (``store.threads``)."""

    def __init__(self, store: Executor) -> None:
        self._store = store

    async def _query(self, statement: Statement) -> Result:
        if isinstance(statement, str):
            return await self._store.execute(statement)
        return await self._store.execute(statement[0], statement[1])

    async def create(
        self,
        user_id: str,
        *,
        thread_id: str | None = None,
        agent_id: str | None = None,
        session_id: str | None = None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
        created_at: int | None = None,
    ) -> Thread:
        """Create a thread (the ``create`` rule): a ``thread_id`` already stored with the
        same user, session, agent, title and metadata (and ``created_at`` when given) is an
        idempotent retry answered with the stored thread; a taken id with other content,
        or a taken user/session/agent key, is a ConflictError and nothing changes."""
        user_id = require_id("user_id", user_id)
        tid = require_id("thread_id", thread_id) if thread_id is not None else new_id()
        args = (
            tid,
            user_id,
            optional_id("session_id", session_id),
            optional_id("agent_id", agent_id),
            _title(title),
            dumps(require_dict("metadata", metadata), "metadata"),
            now_ms() if created_at is None else require_time("created_at", created_at),
        )
        # The stored row is read in the same batch: an identical one is this very create
        # again (a retry, or a re-send whose first answer was lost, also with an id made here).
        made, stored = await self._store.batch([(_CREATE, args), (_GET, (tid,))])
        row = made.first()
        kept = stored.first()
        if row is None and kept is not None:
            same = kept[4] is None and (kept[1], kept[2], kept[3], kept[5], kept[6]) == args[1:6]
            if same and (created_at is None or kept[12] == args[6]):
                return thread_from_row(kept)
        if row is None:
            raise ConflictError(
                f"thread {tid!r} (or its user/session/agent key) already exists with other "
                "content; nothing changed"
            )
        return thread_from_row(row)

    async def get(self, thread_id: str) -> Thread | None:
        """One thread, or None."""
        row = (await self._store.execute(_GET, (require_id("thread_id", thread_id),))).first()
        return None if row is None else thread_from_row(row)

    async def list(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        limit: int = 50,
        before: Thread | tuple[int, str] | None = None,
    ) -> list[Thread]:
        """Threads newest updated first; pass the last one as ``before`` for the next page."""
        statement = select_threads(
            user_id=optional_id("user_id", user_id),
            agent_id=optional_id("agent_id", agent_id),
            limit=require_limit(limit),
            before=keyset_cursor(before, Thread, "updated_at"),
        )
        return [thread_from_row(r) for r in (await self._query(statement)).values]

    async def update(
        self,
        thread_id: str,
        *,
        title: Any = ...,
        metadata: dict[str, Any] | None = None,
    ) -> Thread:
        """Set the title (when given; None clears it) and merge ``metadata`` into the stored one.

        The merge is JSON Merge Patch (RFC 7396) in SQL: a key set to None is removed.
        A missing thread is a NotFoundError.
        """
        tid = require_id("thread_id", thread_id)
        set_title = title is not ...
        args = (
            tid,
            1 if set_title else 0,
            _title(title) if set_title else None,
            dumps(require_dict("metadata", metadata), "metadata"),
            now_ms(),
        )
        row = (await self._store.execute(_UPDATE, args)).first()
        if row is None:
            raise NotFoundError(f"no thread {tid!r}")
        return thread_from_row(row)

    async def delete(self, thread_id: str) -> bool:
        """Delete a thread with its messages, feedback, approvals and checkpoints.

        Its forks stay: each becomes the root of its own subtree (parent_id NULL, root_id
        and lineage fixed in the same batch). Tombstones (see domains.tombstones) keep a
        late write from bringing it back: a conversation save that began before the delete,
        a LangGraph checkpoint or write born before it. False when there was no such thread.
        """
        tid = require_id("thread_id", thread_id)
        now = now_ms()
        results = await self._store.batch(
            [
                (conversation_tombstones("id = ?1", "?2"), (tid, now)),
                (checkpoint_tombstones("?1", "?2"), (tid, now)),
                (_REROOT_DESCENDANTS, (tid, _segment(tid))),
                *delete_thread_statements(tid),
                (_DELETE, (tid,)),
            ]
        )
        return bool(results[-1].rows)

    async def add_messages(
        self, thread_id: str, messages: Sequence[NewMessage | dict[str, Any]]
    ) -> builtins.list[Message]:
        """Append messages (one batch, counters bumped); the stored ones, oldest first.

        Message ids follow the one rule (see README, "API rules"): a given id already
        stored in this thread with the same role, content, metadata and run is an
        idempotent retry (the stored message is returned, nothing is stored twice); stored
        in another thread or with other content it is a ConflictError naming it, and
        nothing of the call is stored.
        """
        tid = require_id("thread_id", thread_id)
        now = now_ms()
        rows = encode_messages(messages, now)
        one = len(rows) == 1
        inserts = [insert_message(tid, rows[0])] if one else insert_messages(tid, rows)
        given = any_id_given(messages)
        guards = id_guards("?1", (tid,), rows) if given else []
        checks = select_by_ids(rows) if given else []
        try:
            results = await self._store.batch(
                [*guards, *inserts, update_thread_counters(tid, now), *checks]
            )
        except QueryError as exc:
            if given:
                await raise_id_conflict(self._store, rows, tid)
            if await self.get(tid) is None:
                raise NotFoundError(f"no thread {tid!r}") from exc
            raise
        stored = stored_messages(results, len(guards), len(inserts), tid, rows)
        found: list[Sequence[Any]]
        if given:  # read in the batch, after the inserts
            found = [r for result in results[len(results) - len(checks) :] for r in result.values]
        else:  # ids made here: a re-sent write (its first answer lost) finds its own rows
            found = await read_by_ids(self._store, not_inserted(stored, rows))
        return settle_stored(stored, found, rows, tid)[0]

    async def add_message(
        self,
        thread_id: str,
        role: str,
        content: Any,
        *,
        metadata: dict[str, Any] | None = None,
        created_at: int | None = None,
        message_id: str | None = None,
    ) -> Message:
        """Append one message (see add_messages)."""
        message = NewMessage(role, content, metadata or {}, created_at, message_id)
        (stored,) = await self.add_messages(thread_id, [message])
        return stored

    async def messages(
        self,
        thread_id: str,
        *,
        limit: int = 100,
        after: Message | int | None = None,
        after_seq: int = 0,
    ) -> builtins.list[Message]:
        """Messages oldest first; pass the last one as ``after`` (or its ``seq``; the
        older keyword ``after_seq`` still works) to page on."""
        tid = require_id("thread_id", thread_id)
        position = seq_cursor("after", after)
        start = require_time("after_seq", after_seq) if position is None else position
        statement = select_oldest(tid, require_limit(limit), start)
        return [message_from_row(r) for r in (await self._query(statement)).values]

    async def recent_messages(
        self,
        thread_id: str,
        *,
        limit: int = 50,
        before: Message | int | None = None,
        before_seq: int | None = None,
    ) -> builtins.list[Message]:
        """The newest ``limit`` messages in chronological order (the agent-memory read).

        Pass the first one as ``before`` (or its ``seq``; the older keyword
        ``before_seq`` still works) to page further back.
        """
        tid = require_id("thread_id", thread_id)
        if before is None:
            before = None if before_seq is None else require_time("before_seq", before_seq)
        else:
            before = seq_cursor("before", before)
        statement = select_newest(tid, require_limit(limit), before)
        return oldest_first((await self._query(statement)).values)

    async def fork(
        self,
        thread_id: str,
        index: int,
        *,
        new_thread_id: str | None = None,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Thread:
        """A new thread holding copies of the parent's messages up to and including
        ``index`` (0-based, oldest first), with their times, content and ``seq`` kept.

        One atomic batch. An index outside the parent is a ValidationError, a missing
        parent a NotFoundError, a taken ``new_thread_id`` a ConflictError; in each case
        nothing is written. The fork records ``parent_id``, ``fork_seq`` (the seq of the
        last copied message) and the parent's ``root_id``; its metadata is the parent's
        merged with ``metadata``.
        """
        parent = require_id("thread_id", thread_id)
        index = _require_index(index)
        child = new_id() if new_thread_id is None else require_id("new_thread_id", new_thread_id)
        if child == parent:
            raise ValidationError("a fork needs an id of its own")
        now = now_ms()
        fork_args = (
            child,
            parent,
            _title(title),
            dumps(require_dict("metadata", metadata), "metadata"),
            _segment(parent),
            _segment(child),
            index,
            now,
        )
        try:
            results = await self._store.batch(
                [
                    (_FORK, fork_args),
                    (_FORK_GUARD, (child,)),
                    (_FORK_COPY, (child, parent, _copy_prefix())),
                ]
            )
        except QueryError as exc:
            text = f"{exc} {exc.code}".upper()
            if "UNIQUE" in text or "PRIMARY" in text:
                stored = await self.get(child)
                if stored is not None and _same_fork(stored, parent, index, title, metadata):
                    return stored  # the create rule: an identical fork again is a retry
                raise ConflictError(f"thread {child!r} already exists") from exc
            if await self.get(parent) is None:
                raise NotFoundError(f"no thread {parent!r}") from exc
            if "JSON" not in text:
                raise
            raise ValidationError(f"thread {parent!r} has no message at index {index}") from exc
        row = results[0].first()
        assert row is not None  # the guard fails the batch otherwise
        return thread_from_row(row)

    async def lineage(self, thread_id: str) -> Lineage | None:
        """The thread's ancestors (root first) and every descendant, from one query on its
        fork tree (``root_id``); None when there is no such thread."""
        tid = require_id("thread_id", thread_id)
        result = await self._store.execute(_LINEAGE, (tid, MAX_LINEAGE_THREADS))
        tree = [thread_from_row(r) for r in result.values]
        by_id = {t.id: t for t in tree}
        thread = by_id.get(tid)
        if thread is None:
            return None
        children: dict[str, builtins.list[Thread]] = {}
        for t in tree:  # already ordered by creation time
            if t.parent_id is not None:
                children.setdefault(t.parent_id, []).append(t)
        ancestors: builtins.list[Thread] = []
        seen = {tid}
        parent_id = thread.parent_id
        while parent_id is not None and parent_id not in seen and parent_id in by_id:
            seen.add(parent_id)
            ancestors.append(by_id[parent_id])
            parent_id = by_id[parent_id].parent_id
        ancestors.reverse()
        descendants: builtins.list[Thread] = []
        visited = {tid}
        frontier = [tid]
        while frontier:
            following: builtins.list[str] = []
            for node in frontier:
                for kid in children.get(node, ()):
                    if kid.id not in visited:
                        visited.add(kid.id)
                        descendants.append(kid)
                        following.append(kid.id)
            frontier = following
        return Lineage(thread, ancestors, descendants)


Threads = ThreadStore
"""The older name of ``ThreadStore`` (every domain API class is ``<Item>Store``)."""
