"""Small helpers every domain shares: ids, clock, JSON, and input checks (no I/O)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Sequence
from typing import Any

import orjson

from ..errors import ValidationError
from ..values import MAX_JSON_BYTES, check_text, to_json

MAX_ID_LENGTH = 256
MAX_LIMIT = 1000


def now_ms() -> int:
    """The current time as integer milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000


_last_uuid7 = (0, 0)
_random = random.Random()
"""Ids need uniqueness, not secrecy: a PRNG seeded from os.urandom, reseeded in a forked child."""
os.register_at_fork(after_in_child=_random.seed)


def new_id() -> str:
    """A time-ordered UUIDv7 string, generated client-side so retried writes are idempotent.

    Ids made by one process are strictly increasing, even within one millisecond.
    """
    global _last_uuid7
    ms = now_ms()
    last_ms, last_seq = _last_uuid7
    if ms <= last_ms:
        ms, seq = last_ms, last_seq + 1
        if seq >= 1 << 12:
            ms, seq = last_ms + 1, 0
    else:
        seq = _random.getrandbits(10)  # leave room to count up within the millisecond
    _last_uuid7 = (ms, seq)
    rand = _random.getrandbits(62)
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_ids(count: int) -> list[str]:
    """``count`` ids as ``new_id`` makes them (strictly increasing), made in one go for a
    bulk write: the millisecond's text is formatted once, not once per id."""
    global _last_uuid7
    ms = now_ms()
    last_ms, last_seq = _last_uuid7
    if ms <= last_ms:
        ms, seq = last_ms, last_seq + 1
    else:
        seq = _random.getrandbits(10)
    ids: list[str] = []
    getrandbits = _random.getrandbits
    while len(ids) < count:
        if seq >= 1 << 12:
            ms, seq = ms + 1, 0
        prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7"
        end = min(1 << 12, seq + count - len(ids))
        for s in range(seq, end):
            rand = getrandbits(62)  # after the variant bits "10"
            ids.append(f"{prefix}{s:03x}-{0x8000 | rand >> 48:04x}-{rand & 0xFFFFFFFFFFFF:012x}")
        seq = end
    if ids:
        _last_uuid7 = (ms, seq - 1)
    return ids


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
