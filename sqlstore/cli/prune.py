"""``sqlstore prune``: apply retention rules in bounded batches, with a progress bar.

    sqlstore prune --older-than 30d --keep-latest 50 [--dry-run] [--reclaim]

``--older-than AGE`` deletes threads idle for AGE (whole, with everything in them),
messages, feedback and team runs older than AGE, and expired approvals; ``--keep-latest N``
keeps the newest N messages of each thread and the newest N checkpoints of each thread
and namespace (and the blobs they use). ``--dry-run`` only counts. ``--reclaim`` then gives
the freed pages back to the file system in bounded steps (databases in incremental-vacuum
mode); ``--enable-incremental-vacuum`` moves an older database to that mode first (one
full VACUUM).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..errors import ValidationError
from ..retention import BatchOptions, PruneResult, parse_age
from .common import Subparsers, store_for
from .teams import progress_bar


def register(sub: Subparsers) -> None:
    """Register ``sqlstore prune``."""
    parser = sub.add_parser("prune", help="delete old data in bounded batches")
    parser.add_argument("--url", default=argparse.SUPPRESS, help="database URL")
    parser.add_argument("--older-than", metavar="AGE", help="e.g. 30d, 12h, 90m")
    parser.add_argument("--keep-latest", metavar="N", type=int, help="messages per thread")
    parser.add_argument("--dry-run", action="store_true", help="only count what would go")
    parser.add_argument("--reclaim", action="store_true", help="give freed pages back")
    parser.add_argument(
        "--enable-incremental-vacuum",
        action="store_true",
        help="move an older database to incremental vacuum first (one full VACUUM)",
    )
    parser.add_argument(
        "--batch-rows", type=int, default=BatchOptions().batch_rows, help="rows per batch at most"
    )
    parser.add_argument("--max-seconds", type=float, help="stop (resumably) after this long")
    parser.set_defaults(run=run)


def policy_of(args: argparse.Namespace) -> dict[str, Any]:
    """The retention policy the flags ask for (a ValidationError when they ask nothing)."""
    policy: dict[str, Any] = {}
    if args.older_than is not None:
        age = parse_age(args.older_than, "--older-than")
        policy.update(
            threads_idle=age,
            messages_older_than=age,
            feedback_older_than=age,
            runs_older_than=age,
            approvals_expired=True,
        )
    if args.keep_latest is not None:
        policy.update(
            messages_keep_latest=args.keep_latest,
            checkpoints_keep_latest=args.keep_latest,
            checkpoint_blobs_unreferenced=True,
        )
    if not policy:
        raise ValidationError("say what to prune: --older-than AGE and/or --keep-latest N")
    return policy


def summary(result: PruneResult) -> list[str]:
    """Rows per table and one closing line, as printed."""
    verb = "would delete at most" if result.dry_run else "deleted"
    lines = [f"{table:<20} {rows:>12,}" for table, rows in sorted(result.counts.items())]
    tables = len(result.counts)
    line = f"{verb} {result.total:,} rows from {tables} table{'s' * (tables != 1)}"
    if result.dry_run:
        line += " (each rule counted alone: a row two rules take is counted twice)"
    else:
        line += f" in {result.batches} batches, {result.seconds:.1f} s"
    if not result.complete:
        line += " (stopped at --max-seconds: run again to carry on)"
    return [*lines, line]


async def run(args: argparse.Namespace) -> int:
    """Prune as the flags say; the exit status."""
    policy = policy_of(args)
    options = BatchOptions(batch_rows=args.batch_rows, max_seconds=args.max_seconds)
    async with store_for(args) as store:
        retention = store.retention
        if args.enable_incremental_vacuum and not args.dry_run:
            on = await retention.enable_incremental_vacuum()
            print(f"incremental vacuum: {'on' if on else 'not offered by this engine'}")
        planned = await retention.run(policy, dry_run=True)
        if args.dry_run:
            result = planned
        else:
            bar = progress_bar(sys.stderr)
            total = max(planned.total, 1)
            result = await retention.run(
                policy, options=options, progress=lambda done: bar(min(done, total), total)
            )
            bar(result.total, result.total)  # the plan was an upper bound: end on the truth
        for line in summary(result):
            print(line)
        if args.reclaim and not args.dry_run:
            freed = await retention.reclaim()
            if freed.supported:
                print(f"reclaimed {freed.pages:,} pages in {freed.steps} steps")
            else:
                print("reclaim: this database is not in incremental-vacuum mode (see --help)")
    return 0
