"""sqlstore: async persistence for AI agents on SQLite files, libSQL servers and Turso Cloud.

``connect(url)`` gives a low-level client (execute / batch / close); ``Store(url)`` adds the
schema and the domain APIs. Handwritten SQL, no ORM.
"""

from __future__ import annotations

from .drivers import Client, Result, Row, connect
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    OutcomeUnknownError,
    QueryError,
    SqlStoreError,
    UnavailableError,
    ValidationError,
)
from .store import DEFAULT_URL, Store

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "NotFoundError",
    "OutcomeUnknownError",
    "QueryError",
    "Result",
    "Row",
    "SqlStoreError",
    "Store",
    "UnavailableError",
    "ValidationError",
    "__version__",
    "connect",
]
