"""A drop-in Agentomatic store: ``AgentPlatform.from_folder(path, store=LibSQLStore(url))``.

``LibSQLStore`` implements every method of ``agentomatic.storage.BaseStore`` on sqlstore's
tables (threads, messages, feedback, approvals, checkpoints, plus invocation logs, log
analyses and optimization runs) and answers the dict shapes Agentomatic's routes expect.
Where Agentomatic's two stores disagree or lose data, it keeps data safe:

- ``create_thread`` with an id already taken raises ``ConflictError`` (no overwrite);
- ``update_thread(metadata=...)`` merges into the stored metadata (JSON Merge Patch);
- ``get_messages`` without an ``offset`` answers the NEWEST ``limit`` messages in
  chronological order (what the memory manager wants); with an ``offset`` it pages from the
  oldest, as the HTTP route does;
- forks keep the copied messages' timestamps; lineage descendants are the whole subtree;
- an expired suspended state is never returned, even before cleanup;
- deleting a thread deletes its feedback, suspended states and checkpoints; its forks
  become roots.

Message ids are the per-thread position (1, 2, 3, ...), like MemoryStore. A fork index
outside the parent answers None (the route's 404), like MemoryStore for a negative one.
Only this module imports agentomatic (extra ``sqlstore[agentomatic]``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from agentomatic.storage import BaseStore

from ..domains.checkpoints import Checkpoint
from ..domains.common import (
    MAX_LIMIT,
    dumps,
    loads,
    new_id,
    newest_first_page,
    now_ms,
    require_id,
)
from ..domains.messages import select_newest, select_oldest
from ..domains.threads import Thread, select_messages_page, select_threads
from ..drivers import Row
from ..errors import NotFoundError, ValidationError
from ..store import Store
from ..values import check_value

if TYPE_CHECKING:
    from ..domains.approvals import Approval
    from ..domains.feedback import Feedback
    from ..domains.messages import Message
    from ..drivers import Args, Result, Statement

__all__ = ["LibSQLStore"]


class _Newest(int):
    """The default ``offset`` of get_messages: "not given", read the newest page."""


_NEWEST = _Newest(0)

MAX_COLLECT = 100_000
"""The most rows one compatibility call gathers (page by page) for a large ``limit``."""


_json = orjson.loads

_FAST_UNTIL = 4_102_444_800_000
"""2100-01-01 in ms: below it ``ms / 1000`` is exact to the microsecond, so the fast path of
``iso`` gives the very string ``datetime.isoformat`` gives."""

_SECONDS = tuple(f"{s:02d}" for s in range(60))
_MILLIS = ("+00:00", *(f".{m:03d}000+00:00" for m in range(1, 1000)))
_PREFIXES: dict[int, str] = {}
"""``YYYY-MM-DDTHH:MM:SS`` by second since the epoch (bounded: cleared when full)."""
_MINUTES: dict[int, str] = {}
"""``YYYY-MM-DDTHH:MM:`` by minute since the epoch (bounded: cleared when full)."""
_CACHED = 4096


def _slow_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


def _prefix(second: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a second since the epoch, from the minute's cached text."""
    minute, sec = divmod(second, 60)
    head = _MINUTES.get(minute)
    if head is None:
        if len(_MINUTES) >= _CACHED:
            _MINUTES.clear()
        head = _MINUTES[minute] = _slow_iso(minute * 60_000)[:17]
    if len(_PREFIXES) >= _CACHED:
        _PREFIXES.clear()
    text = _PREFIXES[second] = head + _SECONDS[sec]
    return text


def iso(ms: int | None) -> str | None:
    """Milliseconds since the epoch as an ISO-8601 UTC string (Agentomatic's format:
    ``datetime.isoformat``, microseconds only when not zero, ``+00:00``).

    Reads convert every row's times, so the common case is a cached second's text and a
    table lookup (~0.15 µs) instead of a datetime (~1.3 µs).
    """
    if ms is None:
        return None
    if type(ms) is not int or not 0 <= ms < _FAST_UNTIL:
        return _slow_iso(ms)
    second, milli = divmod(ms, 1000)
    return (_PREFIXES.get(second) or _prefix(second)) + _MILLIS[milli]


