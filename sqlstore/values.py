"""The one rule for values: what may be bound to SQL and what may be stored as JSON.

Every driver checks its bound values here (``check_args``) and every domain encodes its JSON
here (``to_json``), before any I/O, so a value is stored the same way on every backend or
refused with ValidationError; nothing is changed silently. Bound values: None, int (signed
64-bit), finite float, str (valid Unicode: no lone surrogates), bytes; ``bool`` binds as
1 / 0 and bytearray / memoryview as bytes. JSON values: dict (str keys), list, str, int,
finite float, bool, None, up to a size limit; a tuple is stored as a JSON array (reads
back as a list), and a subclass of str / int / float (a StrEnum or IntEnum member) as its
plain value, which compares equal; everything else (NaN, infinities, datetime, UUID, other
Enum members, sets, bytes, dataclasses, lone surrogates, integers outside the signed 64-bit
range) is refused.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from .errors import ValidationError

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

MAX_JSON_BYTES = 1_048_576
"""The largest JSON value (UTF-8 bytes) stored as message content, metadata, an approval
state, a team config or any other JSON column, unless a domain documents its own limit."""

MAX_JSON_DEPTH = 254
"""The deepest nesting of arrays and objects (orjson's own limit)."""

MAX_CHECKPOINT_BYTES = 16 * 1_048_576
"""The largest JSON payload of one generic checkpoint."""

_JSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
"""orjson would write datetimes as text and dataclasses as objects: pass them to
``_refuse`` instead."""

_STRICT = _JSON_OPTIONS | orjson.OPT_STRICT_INTEGER
"""The quick look: integers past 53 bits make orjson raise, and the value then gets the
slow, exact look (``_plain``), which lets through every integer of signed 64 bits."""


def _refuse(value: Any) -> Any:
    raise TypeError(f"type {type(value).__name__} is not a JSON type")


def check_text(value: str, what: str = "text") -> str:
    """``value`` if it is valid Unicode (encodable as UTF-8), else a ValidationError."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError(
                f"{what} holds a lone surrogate ({value[:40]!r}...), which is not valid "
                "Unicode; no backend can store it as text"
            ) from None
    return value


def check_value(value: Any) -> Any:
    """``value`` if a statement may bind it (see the module docstring), else a
    ValidationError. Values are not converted here: each driver binds bool, bytearray and
    memoryview its own way, to the same stored value."""
    kind = type(value)
    if kind is str:
        return check_text(value, "a bound value")
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(f"integer {value} is outside SQLite's signed 64-bit range")
        return value
    if kind is float:
        if not math.isfinite(value):
            raise ValidationError(
                f"the float {value} cannot be stored the same way on every backend; "
                "store None or a string instead"
            )
        return value
    if value is None or kind is bytes or kind is bool:
        return value
    if isinstance(value, bytearray | memoryview):
        return value
    if isinstance(value, int):  # an int subclass (IntEnum): checked as its int value
        return check_value(int(value))
    if isinstance(value, str):
        return check_value(str(value))
    if isinstance(value, float):
        return check_value(float(value))
    raise ValidationError(
        f"cannot bind a value of type {kind.__name__}; "
        "use None, int, float, str or bytes (encode JSON yourself)"
    )


def check_args(values: Iterable[Any]) -> None:
    """Check every value of a statement's arguments (``check_value``); the common types
    take a quick look only."""
    for value in values:
        kind = type(value)
        if kind is str:
            if not value.isascii():
                check_text(value, "a bound value")
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                check_value(value)
        elif value is None or kind is bytes:
            pass
        else:
            check_value(value)


def check_rows(rows: Sequence[Sequence[Any]]) -> None:
    """``check_args`` for many statements' arguments at once (a batch). Rows of one length
    are checked column by column, and a column of text, of numbers or of NULLs takes one
    pass in C (ASCII; range and finiteness; a count); any other column gets
    ``check_args``. (Value by value, the check doubled the time a 10,000-row batch spends
    in ``normalize_batch``.)"""
    try:
        columns = list(zip(*rows, strict=True))
    except ValueError:  # rows of different lengths
        for row in rows:
            check_args(row)
        return
    for column in columns:
        with contextlib.suppress(TypeError):  # not all text
            if all(map(str.isascii, column)):
                continue
        with contextlib.suppress(TypeError):  # not all numbers
            total = sum(column)  # an int unless floats are in it; NaN or inf if one is
            if (
                (type(total) is int or math.isfinite(total))
                and min(column) >= INT64_MIN
                and max(column) <= INT64_MAX
            ):
                continue
        if column.count(None) == len(column):
            continue
        check_args(column)


def to_json(value: Any, what: str = "value", limit: int = MAX_JSON_BYTES) -> str:
    """The JSON text of ``value``, which reads back equal to it, or a ValidationError
    saying what in it cannot be stored (see the module docstring) or that it is larger
    than ``limit`` bytes."""
    if type(value) is str:
        data = _dumps(value, what, _JSON_OPTIONS)
    else:
        try:
            data = orjson.dumps(value, default=_refuse, option=_STRICT)
            exact = orjson.loads(data) == value
        except TypeError:  # orjson.JSONEncodeError: the slow look says what, or passes it
            exact = False
        if not exact:
            plain = _plain(value, what)  # raises for what JSON cannot hold as it is
            data = _dumps(plain, what, _JSON_OPTIONS)
    if len(data) > limit:
        raise ValidationError(f"{what} is {len(data)} bytes of JSON; the limit is {limit} bytes")
    return data.decode("utf-8")


def _dumps(value: Any, what: str, option: int) -> bytes:
    try:
        return orjson.dumps(value, default=_refuse, option=option)
    except TypeError as exc:  # orjson.JSONEncodeError
        cause = exc.__cause__ or exc
        raise ValidationError(f"{what} cannot be stored as JSON: {cause}") from None


def _plain(value: Any, what: str, depth: int = 0) -> Any:
    """``value`` with tuples made lists, or a ValidationError naming the first part of it
    that JSON cannot hold as it is (the slow path of ``to_json``, taken only when the quick
    look found something)."""
    if depth > MAX_JSON_DEPTH:
        raise ValidationError(f"{what[:80]}... is nested deeper than {MAX_JSON_DEPTH} levels")
    kind = type(value)
    if isinstance(value, dict):
        return {k: _plain(v, f"{what}[{k!r}]", depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{what}[{i}]", depth + 1) for i, v in enumerate(value)]
    if kind is float:
        if not math.isfinite(value):
            raise ValidationError(f"{what} is {value}, which JSON cannot hold")
        return value
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValidationError(f"{what} is {value}, outside the signed 64-bit range")
        return value
    if value is None or kind is str or kind is bool:
        return value
    for base in (str, int, float):  # a subclass (StrEnum, IntEnum): its plain value
        if isinstance(value, base):
            return _plain(base(value), what, depth)
    raise ValidationError(f"{what} is a {kind.__name__}, which is not a JSON type")
