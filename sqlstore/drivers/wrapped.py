"""Bring-your-own-client driver: wraps a ``libsql_client.Client`` (WebSocket URLs too).

libsql-client is optional (extra ``ws``) and imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import AuthenticationError, QueryError, UnavailableError
from .base import (
    Args,
    PlainArgs,
    Result,
    Statement,
    normalize_batch,
    normalize_execute,
)


def _libsql_args(args: PlainArgs) -> Any:
    if isinstance(args, dict):
        return {f":{name}": value for name, value in args.items()}
    return list(args)


def _translate(exc: Exception) -> Exception:
    code = str(getattr(exc, "code", "") or "")
    if "401" in code or "403" in code or "AUTH" in code.upper():
        return AuthenticationError("the server refused the credentials")
    if isinstance(exc, OSError | ConnectionError):
        return UnavailableError(f"cannot reach the server: {type(exc).__name__}")
    return QueryError(str(getattr(exc, "explanation", exc)), code=code or None)


class WrappedClient:
    """Adapts a libsql-client ``Client`` to sqlstore's driver contract."""

    def __init__(self, client: Any, *, backend: str = "libsql-client") -> None:
        self.client = client
        self.backend = backend

    def __repr__(self) -> str:
        return f"WrappedClient({type(self.client).__name__}, backend={self.backend!r})"

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement through the wrapped client."""
        plain = normalize_execute(sql, args)
        try:
            rs = await self.client.execute(sql, _libsql_args(plain))
        except Exception as exc:
            raise _translate(exc) from None
        return Result(list(rs.columns), [tuple(row) for row in rs.rows])

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run statements through the wrapped client's transactional ``batch``."""
        checked = normalize_batch(statements)
        if not checked:
            return []
        try:
            sets = await self.client.batch([(sql, _libsql_args(a)) for sql, a in checked])
        except Exception as exc:
            raise _translate(exc) from None
        return [Result(list(rs.columns), [tuple(row) for row in rs.rows]) for rs in sets]

    async def close(self) -> None:
        """Close the wrapped client."""
        await self.client.close()