def _count(limit: Any) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise ValidationError(f"limit must be an integer, not {limit!r}")
    return max(0, min(limit, MAX_COLLECT))


def _offset(offset: Any) -> int:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"offset must be an integer >= 0, not {offset!r}")
    return int(offset)


def thread_dict(t: Thread) -> dict[str, Any]:
    """A thread in Agentomatic's shape."""
    return {
        "id": t.id,
        "user_id": t.user_id,
        "agent_name": t.agent_id,
        "title": t.title,
        "metadata": t.metadata,
        "created_at": iso(t.created_at),
        "updated_at": iso(t.updated_at),
        "message_count": t.message_count,
        "parent_thread_id": t.parent_id,
        # forks keep the parent's seq numbers (1-based, no trimming here): index = seq - 1
        "fork_message_index": None if t.fork_seq is None else t.fork_seq - 1,
    }


def thread_row_dict(r: Sequence[Any]) -> dict[str, Any]:
    """A row selected with THREAD_COLUMNS straight into Agentomatic's shape (the same dict
    as ``thread_dict(thread_from_row(r))``, without the Thread in between)."""
    fork_seq, metadata = r[8], r[6]
    created = iso(r[12])
    return {
        "id": r[0],
        "user_id": r[1],
        "agent_name": r[3],
        "title": r[5],
        "metadata": {} if metadata is None or metadata == "{}" else _json(metadata),
        "created_at": created,
        "updated_at": created if r[13] == r[12] else iso(r[13]),  # never updated: same text
        "message_count": r[10],
        "parent_thread_id": r[7],
        "fork_message_index": None if fork_seq is None else fork_seq - 1,
    }


def message_row_dicts(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Rows selected with MESSAGE_COLUMNS straight into Agentomatic's shape (the same dicts
    as ``message_dict(message_from_row(r))``, without a Message in between). ``content``
    is NOT NULL; ``{}`` metadata (the common case) skips the parser; messages stored
    together share a time, whose text is made once."""
    found = []
    last: Any = None
    stamp: str | None = None
    for r in rows:
        metadata, ms = r[5], r[7]
        if ms != last:
            last, stamp = ms, iso(ms)
        found.append(
            {
                "id": r[2],
                "thread_id": r[1],
                "role": r[3],
                "content": _json(r[4]),
                "metadata": {} if metadata is None or metadata == "{}" else _json(metadata),
                "timestamp": stamp,
            }
        )
    return found


def message_dict(m: Message) -> dict[str, Any]:
    """A message in Agentomatic's shape (``timestamp``, per-thread integer id)."""
    return {
        "id": m.seq,
        "thread_id": m.thread_id,
        "role": m.role,
        "content": m.content,
        "metadata": m.metadata,
        "timestamp": iso(m.created_at),
    }


def feedback_dict(f: Feedback) -> dict[str, Any]:
    """Feedback in Agentomatic's shape."""
    message_id: Any = f.message_id
    if isinstance(message_id, str) and message_id.isdigit():
        message_id = int(message_id)
    return {
        "id": f.id,
        "thread_id": f.thread_id,
        "message_id": message_id,
        "user_id": f.user_id,
        "agent_name": f.agent_id,
        "rating": f.rating,
        "comment": f.comment,
        "feedback_type": f.metadata.get("feedback_type", "thumbs"),
        "query": f.query or "",
        "response": f.response or "",
        "correction": f.correction,
        "created_at": iso(f.created_at),
    }


def suspended_dict(a: Approval) -> dict[str, Any]:
    """A suspended state in Agentomatic's shape (``state_snapshot``)."""
    return {
        "id": a.id,
        "thread_id": a.thread_id,
        "agent_name": a.agent_id,
        "node_name": a.node,
        "state_snapshot": a.state,
        "created_at": iso(a.created_at),
        "expires_at": iso(a.expires_at),
    }


