"""The UI's pages: one endpoint per page or action, each a few bounded, indexed reads
through the domain APIs (or ``queries`` where no domain answers), keyset-paged."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from ..domains.common import now_ms, require_id
from ..domains.team_files import FORMATS
from ..domains.team_models import Run, Session, Team
from ..errors import ValidationError
from . import actions, queries
from . import web as app
from .checkpoint_view import load_checkpoint
from .render import bars, cursor, diff, message_parts, parse_cursor, rating_chart, when

PAGE = 50
"""Rows per page of every list."""

DAY_MS = 86_400_000
CHART_DAYS = 30


def _arg(request: Request, name: str) -> str:
    value = request.query_params.get(name, "").strip()
    if len(value) > 256:
        raise ValidationError(f"{name} is longer than 256 characters")
    return value


def _id(request: Request, name: str = "id") -> str:
    return require_id(name, _arg(request, name) or None)


def _link(path: str, **params: Any) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{path}?{urlencode(kept)}" if kept else path


async def overview(request: Request) -> Response:
    """Backend, schema version, rows per table, recent activity; the size of each table
    too with ``?sizes=1`` (it reads every page of the database, so only when asked)."""
    store = app.store_of(request)
    health = await store.health_check()
    measure = _arg(request, "sizes") == "1"
    return app.render(
        request,
        "overview.html",
        title="Overview",
        health=health,
        counts=await queries.table_counts(store),
        measured=measure,
        sizes=await queries.table_sizes(store) if measure else None,
        threads=await store.threads.list(limit=10),
        feedback=await store.feedback.list(limit=5),
        approvals=await store.approvals.list(limit=5),
        now=now_ms(),
    )


async def threads(request: Request) -> Response:
    """Threads and conversations by user, agent, session or team; search by id or title."""
    filters = {name: _arg(request, name) for name in queries.THREAD_FILTERS}
    search = _arg(request, "q")
    query = queries.ThreadQuery(filters, search or None)
    before = parse_cursor(_arg(request, "before"))
    store = app.store_of(request)
    exact = await store.threads.get(search) if search and before is None else None
    if exact is not None and all(
        getattr(exact, name) == value for name, value in filters.items() if value
    ):
        found = [exact]  # an id names one thread: no title scan
    else:
        found = await queries.find_threads(store, query, PAGE, before)
    forked = await queries.roots_with_forks(store, [t.id for t in found if t.parent_id is None])
    older = None
    if len(found) == PAGE:
        last = found[-1]
        older = _link("/threads", **filters, q=search, before=cursor(last.updated_at, last.id))
    return app.render(
        request,
        "threads.html",
        title="Threads",
        threads=found,
        forked=forked,
        filters=filters,
        q=search,
        older=older,
    )


async def thread(request: Request) -> Response:
    """A thread's messages as a chat, newest first, with a link to older ones."""
    store = app.store_of(request)
    tid = _id(request)
    found = await store.threads.get(tid)
    if found is None:
        raise HTTPException(404, f"no thread {tid!r}")
    raw = _arg(request, "before_seq")
    if raw and not raw.isdigit():
        raise ValidationError("before_seq must be a message number")
    messages = await store.threads.recent_messages(
        tid, limit=PAGE, before_seq=int(raw) if raw else None
    )
    older = None
    if len(messages) == PAGE:
        older = _link("/thread", id=tid, before_seq=messages[0].seq)
    shown = [(m, message_parts(m.content)) for m in reversed(messages)]
    return app.render(
        request, "thread.html", title=found.title or tid, thread=found, messages=shown, older=older
    )


async def forks(request: Request) -> Response:
    """Trees with forks, by root; or one thread's whole tree when ``id`` is given."""
    store = app.store_of(request)
    tid = _arg(request, "id")
    if not tid:
        after = _arg(request, "after")
        trees = await queries.fork_trees(store, after, PAGE)
        more = _link("/forks", after=trees[-1][0]) if len(trees) == PAGE else None
        return app.render(request, "forks.html", title="Forks", trees=trees, more=more)
    found = await store.threads.get(require_id("id", tid))
    if found is None:
        raise HTTPException(404, f"no thread {tid!r}")
    lineage = await store.threads.lineage(found.root_id)
    if lineage is None:
        raise HTTPException(404, f"no thread {found.root_id!r}")
    children: dict[str, list[Any]] = {}
    for t in lineage.descendants:
        children.setdefault(t.parent_id or "", []).append(t)
    return app.render(
        request,
        "fork_tree.html",
        title=f"Fork tree of {lineage.thread.title or lineage.thread.id}",
        root=lineage.thread,
        children=children,
        current=found.id,
    )


