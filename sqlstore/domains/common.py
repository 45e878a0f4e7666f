"""Small helpers every domain shares: JSON and input checks (no I/O). The id and clock
helpers live below the domains (sqlstore.ids, sqlstore.clock) and are re-exported here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ..clock import now_ms as now_ms  # re-exported for the domains and older imports
from ..errors import ValidationError
from ..ids import new_id as new_id
from ..ids import new_ids as new_ids
from ..values import MAX_JSON_BYTES, check_text, to_json

MAX_ID_LENGTH = 256
MAX_LIMIT = 1000


def dumps(value: Any, what: str = "value", limit: int = MAX_JSON_BYTES) -> str:
    """JSON text of ``value`` that reads back equal to it, at most ``limit`` bytes; else a
    ValidationError (the one rule for JSON values: ``sqlstore.values.to_json``)."""
    return to_json(value, what, limit)


def loads(text: str | bytes | None, default: Any = None) -> Any:
    """The value of JSON text (orjson); None gives ``default``; ``{}`` skips the parser."""
    if text is None:
        return default
    if text == "{}":  # the common empty metadata: a new dict, no parse
        return {}
    return orjson.loads(text)


def require_id(name: str, value: Any) -> str:
    """A non-empty id string of bounded length, or a ValidationError."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{name} must be a non-empty string, not {value!r}")
    if len(value) > MAX_ID_LENGTH:
        raise ValidationError(f"{name} is longer than {MAX_ID_LENGTH} characters")
    return check_text(value, name)


def optional_id(name: str, value: Any) -> str | None:
    """None, or a valid id string."""
    return None if value is None else require_id(name, value)


def require_limit(limit: Any, maximum: int = MAX_LIMIT) -> int:
    """A page size between 1 and ``maximum``, or a ValidationError."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise ValidationError(f"limit must be an integer from 1 to {maximum}, not {limit!r}")
    return limit


def require_dict(name: str, value: Any) -> dict[str, Any]:
    """A dict (None gives an empty one), or a ValidationError."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must be a dict, not {type(value).__name__}")
    return value


def require_time(name: str, value: Any) -> int:
    """Integer milliseconds since the epoch (non-negative), or a ValidationError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"{name} must be integer milliseconds since the epoch, not {value!r}")
    return value


def keyset_cursor(before: Any, item_type: type, time_field: str) -> tuple[int, str] | None:
    """A keyset position ``(time, id)``: from an item of ``item_type`` (its ``time_field``
    and ``id``), from a ``(time, id)`` tuple, or None for the first page."""
    if before is None:
        return None
    if isinstance(before, item_type):
        return getattr(before, time_field), before.id  # type: ignore[attr-defined]
    if (
        isinstance(before, tuple)
        and len(before) == 2
        and isinstance(before[0], int)
        and not isinstance(before[0], bool)
        and isinstance(before[1], str)
    ):
        return before[0], before[1]
    raise ValidationError(f"before must be a {item_type.__name__} or a ({time_field}, id) tuple")


def newest_first_page(
    select: str,
    time_column: str,
    filters: Sequence[tuple[str, Any]],
    cursor: tuple[int, str] | None,
    limit: int,
    *,
    where: Sequence[str] = (),
    args: Sequence[Any] = (),
    offset: int = 0,
) -> tuple[str, list[Any]]:
    """A bounded page newest first: ``select`` (a fixed ``SELECT ... FROM table``) with the
    fixed ``where`` conditions, ``column = ?`` for each filter whose value is not None,
    the keyset ``cursor`` on ``(time_column, id)``, ordered by both descending.

    Column names come from the callers' fixed code only, never from their callers.
    """
    conditions = list(where)
    bound = list(args)
    for column, value in filters:
        if value is not None:
            conditions.append(f"{column} = ?")
            bound.append(value)
    if cursor is not None:
        conditions.append(f"({time_column} < ? OR ({time_column} = ? AND id < ?))")
        bound.extend((cursor[0], cursor[0], cursor[1]))
    sql = select
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    sql += f" ORDER BY {time_column} DESC, id DESC LIMIT ?"
    bound.append(limit)
    if offset:
        sql += " OFFSET ?"
        bound.append(offset)
    return sql, bound