def checkpoint_dict(c: Checkpoint) -> dict[str, Any]:
    """A generic checkpoint in Agentomatic's shape."""
    return {
        "thread_id": c.thread_id,
        "checkpoint_ns": c.namespace,
        "checkpoint_id": c.checkpoint_id,
        "parent_checkpoint_id": c.parent_id,
        "checkpoint": c.payload,
        "metadata": c.metadata,
        "created_at": iso(c.created_at),
    }


_LOG_COLUMNS = (
    "id, resource_type, resource_name, thread_id, run_id, endpoint, input, output, metadata, "
    "error, duration_ms, status, created_at"
)
_ANALYSIS_COLUMNS = (
    "id, resource_type, resource_name, score, summary, status, recommendations, metadata, "
    "created_at"
)
_RUN_COLUMNS = (
    "id, experiment_id, agent_name, baseline_score, best_score, prompt_versions, "
    "score_history, learnings, artefacts, metadata, created_at"
)


def _log_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r[0],
        "resource_type": r[1] or "agent",
        "resource_name": r[2],
        "agent_name": r[2],
        "thread_id": r[3],
        "run_id": r[4],
        "timestamp": iso(r[12]),
        "endpoint": r[5],
        "input": loads(r[6], {}),
        "output": loads(r[7], {}),
        "metadata": loads(r[8], {}),
        "error": r[9],
        "duration_ms": r[10],
        "status": r[11],
    }


def _analysis_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r[0],
        "resource_type": r[1] or "agent",
        "resource_name": r[2],
        "agent_name": r[2],
        "score": r[3],
        "summary": r[4],
        "status": r[5],
        "recommendations": loads(r[6], []),
        "metadata": loads(r[7], {}),
        "created_at": iso(r[8]),
    }


def _run_dict(r: Any) -> dict[str, Any]:
    return {
        "id": r[0],
        "experiment_id": r[1],
        "agent_name": r[2],
        "baseline_score": r[3],
        "best_score": r[4],
        "prompt_versions": loads(r[5], {}),
        "score_history": loads(r[6], []),
        "learnings": loads(r[7], []),
        "artefacts": loads(r[8], {}),
        "metadata": loads(r[9], {}),
        "created_at": iso(r[10]),
    }


def _filtered(
    table: str, columns: str, filters: dict[str, Any], limit: int | None, offset: int = 0
) -> tuple[str, list[Any]]:
    """SELECT (or count when ``limit`` is None) newest first; names are fixed by callers."""
    if limit is None:
        where = [f"{name} = ?" for name, value in filters.items() if value is not None]
        args: list[Any] = [value for value in filters.values() if value is not None]
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT count(*) FROM {table}{clause}", args
    return newest_first_page(
        f"SELECT {columns} FROM {table}",
        "created_at",
        list(filters.items()),
        None,
        limit,
        offset=offset,
    )


