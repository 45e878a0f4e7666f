"""Retention: prune what grows (by age, newest N, TTL) in bounded, resumable batches.

One API for every domain (``store.retention``): each pruner takes an age or a count,
``dry_run`` to only count, and the batch options, and returns a ``PruneResult`` (rows per
table). A policy set once (``Store(url, retention={...})``) runs with ``store.prune()``.

How a prune stays beside live traffic: it deletes in batches of at most ``batch_rows`` rows,
each batch its own transaction (one atomic batch: one round trip to a server), and shrinks
the next batch when one took longer than ``batch_seconds`` (grows it back when quick), so
other writers wait at most about one batch. A thread is deleted whole in one batch (its
messages, feedback, approvals, runs and checkpoints with it) and a thread's counters are
fixed in the same batch that deletes its messages, so an interrupted prune leaves nothing
half-deleted; running it again carries on (what was deleted is gone, so the next batches
find the rest). Deletes re-check their condition inside the batch: a thread touched after
the prune chose it is kept.

This module owns the prune SQL; names in it come from the fixed code here only.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import orjson

from .domains.common import now_ms, require_time
from .domains.conversations import trim_conversation
from .domains.threads import REROOT_DESCENDANTS, segment
from .domains.tombstones import CONVERSATION, checkpoint_tombstones, conversation_tombstones
from .errors import ValidationError
from .space import (
    DEFAULT_RECLAIM_STEP,
    Reclaimed,
    SpaceStats,
    enable_incremental_vacuum,
    reclaim,
    table_stats,
)

if TYPE_CHECKING:
    from .drivers import Executor, Statement
    from .store import Resending

Age = timedelta | str | int
"""An age: a timedelta, text such as ``"30d"``, ``"12h"``, ``"15m"``, ``"45s"``, ``"500ms"``
(units ms, s, m, h, d, w), or integer milliseconds."""

Progress = Callable[[int], None]
"""Called after every batch with the rows deleted (or counted) so far by the call."""

_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_AGE = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w)\s*$")

DEFAULT_TOMBSTONE_AGE = 7 * 86_400_000
"""How long tombstones are kept when a policy does not say (a late write after that is
taken as a new write)."""


def parse_age(value: Any, name: str = "age") -> int:
    """An age (see ``Age``) in milliseconds, or a ValidationError."""
    if isinstance(value, timedelta):
        ms = int(value.total_seconds() * 1000)
    elif isinstance(value, str):
        match = _AGE.match(value)
        if match is None:
            raise ValidationError(
                f"{name} must look like 30d, 12h, 15m, 45s or 500ms, not {value!r}"
            )
        ms = int(match.group(1)) * _UNITS[match.group(2)]
    elif isinstance(value, int) and not isinstance(value, bool):
        ms = value
    else:
        raise ValidationError(f"{name} must be a timedelta, text like '30d' or milliseconds")
    if ms < 0:
        raise ValidationError(f"{name} must not be negative")
    return ms


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name} must be an integer >= 1, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class BatchOptions:
    """How a prune divides its work: at most ``batch_rows`` rows per batch, shrunk while a
    batch takes longer than ``batch_seconds``; ``pause`` seconds between batches; stop
    (resumably) after ``max_seconds``."""

    batch_rows: int = 1000
    batch_seconds: float = 0.002
    pause: float = 0.0
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        _count("batch_rows", self.batch_rows)
        for name in ("batch_seconds", "pause"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValidationError(f"{name} must be a number >= 0, not {value!r}")
        if self.max_seconds is not None and (
            isinstance(self.max_seconds, bool)
            or not isinstance(self.max_seconds, int | float)
            or self.max_seconds < 0
        ):
            raise ValidationError("max_seconds must be None or a number >= 0")


@dataclass(slots=True)
class PruneResult:
    """What a prune deleted (or, with ``dry_run``, would delete): rows per table.

    ``complete`` is False when the prune stopped at ``max_seconds`` with work left: run it
    again to carry on.
    """

    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    seconds: float = 0.0
    complete: bool = True

    @property
    def total(self) -> int:
        """Rows over every table."""
        return sum(self.counts.values())

    def add(self, table: str, rows: int) -> None:
        """Count ``rows`` more for ``table``."""
        if rows:
            self.counts[table] = self.counts.get(table, 0) + rows

    def merge(self, other: PruneResult) -> None:
        """Fold another step's result into this one."""
        for table, rows in other.counts.items():
            self.add(table, rows)
        self.batches += other.batches
        self.seconds += other.seconds
        self.complete = self.complete and other.complete


