"""How one call runs on a sqlite3 connection: a statement, or statements in one
transaction, with sqlite3's exceptions mapped onto sqlstore's. Used by the local driver on
its worker thread and on the event loop."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..errors import QueryError, SqlStoreError, ValidationError
from .base import EMPTY_RESULT, PlainArgs, Result, reads_only


def translate_error(exc: BaseException, sql: str | None = None) -> SqlStoreError:
    """Map a sqlite3 exception onto sqlstore's hierarchy."""
    if isinstance(exc, SqlStoreError):
        return exc
    if isinstance(exc, OverflowError):
        return ValidationError(f"integer outside SQLite's signed 64-bit range: {exc}")
    if isinstance(exc, sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return ValidationError(f"bad statement or arguments: {exc}")
    code = getattr(exc, "sqlite_errorname", None)
    return QueryError(str(exc), code=code, sql=sql)


def result_of(cursor: sqlite3.Cursor) -> Result:
    """The rows of the statement a cursor just ran (none for a statement without any)."""
    description = cursor.description
    if description is None:
        return EMPTY_RESULT
    return Result([d[0] for d in description], cursor.fetchall())


def run_statement(conn: sqlite3.Connection, sql: str, args: PlainArgs) -> Result:
    """Run one statement (in its own transaction, unless one is open)."""
    try:
        return result_of(conn.execute(sql, args))
    except (sqlite3.Error, OverflowError) as exc:
        raise translate_error(exc, sql) from None


def run_batch(
    conn: sqlite3.Connection,
    statements: list[tuple[str, PlainArgs]],
    *,
    appends: Callable[[], None] | None = None,
) -> list[Result]:
    """Run statements in one transaction: deferred when all only read, else immediate.
    ``appends`` may refuse the write once it holds the write lock (by raising)."""
    results: list[Result] = []
    sql = "BEGIN" if all(reads_only(s) for s, _ in statements) else "BEGIN IMMEDIATE"
    try:
        cursor = conn.cursor()  # one for the whole batch, not one per statement
        cursor.execute(sql)
        if appends is not None:
            appends()
        i, n = 0, len(statements)
        while i < n:
            sql, args = statements[i]
            cursor.execute(sql, args)
            if cursor.description is None:
                # A run of the same row-less statement goes through executemany.
                j = i + 1
                while j < n and statements[j][0] == sql:
                    j += 1
                if j > i + 1:
                    cursor.executemany(sql, [a for _, a in statements[i + 1 : j]])
                results.extend([EMPTY_RESULT] * (j - i))
                i = j
            else:
                results.append(result_of(cursor))
                i += 1
        sql = "COMMIT"
        cursor.execute(sql)
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if not isinstance(exc, Exception):
            raise  # KeyboardInterrupt and the like stay what they are
        raise translate_error(exc, sql) from None
    return results
