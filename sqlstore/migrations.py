"""Numbered, append-only schema migrations and the schema.sql loader.

A fresh database runs ``schema.sql`` (the whole current schema) and is recorded at
``SCHEMA_VERSION``. A database at an older version runs each later migration in order,
each as one atomic batch that first claims its version number in ``schema_migrations``
(a primary key), so concurrent initializers apply every migration exactly once.
A migration never drops a table or column that sqlstore does not own.

Ownership: sqlstore owns exactly the tables and indexes schema.sql creates, and only in a
database where it created them. ``IF NOT EXISTS`` in schema.sql never adopts anything: before
a fresh database gets the schema, ``owned_names`` are looked up, and any of them that already
exists (an application's own ``messages`` table, another tool's ``schema_migrations``) is a
ConfigurationError naming it, raised before anything is written.
"""

from __future__ import annotations

import re
import sqlite3
from functools import cache
from importlib import resources
from pathlib import Path

SCHEMA_VERSION = 4
"""The version a fresh database is created at (schema.sql's shape)."""

MIGRATIONS: dict[int, tuple[str, tuple[str, ...]]] = {
    2: (
        "messages_thread_time: session reads bounded by their limit",
        (
            "CREATE INDEX IF NOT EXISTS messages_thread_time"
            " ON messages (thread_id, created_at, id)",
        ),
    ),
    3: (
        "tombstones: what was deleted and when, so late writes do not bring it back",
        (
            # No IF NOT EXISTS: a same-named table of someone else's fails the migration
            # instead of being adopted.
            """CREATE TABLE tombstones (
                kind        TEXT    NOT NULL,
                key         TEXT    NOT NULL,
                deleted_at  INTEGER NOT NULL,
                PRIMARY KEY (kind, key))""",
            "CREATE INDEX tombstones_deleted ON tombstones (deleted_at)",
        ),
    ),
    4: (
        "checkpoints_newest: LangGraph alist(None) pages newest first without sorting",
        (
            # No IF NOT EXISTS: someone else's index of that name fails the migration.
            "CREATE INDEX checkpoints_newest"
            " ON checkpoints (checkpoint_id, thread_id, checkpoint_ns)",
        ),
    ),
}
"""Version → (name, statements) for every version after 1. Append only; never edit one.
Each touches only tables sqlstore owns (see ``owned_names``)."""


@cache
def schema_sql() -> str:
    """The text of schema.sql: shipped inside the wheel, or at the source checkout's top."""
    packaged = resources.files("sqlstore").joinpath("schema.sql")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parent.parent / "schema.sql").read_text(encoding="utf-8")


def split_statements(script: str) -> list[str]:
    """Split a SQL script into complete statements (comments and blank lines dropped)."""
    statements: list[str] = []
    buffer: list[str] = []
    for line in script.splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer.append(line)
        text = "\n".join(buffer)
        if sqlite3.complete_statement(text):
            statements.append(text.strip().rstrip(";").strip())
            buffer = []
    if buffer and "\n".join(buffer).strip():
        raise ValueError(f"incomplete SQL statement at the end of the script: {buffer[0]!r}")
    return statements


@cache
def schema_statements() -> tuple[str, ...]:
    """schema.sql as a tuple of statements, parsed once."""
    return tuple(split_statements(schema_sql()))


_CREATED = re.compile(
    r"^CREATE\s+(?:UNIQUE\s+)?(TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE
)


@cache
def owned_names() -> tuple[str, ...]:
    """The name of every table and index schema.sql creates (what sqlstore owns)."""
    names: list[str] = []
    for statement in schema_statements():
        match = _CREATED.match(statement)
        if match is None:
            raise ValueError(f"schema.sql statement without CREATE ... IF NOT EXISTS: {statement}")
        names.append(match.group(2))
    return tuple(names)