class _Batches:
    """The running state of one prune: its result, batch size and time budget."""

    def __init__(self, options: BatchOptions, dry_run: bool, progress: Progress | None) -> None:
        self.options = options
        self.result = PruneResult(dry_run)
        self.size = options.batch_rows
        self.progress = progress
        self.start = time.perf_counter()

    def out_of_time(self) -> bool:
        limit = self.options.max_seconds
        if limit is not None and time.perf_counter() - self.start >= limit:
            self.result.complete = False
            return True
        return False

    async def done(self, began: float) -> None:
        """After a batch: adapt the size to the time it took, report, pause."""
        took = time.perf_counter() - began
        self.result.batches += 1
        target = self.options.batch_seconds
        if target and took > target and self.size > 16:
            self.size = max(16, int(self.size * max(0.25, target / took)))
        elif took < target / 2 and self.size < self.options.batch_rows:
            self.size = min(self.options.batch_rows, self.size * 2)
        if self.progress is not None:
            self.progress(self.result.total)
        await asyncio.sleep(self.options.pause)

    def finish(self) -> PruneResult:
        self.result.seconds = time.perf_counter() - self.start
        return self.result


# -- rowid windows: messages, feedback, approvals, runs, blobs, tombstones by a condition --


@dataclass(frozen=True, slots=True)
class _Window:
    """Rows of ``table`` that meet ``condition`` (over ?3...), deleted a rowid window at a
    time: ``before`` runs first in the same batch over the same window (?1 < rowid <= ?2)
    and ``extra`` counts rows the delete takes with it (cascades), per table."""

    table: str
    condition: str
    before: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()


_IN_WINDOW = "rowid > ?1 AND rowid <= ?2"

_MESSAGES_OLDER = _Window(
    "messages",
    "created_at < ?3",
    before=(
        # The threads' counters lose the messages this window deletes, in the same batch
        # (one pass over the window, grouped: not a count per thread over its messages).
        f"""UPDATE threads SET message_count = message_count - d.n
        FROM (SELECT thread_id, count(*) AS n FROM messages
              WHERE {_IN_WINDOW} AND created_at < ?3 GROUP BY thread_id) AS d
        WHERE threads.id = d.thread_id""",
    ),
)

_RUNS_IN_WINDOW = f"SELECT id FROM runs WHERE {_IN_WINDOW} AND created_at < ?3"

_RUNS_OLDER = _Window(
    "runs",
    "created_at < ?3",
    before=(
        # A run's messages go with it (ON DELETE CASCADE): their threads' counters too.
        f"""UPDATE threads SET message_count = message_count - d.n
        FROM (SELECT thread_id, count(*) AS n FROM messages
              WHERE run_id IN ({_RUNS_IN_WINDOW}) GROUP BY thread_id) AS d
        WHERE threads.id = d.thread_id""",
    ),
    extra=(("messages", f"SELECT count(*) FROM messages WHERE run_id IN ({_RUNS_IN_WINDOW})"),),
)

_FEEDBACK_OLDER = _Window("feedback", "created_at < ?3")
_APPROVALS_EXPIRED = _Window("approvals", "expires_at <= ?3")
_TOMBSTONES_OLDER = _Window("tombstones", "deleted_at < ?3")
_BLOBS_UNREFERENCED = _Window(
    "checkpoint_blobs",
    """?3 = ?3 AND NOT EXISTS (
        SELECT 1 FROM checkpoints AS c, json_each(c.blob_versions) AS j
        WHERE c.thread_id = checkpoint_blobs.thread_id
          AND c.checkpoint_ns = checkpoint_blobs.checkpoint_ns
          AND j.key = checkpoint_blobs.channel AND j.value = checkpoint_blobs.version)""",
)


