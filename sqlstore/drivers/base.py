"""The driver contract: statements, values, rows and results shared by every backend."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

from ..errors import ValidationError
from ..values import check_args, check_rows
from .params import Params, params_of

Value: TypeAlias = int | float | str | bytes | None
"""A value SQLite stores: NULL, INTEGER (64-bit), REAL, TEXT or BLOB."""

Args: TypeAlias = Sequence[Any] | Mapping[str, Any]
"""Positional arguments for ``?`` or named arguments for ``:name``."""

Statement: TypeAlias = str | tuple[str, Args]
"""A SQL string, or a ``(sql, args)`` pair."""


class Row(Sequence[Value]):
    """One result row, indexable by position and by column name."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: tuple[Value, ...], index: Mapping[str, int]) -> None:
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                raise KeyError(f"no column named {key!r}; columns: {list(self._index)}") from None
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Value]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return self._values == other._values
        if isinstance(other, tuple):
            return self._values == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values)

    def keys(self) -> list[str]:
        """The column names, in order."""
        return list(self._index)

    def asdict(self) -> dict[str, Value]:
        """The row as a ``{column: value}`` dict."""
        return {name: self._values[i] for name, i in self._index.items()}

    def __repr__(self) -> str:
        return f"Row({self.asdict()!r})"


class Result:
    """The outcome of one statement: its column names and its rows (read-only).

    ``rows`` are Row objects (by position and by name), made on first use; ``values`` are
    the same rows as plain tuples, for code that reads by position and wants no wrapper.
    """

    __slots__ = ("_rows", "columns", "values")

    def __init__(self, columns: Sequence[str], values: Sequence[tuple[Value, ...]]) -> None:
        self.columns: tuple[str, ...] = tuple(columns)
        self.values: Sequence[tuple[Value, ...]] = values
        self._rows: tuple[Row, ...] | None = None

    @property
    def rows(self) -> tuple[Row, ...]:
        """The rows, each indexable by position and by column name."""
        rows = self._rows
        if rows is None:
            index: dict[str, int] = {}
            for i, name in enumerate(self.columns):
                index.setdefault(name, i)
            rows = self._rows = tuple(Row(tuple(v), index) for v in self.values)
        return rows

    def first(self) -> Row | None:
        """The first row, or None when there is none."""
        return self.rows[0] if self.values else None

    def scalar(self) -> Value:
        """The first column of the first row, or None when there is no row."""
        return self.values[0][0] if self.values else None

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __repr__(self) -> str:
        return f"Result(columns={self.columns!r}, rows={len(self.values)})"


EMPTY_RESULT = Result((), ())
"""The shared result of a statement that returns no columns."""


class Executor(Protocol):
    """What a domain needs: one statement, one atomic batch (a Client or a Store)."""

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement (in its own transaction) and return its result."""
        ...

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run statements in one transaction: all commit, or none do."""
        ...


@runtime_checkable
class Client(Protocol):
    """What every driver offers: one statement, one atomic batch, close."""

    backend: str
    """A short name of the backend: ``"local"``, ``"remote"`` or ``"ws"``."""

    async def execute(self, sql: str, args: Args = ()) -> Result:
        """Run one statement (in its own transaction) and return its result."""
        ...

    async def batch(self, statements: Sequence[Statement]) -> list[Result]:
        """Run statements in one transaction: all commit, or none do."""
        ...

    async def close(self) -> None:
        """Release the connection; further calls raise."""
        ...


PlainArgs: TypeAlias = Sequence[Any] | dict[str, Any]
"""Arguments after the structural check: a sequence, or a dict keyed without prefixes."""


def normalize_args(args: Any) -> PlainArgs:
    """Check a statement's arguments: their shape, and each value (``values.check_args``).

    Named argument keys may be written with or without their ``:``, ``@`` or ``$`` prefix.
    """
    if isinstance(args, Mapping):
        named: dict[str, Any] = {}
        for key, value in args.items():
            if not isinstance(key, str) or not key.lstrip(":@$"):
                raise ValidationError(f"named argument keys must be non-empty strings, not {key!r}")
            name = key.lstrip(":@$")
            if name in named:
                raise ValidationError(f"the named argument {name!r} is given twice")
            named[name] = value
        check_args(named.values())
        return named
    if isinstance(args, tuple | list):
        check_args(args)
        return args
    if isinstance(args, str | bytes) or not isinstance(args, Sequence):
        raise ValidationError(
            f"statement arguments must be a sequence or a mapping, not {type(args).__name__}"
        )
    plain = tuple(args)
    check_args(plain)
    return plain


_TRANSACTION_WORDS = ("BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE")
_COMMENT = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)


def without_leading_comments(sql: str) -> str:
    """The statement from its first keyword on (white space and comments before it cut)."""
    start = _COMMENT.match(sql)
    return sql[start.end() if start else 0 :]


def leading_keyword(sql: str) -> str:
    """The statement's first keyword in upper case, skipping white space and comments."""
    word = re.match(r"[A-Za-z]+", without_leading_comments(sql))
    return word.group(0).upper() if word else ""


