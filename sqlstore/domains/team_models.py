"""Typed models of the teams domain (AutoGen Studio's job) and the config hash.

A field left as ``None`` means "not given": an upsert keeps the stored value there.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import orjson

from ..errors import ValidationError

RUN_STATUSES = frozenset({"created", "active", "complete", "error", "stopped"})
"""The states a run may be in (AutoGen Studio's RunStatus)."""


@dataclass(slots=True)
class Response:
    """The outcome of a call, shaped like AutoGen Studio's: ``status``, ``message``, ``data``.

    ``status`` is True only when the call did what it was asked; "nothing matched" is a
    True status with empty data for reads and deletes, and a False status for an upsert
    that found nothing to update. ``cursor`` is the ``after`` of the next page of a ``get``
    (None on the last page). ``created`` tells an upsert's insert from its update.
    """

    status: bool
    message: str
    data: Any = None
    cursor: tuple[Any, str] | None = None
    created: bool | None = None


class _StoredConfig:
    """Where a Team read from the database keeps its config's JSON text until it is used."""

    __slots__ = ("_config_json",)
    _config_json: str | None


@dataclass(slots=True)
class Team(_StoredConfig):
    """A team configuration of one user. ``config`` is the team's JSON (a dict).

    A Team read from the database holds its config as the stored JSON text and decodes
    it on the first read of ``.config`` (then keeps the dict), so listing teams never
    pays for configs nobody reads. Nothing else changes: ``Team(config={...})`` takes a
    dict, ``team.config`` gives one, and equality, ``repr``, ``dataclasses.asdict`` and
    ``replace`` see the decoded config.
    """

    id: str | None = None
    user_id: str | None = None
    name: str | None = None
    config: dict[str, Any] | None = None
    config_hash: str | None = None
    version: int | None = None
    created_at: int | None = None
    updated_at: int | None = None


class _LazyConfig:
    """``Team.config``: the dict in the dataclass's own slot, decoded from ``_config_json``
    on first read when the team came from the database. Setting it drops the JSON text."""

    __slots__ = ("_get", "_set")

    def __init__(self, slot: Any) -> None:
        self._get = slot.__get__
        self._set = slot.__set__

    def __get__(self, team: Any, owner: Any = None) -> Any:
        if team is None:
            return self
        try:
            text = team._config_json
        except AttributeError:  # made without __init__ (e.g. object.__new__): no text
            text = None
        if text is not None:
            self._set(team, orjson.loads(text))
            team._config_json = None
        return self._get(team)

    def __set__(self, team: Any, value: Any) -> None:
        team._config_json = None
        self._set(team, value)


_CONFIG = "config"
setattr(Team, _CONFIG, _LazyConfig(Team.__dict__[_CONFIG]))  # over the slot it wraps
_new_team = Team.__new__


def stored_teams(rows: Iterable[Sequence[Any]]) -> list[Team]:
    """Teams from rows of the eight Team columns in field order, ``config`` as JSON text
    (decoded when first read)."""
    teams: list[Team] = []
    append = teams.append
    for tid, user_id, name, text, digest, version, created_at, updated_at in rows:
        team = _new_team(Team)
        team.id = tid
        team.user_id = user_id
        team.name = name
        team._config_json = text  # type: ignore[misc]  # mypy misses the base's slot
        if text is None:  # not selected (an upsert's RETURNING leaves a given config out)
            team.config = None
        team.config_hash = digest
        team.version = version
        team.created_at = created_at
        team.updated_at = updated_at
        append(team)
    return teams


@dataclass(slots=True)
class Session:
    """A session of a team: a ``threads`` row with a ``team_id`` (``name`` is its title)."""

    id: str | None = None
    user_id: str | None = None
    team_id: str | None = None
    name: str | None = None
    metadata: dict[str, Any] | None = None
    created_at: int | None = None
    updated_at: int | None = None


@dataclass(slots=True)
class Run:
    """A run of a team session: its status, task, result and error."""

    id: str | None = None
    session_id: str | None = None
    user_id: str | None = None
    status: str | None = None
    task: Any = None
    result: Any = None
    error: str | None = None
    created_at: int | None = None
    updated_at: int | None = None


@dataclass(slots=True)
class Message:
    """A message of a run, stored in its session's thread with a per-thread ``seq``."""

    id: str | None = None
    session_id: str | None = None
    run_id: str | None = None
    role: str | None = None
    content: Any = None
    metadata: dict[str, Any] | None = None
    seq: int | None = None
    created_at: int | None = None


Entity: TypeAlias = Team | Session | Run | Message
"""Any stored thing of the teams domain."""


def config_dict(value: Any, what: str = "config") -> dict[str, Any]:
    """A team config as a plain dict: a dict as given, or a pydantic model's JSON dump."""
    if isinstance(value, dict):
        return value
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # e.g. autogen_core's ComponentModel: JSON mode keeps it storable
        dumped = dump(mode="json")
        if isinstance(dumped, dict):
            return dumped
    raise ValidationError(f"{what} must be a JSON object (a dict), not {type(value).__name__}")


def _canonical(value: Any) -> Any:
    """``value`` with integral floats as ints (so 5 and 5.0 hash alike) and tuples as lists."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {k: _canonical(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_canonical(v) for v in value]
    if kind is float:
        return int(value) if value.is_integer() and abs(value) < 2**53 else value
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        return _canonical(float(value))
    return value


_POINT_ZERO = re.compile(rb"\.0(?:[,\]}]|\Z)")
"""".0" ending a number; a pattern with a literal start, which re scans for twice as fast
as ``bytes.find`` scans for the two bytes."""


def _may_hold_integral_float(text: bytes) -> bool:
    """Whether JSON text from orjson may hold an integral float below 2**53.

    orjson writes such a float as digits then ".0" (larger ones use an exponent and are
    left as they are); a match inside a string only sends the config down the slow path.
    """
    for match in _POINT_ZERO.finditer(text):
        at = match.start()
        if at > 0 and text[at - 1 : at].isdigit():
            return True
    return False


def canonical_json(config: dict[str, Any]) -> bytes:
    """The canonical JSON of a config: keys sorted, integral floats written as ints."""
    try:
        text = orjson.dumps(config, option=orjson.OPT_SORT_KEYS)
        if not _may_hold_integral_float(text):
            return text  # fast path: no float to rewrite (a match in a string only costs time)
        return orjson.dumps(_canonical(config), option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:
        raise ValidationError(f"config is not JSON-serializable: {exc}") from None


def config_hash(config: dict[str, Any]) -> str:
    """sha256 (hex) of the config's canonical JSON: equal configs, equal hashes."""
    return hashlib.sha256(canonical_json(config)).hexdigest()