async def _prune_window(store: Executor, window: _Window, arg: Any, run: _Batches) -> None:
    table, condition = window.table, window.condition
    if run.result.dry_run:
        counts = ", ".join(
            [f"(SELECT count(*) FROM {table} WHERE {condition})"]
            + [
                f"({sql.replace(_IN_WINDOW, '?1 = ?1 AND ?2 = ?2')})"  # the whole table
                for _, sql in window.extra
            ]
        )
        row = (await store.execute(f"SELECT {counts}", (0, 0, arg))).values[0]
        run.result.add(table, int(row[0] or 0))
        for (name, _), n in zip(window.extra, row[1:], strict=True):
            run.result.add(name, int(n or 0))
        return
    # Windows of rowids (about insertion order), at most ``run.size`` wide, so a batch
    # deletes at most that many rows; a window that held nothing to delete is followed
    # by one read that skips to the next row that has.
    skip = f"SELECT min(rowid) - 1 FROM {table} WHERE rowid > ?1 AND ?2 = ?2 AND {condition}"
    delete = f"DELETE FROM {table} WHERE {_IN_WINDOW} AND {condition}"
    top = int((await store.execute(f"SELECT COALESCE(max(rowid), 0) FROM {table}")).scalar() or 0)
    low = (await store.execute(skip, (0, 0, arg))).scalar()
    while low is not None and int(low) < top and not run.out_of_time():
        began = time.perf_counter()
        high = min(int(low) + run.size, top)
        args = (int(low), high, arg)
        statements: list[Statement] = [(sql, args) for _, sql in window.extra]
        statements += [(sql, args) for sql in window.before]
        statements += [(delete, args), "SELECT changes()"]
        results = await store.batch(statements)
        for i, (name, _) in enumerate(window.extra):
            run.result.add(name, int(results[i].scalar() or 0))
        deleted = int(results[-1].scalar() or 0)
        run.result.add(table, deleted)
        await run.done(began)
        low = high if deleted else (await store.execute(skip, (high, 0, arg))).scalar()


# -- whole threads, idle for longer than an age -----------------------------------------


def _victims(conversations_only: bool) -> str:
    """The batch's threads (?1: JSON array of ids) still idle since before ?2."""
    extra = f" AND {CONVERSATION}" if conversations_only else ""
    return (
        "SELECT id FROM threads WHERE id IN (SELECT value FROM json_each(?1)) "
        f"AND updated_at < ?2{extra}"
    )


def _thread_statements(conversations_only: bool) -> tuple[str, ...]:
    """A batch of thread deletes over ?1 (ids), ?2 (idle before), ?3 (now): tombstones,
    counts of what cascades, checkpoints, then the threads (RETURNING message_count)."""
    v = _victims(conversations_only)
    return (
        conversation_tombstones(f"id IN ({v})", "?3"),
        checkpoint_tombstones(v, "?3"),
        f"""SELECT (SELECT count(*) FROM feedback WHERE thread_id IN ({v})),
                   (SELECT count(*) FROM approvals WHERE thread_id IN ({v})),
                   (SELECT count(*) FROM runs WHERE thread_id IN ({v})),
                   (SELECT count(*) FROM checkpoint_writes WHERE thread_id IN ({v})),
                   (SELECT count(*) FROM checkpoint_blobs WHERE thread_id IN ({v})),
                   (SELECT count(*) FROM checkpoints WHERE thread_id IN ({v}))""",
        f"DELETE FROM checkpoint_writes WHERE thread_id IN ({v})",
        f"DELETE FROM checkpoint_blobs WHERE thread_id IN ({v})",
        f"DELETE FROM checkpoints WHERE thread_id IN ({v})",
        f"DELETE FROM threads WHERE id IN ({v}) RETURNING message_count",
    )


_THREAD_STATEMENTS = {flag: _thread_statements(flag) for flag in (False, True)}
_CASCADED = (
    "feedback",
    "approvals",
    "runs",
    "checkpoint_writes",
    "checkpoint_blobs",
    "checkpoints",
)

# A thread's forks become roots when it goes (see domains.threads), only if it still goes.
_REROOT_IF_IDLE = REROOT_DESCENDANTS + " AND (SELECT updated_at FROM threads WHERE id = ?1) < ?3"


