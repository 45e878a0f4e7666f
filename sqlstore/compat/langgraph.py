"""LangGraph checkpointer on sqlstore: the same saver on a local SQLite file and on libSQL/Turso.

    from langgraph.graph import StateGraph
    from sqlstore.compat.langgraph import LibSQLSaver

    async with LibSQLSaver.from_url("file:agents.db") as saver:  # or "libsql://…", token
        graph = builder.compile(checkpointer=saver)
        await graph.ainvoke({"topic": "cats"}, {"configurable": {"thread_id": "t1"}})

Differences from LangGraph's SQLite saver: every ``aput`` / ``aput_writes`` is one atomic
batch (one round trip to a server); channel values are stored once per channel version in
``checkpoint_blobs`` and shared by the checkpoints that hold them, so a checkpoint does
not repeat unchanged state; ``alist`` fetches a page of checkpoints with their pending
writes and blobs in one batch and holds no lock while the caller iterates. Requires the
``langgraph`` extra (langgraph-checkpoint).
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import orjson
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..domains.checkpoints import delete_thread_statements, require_namespace
from ..domains.common import MAX_LIMIT, dumps, now_ms, optional_id, require_id
from ..domains.tombstones import TOMBSTONE_CHECKPOINTS
from ..drivers import Row, Statement
from ..errors import SqlStoreError, UnavailableError, ValidationError
from ..retention import delete_checkpoints_of_runs, prune_checkpoint_namespace
from ..store import Store

__all__ = ["LibSQLSaver"]

T = TypeVar("T")

PAGE_SIZE = 100
"""Checkpoints fetched per round trip when ``alist`` has no limit (or a larger one)."""

INLINE_STR_LIMIT = 256
"""Strings shorter than this stay inside the checkpoint instead of becoming a blob."""

_FILTER_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")

_CHECKPOINT_COLUMNS = (
    "thread_id, checkpoint_ns, checkpoint_id, parent_id, type, payload, metadata, blob_versions"
)
# Order and keyset condition per listing scope: one namespace of a thread, a whole thread,
# or every thread. Ids are unique within a namespace; the other keys break ties.
_ORDERS = {
    "ns": "ORDER BY checkpoint_id DESC",
    "thread": "ORDER BY checkpoint_id DESC, checkpoint_ns DESC",
    "all": "ORDER BY checkpoint_id DESC, thread_id DESC, checkpoint_ns DESC",
}
_AFTER = {
    "ns": "checkpoint_id < ?",
    "thread": "checkpoint_id <= ? AND (checkpoint_id < ? OR checkpoint_ns < ?)",
    "all": "checkpoint_id <= ? AND (checkpoint_id < ? OR thread_id < ? "
    "OR (thread_id = ? AND checkpoint_ns < ?))",
}

PUT_CHECKPOINT = """
INSERT INTO checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_id, type, payload, metadata, created_at,
     run_id, blob_versions)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, json_extract(?, '$.run_id'), ?)
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
    parent_id = excluded.parent_id, type = excluded.type, payload = excluded.payload,
    metadata = excluded.metadata, run_id = excluded.run_id,
    blob_versions = excluded.blob_versions