async def approvals(request: Request) -> Response:
    """Pending approvals (time left, approve / reject) and expired ones."""
    store = app.store_of(request)
    now = now_ms()
    before = parse_cursor(_arg(request, "before"))
    pending = await store.approvals.list(limit=PAGE, before=before)
    more = None
    if len(pending) == PAGE:
        more = _link("/approvals", before=cursor(pending[-1].created_at, pending[-1].id))
    expired_before = parse_cursor(_arg(request, "expired_before"))
    expired = await queries.expired_approvals(store, now, PAGE, expired_before)
    more_expired = None
    if len(expired) == PAGE:
        more_expired = _link("/approvals", expired_before=cursor(expired[-1][5], expired[-1][0]))
    return app.render(
        request,
        "approvals.html",
        title="Approvals",
        pending=pending,
        expired=expired,
        more=more,
        more_expired=more_expired,
        now=now,
        decided=_arg(request, "decided"),
    )


async def decide(request: Request) -> Response:
    """POST: approve or reject one approval, then back to the list."""
    form = await app.checked_form(request)
    approval_id = require_id("id", app.form_text(form, "id") or None)
    decision = app.form_text(form, "decision")
    done = await actions.decide(app.store_of(request), approval_id, decision)
    if done is None:
        raise HTTPException(404, "that approval is gone: decided, deleted or expired")
    return app.redirect(_link("/approvals", decided=f"{decision} {approval_id}"))


async def feedback(request: Request) -> Response:
    """Feedback with filters, and charts of mean ratings per day and per agent."""
    store = app.store_of(request)
    filters = {name: _arg(request, name) or None for name in ("thread_id", "user_id", "agent_id")}
    before = parse_cursor(_arg(request, "before"))
    items = await store.feedback.list(**filters, limit=PAGE, before=before)
    more = None
    if len(items) == PAGE:
        more = _link("/feedback", **filters, before=cursor(items[-1].created_at, items[-1].id))
    since = (now_ms() // DAY_MS - CHART_DAYS + 1) * DAY_MS
    days = await queries.ratings_by_day(store, since)
    by_day = rating_chart(
        f"Mean rating per day, last {CHART_DAYS} days",
        [(when(day * DAY_MS)[5:10], n, mean) for day, n, mean in days],
    )
    by_agent = rating_chart(
        f"Mean rating per agent, last {CHART_DAYS} days",
        [
            (agent or "(none)", n, mean)
            for agent, n, mean in await queries.ratings_by_agent(store, since)
        ],
    )
    return app.render(
        request,
        "feedback.html",
        title="Feedback",
        items=items,
        filters=filters,
        more=more,
        charts=[(by_day, bars(by_day)), (by_agent, bars(by_agent))],
    )


async def teams(request: Request) -> Response:
    """Team configurations, newest first; the import form."""
    store = app.store_of(request)
    after = parse_cursor(_arg(request, "after"))
    user = _arg(request, "user_id")
    r = await store.teams.get("team", {"user_id": user} if user else None, limit=PAGE, after=after)
    found = [t for t in r.data if isinstance(t, Team)]
    more = None
    if r.cursor is not None:
        more = _link("/teams", user_id=user, after=cursor(int(r.cursor[0]), r.cursor[1]))
    return app.render(
        request,
        "teams.html",
        title="Teams",
        teams=found,
        user_id=user,
        more=more,
        imported=_arg(request, "imported"),
    )


async def _exported(request: Request) -> tuple[str, str, str]:
    """(team id, format, config text) for the request's ``id`` and ``format`` (json)."""
    tid = _id(request)
    fmt = _arg(request, "format") or "json"
    if fmt not in FORMATS:
        raise ValidationError(f"format must be one of {list(FORMATS)}")
    r = await app.store_of(request).teams.export_team(tid, fmt)
    if not r.status:
        raise HTTPException(404, r.message)
    return tid, fmt, str(r.data)


async def team(request: Request) -> Response:
    """One team: its config as JSON or YAML, its sessions."""
    store = app.store_of(request)
    tid, fmt, config = await _exported(request)
    r = await store.teams.get("team", {"id": tid}, limit=1)
    after = parse_cursor(_arg(request, "after"))
    sessions = await store.teams.get("session", {"team_id": tid}, limit=PAGE, after=after)
    more = None
    if sessions.cursor is not None:
        c = sessions.cursor
        more = _link("/team", id=tid, format=fmt, after=cursor(int(c[0]), c[1]))
    return app.render(
        request,
        "team.html",
        title=f"Team {tid}",
        team=r.data[0] if r.data else None,
        config=config,
        format=fmt,
        formats=FORMATS,
        sessions=[s for s in sessions.data if isinstance(s, Session)],
        more=more,
    )


async def team_export(request: Request) -> Response:
    """A team's config as a file download (JSON or YAML)."""
    tid, fmt, config = await _exported(request)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in tid)[:80]
    media = "application/json" if fmt == "json" else "application/yaml"
    headers = {"content-disposition": f'attachment; filename="team-{safe}.{fmt}"'}
    return Response(config, media_type=media, headers=headers)