def _candidates(conversations_only: bool) -> str:
    extra = f" AND {CONVERSATION}" if conversations_only else ""
    return f"""SELECT id, message_count,
            EXISTS (SELECT 1 FROM threads AS f WHERE f.root_id = threads.root_id
                    AND f.id <> threads.id) AS has_forks
        FROM threads WHERE updated_at < ?1{extra}
        ORDER BY updated_at, id LIMIT ?2"""


async def _prune_threads(
    store: Executor, cutoff: int, conversations_only: bool, run: _Batches
) -> None:
    if run.result.dry_run:
        v = (
            f"SELECT id FROM threads WHERE updated_at < ?1"
            f"{' AND ' + CONVERSATION if conversations_only else ''}"
        )
        sums = ", ".join(
            [
                f"(SELECT count(*) FROM ({v}))",
                f"(SELECT SUM(message_count) FROM threads WHERE id IN ({v}))",
            ]
            + [f"(SELECT count(*) FROM {t} WHERE thread_id IN ({v}))" for t in _CASCADED]
        )
        row = (await store.execute(f"SELECT {sums}", (cutoff,))).values[0]
        for table, n in zip(("threads", "messages", *_CASCADED), row, strict=True):
            run.result.add(table, int(n or 0))
        return
    statements = _THREAD_STATEMENTS[conversations_only]
    select = _candidates(conversations_only)
    while not run.out_of_time():
        rows = (await store.execute(select, (cutoff, run.size))).values
        if not rows:
            return
        chosen: list[tuple[str, int, bool]] = []
        weight = 0
        for tid, count, forks in rows:
            if chosen and weight + int(count or 0) + 1 > run.size:
                break
            chosen.append((str(tid), int(count or 0), bool(forks)))
            weight += int(count or 0) + 1
        began = time.perf_counter()
        ids = orjson.dumps([c[0] for c in chosen]).decode("utf-8")
        now = now_ms()
        batch: list[Statement] = [(statements[0], (ids, cutoff, now))]
        batch.append((statements[1], (ids, cutoff, now)))
        batch += [
            (_REROOT_IF_IDLE, (tid, segment(tid), cutoff)) for tid, _, forks in chosen if forks
        ]
        head = len(batch)
        batch += [(sql, (ids, cutoff)) for sql in statements[2:]]
        results = await store.batch(batch)
        for table, n in zip(_CASCADED, results[head].values[0], strict=True):
            run.result.add(table, int(n or 0))
        deleted = results[-1].values
        run.result.add("threads", len(deleted))
        run.result.add("messages", sum(int(r[0] or 0) for r in deleted))
        await run.done(began)


# -- the newest N messages per thread ---------------------------------------------------

_OVER_LIMIT = """SELECT id, message_count FROM threads
    WHERE id > ?1 AND message_count > ?2 ORDER BY id LIMIT ?3"""
_RECOUNT = """UPDATE threads SET message_count = (
    SELECT count(*) FROM messages WHERE thread_id = threads.id)
    WHERE id IN (SELECT value FROM json_each(?1))"""


async def _keep_latest_messages(store: Executor, keep: int, run: _Batches) -> None:
    if run.result.dry_run:
        total = (
            await store.execute(
                "SELECT SUM(message_count - ?1) FROM threads WHERE message_count > ?1", (keep,)
            )
        ).scalar()
        run.result.add("messages", int(total or 0))
        return
    cursor = ""
    while not run.out_of_time():
        rows = (await store.execute(_OVER_LIMIT, (cursor, keep, run.size))).values
        if not rows:
            return
        chosen: list[tuple[str, int]] = []
        weight = 0
        for tid, count in rows:
            extra = int(count or 0) - keep
            if chosen and weight + extra > run.size:
                break
            chosen.append((str(tid), extra))
            weight += extra
        began = time.perf_counter()
        none = ("", "", "")
        if weight > run.size:  # one thread with more to go than a batch: its oldest first
            tid, extra = chosen[0]
            batch = [trim_conversation(none, keep + extra - run.size, tid)]
            chosen, weight = [(tid, run.size)], run.size
        else:
            batch = [trim_conversation(none, keep, tid) for tid, _ in chosen]
            cursor = chosen[-1][0]
        ids = orjson.dumps([c[0] for c in chosen]).decode("utf-8")
        batch.append((_RECOUNT, (ids,)))
        await store.batch(batch)
        run.result.add("messages", weight)
        await run.done(began)


