"""The SQL behind the web UI's reads that no domain API answers (counts, sizes, searches,
expired approvals, feedback aggregates, checkpoint threads and writes).

Every statement is parameterised; table and column names come only from the fixed tuples
below. Every list is bounded and keyset-paged on an indexed order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..domains.threads import THREAD_COLUMNS, Thread, thread_from_row
from ..errors import QueryError

if TYPE_CHECKING:
    from ..drivers import Args
    from ..store import Store

TABLES = (
    "threads",
    "messages",
    "feedback",
    "approvals",
    "teams",
    "runs",
    "checkpoints",
    "checkpoint_blobs",
    "checkpoint_writes",
)
"""The tables the overview counts, in the order it shows them."""

THREAD_FILTERS = ("user_id", "agent_id", "session_id", "team_id")
"""The columns the threads page may filter on (equality)."""

_COUNTS = "SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)
_SIZES = (
    "SELECT name, sum(pgsize) FROM dbstat WHERE aggregate = 1 AND name IN ("
    + ", ".join("?" for _ in TABLES)
    + ") GROUP BY name"
)


async def table_counts(store: Store) -> dict[str, int]:
    """Rows per table, in one statement."""
    row: Sequence[Any] | None = (await store.execute(_COUNTS)).first()
    assert row is not None
    return {t: int(n) for t, n in zip(TABLES, row, strict=True)}


async def table_sizes(store: Store) -> dict[str, int] | None:
    """Bytes per table (pages of the table itself, not its indexes) from ``dbstat``;
    None where the engine has no ``dbstat`` (most servers)."""
    try:
        result = await store.execute(_SIZES, TABLES)
    except QueryError:
        return None
    return {str(r[0]): int(r[1] or 0) for r in result.values}


@dataclass(frozen=True, slots=True)
class ThreadQuery:
    """The threads page's filters: equality on fixed columns, and a search text matched
    against the id (exactly) and the title (anywhere)."""

    filters: dict[str, str]
    search: str | None = None


async def find_threads(
    store: Store, query: ThreadQuery, limit: int, before: tuple[int, str] | None
) -> list[Thread]:
    """Threads matching ``query``, newest updated first, keyset-paged on (updated_at, id)."""
    where: list[str] = []
    args: list[Any] = []
    for column in THREAD_FILTERS:  # names from the fixed list only
        value = query.filters.get(column)
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    if query.search:
        where.append("(id = ? OR instr(lower(title), lower(?)) > 0)")
        args += [query.search, query.search]
    if before is not None:
        where.append("(updated_at < ? OR (updated_at = ? AND id < ?))")
        args += [before[0], before[0], before[1]]
    sql = f"SELECT {THREAD_COLUMNS} FROM threads"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
    args.append(limit)
    bound: Args = args
    return [thread_from_row(r) for r in (await store.execute(sql, bound)).values]


_EXPIRED = (
    "SELECT id, thread_id, agent_id, node, created_at, expires_at FROM approvals "
    "WHERE expires_at <= ? {keyset}ORDER BY expires_at DESC, id DESC LIMIT ?"
)
_EXPIRED_FIRST = _EXPIRED.format(keyset="")
_EXPIRED_NEXT = _EXPIRED.format(keyset="AND (expires_at < ? OR (expires_at = ? AND id < ?)) ")


async def expired_approvals(
    store: Store, now: int, limit: int, before: tuple[int, str] | None
) -> list[Sequence[Any]]:
    """Approvals already expired (not yet cleaned up), latest expiry first, keyset-paged
    on (expires_at, id) over the ``approvals_expiry`` index."""
    args: list[Any]
    if before is None:
        sql, args = _EXPIRED_FIRST, [now, limit]
    else:
        sql, args = _EXPIRED_NEXT, [now, before[0], before[0], before[1], limit]
    bound: Args = args
    return list((await store.execute(sql, bound)).values)


_RATINGS_BY_DAY = (
    "SELECT created_at / 86400000 AS day, count(rating), avg(rating) FROM feedback "
    "WHERE created_at >= ? AND rating IS NOT NULL GROUP BY day ORDER BY day"
)
_RATINGS_BY_AGENT = (
    "SELECT coalesce(agent_id, ''), count(rating), avg(rating) FROM feedback "
    "WHERE created_at >= ? AND rating IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT ?"
)


async def ratings_by_day(store: Store, since: int) -> list[tuple[int, int, float]]:
    """(day number since the epoch, ratings, mean rating) per day since ``since``."""
    rows: Sequence[Sequence[Any]] = (await store.execute(_RATINGS_BY_DAY, (since,))).values
    return [(int(r[0]), int(r[1]), float(r[2])) for r in rows]


async def ratings_by_agent(
    store: Store, since: int, limit: int = 12
) -> list[tuple[str, int, float]]:
    """(agent, ratings, mean rating) since ``since``, most rated first."""
    rows: Sequence[Sequence[Any]] = (await store.execute(_RATINGS_BY_AGENT, (since, limit))).values
    return [(str(r[0]), int(r[1]), float(r[2])) for r in rows]


async def roots_with_forks(store: Store, thread_ids: Sequence[str]) -> set[str]:
    """Which of ``thread_ids`` have forks below them (one read on the ``threads_root``
    index; at most one page of ids)."""
    if not thread_ids:
        return set()
    marks = ", ".join("?" for _ in thread_ids)
    sql = f"SELECT DISTINCT root_id FROM threads WHERE root_id IN ({marks}) AND id != root_id"
    return {str(r[0]) for r in (await store.execute(sql, list(thread_ids))).values}


_FORK_TREES = (
    "SELECT root_id, count(*), max(updated_at) FROM threads "
    "WHERE parent_id IS NOT NULL AND root_id > ? GROUP BY root_id ORDER BY root_id LIMIT ?"
)


async def fork_trees(store: Store, after: str, limit: int) -> list[tuple[str, int, int]]:
    """(root thread, forks below it, last update) per tree that has forks, in root id
    order, keyset-paged on the root id."""
    rows: Sequence[Sequence[Any]] = (await store.execute(_FORK_TREES, (after, limit))).values
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]


_CHECKPOINT_THREADS = (
    "SELECT thread_id, count(*), max(checkpoint_id) FROM checkpoints "
    "WHERE thread_id > ? GROUP BY thread_id ORDER BY thread_id LIMIT ?"
)


async def checkpoint_threads(store: Store, after: str, limit: int) -> list[tuple[str, int, str]]:
    """(thread, checkpoints, latest id) per checkpointed thread in id order, keyset-paged
    on the thread id over the ``checkpoints_thread`` index."""
    rows: Sequence[Sequence[Any]] = (
        await store.execute(_CHECKPOINT_THREADS, (after, limit))
    ).values
    return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]


_WRITES = (
    "SELECT task_id, idx, channel, type, value, task_path FROM checkpoint_writes "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? "
    "ORDER BY task_id, idx LIMIT ?"
)


async def checkpoint_writes(
    store: Store, thread_id: str, namespace: str, checkpoint_id: str, limit: int = 200
) -> list[Sequence[Any]]:
    """The pending writes stored against one checkpoint (task, idx, channel, type, value,
    task path), at most ``limit``."""
    return list((await store.execute(_WRITES, (thread_id, namespace, checkpoint_id, limit))).values)