async def team_import(request: Request) -> Response:
    """POST: import an uploaded team file, deduplicated by content hash when asked."""
    form = await app.checked_form(request)
    upload = app.form_file(form, "file")
    user = require_id("user_id", app.form_text(form, "user_id") or "default")
    data = await upload.read(actions.MAX_UPLOAD_BYTES + 1)
    r = await actions.import_upload(
        app.store_of(request), upload.filename or "", data, user, bool(form.get("dedupe"))
    )
    verb = "created" if r.created else "already there"
    return app.redirect(_link("/teams", imported=f"{verb}: {r.data.id}"))


async def session(request: Request) -> Response:
    """A team session: its runs, each with its messages."""
    store = app.store_of(request)
    sid = _id(request)
    found = await store.teams.get("session", {"id": sid}, limit=1)
    if not found.data:
        raise HTTPException(404, f"no team session {sid!r}")
    runs = await store.teams.get("run", {"session_id": sid}, order_by="created_at", limit=PAGE)
    shown = []
    for run in runs.data:
        assert isinstance(run, Run)
        messages = await store.teams.get("message", {"run_id": run.id}, limit=PAGE)
        shown.append((run, [(m, message_parts(m.content)) for m in messages.data]))
    return app.render(
        request,
        "session.html",
        title=f"Session {sid}",
        session=found.data[0],
        runs=shown,
        more_runs=runs.cursor is not None,
    )


async def checkpoints(request: Request) -> Response:
    """Threads with checkpoints; or one thread's checkpoints, newest first."""
    store = app.store_of(request)
    tid = _arg(request, "thread_id")
    if not tid:
        after = _arg(request, "after")
        found = await queries.checkpoint_threads(store, after, PAGE)
        more = _link("/checkpoints", after=found[-1][0]) if len(found) == PAGE else None
        return app.render(
            request, "checkpoint_threads.html", title="Checkpoints", threads=found, more=more
        )
    before = _arg(request, "before") or None
    rows = await store.checkpoints.list(require_id("thread_id", tid), before=before, limit=PAGE)
    more = None
    if len(rows) == PAGE:
        more = _link("/checkpoints", thread_id=tid, before=rows[-1]["checkpoint_id"])
    return app.render(
        request,
        "checkpoints.html",
        title=f"Checkpoints of {tid}",
        thread_id=tid,
        rows=rows,
        more=more,
    )


async def checkpoint(request: Request) -> Response:
    """One checkpoint: metadata, state, the change from its parent, writes, interrupts."""
    store = app.store_of(request)
    tid = _id(request, "thread_id")
    cid = _id(request)
    ns = _arg(request, "ns")
    view = await load_checkpoint(store, tid, cid, ns)
    if view is None:
        raise HTTPException(404, f"no checkpoint {cid!r} of thread {tid!r}")
    parent = None
    if view.parent_id:
        parent = await load_checkpoint(store, tid, view.parent_id, ns)
    changes = diff(parent.state if parent else {}, view.state) if not view.note else []
    return app.render(
        request,
        "checkpoint.html",
        title=f"Checkpoint {cid}",
        view=view,
        parent=parent,
        changes=changes,
    )


ROUTES: list[tuple[str, Any, list[str]]] = [
    ("/", overview, ["GET"]),
    ("/threads", threads, ["GET"]),
    ("/thread", thread, ["GET"]),
    ("/forks", forks, ["GET"]),
    ("/approvals", approvals, ["GET"]),
    ("/approvals/decide", decide, ["POST"]),
    ("/feedback", feedback, ["GET"]),
    ("/teams", teams, ["GET"]),
    ("/team", team, ["GET"]),
    ("/team/export", team_export, ["GET"]),
    ("/teams/import", team_import, ["POST"]),
    ("/session", session, ["GET"]),
    ("/checkpoints", checkpoints, ["GET"]),
    ("/checkpoint", checkpoint, ["GET"]),
]
"""(path, endpoint, methods) of every page and action."""