class LibSQLStore(BaseStore):
    """Agentomatic's BaseStore on sqlstore: a local SQLite file or a libSQL/Turso server."""

    def __init__(self, url: str = "file:agents.db", auth_token: str | None = None) -> None:
        self.store = Store(url, auth_token=auth_token)

    def __bool__(self) -> bool:
        return True  # the platform tests ``if store:``

    def __repr__(self) -> str:
        return f"LibSQLStore({self.store!r})"

    async def _run(self, statement: Statement) -> Result:
        if isinstance(statement, str):
            return await self.store.resending.execute(statement)
        return await self.store.resending.execute(statement[0], statement[1])

    async def _select(self, sql: str, args: list[Any]) -> Result:
        bound: Args = args
        return await self.store.resending.execute(sql, bound)

    # -- lifecycle ------------------------------------------------------------------

    async def initialize(self) -> None:
        """Open the database and bring its schema up to date (safe to call again)."""
        await self.store.initialize()

    async def close(self) -> None:
        """Close the database connection."""
        await self.store.close()

    async def health_check(self) -> dict[str, Any]:
        """``{"status": "healthy" | "unhealthy", "backend": ..., ...}``."""
        try:
            health = await self.store.health_check()
        except Exception as exc:  # a probe reports, never raises
            return {"status": "unhealthy", "backend": type(self).__name__, "error": str(exc)}
        status = "healthy" if health.get("ok") else "unhealthy"
        return {**health, "status": status, "backend": type(self).__name__}

    # -- threads --------------------------------------------------------------------

    async def create_thread(
        self,
        thread_id: str,
        user_id: str,
        agent_name: str,
        *,
        title: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a thread; an id already taken raises ConflictError (never overwrites)."""
        thread = await self.store.threads.create(
            user_id, thread_id=thread_id, agent_id=agent_name, title=title, metadata=metadata
        )
        return thread_dict(thread)

    async def get_thread(self, thread_id: str) -> dict[str, Any] | None:
        """One thread, or None."""
        thread = await self.store.threads.get(thread_id)
        return None if thread is None else thread_dict(thread)

    async def list_threads(
        self,
        *,
        agent_name: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Threads newest updated first (the same order on every backend)."""
        wanted, skip = _count(limit), _offset(offset)
        found: list[dict[str, Any]] = []
        before: Any = None
        while len(found) < wanted:
            page = min(MAX_LIMIT, wanted - len(found))
            statement = select_threads(
                user_id=user_id,
                agent_id=agent_name,
                limit=page,
                before=before,
                offset=skip if before is None else 0,
            )
            rows = (await self._run(statement)).values
            found += map(thread_row_dict, rows)
            if len(rows) < page:
                break
            before = (rows[-1][13], rows[-1][0])  # (updated_at, id)
        return found

    async def delete_thread(self, thread_id: str) -> bool:
        """Delete a thread with its messages, feedback, states and checkpoints."""
        return await self.store.threads.delete(thread_id)

    async def update_thread(self, thread_id: str, **updates: Any) -> dict[str, Any] | None:
        """Set ``title`` and merge ``metadata``; other keys are ignored. None if missing."""
        kwargs: dict[str, Any] = {}
        if "title" in updates:
            kwargs["title"] = updates["title"]
        if updates.get("metadata") is not None:
            kwargs["metadata"] = updates["metadata"]
        try:
            thread = await self.store.threads.update(thread_id, **kwargs)
        except NotFoundError:
            return None
        return thread_dict(thread)

    # -- messages -------------------------------------------------------------------

    async def add_message(
        self,
        thread_id: str,
        role: str,
        content: str,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append a message (one batch with the thread's counters)."""
        message = await self.store.threads.add_message(thread_id, role, content, metadata=metadata)
        return message_dict(message)

    async def get_messages(
        self,
        thread_id: str,
        *,
        limit: int = 100,
        offset: int = _NEWEST,
    ) -> list[dict[str, Any]]:
        """Messages in chronological order.

        Without ``offset``: the newest ``limit`` (the agent-memory read). With an
        ``offset``: ``limit`` messages from that position, counted from the oldest.
        """
        wanted = _count(limit)
        if offset is _NEWEST:
            # Rows read newest first (select_newest), turned into dicts in one pass at the end.
            tid = require_id("thread_id", thread_id) if wanted else thread_id
            newest: list[Sequence[Any]] = []
            before: Any = None
            while len(newest) < wanted:
                page = min(MAX_LIMIT, wanted - len(newest))
                rows = (await self._run(select_newest(tid, page, before))).values
                newest += rows
                if len(rows) < page:
                    break
                before = rows[-1][2]  # the oldest one's seq
            return message_row_dicts(reversed(newest))
        skip = _offset(offset)
        found: list[Sequence[Any]] = []
        while len(found) < wanted:
            page = min(MAX_LIMIT, wanted - len(found))
            if found:
                statement = select_oldest(thread_id, page, found[-1][2])
            else:
                statement = select_messages_page(thread_id, page, skip)
            rows = (await self._run(statement)).values
            found += rows
            if len(rows) < page:
                break
        return message_row_dicts(found)

    # -- feedback -------------------------------------------------------------------

    async def add_feedback(
        self,
        thread_id: str,
        user_id: str,
        agent_name: str,
        *,
        rating: int | None = None,
        comment: str | None = None,
        message_id: int | None = None,
        feedback_type: str = "thumbs",
        query: str = "",
        response: str = "",
        correction: str | None = None,
    ) -> dict[str, Any]:
        """Store feedback (rating 1-5); an empty thread id means no thread."""
        stored = await self.store.feedback.add(
            thread_id=thread_id or None,
            user_id=user_id or None,
            agent_id=agent_name or None,
            rating=rating,
            comment=comment,
            correction=correction,
            query=query,
            response=response,
            metadata={"feedback_type": feedback_type},
            message_id=None if message_id is None else str(message_id),
        )
        return feedback_dict(stored)

    async def get_feedback(
        self,
        *,
        agent_name: str | None = None,
        user_id: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Feedback newest first, by agent and/or user."""
        wanted = _count(limit)
        found: list[Feedback] = []
        while len(found) < wanted:
            page = min(MAX_LIMIT, wanted - len(found))
            rows = await self.store.feedback.list(
                agent_id=agent_name,
                user_id=user_id,
                limit=page,
                before=found[-1] if found else None,
            )
            found.extend(rows)
            if len(rows) < page:
                break
        return [feedback_dict(f) for f in found]

    async def get_stats(self) -> dict[str, Any]:
        """Row counts of threads, messages, feedback and live suspended states."""
        return {"backend": type(self).__name__, **await self.store.stats()}

    # -- suspended states (human in the loop) ---------------------------------------

    async def save_suspended_state(
        self,
        approval_id: str,
        thread_id: str,
        agent_name: str,
        node_name: str,
        state_json: dict[str, Any],
    ) -> dict[str, Any]:
        """Save a suspended state that expires in 7 days."""
        saved = await self.store.approvals.save(
            state_json,
            approval_id=approval_id,
            thread_id=thread_id or None,
            agent_id=agent_name or None,
            node=node_name or None,
        )
        return suspended_dict(saved)

    async def get_suspended_state(self, approval_id: str) -> dict[str, Any] | None:
        """A suspended state that has not expired, or None."""
        found = await self.store.approvals.get(approval_id)
        return None if found is None else suspended_dict(found)

    async def list_suspended_states(
        self,
        *,
        thread_id: str | None = None,
        agent_name: str | None = None,
    ) -> list[dict[str, Any]]:
        """Live suspended states, newest first."""
        found: list[Approval] = []
        while len(found) < MAX_COLLECT:
            rows = await self.store.approvals.list(
                thread_id=thread_id,
                agent_id=agent_name,
                limit=MAX_LIMIT,
                before=found[-1] if found else None,
            )
            found.extend(rows)
            if len(rows) < MAX_LIMIT:
                break
        return [suspended_dict(a) for a in found]

    async def delete_suspended_state(self, approval_id: str) -> bool:
        """Delete a suspended state; False when there was none."""
        return await self.store.approvals.delete(approval_id)

    async def cleanup_expired_states(self) -> int:
        """Delete expired suspended states; the number deleted."""
        return await self.store.approvals.cleanup_expired()

    # -- forks ----------------------------------------------------------------------

    async def fork_thread(
        self,
        parent_thread_id: str,
        message_index: int,
        new_thread_id: str,
        *,
        title: str | None = None,
    ) -> dict[str, Any] | None:
        """Fork up to and including ``message_index``; None if the parent or index is missing
        (an index that is not an integer of 64 bits at most is a ValidationError)."""
        if isinstance(message_index, bool) or not isinstance(message_index, int):
            raise ValidationError(f"message_index must be an integer, not {message_index!r}")
        check_value(message_index)
        try:
            fork = await self.store.threads.fork(
                parent_thread_id, message_index, new_thread_id=new_thread_id, title=title
            )
        except (NotFoundError, ValidationError):
            return None
        return thread_dict(fork)

    async def get_thread_lineage(self, thread_id: str) -> dict[str, Any]:
        """Ancestors (root first) and every descendant (the whole subtree)."""
        lineage = await self.store.threads.lineage(thread_id)
        if lineage is None:
            return {"thread_id": thread_id, "ancestors": [], "descendants": []}
        return {
            "thread_id": thread_id,
            "ancestors": [thread_dict(t) for t in lineage.ancestors],
            "descendants": [thread_dict(t) for t in lineage.descendants],
        }

    # -- checkpoints (through store.checkpoints) -------------------------------------

    async def get_checkpoint(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str
    ) -> dict[str, Any] | None:
        """One checkpoint, or the latest of the namespace when ``checkpoint_id`` is empty."""
        found = await self.store.checkpoints.get(
            thread_id, checkpoint_id or None, namespace=checkpoint_ns
        )
        return None if found is None else checkpoint_dict(found)

    async def save_checkpoint(
        self,
        thread_id: str,
        checkpoint_ns: str,
        checkpoint_id: str,
        parent_checkpoint_id: str | None,
        checkpoint: dict[str, Any],
        metadata: dict[str, Any],
    ) -> None:
        """Insert or replace a checkpoint."""
        await self.store.checkpoints.save(
            thread_id,
            checkpoint_id,
            checkpoint,
            namespace=checkpoint_ns,
            parent_id=parent_checkpoint_id,
            metadata=metadata,
        )

    async def list_checkpoints(
        self,
        thread_id: str,
        checkpoint_ns: str,
        *,
        before: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """A namespace's checkpoints newest first, older than ``before`` when given."""
        wanted = MAX_LIMIT if limit is None else _count(limit)
        found: list[Checkpoint] = []
        while len(found) < wanted:
            page = min(MAX_LIMIT, wanted - len(found))
            rows = await self.store.checkpoints.list(
                thread_id,
                namespace=checkpoint_ns,
                before=found[-1] if found else before,
                limit=page,
            )
            found.extend(rows)
            if len(rows) < page:
                break
        return [checkpoint_dict(c) for c in found]

    async def _insert_once(self, table: str, columns: str, args: Sequence[Any]) -> Row:
        """Insert a row of one of this adapter's tables (names from its fixed constants);
        a retried id keeps the row stored first. Returns the stored row."""
        marks = ", ".join("?" * len(args))
        result = await self.store.resending.execute(
            f"""INSERT INTO {table} ({columns}) VALUES ({marks})
            ON CONFLICT (id) DO UPDATE SET id = {table}.id
            RETURNING {columns}""",
            args,
        )
        return result.rows[0]

    async def _get_by_id(self, table: str, columns: str, row_id: str) -> Row | None:
        """One row of one of this adapter's tables by id, or None."""
        return (
            await self.store.resending.execute(
                f"SELECT {columns} FROM {table} WHERE id = ?", (row_id,)
            )
        ).first()

    # -- invocation logs --------------------------------------------------------------

    async def create_invocation_log(
        self,
        *,
        agent_name: str,
        resource_type: str = "agent",
        thread_id: str | None = None,
        run_id: str | None = None,
        endpoint: str = "invoke",
        input_data: dict[str, Any] | None = None,
        output_data: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        error: str | None = None,
        duration_ms: float | None = None,
        status: str = "ok",
        log_id: str | None = None,
    ) -> dict[str, Any]:
        """Store one invocation log (a retried id keeps the first)."""
        args = (
            log_id or f"invlog_{new_id()}",
            resource_type or "agent",
            agent_name,
            thread_id,
            run_id,
            endpoint,
            dumps(input_data or {}, "input_data"),
            dumps(output_data or {}, "output_data"),
            dumps(metadata or {}, "metadata"),
            error,
            duration_ms,
            status,
            now_ms(),
        )
        return _log_dict(await self._insert_once("invocation_logs", _LOG_COLUMNS, args))

    async def get_invocation_log(self, log_id: str) -> dict[str, Any] | None:
        """One invocation log, or None."""
        row = await self._get_by_id("invocation_logs", _LOG_COLUMNS, log_id)
        return None if row is None else _log_dict(row)

    async def list_invocation_logs(
        self,
        *,
        agent_name: str | None = None,
        resource_type: str | None = None,
        thread_id: str | None = None,
        status: str | None = None,
        endpoint: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Invocation logs newest first."""
        filters = {
            "resource_name": agent_name,
            "resource_type": resource_type,
            "thread_id": thread_id,
            "status": status,
            "endpoint": endpoint,
        }
        sql, args = _filtered(
            "invocation_logs", _LOG_COLUMNS, filters, _count(limit), _offset(offset)
        )
        return [_log_dict(r) for r in (await self._select(sql, args)).values]

    async def count_invocation_logs(
        self,
        *,
        agent_name: str | None = None,
        resource_type: str | None = None,
        thread_id: str | None = None,
        status: str | None = None,
        endpoint: str | None = None,
    ) -> int:
        """The number of invocation logs matching the filters."""
        filters = {
            "resource_name": agent_name,
            "resource_type": resource_type,
            "thread_id": thread_id,
            "status": status,
            "endpoint": endpoint,
        }
        sql, args = _filtered("invocation_logs", _LOG_COLUMNS, filters, None)
        count = (await self._select(sql, args)).scalar()
        return int(count) if isinstance(count, int) else 0

    async def save_log_analysis(
        self,
        *,
        agent_name: str,
        resource_type: str = "agent",
        score: float | None,
        summary: str,
        status: str,
        recommendations: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        analysis_id: str | None = None,
    ) -> dict[str, Any]:
        """Store one log analysis."""
        args = (
            analysis_id or f"loganalysis_{new_id()}",
            resource_type or "agent",
            agent_name,
            score,
            summary,
            status,
            dumps(recommendations or [], "recommendations"),
            dumps(metadata or {}, "metadata"),
            now_ms(),
        )
        return _analysis_dict(await self._insert_once("log_analyses", _ANALYSIS_COLUMNS, args))

    async def get_latest_log_analysis(
        self, agent_name: str, *, resource_type: str = "agent"
    ) -> dict[str, Any] | None:
        """The newest analysis of a resource, or None."""
        filters = {"resource_name": agent_name, "resource_type": resource_type or "agent"}
        sql, args = _filtered("log_analyses", _ANALYSIS_COLUMNS, filters, 1)
        row = (await self._select(sql, args)).first()
        return None if row is None else _analysis_dict(row)

    async def list_log_analyses(
        self,
        *,
        agent_name: str | None = None,
        resource_type: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Log analyses newest first."""
        filters = {"resource_name": agent_name, "resource_type": resource_type}
        sql, args = _filtered(
            "log_analyses", _ANALYSIS_COLUMNS, filters, _count(limit), _offset(offset)
        )
        return [_analysis_dict(r) for r in (await self._select(sql, args)).values]

    # -- optimization runs ------------------------------------------------------------

    async def create_optimization_run(
        self,
        *,
        experiment_id: str,
        agent_name: str,
        baseline_score: float | None = None,
        best_score: float | None = None,
        prompt_versions: dict[str, Any] | None = None,
        score_history: list[Any] | None = None,
        learnings: list[Any] | None = None,
        artefacts: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Store one optimization run."""
        args = (
            run_id or f"optrun_{new_id()}",
            experiment_id,
            agent_name,
            baseline_score,
            best_score,
            dumps(prompt_versions or {}, "prompt_versions"),
            dumps(score_history or [], "score_history"),
            dumps(learnings or [], "learnings"),
            dumps(artefacts or {}, "artefacts"),
            dumps(metadata or {}, "metadata"),
            now_ms(),
        )
        return _run_dict(await self._insert_once("optimization_runs", _RUN_COLUMNS, args))

    async def get_optimization_run(self, run_id: str) -> dict[str, Any] | None:
        """One optimization run, or None."""
        row = await self._get_by_id("optimization_runs", _RUN_COLUMNS, run_id)
        return None if row is None else _run_dict(row)

    async def list_optimization_runs(
        self,
        *,
        agent_name: str | None = None,
        experiment_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Optimization runs newest first."""
        filters = {"agent_name": agent_name, "experiment_id": experiment_id}
        sql, args = _filtered(
            "optimization_runs", _RUN_COLUMNS, filters, _count(limit), _offset(offset)
        )
        return [_run_dict(r) for r in (await self._select(sql, args)).values]
