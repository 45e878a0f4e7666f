"""Hrana (libSQL's protocol) JSON encoding: values, statements, batches and results.

Pure functions with no I/O, shared by the HTTP driver. The value encoding follows the
Hrana spec: integers as decimal strings (full signed 64-bit range), floats as JSON
numbers, text as strings, blobs as base64, and null.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from ..errors import QueryError, ValidationError
from .base import PlainArgs, Result, Value

JsonObj = dict[str, Any]

_NULL: JsonObj = {"type": "null"}


def encode_value(value: Any) -> JsonObj:
    """One bound value, already checked by ``values.check_args``, as a Hrana value object."""
    kind = type(value)
    if kind is str:
        return {"type": "text", "value": value}
    if kind is int:
        return {"type": "integer", "value": str(value)}
    if value is None:
        return _NULL
    if kind is float:
        return {"type": "float", "value": value}
    if kind is bool:
        return {"type": "integer", "value": "1" if value else "0"}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "blob", "base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, int):
        return encode_value(int(value))
    if isinstance(value, str):
        return encode_value(str(value))
    if isinstance(value, float):
        return encode_value(float(value))
    raise ValidationError(f"cannot bind a value of type {kind.__name__}")  # pragma: no cover


def decode_value(obj: JsonObj) -> Value:
    """One Hrana value object as a Python value."""
    kind = obj["type"]
    if kind == "text":
        return str(obj["value"])
    if kind == "integer":
        return int(obj["value"])
    if kind == "null":
        return None
    if kind == "float":
        return float(obj["value"])
    if kind == "blob":
        data = obj.get("base64") or ""
        return base64.b64decode(data + "=" * (-len(data) % 4))
    raise QueryError(f"unknown value type in the server's answer: {kind!r}")


_NUMBERED: dict[str, tuple[str, tuple[str, ...]]] = {}
"""SQL texts with named parameters, rewritten to ``?N`` (domains reuse a few fixed texts)."""


def numbered_sql(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its named parameters (``:a``, ``@a``, ``$a``) rewritten to ``?N``, and
    the names in order of first appearance (``?N`` binds the N-th of them).

    Every libSQL server binds ``?N`` the same way, while named arguments are ignored by
    some (tursodb) and refused with positional values by others (sqld). String literals,
    quoted identifiers and comments are left as they are. A ``?`` parameter mixed with
    named ones raises ValidationError.
    """
    cached = _NUMBERED.get(sql)
    if cached is not None:
        return cached
    names: list[str] = []
    number: dict[str, int] = {}
    out: list[str] = []
    i = done = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`":
            end = sql.find(ch, i + 1)
            while end != -1 and end + 1 < n and sql[end + 1] == ch:  # doubled quote
                end = sql.find(ch, end + 2)
            i = n if end == -1 else end + 1
        elif ch == "[":
            end = sql.find("]", i + 1)
            i = n if end == -1 else end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end == -1 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end == -1 else end + 2
        elif ch in ":@$" and i + 1 < n and (sql[i + 1].isalnum() or sql[i + 1] == "_"):
            j = i + 1
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            name = sql[i + 1 : j]
            if name not in number:
                names.append(name)
                number[name] = len(names)
            out.append(sql[done:i])
            out.append(f"?{number[name]}")
            i = done = j
        elif ch == "?":
            raise ValidationError("a statement cannot mix '?' parameters with named arguments")
        else:
            i += 1
    out.append(sql[done:])
    result = ("".join(out), tuple(names))
    if len(_NUMBERED) < 4096:
        _NUMBERED[sql] = result
    return result


def encode_stmt(sql: str, args: PlainArgs) -> JsonObj:
    """A Hrana ``Stmt`` object. Named parameters are rewritten to ``?N`` and their values
    sent by position, in order of first appearance (how SQLite numbers them), so that
    every server binds them alike."""
    if isinstance(args, dict):
        sql, names = numbered_sql(sql)
        missing = [name for name in names if name not in args]
        if missing:
            raise ValidationError(f"no value given for the named parameters {missing}")
        unused = set(args) - set(names)
        if unused:
            raise ValidationError(f"named arguments not used by the statement: {sorted(unused)}")
        values: Sequence[Any] = [args[name] for name in names]
    else:
        values = args
    stmt: JsonObj = {"sql": sql, "want_rows": True}
    if values:
        stmt["args"] = [encode_value(v) for v in values]
    return stmt


def execute_request(stmt: JsonObj) -> JsonObj:
    """A pipeline ``execute`` request."""
    return {"type": "execute", "stmt": stmt}


def transaction_request(stmts: list[JsonObj], begin: str = "BEGIN IMMEDIATE") -> JsonObj:
    """A pipeline ``batch`` request that runs ``stmts`` as one transaction.

    Steps: ``begin`` (BEGIN IMMEDIATE; BEGIN DEFERRED for a read-only batch, which a
    read-only token may run), each statement only if the one before succeeded, COMMIT only
    if the last statement succeeded, ROLLBACK only if COMMIT did not succeed.
    """
    steps: list[JsonObj] = [{"stmt": {"sql": begin}}]
    for stmt in stmts:
        steps.append({"stmt": stmt, "condition": {"type": "ok", "step": len(steps) - 1}})
    commit = len(steps)
    steps.append({"stmt": {"sql": "COMMIT"}, "condition": {"type": "ok", "step": commit - 1}})
    steps.append(
        {
            "stmt": {"sql": "ROLLBACK"},
            "condition": {"type": "not", "cond": {"type": "ok", "step": commit}},
        }
    )
    return {"type": "batch", "batch": {"steps": steps}}


def decode_result(obj: JsonObj) -> Result:
    """A Hrana ``StmtResult`` as a Result (``affected_row_count`` is ignored on purpose)."""
    cols = [c.get("name") or "" for c in obj.get("cols") or ()]
    rows = obj.get("rows") or ()
    return Result(cols, [tuple(decode_value(v) for v in row) for row in rows])


def raise_error(error: JsonObj, sql: str | None = None, where: str = "") -> None:
    """Raise the QueryError for a Hrana ``Error`` object."""
    message = str(error.get("message") or "unknown error")
    raise QueryError(f"{where}{message}", code=error.get("code"), sql=sql)


def response_of(result: JsonObj, sql: str | None = None) -> JsonObj:
    """The ``response`` of one pipeline result, raising QueryError for an error result."""
    if result.get("type") == "error":
        raise_error(result.get("error") or {}, sql)
    response: JsonObj = result["response"]
    return response


def transaction_results(response: JsonObj, sqls: list[str]) -> list[Result]:
    """The statements' results of a transaction batch, or the first error as QueryError."""
    batch = response["result"]
    step_results = batch.get("step_results") or []
    step_errors = batch.get("step_errors") or []
    last = len(sqls) + 1  # index of the COMMIT step
    for i, error in enumerate(step_errors[: last + 1]):
        if error:
            if i == 0:
                raise_error(error, "BEGIN", "could not begin the transaction: ")
            if i == last:
                raise_error(error, "COMMIT", "could not commit the transaction: ")
            raise_error(error, sqls[i - 1], f"statement {i - 1} of the batch failed: ")
    if len(step_results) <= last or step_results[last] is None:
        raise QueryError("the server did not commit the batch and gave no reason")
    return [decode_result(step_results[i + 1]) for i in range(len(sqls))]


def is_busy(error: JsonObj | None) -> bool:
    """Whether a Hrana ``Error`` says the database was locked (SQLITE_BUSY / LOCKED)."""
    if not error:
        return False
    code = str(error.get("code") or "").upper()
    message = str(error.get("message") or "").lower()
    return code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in message


def refused_busy(result: JsonObj) -> bool:
    """Whether a pipeline result is a refusal because the database was locked, with
    nothing applied: an ``execute`` that failed so, or a transaction batch that failed so
    and did not commit (its ROLLBACK step undid the rest)."""
    if result.get("type") == "error":
        return is_busy(result.get("error"))
    response = result.get("response") or {}
    if response.get("type") != "batch":
        return False
    batch = response.get("result") or {}
    step_results = batch.get("step_results") or []
    if not any(is_busy(error) for error in batch.get("step_errors") or ()):
        return False
    commit = len(step_results) - 2  # the COMMIT step comes just before the ROLLBACK step
    return commit < 0 or step_results[commit] is None
