"""``sqlstore stats``: rows and bytes per table, pages, and the vacuum mode."""

from __future__ import annotations

import argparse

from .common import Subparsers, store_for


def register(sub: Subparsers) -> None:
    """Register ``sqlstore stats``."""
    parser = sub.add_parser("stats", help="rows and bytes per table")
    parser.add_argument("--url", default=argparse.SUPPRESS, help="database URL")
    parser.set_defaults(run=run)


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)  # pragma: no cover


async def run(args: argparse.Namespace) -> int:
    """Print the table; the exit status."""
    async with store_for(args) as store:
        stats = await store.retention.stats()
    print(f"{'table':<20} {'rows':>12} {'bytes':>12}")
    for t in stats.tables:
        print(f"{t.name:<20} {t.rows:>12,} {_size(t.bytes):>12}")
    if any(t.bytes is None for t in stats.tables):
        print("bytes: not offered by this engine (no dbstat); rows only")
    print(
        f"file {_size(stats.file_bytes)} ({stats.page_count:,} pages of {stats.page_size} B), "
        f"free {stats.free_pages:,} pages, auto_vacuum {stats.auto_vacuum}"
    )
    return 0
