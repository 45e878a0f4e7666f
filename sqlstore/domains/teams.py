"""Team persistence (AutoGen Studio's DatabaseManager job): teams, sessions, runs and
messages with upsert, filtered keyset reads, cascading deletes, import and export.

Conventions of every method:

- Bad input raises ValidationError before any I/O; a database failure raises the
  SqlStoreError the driver gave. Nothing else is swallowed.
- Everything else returns a :class:`Response`. Its ``status`` is honest: True when the
  call did what it was asked (a read or delete that matched nothing is True with empty
  data), False only when the target did not exist (an upsert with nothing to update, an
  export of a missing team, a message for a missing session), and nothing was written.
- Every write is one atomic batch: one transaction locally, one request remotely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..drivers import Statement
from ..errors import ConflictError, QueryError, ValidationError
from .common import (
    dumps,
    loads,
    new_id,
    now_ms,
    optional_id,
    require_dict,
    require_id,
    require_limit,
)
from .common import require_time as _require_time
from .messages import ROLES as MESSAGE_ROLES
from .messages import NewMessage, encode_messages, insert_messages, update_thread_counters
from .team_files import FORMATS, config_source, dump_config, load_config_file, team_files
from .team_models import (
    RUN_STATUSES,
    Entity,
    Message,
    Response,
    Run,
    Session,
    Team,
    config_dict,
    config_hash,
)
from .team_query import (
    MESSAGE,
    RUN,
    SESSION,
    TEAM,
    Kind,
    decode,
    decode_rows,
    delete_rows,
    in_team_session,
    kind_of,
    select_page,
)

if TYPE_CHECKING:
    from ..drivers import Executor

MAX_NAME_LENGTH = 1000
DEFAULT_LIMIT = 100

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each file of a multi-file import."""


def _time(name: str, value: Any) -> int | None:
    return None if value is None else _require_time(name, value)


def _text(name: str, value: Any, limit: int = MAX_NAME_LENGTH) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise ValidationError(f"{name} must be a string of at most {limit} characters")
    return value


def _json(value: Any, what: str) -> str | None:
    return None if value is None else dumps(value, what)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs a microsecond per upsert
class _Upsert:
    """The statements of one upsert: [exists check?] + writes; the row comes from ``at``."""

    kind: Kind
    id: str
    statements: list[Statement]
    at: int
    check_exists: bool
    config: dict[str, Any] | None = None


# The stored config comes back only when the caller did not give one (it is 2 KB or more
# of JSON to copy and decode; when given, the stored value is exactly the given one).
_TEAM_RETURNING = TEAM.select_list.replace("config, config_hash", "{} AS config, config_hash")
assert TEAM.select_list != _TEAM_RETURNING

# Numbered parameters (a plain tuple binds with no per-key work in the driver):
# ?1 id, ?2 user_id, ?3 name, ?4 the config's label, ?5 config, ?6 config hash, ?7 version,
# ?8 created_at, ?9 updated_at, ?10 now.
_TEAM_UPSERT = f"""INSERT INTO teams
    (id, user_id, name, config, config_hash, version, created_at, updated_at)
SELECT ?1, COALESCE(?2, ''), COALESCE(?3, ?4), COALESCE(?5, '{{}}'),
       COALESCE(?6, ''), COALESCE(?7, 1), COALESCE(?8, ?10), COALESCE(?9, ?10)
WHERE (?2 IS NOT NULL AND ?5 IS NOT NULL)
   OR EXISTS (SELECT 1 FROM teams WHERE id = ?1)
ON CONFLICT (id) DO UPDATE SET
    user_id = COALESCE(?2, teams.user_id),
    name = COALESCE(?3, teams.name),
    config = COALESCE(?5, teams.config),
    config_hash = COALESCE(?6, teams.config_hash),
    version = COALESCE(?7, teams.version),
    updated_at = COALESCE(?9, ?10)
RETURNING {_TEAM_RETURNING.format("CASE WHEN ?5 IS NULL THEN config END")}"""

