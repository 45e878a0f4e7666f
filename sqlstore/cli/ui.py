"""``sqlstore ui``: serve the web UI over the command's database.

    sqlstore ui [--url URL] [--port N] [--host H] [--read-only]

Needs the ``ui`` extra (``pip install 'sqlstore[ui]'``). Binds to 127.0.0.1 unless
``--host`` says otherwise; the token (``$SQLSTORE_AUTH_TOKEN``) stays in this process.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigurationError
from .common import Subparsers, auth_token, database_url

DEFAULT_PORT = 8765


def register(sub: Subparsers) -> None:
    """Register ``sqlstore ui``."""
    parser = sub.add_parser("ui", help="serve a local web page over the database")
    parser.add_argument("--url", default=argparse.SUPPRESS, help="database URL")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"(default {DEFAULT_PORT})")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    parser.add_argument(
        "--read-only", action="store_true", help="no approve / reject, no team import"
    )
    parser.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; the exit status."""
    try:
        import uvicorn

        from ..ui.app import LOOPBACK_HOSTS, create_app
    except ImportError as exc:
        raise ConfigurationError(
            f"sqlstore ui needs the ui extra: pip install 'sqlstore[ui]' ({exc.name} is missing)"
        ) from None
    from ..store import Store

    url = database_url(args)
    hosts = LOOPBACK_HOSTS if args.host in ("127.0.0.1", "localhost", "::1") else ("*",)
    app = create_app(
        Store(url, auth_token=auth_token()),
        database_url=url,
        read_only=args.read_only,
        hosts=hosts,
    )
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="warning", server_header=False
    )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"sqlstore ui on http://{shown}:{args.port}/ (Ctrl-C stops it)", file=sys.stderr)
    await uvicorn.Server(config).serve()
    return 0
