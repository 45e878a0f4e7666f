"""What every ``sqlstore`` command shares: the database URL, the token, the store."""

from __future__ import annotations

import argparse
import os
from typing import TypeAlias

from ..store import DEFAULT_URL, Store

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""The main parser's subcommand registry that each command module's ``register`` fills."""


def database_url(args: argparse.Namespace) -> str:
    """``--url``, else ``$SQLSTORE_URL``, else the default local file."""
    return str(getattr(args, "url", None) or os.environ.get("SQLSTORE_URL") or DEFAULT_URL)


def auth_token() -> str | None:
    """The token from ``$SQLSTORE_AUTH_TOKEN`` (never a command-line flag: it would show in
    the process list)."""
    return os.environ.get("SQLSTORE_AUTH_TOKEN") or None


def store_for(args: argparse.Namespace) -> Store:
    """A Store on the command's database (use it with ``async with``)."""
    return Store(database_url(args), auth_token=auth_token())
