"""Drivers turn a URL into a client with one small contract: execute, batch, close."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigurationError
from .base import EMPTY_RESULT, Args, Client, Executor, Result, Row, Statement, Value

ACCEPTED = (
    "file:PATH, file::memory:, :memory: (local SQLite file); "
    "libsql://HOST, https://HOST, http://HOST (remote libSQL / Turso over HTTP); "
    "ws://HOST, wss://HOST (libsql-client WebSocket, extra 'ws'); "
    "or a libsql_client.Client object"
)

__all__ = [
    "ACCEPTED",
    "EMPTY_RESULT",
    "Args",
    "Client",
    "Executor",
    "Result",
    "Row",
    "Statement",
    "Value",
    "backend_of",
    "connect",
    "redact_url",
]


def redact_url(url: str) -> str:
    """``url`` fit to show: any user info (a password may be a token) and every query
    value (``authToken=``, or a mistyped name for it) replaced by ``***``."""
    if "@" not in url and "?" not in url:
        return url
    head, _, query = url.partition("?")
    if "@" in head:
        try:
            parts = urlsplit(head)
        except ValueError:
            return "(a URL that cannot be parsed)"
        if "@" in parts.netloc:
            netloc = "***@" + parts.netloc.rsplit("@", 1)[1]
            head = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return head + ("?" + re.sub(r"=[^&;#]*", "=***", query) if query else "")


def backend_of(url: Any) -> str:
    """Which driver serves ``url``: local, remote, ws or wrapped (else ConfigurationError)."""
    if not isinstance(url, str):
        if hasattr(url, "execute") and hasattr(url, "batch") and hasattr(url, "close"):
            return "wrapped"
        raise ConfigurationError(f"expected a database URL string; accepted: {ACCEPTED}")
    if url in (":memory:", "file::memory:") or url.startswith("file:"):
        return "local"
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("libsql", "https", "http"):
        return "remote"
    if scheme in ("ws", "wss"):
        return "ws"
    raise ConfigurationError(f"unsupported database URL {redact_url(url)!r}; accepted: {ACCEPTED}")


async def connect(url: Any, *, auth_token: str | None = None, **options: Any) -> Client:
    """Open a client for ``url`` (see ACCEPTED) and return it, ready to use.

    Options go to the driver: ``busy_timeout``, ``durability`` and ``inline_budget`` for
    local files; ``timeout``, ``connect_timeout``, ``retries``, ``retry_backoff``,
    ``retry_max_delay``, ``max_connections`` and ``keep_streams`` for remote URLs.
    """
    backend = backend_of(url)
    if backend == "local":
        from .local import LocalClient, parse_local_url

        _only(options, {"busy_timeout", "durability", "inline_budget"}, backend)
        return await LocalClient(parse_local_url(url), **options).open()
    if backend == "remote":
        from .remote import RemoteClient

        _only(
            options,
            {
                "timeout",
                "connect_timeout",
                "retries",
                "retry_backoff",
                "retry_max_delay",
                "max_connections",
                "keep_streams",
            },
            backend,
        )
        return await RemoteClient(url, auth_token=auth_token, **options).open()
    from .wrapped import WrappedClient

    if backend == "wrapped":
        _only(options, set(), backend)
        return WrappedClient(url)
    try:
        import libsql_client
    except ImportError:
        raise ConfigurationError(
            "ws:// and wss:// URLs need libsql-client: pip install 'sqlstore[ws]'"
        ) from None
    _only(options, set(), backend)
    return WrappedClient(libsql_client.create_client(url, auth_token=auth_token), backend="ws")


def _only(options: dict[str, Any], allowed: set[str], backend: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigurationError(
            f"unknown option(s) {unknown} for the {backend} driver; allowed: {sorted(allowed)}"
        )