"""

_BLOB_INSERT = (
    "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, value) "
    "VALUES {rows} ON CONFLICT DO NOTHING"
)
_WRITE_INSERT = (
    "INSERT INTO checkpoint_writes "
    "(thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value) "
    "VALUES {rows} ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) "
)
_WRITE_IGNORE = _WRITE_INSERT + "DO NOTHING"
_WRITE_REPLACE = (
    _WRITE_INSERT + "DO UPDATE SET task_path = excluded.task_path, channel = excluded.channel, "
    "type = excluded.type, value = excluded.value"
)

_THREADS = "SELECT value FROM json_each(?)"

COPY_THREAD: tuple[str, ...] = (
    """INSERT INTO checkpoints
        (thread_id, checkpoint_ns, checkpoint_id, parent_id, type, payload, metadata,
         created_at, run_id, blob_versions)
    SELECT ?, checkpoint_ns, checkpoint_id, parent_id, type, payload, metadata,
           created_at, run_id, blob_versions
    FROM checkpoints WHERE thread_id = ?
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
        parent_id = excluded.parent_id, type = excluded.type, payload = excluded.payload,
        metadata = excluded.metadata, run_id = excluded.run_id,
        blob_versions = excluded.blob_versions""",
    """INSERT INTO checkpoint_writes
        (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value)
    SELECT ?, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value
    FROM checkpoint_writes WHERE thread_id = ?
    ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET
        task_path = excluded.task_path, channel = excluded.channel, type = excluded.type,
        value = excluded.value""",
    """INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, value)
    SELECT ?, checkpoint_ns, channel, version, type, value
    FROM checkpoint_blobs WHERE thread_id = ?
    ON CONFLICT DO NOTHING""",
)

PRUNE_DELETE: tuple[str, ...] = (
    f"DELETE FROM checkpoint_writes WHERE thread_id IN ({_THREADS})",
    f"DELETE FROM checkpoint_blobs WHERE thread_id IN ({_THREADS})",
    f"DELETE FROM checkpoints WHERE thread_id IN ({_THREADS})",
)
PRUNE_STRATEGIES = ("keep_latest", "delete")

# Nothing comes back: a checkpoint or write born before its thread was deleted (a late
# write of a run in flight) is undone in the same batch that stored it. ?1 thread, ?2
# namespace, ?3 checkpoint id, ?4 the checkpoint's birth (ms, from its UUIDv6 id).
_TOMBSTONED = """EXISTS (SELECT 1 FROM tombstones WHERE kind = 'checkpoints' AND key = ?1
    AND deleted_at > ?4)"""
UNDO_LATE_CHECKPOINT: tuple[str, ...] = (
    f"""DELETE FROM checkpoints WHERE thread_id = ?1 AND checkpoint_ns = ?2
        AND checkpoint_id = ?3 AND {_TOMBSTONED}""",
    f"""DELETE FROM checkpoint_blobs WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND ?3 = ?3
        AND {_TOMBSTONED} AND NOT EXISTS (
            SELECT 1 FROM checkpoints c, json_each(c.blob_versions) j
            WHERE c.thread_id = ?1 AND c.checkpoint_ns = ?2
              AND j.key = checkpoint_blobs.channel AND j.value = checkpoint_blobs.version)""",
)
UNDO_LATE_WRITES = f"""DELETE FROM checkpoint_writes WHERE thread_id = ?1
    AND checkpoint_ns = ?2 AND checkpoint_id = ?3 AND {_TOMBSTONED}"""

_UUID_EPOCH = 0x01B21DD213814000
"""100-ns intervals from 1582-10-15 (the UUIDv1/v6 epoch) to 1970-01-01."""


def born_ms(checkpoint_id: str) -> int | None:
    """The creation time (ms since the epoch) of a LangGraph checkpoint id (a UUIDv6), or
    None for an id that is not one (its late writes then cannot be told from new ones)."""
    digits = checkpoint_id.replace("-", "")
    if len(digits) != 32 or digits[12] != "6":
        return None
    try:
        ticks = int(digits[:12] + digits[13:16], 16)
    except ValueError:
        return None
    return max(0, (ticks - _UUID_EPOCH) // 10_000)


def _placeholders(rows: int, columns: int) -> str:
    """``(?, ?), (?, ?)`` for ``rows`` rows of ``columns`` values (no values in the SQL)."""
    one = "(" + ", ".join("?" * columns) + ")"
    return ", ".join([one] * rows)


def _inline(value: Any) -> bool:
    """Small scalars stay inside the checkpoint; everything else is stored as a blob."""
    if value is None or isinstance(value, bool | int | float):
        return True
    return isinstance(value, str) and len(value) < INLINE_STR_LIMIT


def _dump_metadata(config: RunnableConfig, metadata: CheckpointMetadata) -> str:
    """Metadata as JSON text, merged with the config's keys as LangGraph's savers do."""
    merged = get_serializable_checkpoint_metadata(config, metadata)
    return dumps(merged, "checkpoint metadata")  # sqlstore's one rule for JSON values


def _configurable(config: RunnableConfig | None) -> dict[str, Any]:
    if config is None:
        return {}
    conf = config.get("configurable")
    if conf is None:
        return {}
    if not isinstance(conf, dict):
        raise ValidationError("config['configurable'] must be a dict")
    return conf


def _target(config: RunnableConfig) -> tuple[str, str, str | None]:
    """(thread_id, namespace, checkpoint_id or None) of a config, validated."""
    conf = _configurable(config)
    thread_id = require_id("thread_id", conf.get("thread_id"))
    namespace = require_namespace(conf.get("checkpoint_ns") or "")
    checkpoint_id = optional_id("checkpoint_id", conf.get("checkpoint_id") or None)
    return thread_id, namespace, checkpoint_id


def _ids(name: str, values: Any) -> str:
    """A JSON array of validated ids (for ``json_each``)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence | set | frozenset):
        raise ValidationError(f"{name} must be a sequence of ids, not {type(values).__name__}")
    return json.dumps([require_id(name, v) for v in values])


