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
from .base import EMPTY_RESULT, PlainArgs, Result, Value
from .params import params_of

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


def encode_stmt(sql: str, args: PlainArgs) -> JsonObj:
    """A Hrana ``Stmt`` object for a checked statement (see ``base.normalize_execute``).

    Named parameters are rewritten to ``?N`` and their values sent by position, in order
    of first appearance (how SQLite numbers them), so that every server binds them alike:
    tursodb ignores named arguments and sqld refuses named SQL with positional ones.
    """
    if isinstance(args, dict):
        params = params_of(sql)
        sql = params.numbered
        values: Sequence[Any] = [args[name] for name in params.names]
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
    if not obj.get("cols"):
        return EMPTY_RESULT  # a statement without columns (an INSERT, ...) has no rows
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
