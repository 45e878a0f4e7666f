"""Checkpoints: saved graph states per thread and namespace, with their pending writes.

One schema serves two doors: the small generic API below (``store.checkpoints``), and the
LangGraph saver in ``sqlstore.compat.langgraph``, which adds channel blobs and pending
writes on the same tables. Checkpoint ids are expected to sort in creation order
(UUIDv6/v7): "latest" is the greatest id, and lists are newest first by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..values import MAX_CHECKPOINT_BYTES
from .common import dumps, loads, now_ms, optional_id, require_dict, require_id, require_limit

if TYPE_CHECKING:
    from ..drivers import Args, Executor, Row, Statement

MAX_NAMESPACE_LENGTH = 1024
MAX_TYPE_LENGTH = 64
JSON_TYPE = "json"

COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, parent_id, type, payload, metadata, created_at"

SAVE = f"""
INSERT INTO checkpoints
    (thread_id, checkpoint_ns, checkpoint_id, parent_id, type, payload, metadata, created_at,
     run_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, json_extract(?, '$.run_id'))
ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET
    parent_id = excluded.parent_id, type = excluded.type, payload = excluded.payload,
    metadata = excluded.metadata, run_id = excluded.run_id, blob_versions = NULL
RETURNING {COLUMNS}
"""

GET_ONE = f"""
SELECT {COLUMNS} FROM checkpoints
WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?
"""

GET_LATEST = f"""
SELECT {COLUMNS} FROM checkpoints
WHERE thread_id = ? AND checkpoint_ns = ?
ORDER BY checkpoint_id DESC LIMIT 1
"""

COUNT_THREAD = "SELECT count(*) FROM checkpoints WHERE thread_id = ?"

DELETE_THREAD: tuple[str, ...] = (
    "DELETE FROM checkpoint_writes WHERE thread_id = ?",
    "DELETE FROM checkpoint_blobs WHERE thread_id = ?",
    "DELETE FROM checkpoints WHERE thread_id = ?",
)


def require_namespace(value: Any) -> str:
    """A checkpoint namespace: any string ('' is the root) of bounded length."""
    if not isinstance(value, str):
        raise ValidationError(f"namespace must be a string, not {type(value).__name__}")
    if len(value) > MAX_NAMESPACE_LENGTH:
        raise ValidationError(f"namespace is longer than {MAX_NAMESPACE_LENGTH} characters")
    return value


def delete_thread_statements(thread_id: str) -> list[Statement]:
    """The statements removing a thread's checkpoints, writes and blobs (all namespaces)."""
    return [(sql, (thread_id,)) for sql in DELETE_THREAD]


