"""The one exception hierarchy of sqlstore: every error it raises is a SqlStoreError."""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "NotFoundError",
    "OutcomeUnknownError",
    "QueryError",
    "SqlStoreError",
    "UnavailableError",
    "ValidationError",
]


class SqlStoreError(Exception):
    """Base of every error raised by sqlstore."""


class ConfigurationError(SqlStoreError):
    """The store or client was configured wrongly (bad URL, unknown option)."""


class AuthenticationError(SqlStoreError):
    """The server refused the credentials (HTTP 401 or 403)."""


class UnavailableError(SqlStoreError):
    """The database could not be reached, even after the bounded retries."""


class OutcomeUnknownError(UnavailableError):
    """A write was sent but its answer was lost: it may or may not have been applied.

    sqlstore never re-sends such a write by itself (that could apply it twice). The domain
    APIs settle it through their idempotent ids; a raw ``execute`` / ``batch`` raises this,
    and the caller decides.
    """


class QueryError(SqlStoreError):
    """The database rejected a statement; ``code`` is the server's or SQLite's error code."""

    def __init__(self, message: str, *, code: str | None = None, sql: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.sql = sql


class ValidationError(SqlStoreError, ValueError):
    """Bad input from the caller, raised before any I/O."""


class NotFoundError(SqlStoreError, LookupError):
    """Something the caller said must exist does not."""


class ConflictError(SqlStoreError):
    """A write would break a uniqueness rule (for example a duplicate id on create)."""
