"""Reads and deletes of the teams domain: allow-listed filters, sort keys and keyset pages.

Column names and sort keys only ever come from the fixed tables below; caller values are
always bound as parameters. Every check here runs before any I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..errors import ValidationError
from .common import loads
from .team_models import Entity, Message, Run, Session, Team, stored_teams

MAX_IN_VALUES = 500
"""The most values one IN filter may list."""


def in_team_session(table: str) -> str:
    """The condition that a row of ``table`` (runs or messages) belongs to a team session:
    the teams API reads, updates and deletes only team sessions (threads with a team) and
    their runs and messages; a conversation's or a thread's rows are never in its scope.
    One primary-key lookup per row (an ``IN`` list would collect every team session; tursodb
    takes no ``EXISTS`` in an upsert's ``WHERE``)."""
    return (
        "(SELECT team_session.team_id FROM threads AS team_session "
        f"WHERE team_session.id = {table}.thread_id) IS NOT NULL"
    )


@dataclass(frozen=True, slots=True)
class Kind:
    """How one entity maps onto its table: field → column, and what may filter or sort."""

    name: str
    model: type[Entity]
    table: str
    columns: Mapping[str, str]
    """Every field of the model → its SQL expression (a column of ``table``)."""
    json_fields: frozenset[str]
    filterable: frozenset[str]
    sortable: frozenset[str]
    default_order: str
    scope: str
    """A fixed condition every read and delete of this kind adds (or "1")."""

    @property
    def select_list(self) -> str:
        """``col AS field, ...`` for every field, in the model's order."""
        return ", ".join(
            col if col == field else f"{col} AS {field}" for field, col in self.columns.items()
        )


TEAM = Kind(
    name="team",
    model=Team,
    table="teams",
    columns={
        "id": "id",
        "user_id": "user_id",
        "name": "name",
        "config": "config",
        "config_hash": "config_hash",
        "version": "version",
        "created_at": "created_at",
        "updated_at": "updated_at",
    },
    json_fields=frozenset({"config"}),
    filterable=frozenset({"id", "user_id", "name", "config_hash", "version"}),
    sortable=frozenset({"created_at", "updated_at", "id"}),
    default_order="-created_at",
    scope="1",
)

SESSION = Kind(
    name="session",
    model=Session,
    table="threads",
    columns={
        "id": "id",
        "user_id": "user_id",
        "team_id": "team_id",
        "name": "title",
        "metadata": "metadata",
        "created_at": "created_at",
        "updated_at": "updated_at",
    },
    json_fields=frozenset({"metadata"}),
    filterable=frozenset({"id", "user_id", "team_id", "name"}),
    sortable=frozenset({"created_at", "updated_at", "id"}),
    default_order="-created_at",
    scope="team_id IS NOT NULL",  # a session is a thread of a team; other threads stay out
)

RUN = Kind(
    name="run",
    model=Run,
    table="runs",
    columns={
        "id": "id",
        "session_id": "thread_id",
        "user_id": "user_id",
        "status": "status",
        "task": "task",
        "result": "result",
        "error": "error",
        "created_at": "created_at",
        "updated_at": "updated_at",
    },
    json_fields=frozenset({"task", "result"}),
    filterable=frozenset({"id", "session_id", "user_id", "status"}),
    sortable=frozenset({"created_at", "updated_at", "id"}),
    default_order="-created_at",
    scope=in_team_session("runs"),
)

MESSAGE = Kind(
    name="message",
    model=Message,
    table="messages",
    columns={
        "id": "id",
        "session_id": "thread_id",
        "run_id": "run_id",
        "role": "role",
        "content": "content",
        "metadata": "metadata",
        "seq": "seq",
        "created_at": "created_at",
    },
    json_fields=frozenset({"content", "metadata"}),
    filterable=frozenset({"id", "session_id", "run_id", "role"}),
    sortable=frozenset({"seq", "created_at", "id"}),
    default_order="seq",
    scope=in_team_session("messages"),
)

KINDS: dict[str, Kind] = {k.name: k for k in (TEAM, SESSION, RUN, MESSAGE)}
_BY_MODEL: dict[type, Kind] = {k.model: k for k in KINDS.values()}
_JSON_POSITIONS: dict[str, tuple[int, ...]] = {
    k.name: tuple(i for i, f in enumerate(k.columns) if f in k.json_fields) for k in KINDS.values()
}
for _kind in KINDS.values():  # decode_rows() builds models positionally: keep orders equal
    assert tuple(_kind.columns) == tuple(f.name for f in fields(_kind.model)), _kind.name


def kind_of(kind: Any) -> Kind:
    """The Kind named by a string ("team", "teams", ...), a model class or an instance."""
    if isinstance(kind, str):
        found = KINDS.get(kind.lower().rstrip("s"))
        if found is not None:
            return found
    elif isinstance(kind, type) and kind in _BY_MODEL:
        return _BY_MODEL[kind]
    elif type(kind) in _BY_MODEL:
        return _BY_MODEL[type(kind)]
    raise ValidationError(f"unknown kind {kind!r}; allowed: {sorted(KINDS)} or their classes")


def decode_rows(kind: Kind, rows: Sequence[Sequence[Any]]) -> Sequence[Entity]:
    """The models of rows selected with ``kind.select_list`` (columns in field order).

    Teams keep their config as JSON text until ``.config`` is read (see ``Team``); the
    JSON columns of the other kinds are small and decoded here.
    """
    if kind is TEAM:
        return stored_teams(rows)
    positions = _JSON_POSITIONS[kind.name]
    model = kind.model
    items: list[Entity] = []
    for row in rows:
        values = list(row)
        for i in positions:
            values[i] = loads(values[i])
        items.append(model(*values))
    return items


def decode(kind: Kind, row: Sequence[Any]) -> Entity:
    """The model of one row selected with ``kind.select_list``."""
    return decode_rows(kind, (row,))[0]


def _check_value(kind: Kind, field: str, value: Any) -> Any:
    if value is None or (isinstance(value, str | int | float) and not isinstance(value, bool)):
        return value
    raise ValidationError(
        f"filter {kind.name}.{field} takes a string or number (or a list of them), "
        f"not {type(value).__name__}"
    )


def where_clause(kind: Kind, filters: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """``cond AND cond ...`` and its arguments for equality / IN filters on allowed fields."""
    if filters is None:
        filters = {}
    if not isinstance(filters, Mapping):
        raise ValidationError(f"filters must be a dict, not {type(filters).__name__}")
    parts = [kind.scope]
    args: list[Any] = []
    for field, value in filters.items():
        if field not in kind.filterable:
            raise ValidationError(
                f"cannot filter {kind.name} by {field!r}; allowed: {sorted(kind.filterable)}"
            )
        col = kind.columns[field]
        if isinstance(value, list | tuple | set | frozenset):
            values = [_check_value(kind, field, v) for v in value]
            if len(values) > MAX_IN_VALUES:
                raise ValidationError(f"an IN filter takes at most {MAX_IN_VALUES} values")
            if not values:
                parts.append("0")  # IN () matches nothing
            else:
                parts.append(f"{col} IN ({', '.join('?' * len(values))})")
                args.extend(values)
        elif value is None:
            parts.append(f"{col} IS NULL")
        else:
            parts.append(f"{col} = ?")
            args.append(_check_value(kind, field, value))
    return " AND ".join(parts), args


def order_key(kind: Kind, order_by: str | None) -> tuple[str, bool]:
    """(field, descending) of a sort key such as ``"created_at"`` or ``"-updated_at"``."""
    key = kind.default_order if order_by is None else order_by
    if not isinstance(key, str):
        raise ValidationError(f"order_by must be a string, not {type(key).__name__}")
    descending = key.startswith("-")
    field = key[1:] if descending else key
    if field not in kind.sortable:
        raise ValidationError(
            f"cannot order {kind.name} by {order_by!r}; allowed: {sorted(kind.sortable)}, "
            "with a leading '-' for descending"
        )
    return field, descending


def cursor_of(kind: Kind, field: str, after: Any) -> tuple[Any, str]:
    """(sort value, id) from the last item of the previous page or its cursor."""
    if isinstance(after, kind.model):
        value, last_id = getattr(after, field), after.id
    elif isinstance(after, tuple | list) and len(after) == 2:
        value, last_id = after
    else:
        raise ValidationError(
            f"after must be a {kind.model.__name__} of the previous page or its cursor "
            "(sort value, id)"
        )
    if not isinstance(last_id, str) or not isinstance(value, str | int | float):
        raise ValidationError(f"after does not carry a {field} and an id: {after!r}")
    return value, last_id


def select_page(
    kind: Kind,
    filters: Mapping[str, Any] | None,
    order_by: str | None,
    limit: int,
    after: Any,
) -> tuple[str, list[Any], str]:
    """A bounded, keyset-paged SELECT: (sql, args, sort field)."""
    where, args = where_clause(kind, filters)
    field, descending = order_key(kind, order_by)
    col = kind.columns[field]
    direction, cmp = ("DESC", "<") if descending else ("ASC", ">")
    if after is not None:
        value, last_id = cursor_of(kind, field, after)
        if field == "id":
            where += f" AND id {cmp} ?"
            args.append(last_id)
        else:
            where += f" AND ({col} {cmp} ? OR ({col} = ? AND id {cmp} ?))"
            args.extend([value, value, last_id])
    order = f"{col} {direction}" + ("" if field == "id" else f", id {direction}")
    sql = f"SELECT {kind.select_list} FROM {kind.table} WHERE {where} ORDER BY {order} LIMIT ?"
    args.append(limit)
    return sql, args, field


def delete_rows(
    kind: Kind, filters: Mapping[str, Any] | None, everything: bool
) -> list[tuple[str, list[Any]]]:
    """The statements of a delete, for one batch: ``DELETE ... RETURNING id`` of the
    matching rows, last; an empty filter needs ``everything``.

    Deleting messages, or runs (whose messages go with them), first brings the
    ``message_count`` of the sessions that lose messages to what will be left. ``last_seq``
    (the high-water mark) stays: the next message gets a higher ``seq`` than any the
    session ever had. That recount reads each such session's messages once; deletes are
    rare, saves are not.
    """
    if not filters and not everything:
        raise ValidationError(
            f"delete of {kind.name} needs filters; pass all=True to delete every {kind.name}"
        )
    where, args = where_clause(kind, filters)
    delete = (f"DELETE FROM {kind.table} WHERE {where} RETURNING id", args)
    if kind.table == "messages":
        going, kept = f"({where})", f"NOT COALESCE(({where}), 0)"
    elif kind.table == "runs":
        going = f"run_id IN (SELECT id FROM runs WHERE {where})"
        kept = f"(run_id IS NULL OR NOT COALESCE({going}, 0))"
    else:  # teams and sessions take whole threads with them
        return [delete]
    recount = (
        f"""UPDATE threads SET
            message_count = (SELECT count(*) FROM messages
                             WHERE thread_id = threads.id AND {kept})
        WHERE id IN (SELECT thread_id FROM messages WHERE {going})""",
        [*args, *args],
    )
    return [recount, delete]