READ_WORDS = frozenset({"SELECT", "VALUES", "EXPLAIN"})
"""First keywords of statements that only read. ``WITH`` is not one: it may lead a write."""


@functools.lru_cache(maxsize=1024)
def reads_only(sql: str) -> bool:
    """Whether a statement only reads (by its first keyword; see READ_WORDS); cached,
    since domains reuse a few fixed texts."""
    return leading_keyword(sql) in READ_WORDS


_KEPT_BY_PRAGMAS = frozenset(
    {"wal_checkpoint", "incremental_vacuum", "optimize", "shrink_memory", "cache_size"}
    | {"user_version", "application_id", "auto_vacuum", "journal_size_limit"}
    | {"busy_timeout", "wal_autocheckpoint"}
)
"""PRAGMAs with a value that do not change what a statement means on another connection:
operations, settings kept in the file, and settings about waiting and checkpoints."""


@functools.lru_cache(maxsize=1024)
def changes_connection(sql: str) -> bool:
    """Whether a statement changes its connection in a way that another connection to the
    same file would not share: ATTACH, DETACH, a temporary table, view, index or trigger,
    or a PRAGMA that sets a connection setting (``foreign_keys``, ``synchronous``...)."""
    body = without_leading_comments(sql)
    word = leading_keyword(body)
    if word in ("ATTACH", "DETACH"):
        return True
    if word == "CREATE":
        return re.match(r"CREATE\s+TEMP(?:ORARY)?\b", body, re.IGNORECASE) is not None
    pragma = re.match(r"PRAGMA\s+(?:\w+\s*\.\s*)?(\w+)\s*[=(]", body, re.IGNORECASE)
    return pragma is not None and pragma[1].lower() not in _KEPT_BY_PRAGMAS


_CHECKED_SQL: dict[str, Params] = {}
"""SQL texts already found acceptable, with their parameters (domains reuse a few fixed
texts; bounded)."""


def check_sql(sql: str) -> Params:
    """Reject empty SQL, transaction control (which only ``batch`` may do) and SQL that
    mixes ``?`` with named parameters; the statement's parameters."""
    params = _CHECKED_SQL.get(sql)
    if params is not None:
        return params
    _check_sql(sql)
    params = params_of(sql)
    if len(_CHECKED_SQL) < 4096:
        _CHECKED_SQL[sql] = params
    return params


def _check_sql(sql: str) -> None:
    if not sql or sql.isspace():
        raise ValidationError("empty SQL statement")
    if leading_keyword(sql) in _TRANSACTION_WORDS:
        raise ValidationError(
            "transaction control statements are not accepted; "
            "use batch() to run statements in one transaction"
        )


def normalize_execute(sql: Any, args: Any) -> PlainArgs:
    """Check one ``execute`` call's SQL and arguments; its arguments, ready to bind."""
    if not isinstance(sql, str):
        raise ValidationError("sql must be a string")
    params = check_sql(sql)
    plain = normalize_args(args)
    params.check(plain)
    return plain


def normalize_statement(stmt: Any) -> tuple[str, PlainArgs]:
    """Turn a Statement into ``(sql, args)`` or raise ValidationError."""
    if type(stmt) is tuple and len(stmt) == 2 and type(stmt[0]) is str:
        sql, args = stmt
    elif isinstance(stmt, str):
        sql, args = stmt, ()
    elif isinstance(stmt, tuple) and len(stmt) == 2 and isinstance(stmt[0], str):
        sql, args = stmt
    else:
        raise ValidationError(f"a statement is a SQL string or a (sql, args) pair, not {stmt!r}")
    return sql, normalize_args(args)


def normalize_batch(statements: Sequence[Statement]) -> list[tuple[str, PlainArgs]]:
    """Check every statement of a batch, its shape and values, before any of it is sent.

    The common shape, a ``(sql, tuple_or_list)`` pair, is passed through as it is, and a
    run of one SQL text is checked once, so large batches cost little here.
    """
    if type(statements) is not list and (  # (a list: no ABC check)
        isinstance(statements, str) or not isinstance(statements, Sequence)
    ):
        raise ValidationError("batch() takes a sequence of statements")
    out: list[tuple[str, Any]] = []
    append = out.append
    rows: list[Any] = []  # the pass-through arguments (tuples, lists), checked together below
    keep = rows.append
    checked: str | None = None
    expected = -1  # how many positional values the checked SQL takes (-1: it has names)
    for stmt in statements:
        if type(stmt) is tuple and len(stmt) == 2:
            sql, args = stmt
            kind = type(args)
            if type(sql) is str and (kind is tuple or kind is list):
                if sql != checked:
                    params = check_sql(sql)
                    checked = sql
                    expected = -1 if params.names else params.positional
                if len(args) != expected:
                    params.check(list(args))  # raises, saying why
                keep(args)
                append((sql, args))
                continue
        sql, plain = normalize_statement(stmt)  # (its values are checked there)
        if sql != checked:
            params = check_sql(sql)
            checked = sql
            expected = -1 if params.names else params.positional
        params.check(plain)
        append((sql, plain))
    check_rows(rows)
    return out