# -- checkpoints beyond the newest N per thread and namespace (DeltaChannel-aware) ------

_CHECKPOINT_GROUPS = """SELECT thread_id, checkpoint_ns, count(*) FROM checkpoints
    WHERE thread_id > ?1 OR (thread_id = ?1 AND checkpoint_ns > ?2)
    GROUP BY thread_id, checkpoint_ns HAVING count(*) > ?3
    ORDER BY thread_id, checkpoint_ns LIMIT ?4"""
_CHECKPOINT_CHAIN = """SELECT checkpoint_id, parent_id,
        json_extract(metadata, '$.counters_since_delta_snapshot'), blob_versions, run_id
    FROM checkpoints WHERE thread_id = ?1 AND checkpoint_ns = ?2
    ORDER BY checkpoint_id DESC"""
"""One namespace's checkpoints, newest first: id, parent, delta counters, stored channels
(``blob_versions``), run."""
_CHECKPOINT_DELETES = (
    (
        "checkpoint_writes",
        "DELETE FROM checkpoint_writes WHERE thread_id = ?1 "
        "AND checkpoint_ns = ?2 AND checkpoint_id IN (SELECT value FROM json_each(?3))",
    ),
    (
        "checkpoints",
        "DELETE FROM checkpoints WHERE thread_id = ?1 "
        "AND checkpoint_ns = ?2 AND checkpoint_id IN (SELECT value FROM json_each(?3))",
    ),
)
_NAMESPACE_BLOBS = (
    "checkpoint_blobs",
    "DELETE FROM checkpoint_blobs WHERE thread_id = ?1 AND checkpoint_ns = ?2 AND ?3 = ?3 "
    "AND NOT EXISTS (SELECT 1 FROM checkpoints AS c, json_each(c.blob_versions) AS j "
    "WHERE c.thread_id = ?1 AND c.checkpoint_ns = ?2 "
    "AND j.key = checkpoint_blobs.channel AND j.value = checkpoint_blobs.version)",
)


def _json_keys(text: Any) -> set[str]:
    if not text:
        return set()
    value = orjson.loads(text)
    return set(value) if isinstance(value, dict) else set()


def with_delta_ancestors(chain: Sequence[Sequence[Any]], kept: set[str]) -> set[str]:
    """``kept`` checkpoint ids of one namespace (rows of ``_CHECKPOINT_CHAIN``) and the
    ancestors their delta channels need.

    DeltaChannel: a checkpoint whose metadata counts updates since a delta channel's last
    snapshot, and that does not hold that channel itself, is rebuilt from its ancestors'
    writes back to the nearest ancestor that holds the channel: those ancestors (and
    their writes) must stay.
    """
    by_id = {str(r[0]): r for r in chain}
    out = set(kept)
    for checkpoint_id in kept:
        row = by_id.get(checkpoint_id)
        if row is None:
            continue
        needed = _json_keys(row[2]) - _json_keys(row[3])
        parent = row[1]
        while needed and parent is not None and str(parent) in by_id:
            ancestor = by_id[str(parent)]
            out.add(str(parent))
            needed -= _json_keys(ancestor[3])
            parent = ancestor[1]
    return out


def checkpoints_to_delete(chain: Sequence[Sequence[Any]], keep: int) -> list[str]:
    """The checkpoint ids of one namespace (rows of ``_CHECKPOINT_CHAIN``, newest first)
    that keeping the newest ``keep`` (and their delta ancestors) lets go."""
    kept = with_delta_ancestors(chain, {str(r[0]) for r in chain[:keep]})
    return [str(r[0]) for r in chain if str(r[0]) not in kept]


