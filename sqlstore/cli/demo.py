"""``sqlstore demo``: initialize the database, show writes and reads, and leave one of
everything behind for ``sqlstore ui``."""

from __future__ import annotations

import argparse

from ..drivers import redact_url
from .common import Subparsers, database_url, store_for
from .demo_conversations import demo_conversation
from .demo_seed import seed_for_ui


def register(sub: Subparsers) -> None:
    """Register ``sqlstore demo``."""
    parser = sub.add_parser("demo", help="initialize the database and show writes and reads")
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Seed and print the demo; the exit status."""
    async with store_for(args) as store:
        health = await store.health_check()
        print(
            f"database {redact_url(database_url(args))} ({health['backend']}, "
            f"schema v{health['schema_version']}, round trip {health['latency_ms']} ms)"
        )
        await demo_conversation(store)
        await seed_for_ui(store)
        print(f"database stats: {await store.stats()}")
    return 0
