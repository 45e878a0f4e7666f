"""``sqlstore teams``: import, export and list team configurations from the command line.

    sqlstore teams import PATH... [--user U] [--dedupe]
    sqlstore teams export ID [--format yaml] [-o FILE]
    sqlstore teams list [--user U] [--limit N]

The database URL comes from ``--url`` or ``$SQLSTORE_URL``, the token from
``$SQLSTORE_AUTH_TOKEN``, the user from ``--user`` or ``$SQLSTORE_USER`` (default "default").
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from ..domains.team_files import SUFFIXES, team_files
from ..domains.team_models import Team
from ..errors import ValidationError
from ..store import Store
from .common import Subparsers, store_for

DEFAULT_USER = "default"


def register(sub: Subparsers) -> None:
    """Register the ``teams`` subcommand group on the main parser's subparsers."""
    teams = sub.add_parser("teams", help="import, export and list team configurations")
    actions = teams.add_subparsers(dest="teams_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=argparse.SUPPRESS, help="database URL")

    imp = actions.add_parser("import", parents=[common], help="import team files or directories")
    imp.add_argument("paths", nargs="+", metavar="PATH", help=".json/.yaml/.yml file or directory")
    imp.add_argument("--user", help="owner of the teams (default: $SQLSTORE_USER or 'default')")
    imp.add_argument(
        "--dedupe", action="store_true", help="skip a config the user already has (by hash)"
    )

    exp = actions.add_parser("export", parents=[common], help="print or write a team's config")
    exp.add_argument("id", help="team id")
    exp.add_argument("--format", choices=("json", "yaml"), default="json")
    exp.add_argument("-o", "--output", help="write to this file instead of stdout")

    lst = actions.add_parser("list", parents=[common], help="list a user's teams, newest first")
    lst.add_argument("--user", help="owner of the teams (default: $SQLSTORE_USER or 'default')")
    lst.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")

    teams.set_defaults(run=run)


def _user(args: argparse.Namespace) -> str:
    return str(args.user or os.environ.get("SQLSTORE_USER") or DEFAULT_USER)


def expand_paths(paths: list[str]) -> list[Path]:
    """Files named directly, and the team files directly inside named directories."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files += team_files(p)
        elif p.suffix.lower() in SUFFIXES or not p.exists():
            files.append(p)  # a missing file is reported by the import, not dropped
        else:
            raise ValidationError(f"{p}: a team file must end in one of {list(SUFFIXES)}")
    return files


def progress_bar(stream: TextIO, width: int = 30) -> Callable[[int, int], None]:
    """A tiny progress bar drawn on ``stream`` (stderr): ``[#####.....] 12/40``."""

    def draw(done: int, total: int) -> None:
        filled = width * done // total if total else width
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return draw


async def _import(store: Store, args: argparse.Namespace) -> int:
    files = expand_paths(args.paths)
    bar = progress_bar(sys.stderr) if len(files) > 1 else None
    r = await store.teams.import_team_files(files, _user(args), args.dedupe, progress=bar)
    for item in r.data:
        if item["status"]:
            verb = "created" if item["created"] else "exists "
            print(f"{verb} {item['id']}  {item['file']}")
        else:
            print(f"failed  {item['file']}: {item['message']}")
    print(r.message, file=sys.stderr)
    return 0 if r.status else 1


async def _export(store: Store, args: argparse.Namespace) -> int:
    r = await store.teams.export_team(args.id, args.format, args.output)
    if not r.status:
        print(f"sqlstore: {r.message}", file=sys.stderr)
        return 1
    if args.output:
        print(r.message, file=sys.stderr)
    else:
        sys.stdout.write(r.data)
    return 0


async def _list(store: Store, args: argparse.Namespace) -> int:
    r = await store.teams.get("team", {"user_id": _user(args)}, limit=args.limit)
    for team in r.data:
        assert isinstance(team, Team)
        stamp = team.updated_at or 0
        updated = datetime.fromtimestamp(stamp / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{team.id}  {updated}  v{team.version}  {team.name or ''}")
    print(r.message, file=sys.stderr)
    return 0


async def run(args: argparse.Namespace) -> int:
    """Run a parsed ``teams`` command; the exit status."""
    async with store_for(args) as store:
        command = {"import": _import, "export": _export, "list": _list}[args.teams_command]
        return await command(store, args)