async def _delete_checkpoints(
    store: Executor, thread_id: str, namespace: str, doomed: list[str], dry_run: bool
) -> dict[str, int]:
    """Delete these checkpoints of one namespace with their writes, and the namespace's
    blobs no checkpoint refers to any more, in one batch; rows per table."""
    if not doomed:
        return {}
    ids = orjson.dumps(doomed).decode("utf-8")
    args = (thread_id, namespace, ids)
    if dry_run:
        row = (
            await store.execute(
                "SELECT count(*) FROM checkpoint_writes WHERE thread_id = ?1 "
                "AND checkpoint_ns = ?2 AND checkpoint_id IN (SELECT value FROM json_each(?3))",
                args,
            )
        ).scalar()
        return {"checkpoints": len(doomed), "checkpoint_writes": int(row or 0)}
    statements: list[Statement] = []
    for _, sql in (*_CHECKPOINT_DELETES, _NAMESPACE_BLOBS):
        statements += [(sql, args), "SELECT changes()"]
    results = await store.batch(statements)
    names = [name for name, _ in (*_CHECKPOINT_DELETES, _NAMESPACE_BLOBS)]
    return {
        name: int(results[2 * i + 1].scalar() or 0)
        for i, name in enumerate(names)
        if results[2 * i + 1].scalar()
    }


async def prune_checkpoint_namespace(
    store: Executor, thread_id: str, namespace: str, keep: int, *, dry_run: bool = False
) -> dict[str, int]:
    """Keep the newest ``keep`` checkpoints of one thread's namespace (and the ancestors
    their delta channels need), in one batch; rows per table deleted (or, dry, to go)."""
    chain = (await store.execute(_CHECKPOINT_CHAIN, (thread_id, namespace))).values
    doomed = checkpoints_to_delete(chain, keep)
    return await _delete_checkpoints(store, thread_id, namespace, doomed, dry_run)


_RUN_NAMESPACES = """SELECT DISTINCT thread_id, checkpoint_ns FROM checkpoints
    WHERE run_id IN (SELECT value FROM json_each(?1))"""


async def delete_checkpoints_of_runs(store: Executor, run_ids: Sequence[str]) -> dict[str, int]:
    """Delete the checkpoints (with their writes and the blobs left unused) whose run is
    listed, one batch per namespace, except those a surviving checkpoint's delta channels
    are rebuilt from; rows per table."""
    runs = set(run_ids)
    totals: dict[str, int] = {}
    ids = orjson.dumps(sorted(runs)).decode("utf-8")
    for thread_id, namespace in (await store.execute(_RUN_NAMESPACES, (ids,))).values:
        chain = (await store.execute(_CHECKPOINT_CHAIN, (thread_id, namespace))).values
        survivors = {str(r[0]) for r in chain if r[4] is None or str(r[4]) not in runs}
        kept = with_delta_ancestors(chain, survivors)
        doomed = [str(r[0]) for r in chain if str(r[0]) not in kept]
        counts = await _delete_checkpoints(store, str(thread_id), str(namespace), doomed, False)
        for table, n in counts.items():
            totals[table] = totals.get(table, 0) + n
    return totals