def _filter_clause(key: Any, value: Any) -> tuple[str, list[Any]]:
    """One metadata condition with the JSON path bound as a parameter (never in the SQL)."""
    if not isinstance(key, str) or not _FILTER_KEY.match(key):
        raise ValidationError(f"metadata filter key {key!r} must match {_FILTER_KEY.pattern}")
    path = f'$."{key}"'  # safe: the pattern admits no quote or backslash
    if value is None:
        return "json_extract(metadata, ?) IS NULL", [path]
    if isinstance(value, bool):
        return "json_type(metadata, ?) = ?", [path, "true" if value else "false"]
    if isinstance(value, int | float | str):
        return "json_extract(metadata, ?) = ?", [path, value]
    if isinstance(value, dict | list):
        encoded = dumps(value, f"metadata filter value for {key!r}")
        return "json_extract(metadata, ?) = json(?)", [path, encoded]
    raise ValidationError(f"metadata filter value for {key!r} has unsupported type")


class LibSQLSaver(BaseCheckpointSaver[str]):
    """An async LangGraph checkpoint saver on a sqlstore ``Store`` (local file or libSQL).

    ``LibSQLSaver(store)`` uses a store you own; ``LibSQLSaver.from_url(url)`` makes one
    that ``async with`` opens and closes. The sync methods work from other threads while
    the saver's event loop runs (as with LangGraph's AsyncSqliteSaver).
    """

    store: Store
    loop: asyncio.AbstractEventLoop | None

    def __init__(
        self,
        store: Store,
        *,
        serde: SerializerProtocol | None = None,
        owns_store: bool = False,
    ) -> None:
        super().__init__(serde=serde)
        if not isinstance(store, Store):
            raise ValidationError(f"LibSQLSaver needs a sqlstore.Store, not {type(store).__name__}")
        self.store = store
        self._owns_store = owns_store
        self._ready = False
        self._closed = False
        try:
            self.loop = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None

    @classmethod
    def from_url(
        cls,
        url: Any,
        auth_token: str | None = None,
        *,
        serde: SerializerProtocol | None = None,
        **options: Any,
    ) -> LibSQLSaver:
        """A saver on its own store at ``url``; use it as ``async with``, which closes it."""
        return cls(Store(url, auth_token=auth_token, **options), serde=serde, owns_store=True)

    def __repr__(self) -> str:
        return f"LibSQLSaver({self.store!r})"

    async def setup(self) -> None:
        """Open the store and bring its schema up to date (idempotent; called lazily)."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        if self._closed:
            raise UnavailableError("the saver is closed")
        if self._ready:
            return
        await self.store.initialize()  # concurrent first calls share one client
        self._ready = True

    async def aclose(self) -> None:
        """Close the saver, and its store if this saver opened it (``from_url``); every
        later call raises UnavailableError."""
        self._ready = False
        self._closed = True
        if self._owns_store:
            await self.store.close()

    async def __aenter__(self) -> LibSQLSaver:
        try:
            await self.setup()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _batch(self, statements: Sequence[Statement]) -> list[Any]:
        if not self._ready:
            await self.setup()
        return await self.store.resending.batch(statements)

    # -- writes ---------------------------------------------------------------------------

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Store a checkpoint and its changed channel values in one atomic batch."""
        thread_id, namespace, parent_id = _target(config)
        checkpoint_id = require_id("checkpoint id", checkpoint.get("id"))
        versions = checkpoint.get("channel_versions") or {}
        inline: dict[str, Any] = {}
        refs: dict[str, str] = {}
        blob_args: list[Any] = []
        for channel, value in checkpoint.get("channel_values", {}).items():
            version = versions.get(channel)
            if version is None or _inline(value):
                inline[channel] = value
                continue
            if channel in new_versions:
                if new_versions[channel] != version:
                    inline[channel] = value  # inconsistent versions: keep the value here
                    continue
                type_, blob = self.serde.dumps_typed(value)
                blob_args += [thread_id, namespace, channel, str(version), type_, blob]
            # An unchanged channel's blob was stored when its version was new.
            refs[channel] = str(version)
        body = {**checkpoint, "channel_values": inline}
        type_, payload = self.serde.dumps_typed(body)
        meta = _dump_metadata(config, metadata)
        refs_json = orjson.dumps(refs).decode("utf-8") if refs else None
        statements: list[Statement] = []
        if blob_args:
            rows = _placeholders(len(blob_args) // 6, 6)
            statements.append((_BLOB_INSERT.format(rows=rows), blob_args))
        statements.append(
            (
                PUT_CHECKPOINT,
                (
                    *(thread_id, namespace, checkpoint_id, parent_id, type_, payload, meta),
                    *(now_ms(), meta, refs_json),
                ),
            )
        )
        born = born_ms(checkpoint_id)
        if born is not None:
            undo = UNDO_LATE_CHECKPOINT if blob_args else UNDO_LATE_CHECKPOINT[:1]
            statements += [(sql, (thread_id, namespace, checkpoint_id, born)) for sql in undo]
        await self._batch(statements)
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": namespace,
                "checkpoint_id": checkpoint_id,
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Store a task's pending writes in one batch; a retry never duplicates them.

        Special channels (error, interrupt, resume, scheduled) replace an earlier write at
        their fixed index; ordinary writes keep the first copy.
        """
        thread_id, namespace, checkpoint_id = _target(config)
        if checkpoint_id is None:
            raise ValidationError("put_writes needs config['configurable']['checkpoint_id']")
        task_id = require_id("task_id", task_id)
        if not isinstance(task_path, str):
            raise ValidationError("task_path must be a string")
        special: list[Any] = []
        ordinary: list[Any] = []
        for idx, (channel, value) in enumerate(writes):
            type_, blob = self.serde.dumps_typed(value)
            row: list[Any] = [thread_id, namespace, checkpoint_id, task_id, task_path]
            row += [WRITES_IDX_MAP.get(channel, idx), channel, type_, blob]
            (special if channel in WRITES_IDX_MAP else ordinary).extend(row)
        statements: list[Statement] = []
        for sql, args in ((_WRITE_REPLACE, special), (_WRITE_IGNORE, ordinary)):
            if args:
                statements.append((sql.format(rows=_placeholders(len(args) // 9, 9)), args))
        born = born_ms(checkpoint_id)
        if statements and born is not None:
            statements.append((UNDO_LATE_WRITES, (thread_id, namespace, checkpoint_id, born)))
        if statements:
            await self._batch(statements)

    async def adelete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and blob of a thread (all namespaces)."""
        thread_id = require_id("thread_id", thread_id)
        await self._batch(
            [(TOMBSTONE_CHECKPOINTS, (thread_id, now_ms())), *delete_thread_statements(thread_id)]
        )

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints (and their writes) whose metadata ``run_id`` is listed.

        DeltaChannel-aware: a listed run's checkpoint that a surviving checkpoint's delta
        channel is rebuilt from stays (see ``sqlstore.retention.with_delta_ancestors``).
        One batch per namespace touched.
        """
        runs = _ids("run_ids", run_ids)
        if runs == "[]":
            return
        if not self._ready:
            await self.setup()
        await delete_checkpoints_of_runs(self.store.resending, json.loads(runs))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and blob of a thread to another thread id."""
        source = require_id("source_thread_id", source_thread_id)
        target = require_id("target_thread_id", target_thread_id)
        await self._batch([(sql, (target, source)) for sql in COPY_THREAD])

    async def aprune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep: int = 1
    ) -> None:
        """Keep only the latest ``keep`` checkpoints per namespace (``keep_latest``) or
        ``delete`` all.

        DeltaChannel-aware: a kept checkpoint's ancestors back to the nearest one holding a
        snapshot of each delta channel it does not hold itself stay, with their writes
        (see ``sqlstore.retention.checkpoints_to_delete``). Each namespace is one batch.
        """
        if strategy not in PRUNE_STRATEGIES:
            raise ValidationError(f"strategy must be one of {PRUNE_STRATEGIES}, not {strategy!r}")
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValidationError(f"keep must be an integer >= 1, not {keep!r}")
        threads = _ids("thread_ids", thread_ids)
        if threads == "[]":
            return
        if strategy == "delete":
            await self._batch([(sql, (threads,)) for sql in PRUNE_DELETE])
            return
        if not self._ready:
            await self.setup()
        namespaces = await self.store.execute(
            f"""SELECT DISTINCT thread_id, checkpoint_ns FROM checkpoints
                WHERE thread_id IN ({_THREADS})""",
            (threads,),
        )
        for thread_id, namespace in namespaces.values:
            await prune_checkpoint_namespace(
                self.store.resending, str(thread_id), str(namespace), keep
            )

    # -- reads ----------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint named by the config, or the thread's latest, with its writes."""
        thread_id, namespace, checkpoint_id = _target(config)
        where = ["thread_id = ?", "checkpoint_ns = ?"]
        args: list[Any] = [thread_id, namespace]
        if checkpoint_id is not None:
            where.append("checkpoint_id = ?")
            args.append(checkpoint_id)
        page = await self._page(" AND ".join(where), args, 1, "ns")
        return page[0] if page else None

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Checkpoints newest first, filtered by thread, namespace, metadata and ``before``.

        Pages are fetched whole (checkpoints, pending writes and blobs in one batch) before
        they are yielded, so nothing is held open while the caller iterates.
        """
        where, args, scope = self._list_where(config, filter, before)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ValidationError(f"limit must be an integer or None, not {limit!r}")
        remaining = limit
        cursor: tuple[str, str, str] | None = None
        while remaining is None or remaining > 0:
            size = PAGE_SIZE if remaining is None else min(remaining, MAX_LIMIT)
            page_where, page_args = list(where), list(args)
            if cursor is not None:
                cid, tid, ns = cursor
                page_where.append(_AFTER[scope])
                page_args += {
                    "ns": [cid],
                    "thread": [cid, cid, ns],
                    "all": [cid, cid, tid, tid, ns],
                }[scope]
            page = await self._page(" AND ".join(page_where) or "1", page_args, size, scope)
            for item in page:
                yield item
            if len(page) < size:
                return
            if remaining is not None:
                remaining -= len(page)
            last = page[-1].config["configurable"]
            cursor = (last["checkpoint_id"], last["thread_id"], last["checkpoint_ns"])

    @staticmethod
    def _list_where(
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
    ) -> tuple[list[str], list[Any], str]:
        where: list[str] = []
        args: list[Any] = []
        conf = _configurable(config)
        scope = "all"
        if conf.get("thread_id") is not None:
            where.append("thread_id = ?")
            args.append(require_id("thread_id", conf["thread_id"]))
            scope = "thread"
        if conf.get("checkpoint_ns") is not None:
            where.append("checkpoint_ns = ?")
            args.append(require_namespace(conf["checkpoint_ns"]))
            scope = "ns" if scope == "thread" else scope
        if conf.get("checkpoint_id"):
            where.append("checkpoint_id = ?")
            args.append(require_id("checkpoint_id", conf["checkpoint_id"]))
        if filter is not None:
            if not isinstance(filter, dict):
                raise ValidationError("filter must be a dict of metadata keys and values")
            for key, value in filter.items():
                clause, clause_args = _filter_clause(key, value)
                where.append(clause)
                args += clause_args
        before_id = _configurable(before).get("checkpoint_id")
        if before_id is not None:
            where.append("checkpoint_id < ?")
            args.append(require_id("before checkpoint_id", before_id))
        return where, args, scope

    async def _page(
        self, where: str, args: list[Any], limit: int, scope: str
    ) -> list[CheckpointTuple]:
        """One batch: a page of checkpoints, their pending writes and their blobs."""
        order = _ORDERS[scope]
        page = f"SELECT {_CHECKPOINT_COLUMNS} FROM checkpoints WHERE {where} {order} LIMIT ?"
        keys = (
            "SELECT thread_id, checkpoint_ns, checkpoint_id, blob_versions "
            f"FROM checkpoints WHERE {where} {order} LIMIT ?"
        )
        bound = [*args, limit]
        writes = (
            "SELECT w.thread_id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.task_path, "
            "w.idx, w.channel, w.type, w.value "
            f"FROM ({keys}) p JOIN checkpoint_writes w ON w.thread_id = p.thread_id "
            "AND w.checkpoint_ns = p.checkpoint_ns AND w.checkpoint_id = p.checkpoint_id"
        )
        blobs = (
            "SELECT thread_id, checkpoint_ns, channel, version, type, value "
            "FROM checkpoint_blobs WHERE rowid IN (SELECT b.rowid "
            # CROSS JOIN keeps this order: page, its refs, then one index lookup per ref.
            f"FROM ({keys}) p CROSS JOIN json_each(p.blob_versions) j "
            "CROSS JOIN checkpoint_blobs b ON b.thread_id = p.thread_id "
            "AND b.checkpoint_ns = p.checkpoint_ns AND b.channel = j.key AND b.version = j.value)"
        )
        rows, write_rows, blob_rows = await self._batch(
            [(page, bound), (writes, bound), (blobs, bound)]
        )
        pending: dict[tuple[str, str, str], list[Row]] = {}
        for w in write_rows.rows:
            pending.setdefault((w[0], w[1], w[2]), []).append(w)
        stored = {(b[0], b[1], b[2], b[3]): (b[4], b[5]) for b in blob_rows.rows}
        return [self._tuple(row, pending, stored) for row in rows.rows]

    def _tuple(
        self,
        row: Row,
        pending: dict[tuple[str, str, str], list[Row]],
        stored: dict[tuple[str, str, str, str], tuple[str, bytes]],
    ) -> CheckpointTuple:
        thread_id, namespace, checkpoint_id, parent_id, type_, payload = row[:6]
        checkpoint: Checkpoint = self.serde.loads_typed((type_, payload))
        values = dict(checkpoint.get("channel_values") or {})
        if row["blob_versions"]:
            for channel, version in json.loads(row["blob_versions"]).items():
                blob = stored.get((thread_id, namespace, channel, version))
                if blob is not None:
                    values[channel] = self.serde.loads_typed(blob)
        checkpoint["channel_values"] = values
        writes = sorted(pending.get((thread_id, namespace, checkpoint_id), ()), key=_write_key)
        return CheckpointTuple(
            config={
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": namespace,
                    "checkpoint_id": checkpoint_id,
                }
            },
            checkpoint=checkpoint,
            metadata=json.loads(row["metadata"]) if row["metadata"] else {},
            parent_config=(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": namespace,
                        "checkpoint_id": parent_id,
                    }
                }
                if parent_id
                else None
            ),
            pending_writes=[
                (w["task_id"], w["channel"], self.serde.loads_typed((w["type"], w["value"])))
                for w in writes
            ],
        )

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next channel version: a zero-padded counter plus a random tie-breaker."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # -- sync bridges (from other threads, while the saver's loop runs) ----------------

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self.loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or (running is not None and running is loop):
            coro.close()
            if loop is None:
                raise SqlStoreError(
                    "LibSQLSaver's sync methods need the saver to be opened on an event loop "
                    "first (async with LibSQLSaver.from_url(...), or await saver.setup())"
                )
            raise asyncio.InvalidStateError(
                "Synchronous calls to LibSQLSaver are only allowed from a different thread "
                "than its event loop. From the loop, use the async methods "
                "(await saver.aget_tuple(...), await graph.ainvoke(...))."
            )
        return asyncio.run_coroutine_threadsafe(coro, loop).result()

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Sync ``aget_tuple`` (from another thread than the saver's loop)."""
        return self._run(self.aget_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Sync ``alist`` (from another thread than the saver's loop)."""
        items = self.alist(config, filter=filter, before=before, limit=limit)
        while True:
            try:
                yield self._run(_next(items))
            except StopAsyncIteration:
                return

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Sync ``aput`` (from another thread than the saver's loop)."""
        return self._run(self.aput(config, checkpoint, metadata, new_versions))

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Sync ``aput_writes`` (from another thread than the saver's loop)."""
        self._run(self.aput_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        """Sync ``adelete_thread`` (from another thread than the saver's loop)."""
        self._run(self.adelete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Sync ``adelete_for_runs`` (from another thread than the saver's loop)."""
        self._run(self.adelete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Sync ``acopy_thread`` (from another thread than the saver's loop)."""
        self._run(self.acopy_thread(source_thread_id, target_thread_id))

    def prune(
        self, thread_ids: Sequence[str], *, strategy: str = "keep_latest", keep: int = 1
    ) -> None:
        """Sync ``aprune`` (from another thread than the saver's loop)."""
        self._run(self.aprune(thread_ids, strategy=strategy, keep=keep))


def _write_key(w: Row) -> tuple[str, str, int]:
    """LangGraph's writes_sort_key: (task_path, task_id, idx)."""
    return (w["task_path"], w["task_id"], w["idx"])


async def _next(items: AsyncIterator[T]) -> T:
    return await items.__anext__()
