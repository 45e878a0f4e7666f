"""The ``sqlstore`` command for operators: ``sqlstore demo``, ``sqlstore health``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from .cli_teams import add_teams_command
from .errors import SqlStoreError
from .store import DEFAULT_URL, Store


def _url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("SQLSTORE_URL") or DEFAULT_URL)


def _token() -> str | None:
    return os.environ.get("SQLSTORE_AUTH_TOKEN") or None


async def _demo(url: str) -> None:
    from .domains.conversations_demo import demo_conversation

    async with Store(url, auth_token=_token()) as store:
        health = await store.health_check()
        print(
            f"database {url} ({health['backend']}, schema v{health['schema_version']}, "
            f"round trip {health['latency_ms']} ms)"
        )
        await demo_conversation(store)
        print(f"database stats: {await store.stats()}")


async def _health(url: str) -> None:
    async with Store(url, auth_token=_token()) as store:
        for key, value in (await store.health_check()).items():
            print(f"{key} {value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sqlstore`` command."""
    parser = argparse.ArgumentParser(prog="sqlstore", description=__doc__)
    parser.add_argument("--url", help=f"database URL (default: $SQLSTORE_URL or {DEFAULT_URL})")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="initialize the database and show writes and reads")
    sub.add_parser("health", help="print backend, latency and schema version")
    add_teams_command(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            asyncio.run(_demo(_url(args)))
        elif args.command == "health":
            asyncio.run(_health(_url(args)))
        elif args.command == "teams":
            return int(args.run_teams(args, _url(args)))
    except SqlStoreError as exc:
        print(f"sqlstore: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. `sqlstore demo | head`): stop quietly, and point
        # stdout at /dev/null so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
