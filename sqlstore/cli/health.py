"""``sqlstore health``: backend, round-trip latency and schema version."""

from __future__ import annotations

import argparse

from .common import Subparsers, store_for


def register(sub: Subparsers) -> None:
    """Register ``sqlstore health``."""
    parser = sub.add_parser("health", help="print backend, latency and schema version")
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Print the health check; the exit status."""
    async with store_for(args) as store:
        for key, value in (await store.health_check()).items():
            print(f"{key} {value}")
    return 0