async def _prune_checkpoints(store: Executor, keep: int, run: _Batches) -> None:
    cursor = ("", "")  # (no thread id is empty: every namespace sorts after this)
    while not run.out_of_time():
        groups = (
            await store.execute(_CHECKPOINT_GROUPS, (*cursor, keep, max(1, run.size // keep)))
        ).values
        if not groups:
            return
        for thread_id, namespace, _ in groups:
            began = time.perf_counter()
            counts = await prune_checkpoint_namespace(
                store, str(thread_id), str(namespace), keep, dry_run=run.result.dry_run
            )
            for table, n in counts.items():
                run.result.add(table, n)
            await run.done(began)
            if run.out_of_time():
                return
        cursor = (str(groups[-1][0]), str(groups[-1][1]))


# -- the API ----------------------------------------------------------------------------

POLICY_KEYS = {
    "threads_idle": "delete threads not updated for an age, with everything in them",
    "conversations_idle": "delete conversations (threads with a session and agent) idle for an age",
    "approvals_expired": "delete approvals past their expiry (True)",
    "feedback_older_than": "delete feedback older than an age",
    "runs_older_than": "delete runs (and their messages) older than an age",
    "messages_older_than": "delete messages older than an age",
    "messages_keep_latest": "keep only the newest N messages of each thread",
    "checkpoints_keep_latest": "keep only the newest N checkpoints per thread and namespace",
    "checkpoint_blobs_unreferenced": "delete checkpoint blobs no checkpoint refers to (True)",
    "tombstones_older_than": "forget deletions older than an age (default 7d)",
}
"""The keys of a retention policy, in the order ``run`` applies them (whole threads first,
so the later rules have less to look at)."""


def check_policy(policy: Mapping[str, Any] | None) -> dict[str, Any]:
    """A policy's values checked and normalised (ages in ms), or a ValidationError."""
    if policy is None:
        return {}
    if not isinstance(policy, Mapping):
        raise ValidationError("a retention policy must be a dict")
    unknown = sorted(set(policy) - set(POLICY_KEYS))
    if unknown:
        raise ValidationError(f"unknown retention keys {unknown}; known: {list(POLICY_KEYS)}")
    checked: dict[str, Any] = {}
    for key in POLICY_KEYS:
        value = policy.get(key)
        if value is None or value is False:
            continue
        if key in ("approvals_expired", "checkpoint_blobs_unreferenced"):
            if value is not True:
                raise ValidationError(f"{key} must be True or False")
            checked[key] = True
        elif key.endswith("keep_latest"):
            checked[key] = _count(key, value)
        else:
            checked[key] = parse_age(value, key)
    return checked


class Retention:
    """Pruning and space for one store (``store.retention``): every method takes
    ``dry_run`` (count only), the batch options and ``progress``, and returns what it did."""

    def __init__(self, store: Resending, policy: Mapping[str, Any] | None = None) -> None:
        self._store = store
        self.policy = check_policy(policy)

    async def _run(
        self,
        step: Callable[[_Batches], Any],
        dry_run: bool,
        options: BatchOptions | None,
        progress: Progress | None,
    ) -> PruneResult:
        if not isinstance(dry_run, bool):
            raise ValidationError("dry_run must be True or False")
        run = _Batches(options or BatchOptions(), dry_run, progress)
        await step(run)
        return run.finish()

    async def approvals(
        self,
        *,
        now: int | None = None,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Delete approvals whose ``expires_at`` has passed."""
        at = now_ms() if now is None else require_time("now", now)
        return await self._run(
            lambda r: _prune_window(self._store, _APPROVALS_EXPIRED, at, r),
            dry_run,
            options,
            progress,
        )

    async def _older(
        self,
        window: _Window,
        age: Age,
        dry_run: bool,
        options: BatchOptions | None,
        progress: Progress | None,
    ) -> PruneResult:
        cutoff = now_ms() - parse_age(age)
        return await self._run(
            lambda r: _prune_window(self._store, window, cutoff, r), dry_run, options, progress
        )

    async def feedback(
        self,
        older_than: Age,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Delete feedback created longer ago than ``older_than``."""
        return await self._older(_FEEDBACK_OLDER, older_than, dry_run, options, progress)

    async def runs(
        self,
        older_than: Age,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Delete team runs created longer ago than ``older_than`` (their messages go with
        them; the threads' counters follow)."""
        return await self._older(_RUNS_OLDER, older_than, dry_run, options, progress)

    async def messages(
        self,
        older_than: Age,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Delete messages created longer ago than ``older_than`` (threads stay; their
        ``message_count`` is fixed in the same batch)."""
        return await self._older(_MESSAGES_OLDER, older_than, dry_run, options, progress)

    async def tombstones(
        self,
        older_than: Age,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Forget deletions recorded longer ago than ``older_than``."""
        return await self._older(_TOMBSTONES_OLDER, older_than, dry_run, options, progress)

    async def threads(
        self,
        idle_for: Age,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Delete threads not updated for ``idle_for``, each whole in one batch with its
        messages, feedback, approvals, runs and checkpoints (forks become roots)."""
        cutoff = now_ms() - parse_age(idle_for, "idle_for")
        return await self._run(
            lambda r: _prune_threads(self._store, cutoff, False, r), dry_run, options, progress
        )

    async def conversations(
        self,
        idle_for: Age,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Delete conversations (threads with a session and an agent) idle for ``idle_for``."""
        cutoff = now_ms() - parse_age(idle_for, "idle_for")
        return await self._run(
            lambda r: _prune_threads(self._store, cutoff, True, r), dry_run, options, progress
        )

    async def keep_latest_messages(
        self,
        keep: int,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Keep only the newest ``keep`` messages of every thread."""
        n = _count("keep", keep)
        return await self._run(
            lambda r: _keep_latest_messages(self._store, n, r), dry_run, options, progress
        )

    async def checkpoints(
        self,
        keep_latest: int,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Keep the newest ``keep_latest`` checkpoints of each thread and namespace (and
        the ancestors a DeltaChannel needs to rebuild them), with their writes; blobs no
        checkpoint of the namespace refers to any more go too."""
        n = _count("keep_latest", keep_latest)
        return await self._run(
            lambda r: _prune_checkpoints(self._store, n, r), dry_run, options, progress
        )

    async def checkpoint_blobs(
        self,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
    ) -> PruneResult:
        """Delete checkpoint blobs that no checkpoint refers to."""
        return await self._run(
            lambda r: _prune_window(self._store, _BLOBS_UNREFERENCED, 0, r),
            dry_run,
            options,
            progress,
        )

    async def stats(self) -> SpaceStats:
        """Rows and bytes per table and the page counts (see sqlstore.space)."""
        return await table_stats(self._store.client)

    async def reclaim(
        self, *, max_pages: int | None = None, step_pages: int = DEFAULT_RECLAIM_STEP
    ) -> Reclaimed:
        """Give the pages prunes freed back to the file system, in bounded steps."""
        return await reclaim(self._store.client, max_pages=max_pages, step_pages=step_pages)

    async def enable_incremental_vacuum(self) -> bool:
        """Move the database to incremental vacuum (one full VACUUM; see sqlstore.space)."""
        return await enable_incremental_vacuum(self._store.client)

    async def run(
        self,
        policy: Mapping[str, Any] | None = None,
        *,
        dry_run: bool = False,
        options: BatchOptions | None = None,
        progress: Progress | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> PruneResult:
        """Apply a policy (by default the store's), each rule in turn; the summed result.

        Tombstones older than ``tombstones_older_than`` (default 7 days) are forgotten last.
        A dry run counts each rule on its own, on the database as it is: a row that two
        rules would take (an old message in an idle thread) is counted under both, so a
        policy's dry-run total is an upper bound of what the run deletes.
        """
        rules = check_policy(policy) if policy is not None else dict(self.policy)
        if not rules:
            raise ValidationError("no retention policy: pass one or set Store(retention=...)")
        rules.setdefault("tombstones_older_than", DEFAULT_TOMBSTONE_AGE)
        total = PruneResult(dry_run)
        options = options or BatchOptions()
        deadline = (
            None if options.max_seconds is None else time.perf_counter() + options.max_seconds
        )
        common: dict[str, Any] = {"dry_run": dry_run, "options": options}
        steps: dict[str, Callable[[Any, Progress], Any]] = {
            "approvals_expired": lambda _, p: self.approvals(**common, progress=p),
            "feedback_older_than": lambda v, p: self.feedback(v, **common, progress=p),
            "runs_older_than": lambda v, p: self.runs(v, **common, progress=p),
            "threads_idle": lambda v, p: self.threads(v, **common, progress=p),
            "conversations_idle": lambda v, p: self.conversations(v, **common, progress=p),
            "messages_older_than": lambda v, p: self.messages(v, **common, progress=p),
            "messages_keep_latest": lambda v, p: self.keep_latest_messages(v, **common, progress=p),
            "checkpoints_keep_latest": lambda v, p: self.checkpoints(v, **common, progress=p),
            "checkpoint_blobs_unreferenced": lambda _, p: self.checkpoint_blobs(
                **common, progress=p
            ),
            "tombstones_older_than": lambda v, p: self.tombstones(v, **common, progress=p),
        }
        for key in POLICY_KEYS:
            if key not in rules:
                continue
            if on_step is not None:
                on_step(key)
            if deadline is not None:  # the whole run shares one time budget
                left = max(0.0, deadline - time.perf_counter())
                common["options"] = replace(options, max_seconds=left)
            done = total.total

            def report(rows: int, done: int = done) -> None:
                if progress is not None:
                    progress(done + rows)

            total.merge(await steps[key](rules[key], report))
            if not total.complete:
                break
        return total