_SESSION_UPSERT = f"""INSERT INTO threads
    (id, user_id, team_id, title, metadata, root_id, created_at, updated_at)
SELECT :id, COALESCE(:user_id, (SELECT user_id FROM teams WHERE id = :team_id), ''),
       :team_id, :name, COALESCE(:metadata, '{{}}'), :id, COALESCE(:created_at, :now),
       COALESCE(:updated_at, :now)
WHERE EXISTS (SELECT 1 FROM teams WHERE id = :team_id)
   OR EXISTS (SELECT 1 FROM threads WHERE id = :id AND team_id IS NOT NULL)
ON CONFLICT (id) DO UPDATE SET
    user_id = COALESCE(:user_id, threads.user_id),
    team_id = COALESCE(:team_id, threads.team_id),
    title = COALESCE(:name, threads.title),
    metadata = COALESCE(:metadata, threads.metadata),
    updated_at = COALESCE(:updated_at, :now)
WHERE threads.team_id IS NOT NULL
RETURNING {SESSION.select_list}"""

_RUN_UPSERT = f"""INSERT INTO runs
    (id, thread_id, user_id, status, task, result, error, created_at, updated_at)
SELECT :id, COALESCE(:session_id, ''),
       COALESCE(:user_id, (SELECT user_id FROM threads WHERE id = :session_id)),
       COALESCE(:status, 'created'), :task, :result, :error, COALESCE(:created_at, :now),
       COALESCE(:updated_at, :now)
WHERE (EXISTS (SELECT 1 FROM threads WHERE id = :session_id AND team_id IS NOT NULL)
       OR EXISTS (SELECT 1 FROM runs WHERE id = :id))
  AND NOT EXISTS (SELECT 1 FROM runs WHERE id = :id AND NOT {in_team_session("runs")})
ON CONFLICT (id) DO UPDATE SET
    user_id = COALESCE(:user_id, runs.user_id),
    status = COALESCE(:status, runs.status),
    task = COALESCE(:task, runs.task),
    result = COALESCE(:result, runs.result),
    error = COALESCE(:error, runs.error),
    updated_at = COALESCE(:updated_at, :now)
RETURNING {RUN.select_list}"""

_MESSAGE_UPDATE = f"""UPDATE messages SET
    role = COALESCE(:role, role),
    content = COALESCE(:content, content),
    metadata = COALESCE(:metadata, metadata),
    run_id = COALESCE(:run_id, run_id)
WHERE id = :id AND {in_team_session("messages")}
RETURNING {MESSAGE.select_list}"""

# A message id names one message in the whole database: a given id held by a thread that
# is not a team session, or by another session than the one given, fails the batch
# (malformed JSON, portable) before anything is written; ``upsert`` names it.
_MESSAGE_ID_GUARD = f"""SELECT CASE WHEN EXISTS (
    SELECT 1 FROM messages WHERE id = ?1
    AND (thread_id IS NOT COALESCE(?2, thread_id) OR NOT {in_team_session("messages")}))
    THEN json('message id taken') ELSE 1 END"""

_TEAM_COLUMNS = "id, user_id, name, config, config_hash, version, created_at, updated_at"

_IMPORT_DEDUP = f"""INSERT INTO teams ({_TEAM_COLUMNS})
SELECT ?1, ?2, ?3, ?4, ?5, 1, ?6, ?6
WHERE NOT EXISTS (SELECT 1 FROM teams WHERE user_id = ?2 AND config_hash = ?5)"""

_IMPORT_SURVIVOR = f"""SELECT {TEAM.select_list} FROM teams
WHERE user_id = ?1 AND config_hash = ?2 ORDER BY created_at, id LIMIT 1"""

_EXPORT = "SELECT config FROM teams WHERE id = ?"

_IMPORT_PLAIN = f"""INSERT INTO teams ({_TEAM_COLUMNS})
VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6) ON CONFLICT (id) DO NOTHING
RETURNING {_TEAM_RETURNING.format("NULL")}"""

# The team a plain import made, when its insert finds its own fresh id taken: the same
# import sent again after its answer was lost (same id, user, config hash and time).
_IMPORT_OWN = f"""SELECT {_TEAM_RETURNING.format("NULL")} FROM teams
WHERE id = ?1 AND user_id = ?2 AND config_hash = ?5 AND created_at = ?6"""


def _label(config: dict[str, Any]) -> str | None:
    label = config.get("label")
    return label if isinstance(label, str) and len(label) <= MAX_NAME_LENGTH else None


