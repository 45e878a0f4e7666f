"""Every list is bounded by its limit and index-backed: the SQLite VM-instruction count of
a page (the first and one deep in the history) is the same for 100 stored rows as for
10,000, for feedback, approvals, checkpoints and team messages. (Message reads of
conversations and threads: tests/test_conversations.py.)"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import sqlstore
from sqlstore.domains.team_models import Session, Team
from sqlstore.drivers.local import LocalClient
from tests.vm_steps import vm_steps

_ROWS = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "


async def _fill(store: sqlstore.Store, size: int, tag: str, session_id: str) -> str:
    """``size`` rows of feedback, approvals, checkpoints and team messages, all keyed by a
    thread of their own; its id."""
    thread = await store.threads.create(f"user-{tag}", agent_id=f"agent-{tag}")
    await store.batch(
        [
            (
                f"""INSERT INTO feedback (id, thread_id, user_id, agent_id, rating, created_at)
                {_ROWS} SELECT ?2 || i, ?3, ?4, ?5, 1 + i % 5, i FROM n""",
                (size, f"fb-{tag}-", thread.id, f"user-{tag}", f"agent-{tag}"),
            ),
            (
                f"""INSERT INTO approvals (id, thread_id, agent_id, state, created_at, expires_at)
                {_ROWS} SELECT ?2 || i, ?3, ?4, '{{}}', i, 4102444800000 FROM n""",
                (size, f"ap-{tag}-", thread.id, f"agent-{tag}"),
            ),
            (
                f"""INSERT INTO checkpoints (thread_id, checkpoint_id, type, payload, created_at)
                {_ROWS} SELECT ?2, printf('%08d', i), 'json', '1', i FROM n""",
                (size, thread.id),
            ),
            (
                f"""INSERT INTO messages (id, thread_id, seq, role, content, created_at)
                {_ROWS} SELECT ?2 || i, ?3, i, 'user', '"x"', i FROM n""",
                (size, f"tm-{tag}-", session_id),
            ),
        ]
    )
    return thread.id


async def test_list_cost_does_not_grow_with_rows(tmp_path: Path) -> None:
    # Every call on the worker's connection, where the steps are counted.
    async with sqlstore.Store(f"file:{tmp_path / 'lists.db'}", inline_budget=0) as store:
        client = store.client
        assert isinstance(client, LocalClient)
        team = (await store.teams.upsert(Team(user_id="u", config={"label": "t"}))).data
        sessions = {
            size: (await store.teams.upsert(Session(team_id=team.id))).data.id
            for size in (100, 10_000)
        }
        thread = {size: await _fill(store, size, str(size), sessions[size]) for size in sessions}

        async def deep(read: Callable[..., Awaitable[list[Any]]], **kw: Any) -> Any:
            first = await read(limit=60, **kw)
            return await read(limit=50, before=first[-1], **kw)

        fb, ap, cp, teams = store.feedback, store.approvals, store.checkpoints, store.teams
        cases: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
            ("feedback by thread", lambda n: fb.list(thread_id=thread[n])),
            ("feedback by user", lambda n: fb.list(user_id=f"user-{n}")),
            ("feedback by agent, deep", lambda n: deep(fb.list, agent_id=f"agent-{n}")),
            ("approvals by thread", lambda n: ap.list(thread_id=thread[n])),
            ("approvals by agent, deep", lambda n: deep(ap.list, agent_id=f"agent-{n}")),
            ("checkpoints", lambda n: cp.list(thread[n], limit=50)),
            ("checkpoints, deep", lambda n: deep(cp.list, thread_id=thread[n])),
            ("latest checkpoint", lambda n: cp.get(thread[n])),
            (
                "team messages",
                lambda n: teams.get("message", {"session_id": sessions[n]}, limit=50),
            ),
            (
                "team messages newest first",
                lambda n: teams.get(
                    "message", {"session_id": sessions[n]}, order_by="-seq", limit=50
                ),
            ),
        ]
        for label, call in cases:

            async def run(n: int, c: Callable[[int], Awaitable[Any]] = call) -> None:
                await c(n)

            few = await vm_steps(client, lambda: run(100))
            many = await vm_steps(client, lambda: run(10_000))
            assert few > 0
            assert many <= few * 1.3 + 20, (label, few, many)
