"""Space: rows and bytes per table, incremental vacuum, and reclaiming freed pages in steps.

SQLite keeps the pages that deletes free inside the file (the freelist). With
``auto_vacuum = INCREMENTAL`` the file can give them back a bounded number at a time
(``PRAGMA incremental_vacuum(N)``), beside live traffic; without it only a full ``VACUUM``
(which rewrites the whole file) can. New local databases are created with incremental
vacuum; an existing one is moved to it by ``enable_incremental_vacuum`` (one VACUUM, when
asked). Engines differ: sqld and tursodb refuse these pragmas over HTTP, and tursodb has no
``dbstat``; every function here detects that and degrades (rows without bytes, nothing
reclaimed) instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .drivers import Client
from .errors import QueryError, SqlStoreError, ValidationError

STAT_TABLES = (
    "threads",
    "messages",
    "runs",
    "feedback",
    "approvals",
    "checkpoints",
    "checkpoint_blobs",
    "checkpoint_writes",
    "teams",
    "tombstones",
    "invocation_logs",
    "log_analyses",
    "optimization_runs",
)
"""The tables ``table_stats`` reports, in this order (a fixed list: names go into SQL)."""

_RECLAIM_ONE = "PRAGMA incremental_vacuum(1)"

DEFAULT_RECLAIM_STEP = 256
"""Pages one reclaim step gives back (1 MiB of 4 KiB pages): one short write transaction."""


@dataclass(frozen=True, slots=True)
class TableStats:
    """One table's rows, and its bytes (table and indexes) where the engine has ``dbstat``."""

    name: str
    rows: int
    bytes: int | None


@dataclass(frozen=True, slots=True)
class SpaceStats:
    """The database's tables and its pages: ``free_pages`` are reclaimable."""

    tables: list[TableStats]
    page_size: int
    page_count: int
    free_pages: int
    auto_vacuum: str
    """``none``, ``full`` or ``incremental`` (``unknown`` where the engine does not say)."""

    @property
    def file_bytes(self) -> int:
        """The size of the database's pages (the file, less its WAL)."""
        return self.page_size * self.page_count


_AUTO_VACUUM = {0: "none", 1: "full", 2: "incremental"}


async def _pragma_int(client: Client, name: str) -> int | None:
    """A numeric pragma's value (a fixed name), or None where the engine refuses it."""
    try:
        value = (await client.execute(f"SELECT * FROM pragma_{name}()")).scalar()
    except QueryError:
        return None
    return value if isinstance(value, int) else None


async def _table_bytes(client: Client) -> dict[str, int] | None:
    """Bytes per table with its indexes from ``dbstat``; None where there is no dbstat."""
    try:
        result = await client.execute(
            """SELECT COALESCE(m.tbl_name, d.name), SUM(d.pgsize)
               FROM dbstat AS d LEFT JOIN sqlite_master AS m ON m.name = d.name
               GROUP BY 1"""
        )
    except QueryError:
        return None
    return {str(r[0]): int(r[1] or 0) for r in result.values}


async def table_stats(client: Client) -> SpaceStats:
    """Rows (and bytes where ``dbstat`` exists) of each sqlstore table, and the page counts."""
    counts = ", ".join(f"(SELECT count(*) FROM {name})" for name in STAT_TABLES)
    row = (await client.execute(f"SELECT {counts}")).values[0]
    sizes = await _table_bytes(client)
    tables = [
        TableStats(name, int(rows or 0), None if sizes is None else sizes.get(name, 0))
        for name, rows in zip(STAT_TABLES, row, strict=True)
    ]
    mode = await _pragma_int(client, "auto_vacuum")
    return SpaceStats(
        tables=tables,
        page_size=await _pragma_int(client, "page_size") or 0,
        page_count=await _pragma_int(client, "page_count") or 0,
        free_pages=await _pragma_int(client, "freelist_count") or 0,
        auto_vacuum="unknown" if mode is None else _AUTO_VACUUM.get(mode, str(mode)),
    )


async def incremental_vacuum_on(client: Client) -> bool:
    """Whether the database is in ``auto_vacuum = INCREMENTAL``."""
    return await _pragma_int(client, "auto_vacuum") == 2


async def prepare_new_database(client: Client) -> bool:
    """Put a database that has no table yet in incremental-vacuum mode; whether it is.

    Called before the schema is created (the mode can only change while the database is
    empty, or by a VACUUM: on an empty file that costs nothing). An engine that refuses
    the pragma (the servers over HTTP) is left as it is.
    """
    try:
        tables = (await client.execute("SELECT count(*) FROM sqlite_master")).scalar()
        if tables:
            return await incremental_vacuum_on(client)
        await client.execute("PRAGMA auto_vacuum = INCREMENTAL")
        await client.execute("VACUUM")
    except QueryError:
        return False
    return await incremental_vacuum_on(client)


async def enable_incremental_vacuum(client: Client) -> bool:
    """Move an existing database to incremental vacuum: one full VACUUM, which rewrites
    the file and holds the write lock while it runs (so only when an operator asks).
    True when the database is (now) in that mode; False where the engine refuses."""
    if await incremental_vacuum_on(client):
        return True
    try:
        await client.execute("PRAGMA auto_vacuum = INCREMENTAL")
        await client.execute("VACUUM")
    except QueryError:
        return False
    return await incremental_vacuum_on(client)


@dataclass(frozen=True, slots=True)
class Reclaimed:
    """What ``reclaim`` did: pages given back to the file system, steps taken, and the
    free pages still left (``supported`` is False where the engine cannot reclaim)."""

    pages: int
    steps: int
    free_pages: int
    supported: bool


async def reclaim(
    client: Client,
    *,
    max_pages: int | None = None,
    step_pages: int = DEFAULT_RECLAIM_STEP,
) -> Reclaimed:
    """Give freed pages back to the file system in steps of ``step_pages`` (each its own
    short transaction), at most ``max_pages`` in all (None: every free page).

    Needs incremental vacuum (see ``enable_incremental_vacuum``); elsewhere nothing is
    reclaimed and ``supported`` is False.
    """
    if isinstance(step_pages, bool) or not isinstance(step_pages, int) or step_pages < 1:
        raise ValidationError(f"step_pages must be an integer >= 1, not {step_pages!r}")
    if max_pages is not None and (
        isinstance(max_pages, bool) or not isinstance(max_pages, int) or max_pages < 0
    ):
        raise ValidationError(f"max_pages must be None or an integer >= 0, not {max_pages!r}")
    free = await _pragma_int(client, "freelist_count") or 0
    if not await incremental_vacuum_on(client):
        return Reclaimed(0, 0, free, False)
    budget = free if max_pages is None else min(free, max_pages)
    done = steps = 0
    while done < budget:
        step = min(step_pages, budget - done)
        try:
            # One page per statement, ``step`` statements in one transaction: a client
            # may step a statement that returns no rows only once (Python's sqlite3
            # does), and incremental_vacuum(N) frees one page per step.
            await client.batch([_RECLAIM_ONE] * step)
        except QueryError as exc:  # pragma: no cover - checked to be on above
            raise SqlStoreError(f"incremental vacuum failed: {exc}") from exc
        steps += 1
        left = await _pragma_int(client, "freelist_count") or 0
        if left >= free:  # nothing moved (another writer freed as much): stop
            break
        done += free - left
        free = left
    return Reclaimed(done, steps, free, True)
