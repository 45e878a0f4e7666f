"""A checkpoint as the UI shows it: its metadata, the state it holds, its pending writes
and interrupts, read through the same doors agents use.

A generic checkpoint (JSON payload, ``store.checkpoints``) is its own state. A LangGraph
checkpoint is read through ``sqlstore.compat.langgraph.LibSQLSaver`` (its channel values
and pending writes decoded by LangGraph's serializer) when the ``langgraph`` extra is
installed; without it the page says what it cannot decode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..domains.checkpoints import JSON_TYPE
from ..domains.common import loads
from .queries import checkpoint_writes

if TYPE_CHECKING:
    from ..store import Store

INTERRUPT_CHANNEL = "__interrupt__"


@dataclass(slots=True)
class CheckpointView:
    """One checkpoint: ids, metadata, state (or why it is not shown), writes, interrupts."""

    thread_id: str
    namespace: str
    checkpoint_id: str
    parent_id: str | None
    type: str | None
    metadata: dict[str, Any]
    created_at: int
    state: Any = None
    note: str = ""
    writes: list[tuple[str, str, Any]] = field(default_factory=list)
    """(task id, channel, value) per pending write."""

    @property
    def interrupts(self) -> list[Any]:
        """The values of the pending writes to LangGraph's interrupt channel."""
        return [value for _, channel, value in self.writes if channel == INTERRUPT_CHANNEL]


def _saver(store: Store) -> Any:
    try:
        from ..compat.langgraph import LibSQLSaver
    except ImportError:
        return None
    return LibSQLSaver(store)


async def load_checkpoint(
    store: Store, thread_id: str, checkpoint_id: str, namespace: str = ""
) -> CheckpointView | None:
    """The checkpoint with its state and pending writes, or None when there is none."""
    row = await store.checkpoints.get(thread_id, checkpoint_id, namespace=namespace)
    if row is None:
        return None
    view = CheckpointView(
        thread_id,
        namespace,
        checkpoint_id,
        row["parent_id"],
        row["type"],
        row["metadata"],
        row["created_at"],
    )
    if row["type"] == JSON_TYPE:
        view.state = row["payload"]
        for task, _idx, channel, type_, value, _path in await checkpoint_writes(
            store, thread_id, namespace, checkpoint_id
        ):
            shown = loads(value) if type_ == JSON_TYPE else f"<{type_} value>"
            view.writes.append((str(task), str(channel), shown))
        return view
    saver = _saver(store)
    if saver is None:
        size = len(row["payload"] or b"")
        view.note = (
            f"a {row['type']} payload of {size} bytes: install sqlstore[langgraph] to read it"
        )
        return view
    config = {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": namespace,
            "checkpoint_id": checkpoint_id,
        }
    }
    found = await saver.aget_tuple(config)
    if found is None:  # deleted between the two reads
        return None
    view.state = dict(found.checkpoint.get("channel_values") or {})
    view.writes = [(str(t), str(c), v) for t, c, v in found.pending_writes or ()]
    return view
