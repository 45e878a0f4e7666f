"""The ``sqlstore`` command for operators: one module per subcommand.

Each command module has ``register(subparsers)``, which adds its parser and sets
``run``: an async function of the parsed arguments that returns the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from ..errors import SqlStoreError
from ..store import DEFAULT_URL
from . import demo, health, prune, stats, teams, ui

COMMANDS = (demo, health, stats, prune, teams, ui)
"""The command modules, in the order ``sqlstore --help`` lists them."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sqlstore`` command."""
    parser = argparse.ArgumentParser(prog="sqlstore", description=__doc__)
    parser.add_argument("--url", help=f"database URL (default: $SQLSTORE_URL or {DEFAULT_URL})")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(asyncio.run(args.run(args)))
    except SqlStoreError as exc:
        print(f"sqlstore: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. `sqlstore demo | head`): stop quietly, and point
        # stdout at /dev/null so the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