class TeamStore:
    """Teams, sessions, runs and messages of multi-agent teams: ``store.teams``."""

    def __init__(self, store: Executor) -> None:
        self._store = store

    # -- upsert -------------------------------------------------------------------------

    async def upsert(self, entity: Entity) -> Response:
        """Create or update one Team, Session, Run or Message in one atomic batch.

        Fields left None keep their stored value; ``created_at`` is never changed by an
        update. Without an id a new one is made (a create). ``Response.created`` tells
        which happened; ``data`` is the stored entity. A Team's ``config_hash`` is always
        computed from its ``config``. A Message gets its ``seq`` in SQL on insert.
        """
        plan = self._plan(entity)
        try:
            first = plan.statements[0]
            if len(plan.statements) == 1 and isinstance(first, tuple):
                results = [await self._store.execute(*first)]  # its own transaction already
            else:
                results = await self._store.batch(plan.statements)
        except QueryError as exc:
            if plan.kind is MESSAGE and plan.check_exists:
                found = await self._store.execute(
                    "SELECT m.thread_id, t.team_id FROM messages AS m"
                    " JOIN threads AS t ON t.id = m.thread_id WHERE m.id = ?",
                    (plan.id,),
                )
                holder, team = found.first() or (None, None)
                session = getattr(entity, "session_id", None)
                if holder is not None and (team is None or session not in (None, holder)):
                    raise ConflictError(
                        f"message id {plan.id!r} is already stored in thread {holder!r}"
                        + ("" if session is None else f", not in session {session!r}")
                        + "; nothing was written"
                    ) from exc
            if plan.kind is MESSAGE and "FOREIGN KEY" in str(exc).upper():
                return Response(False, "Message not stored: its session or run does not exist")
            raise
        existed = bool(results[0].scalar()) if plan.check_exists else False
        rows = results[plan.at].values
        name = plan.kind.model.__name__
        if not rows:
            return Response(
                False,
                f"{name} {plan.id!r} not found, and the fields needed to create it are "
                "missing or point at nothing; nothing was written",
            )
        created = not existed
        verb = "created" if created else "updated"
        entity = decode(plan.kind, rows[0])
        if plan.config is not None and isinstance(entity, Team):
            entity.config = plan.config  # given, so not sent back (see _TEAM_RETURNING)
        return Response(True, f"{name} {verb}", entity, created=created)

    def _plan(self, entity: Entity) -> _Upsert:
        if isinstance(entity, Team):
            return self._plan_team(entity)
        if isinstance(entity, Session):
            return self._plan_session(entity)
        if isinstance(entity, Run):
            return self._plan_run(entity)
        if isinstance(entity, Message):
            return self._plan_message(entity)
        raise ValidationError(
            f"upsert takes a Team, Session, Run or Message, not {type(entity).__name__}"
        )

    @staticmethod
    def _with_exists(
        kind: Kind, given_id: str | None, stmts: list[Statement]
    ) -> tuple[str, list[Statement], bool]:
        """The id to write and the statements, led by an in-transaction existence check
        when the caller named an id (a new id is a create by construction)."""
        if given_id is None:
            return new_id(), stmts, False
        check = (f"SELECT EXISTS (SELECT 1 FROM {kind.table} WHERE id = ?)", (given_id,))
        return given_id, [check, *stmts], True

    def _plan_team(self, team: Team) -> _Upsert:
        given = optional_id("id", team.id)
        config = None if team.config is None else config_dict(team.config)
        version = team.version
        if version is not None and (
            isinstance(version, bool) or not isinstance(version, int) or version < 0
        ):
            raise ValidationError(f"version must be a non-negative integer, not {version!r}")
        user_id = optional_id("user_id", team.user_id)
        name = _text("name", team.name)
        created_at = _time("created_at", team.created_at)
        updated_at = _time("updated_at", team.updated_at)
        if config is None:
            label = text = digest = None
        else:
            label, text, digest = _label(config), dumps(config, "config"), config_hash(config)
        tid, stmts, check = self._with_exists(TEAM, given, [])
        args = (tid, user_id, name, label, text, digest, version, created_at, updated_at, now_ms())
        stmts.append((_TEAM_UPSERT, args))
        return _Upsert(TEAM, tid, stmts, len(stmts) - 1, check, config)

    def _plan_session(self, session: Session) -> _Upsert:
        given = optional_id("id", session.id)
        args: dict[str, Any] = {
            "user_id": optional_id("user_id", session.user_id),
            "team_id": optional_id("team_id", session.team_id),
            "name": _text("name", session.name),
            "metadata": None
            if session.metadata is None
            else dumps(require_dict("metadata", session.metadata), "metadata"),
            "created_at": _time("created_at", session.created_at),
            "updated_at": _time("updated_at", session.updated_at),
            "now": now_ms(),
        }
        sid, stmts, check = self._with_exists(SESSION, given, [])
        args["id"] = sid
        stmts.append((_SESSION_UPSERT, args))
        return _Upsert(SESSION, sid, stmts, len(stmts) - 1, check)

    def _plan_run(self, run: Run) -> _Upsert:
        given = optional_id("id", run.id)
        if run.status is not None and run.status not in RUN_STATUSES:
            raise ValidationError(
                f"unknown run status {run.status!r}; allowed: {sorted(RUN_STATUSES)}"
            )
        args: dict[str, Any] = {
            "session_id": optional_id("session_id", run.session_id),
            "user_id": optional_id("user_id", run.user_id),
            "status": run.status,
            "task": _json(run.task, "task"),
            "result": _json(run.result, "result"),
            "error": _text("error", run.error, 1_000_000),
            "created_at": _time("created_at", run.created_at),
            "updated_at": _time("updated_at", run.updated_at),
            "now": now_ms(),
        }
        rid, stmts, check = self._with_exists(RUN, given, [])
        args["id"] = rid
        stmts.append((_RUN_UPSERT, args))
        return _Upsert(RUN, rid, stmts, len(stmts) - 1, check)

    def _plan_message(self, message: Message) -> _Upsert:
        given = optional_id("id", message.id)
        session_id = optional_id("session_id", message.session_id)
        run_id = optional_id("run_id", message.run_id)
        if message.role is not None and message.role not in MESSAGE_ROLES:
            raise ValidationError(
                f"unknown role {message.role!r}; allowed: {sorted(MESSAGE_ROLES)} "
                "(keep an agent's name in metadata, e.g. metadata['source'])"
            )
        metadata = None if message.metadata is None else require_dict("metadata", message.metadata)
        created_at = _time("created_at", message.created_at)
        mid = given or new_id()
        now = now_ms()
        stmts: list[Statement] = []
        if session_id is not None and message.role is not None and message.content is not None:
            # Insert if new: the shared message SQL numbers it (MAX(seq)+1) in this batch.
            new = NewMessage(
                role=message.role,
                content=message.content,
                metadata=metadata or {},
                created_at=created_at,
                id=mid,
                run_id=run_id,
            )
            stmts += [
                *insert_messages(session_id, encode_messages([new], now)),
                update_thread_counters(session_id, now),
            ]
        update = {
            "id": mid,
            "role": message.role,
            "content": _json(message.content, "content"),
            "metadata": None if metadata is None else dumps(metadata, "metadata"),
            "run_id": run_id,
        }
        stmts.append((_MESSAGE_UPDATE, update))
        if given is None:
            return _Upsert(MESSAGE, mid, stmts, len(stmts) - 1, False)
        check = ("SELECT EXISTS (SELECT 1 FROM messages WHERE id = ?)", (mid,))
        guard = (_MESSAGE_ID_GUARD, (mid, session_id))
        return _Upsert(MESSAGE, mid, [check, guard, *stmts], len(stmts) + 1, True)

    # -- reads and deletes --------------------------------------------------------------

    async def get(
        self,
        kind: Any,
        filters: Mapping[str, Any] | None = None,
        order_by: str | None = None,
        limit: int = DEFAULT_LIMIT,
        after: Any = None,
    ) -> Response:
        """One page of teams, sessions, runs or messages.

        ``kind`` is "team" / "session" / "run" / "message" (or the class). ``filters``
        maps allowed fields to a value (equality, None for IS NULL) or a list (IN).
        ``order_by`` is an allowed field, with a leading "-" for descending (default:
        newest first; messages by ``seq``); ties break on id. ``after`` is the last item
        of the previous page or ``Response.cursor``. An unknown field or sort key is a
        ValidationError naming the allowed ones.
        """
        k = kind_of(kind)
        n = require_limit(limit)
        sql, args, field = select_page(k, filters, order_by, n, after)
        result = await self._store.execute(sql, args)
        items = decode_rows(k, result.values)  # a team's config is decoded when first read
        cursor = None
        if len(items) == n:
            last = items[-1]
            cursor = (getattr(last, field), str(last.id))
        return Response(True, f"{len(items)} {k.name}(s) found", items, cursor=cursor)

    async def delete(
        self, kind: Any, filters: Mapping[str, Any] | None = None, *, all: bool = False
    ) -> Response:
        """Delete the matching rows; a team takes its sessions, runs and messages with it.

        ``data`` is ``{"deleted": n}`` (rows of ``kind``, counted with RETURNING). An
        empty filter is a ValidationError unless ``all=True``.
        """
        k = kind_of(kind)
        result = (await self._store.batch(delete_rows(k, filters, all)))[-1]
        n = len(result.rows)
        return Response(True, f"{n} {k.name}(s) deleted", {"deleted": n})

    # -- import and export --------------------------------------------------------------

    async def import_team(self, source: Any, user_id: str, check_exists: bool = False) -> Response:
        """Store a team config from a dict, a .json/.yaml/.yml path or JSON text.

        With ``check_exists`` an identical config of the same user (same sha256 of the
        canonical JSON) is found inside the same transaction as the insert, so concurrent
        imports of one config leave exactly one team; ``data`` is that team either way and
        ``created`` says whether this call made it.
        """
        if isinstance(source, str | Path):
            config = await asyncio.to_thread(config_source, source)  # may read a file
        else:
            config = config_source(source)
        user = require_id("user_id", user_id)
        text = dumps(config, "config")
        digest = config_hash(config)
        tid, now = new_id(), now_ms()
        args = (tid, user, _label(config), text, digest, now)
        if not check_exists:
            rows = (await self._store.execute(_IMPORT_PLAIN, args)).values
            if not rows:
                rows = (await self._store.execute(_IMPORT_OWN, args)).values
                if not rows:
                    raise ConflictError(f"team {tid!r} already exists")
            team = decode(TEAM, rows[0])
            assert isinstance(team, Team)
            team.config = config  # stored exactly as given, so not sent back
            return Response(True, "Team created", team, created=True)
        results = await self._store.batch(
            [(_IMPORT_DEDUP, args), (_IMPORT_SURVIVOR, (user, digest))]
        )
        rows = results[1].values  # the insert or an existing twin, in the same transaction
        team = decode(TEAM, rows[0])
        assert isinstance(team, Team)
        if team.id == tid:
            team.config = config  # this call stored it exactly as given: no need to decode
            return Response(True, "Team created", team, created=True)
        return Response(True, "Identical team configuration already exists", team, created=False)

    async def import_team_files(
        self,
        paths: Iterable[str | Path],
        user_id: str,
        check_exists: bool = False,
        progress: Progress | None = None,
    ) -> Response:
        """Import each file in order; ``data`` has one result per file (its name, status,
        message, id, created). A file that cannot be read or parsed is reported, not
        skipped, and makes the overall status False."""
        require_id("user_id", user_id)
        files = [Path(p) for p in paths]
        results: list[dict[str, Any]] = []
        for i, path in enumerate(files, 1):
            try:
                config = await asyncio.to_thread(load_config_file, path)
            except ValidationError as exc:
                results.append(
                    {
                        "file": str(path),
                        "status": False,
                        "message": str(exc),
                        "id": None,
                        "created": None,
                    }
                )
            else:
                r = await self.import_team(config, user_id, check_exists)
                team = r.data
                results.append(
                    {
                        "file": str(path),
                        "status": r.status,
                        "message": r.message,
                        "id": team.id,
                        "created": r.created,
                    }
                )
            if progress is not None:
                progress(i, len(files))
        failed = sum(1 for r in results if not r["status"])
        created = sum(1 for r in results if r["created"])
        message = (
            f"{len(results)} file(s): {created} team(s) created, "
            f"{len(results) - failed - created} already existed, {failed} failed"
        )
        return Response(failed == 0, message, results)

    async def import_teams_from_directory(
        self,
        directory: str | Path,
        user_id: str,
        check_exists: bool = False,
        progress: Progress | None = None,
    ) -> Response:
        """Import every .json/.yaml/.yml file directly in ``directory``, in sorted order."""
        return await self.import_team_files(team_files(directory), user_id, check_exists, progress)

    async def export_team(
        self, team_id: str, format: str = "json", path: str | Path | None = None
    ) -> Response:
        """A team's config as JSON or YAML text (``data``), written to ``path`` if given.

        Importing the export gives the same config and the same hash.
        """
        tid = require_id("team_id", team_id)
        if format not in FORMATS:
            raise ValidationError(f"unknown format {format!r}; allowed: {list(FORMATS)}")
        stored = (await self._store.execute(_EXPORT, (tid,))).scalar()
        if not isinstance(stored, str):  # None: no such team
            return Response(False, f"Team {tid!r} not found")
        text = dump_config(config_dict(loads(stored)), format)
        if path is None:
            return Response(True, f"Team {tid!r} exported as {format}", text)
        await asyncio.to_thread(Path(path).write_text, text, encoding="utf-8")
        return Response(True, f"Team {tid!r} exported as {format} to {path}", text)