def _encode_payload(payload: Any, type_: Any) -> tuple[str | None, bytes | str]:
    """(type, stored value): bytes as a BLOB with the caller's type, else JSON text."""
    if type_ is not None and (
        not isinstance(type_, str) or not type_ or len(type_) > MAX_TYPE_LENGTH
    ):
        raise ValidationError(f"type must be a short non-empty string or None, not {type_!r}")
    if isinstance(payload, bytes | bytearray | memoryview):
        return type_, bytes(payload)
    if type_ not in (None, JSON_TYPE):
        raise ValidationError(
            f"a non-bytes payload is stored as JSON; type {type_!r} is not 'json'"
        )
    return JSON_TYPE, dumps(payload, "payload", MAX_CHECKPOINT_BYTES)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A stored checkpoint. ``payload`` is bytes (with the caller's ``type``) or the JSON
    value saved (type ``"json"``).

    ``checkpoint["payload"]`` still works: the generic API returned dicts before it
    returned Checkpoints (``to_dict`` gives that dict).
    """

    thread_id: str
    namespace: str
    checkpoint_id: str
    parent_id: str | None
    type: str | None
    payload: Any
    metadata: dict[str, Any]
    created_at: int

    def to_dict(self) -> dict[str, Any]:
        """The checkpoint as a plain dict (the generic API's older return shape)."""
        return {name: getattr(self, name) for name in self.__slots__}

    def __getitem__(self, name: str) -> Any:
        if name not in self.__slots__:
            raise KeyError(name)
        return getattr(self, name)


def _decode(row: Row) -> Checkpoint:
    type_ = row["type"]
    payload = row["payload"]
    if type_ == JSON_TYPE and payload is not None:
        payload = loads(payload)
    return Checkpoint(
        thread_id=row["thread_id"],
        namespace=row["checkpoint_ns"],
        checkpoint_id=row["checkpoint_id"],
        parent_id=row["parent_id"],
        type=type_,
        payload=payload,
        metadata=loads(row["metadata"], {}),
        created_at=row["created_at"],
    )


class CheckpointStore:
    """The generic checkpoint API: save, get, list and delete a thread's checkpoints."""

    def __init__(self, store: Executor) -> None:
        self._store = store

    async def save(
        self,
        thread_id: str,
        checkpoint_id: str,
        payload: Any,
        *,
        namespace: str = "",
        parent_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        type: str | None = None,
    ) -> Checkpoint:
        """Insert or replace one checkpoint; a replaced one keeps its ``created_at``.

        ``payload`` is bytes (stored as a BLOB, labelled with ``type``) or any JSON value
        (stored as JSON text with type ``"json"``).
        """
        thread_id = require_id("thread_id", thread_id)
        checkpoint_id = require_id("checkpoint_id", checkpoint_id)
        namespace = require_namespace(namespace)
        parent_id = optional_id("parent_id", parent_id)
        meta = dumps(require_dict("metadata", metadata), "metadata")
        type_, stored = _encode_payload(payload, type)
        args = (thread_id, namespace, checkpoint_id, parent_id, type_, stored, meta, now_ms(), meta)
        result = await self._store.execute(SAVE, args)
        row = result.first()
        assert row is not None  # RETURNING always answers one row for an upsert
        return _decode(row)

    async def get(
        self, thread_id: str, checkpoint_id: str | None = None, *, namespace: str = ""
    ) -> Checkpoint | None:
        """One checkpoint by id, or the thread's latest in ``namespace``; None if none."""
        thread_id = require_id("thread_id", thread_id)
        checkpoint_id = optional_id("checkpoint_id", checkpoint_id)
        namespace = require_namespace(namespace)
        if checkpoint_id is None:
            result = await self._store.execute(GET_LATEST, (thread_id, namespace))
        else:
            result = await self._store.execute(GET_ONE, (thread_id, namespace, checkpoint_id))
        row = result.first()
        return None if row is None else _decode(row)

    async def list(
        self,
        thread_id: str,
        *,
        namespace: str | None = None,
        before: Checkpoint | str | None = None,
        limit: int = 20,
    ) -> list[Checkpoint]:
        """A thread's checkpoints newest first (every namespace when ``namespace`` is None).

        ``before`` is the last checkpoint of the previous page (or its id): only older
        ones are returned (keyset pagination).
        """
        thread_id = require_id("thread_id", thread_id)
        if namespace is not None:
            namespace = require_namespace(namespace)
        if isinstance(before, Checkpoint):
            before = before.checkpoint_id
        before = optional_id("before", before)
        limit = require_limit(limit)
        where = ["thread_id = ?"]
        args: list[Any] = [thread_id]
        if namespace is not None:
            where.append("checkpoint_ns = ?")
            args.append(namespace)
        if before is not None:
            where.append("checkpoint_id < ?")
            args.append(before)
        args.append(limit)
        sql = (
            f"SELECT {COLUMNS} FROM checkpoints WHERE {' AND '.join(where)} "
            "ORDER BY checkpoint_id DESC, checkpoint_ns DESC LIMIT ?"
        )
        bound: Args = args
        result = await self._store.execute(sql, bound)
        return [_decode(row) for row in result.rows]

    async def delete_thread(self, thread_id: str) -> int:
        """Delete every checkpoint of a thread (all namespaces) with its writes; the count."""
        thread_id = require_id("thread_id", thread_id)
        results = await self._store.batch(
            [(COUNT_THREAD, (thread_id,)), *delete_thread_statements(thread_id)]
        )
        count = results[0].scalar()
        return int(count) if isinstance(count, int) else 0


Checkpoints = CheckpointStore
"""The older name of ``CheckpointStore`` (every domain API class is ``<Item>Store``)."""
