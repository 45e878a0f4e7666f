"""``sqlstore demo``'s seed for the web UI: one of everything that stays in the database.

A support thread with a tool call, a tool result and an image, forked twice (and a fork
of a fork); approvals pending and one expired; feedback over the last days from three
agents; a team with a session and two runs; checkpoints of a graph thread (a LangGraph
run stopped at an interrupt when ``langgraph`` is installed, generic ones always).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypedDict

from ..domains.common import new_id, now_ms
from ..domains.team_models import Message, Run, Session

if TYPE_CHECKING:
    from ..store import Store

DAY_MS = 86_400_000
PIXEL_PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAIAAACQkWg2AAAAKElEQVR4nGNkYPjPQApgIkn1qIZRDaMaRjWM"
    "ahjVMKphVMOoBjpqAACZVgEfzH1FYgAAAABJRU5ErkJggg=="
)
"""A 16x16 PNG: the image block the chat shows."""

TEAM_CONFIG: dict[str, Any] = {
    "provider": "autogen_agentchat.teams.RoundRobinGroupChat",
    "component_type": "team",
    "label": "Demo research team",
    "config": {
        "participants": [
            {"provider": "autogen_agentchat.agents.AssistantAgent", "config": {"name": "writer"}},
            {"provider": "autogen_agentchat.agents.AssistantAgent", "config": {"name": "critic"}},
        ],
        "termination_condition": {"config": {"text": "APPROVE"}},
    },
}


TURNS = (("user", ""), ("writer", "Draft: otters hold hands."), ("critic", "APPROVE"))
"""(agent, text) of each run's messages; the user's text is the run's task."""


async def seed_threads(store: Store, user: str) -> tuple[str, int]:
    """A support thread with rich content and a small fork tree; (root id, forks)."""
    t = await store.threads.create(
        user, agent_id="support", title="Refund for a double charge", metadata={"channel": "web"}
    )
    await store.threads.add_messages(
        t.id,
        [
            {"role": "user", "content": [{"type": "text", "text": "I was charged twice."}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look up your payments."},
                    {
                        "type": "tool_use",
                        "id": "call-1",
                        "name": "lookup_payments",
                        "input": {"customer": "c-42", "days": 30},
                    },
                ],
            },
            {
                "role": "tool",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call-1",
                        "content": [{"amount": 19.99, "status": "captured"}] * 2,
                    }
                ],
                "metadata": {"latency_ms": 84},
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Here is the receipt."},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PIXEL_PNG},
                    },
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Refunded 19.99."}]},
        ],
    )
    a = await store.threads.fork(t.id, 2, title="Refund, offer store credit instead")
    await store.threads.add_message(a.id, "assistant", [{"text": "Would store credit do?"}])
    b = await store.threads.fork(t.id, 0, title="Refund, escalate to billing")
    c = await store.threads.fork(a.id, 3, title="Store credit, accepted")
    await store.threads.add_message(c.id, "user", [{"text": "Credit is fine."}])
    return t.id, len((b, a, c))


async def seed_conversation(store: Store, user: str) -> str:
    """A kept conversation of one session with two agents; the session id."""
    session = f"session-{new_id()}"
    for agent, role, text in (
        ("billing", "user", "Is my invoice ready?"),
        ("billing", "assistant", "Yes: invoice 1042, due on the 15th."),
        ("tech", "user", "And the export button is grey."),
        ("tech", "assistant", "Exports need the Pro plan; I can start a trial."),
    ):
        await store.conversations.save(user, session, agent, {"role": role, "content": text})
    return session


async def seed_approvals(store: Store, thread_id: str) -> tuple[int, int]:
    """Two pending approvals and one expired; (pending, expired)."""
    await store.approvals.save(
        {"action": "refund", "amount": 19.99},
        thread_id=thread_id,
        agent_id="support",
        node="refund_review",
        ttl=2 * 3600,
    )
    await store.approvals.save(
        {"action": "send_email", "to": "c-42"},
        thread_id=thread_id,
        agent_id="support",
        node="email_review",
        ttl=3 * 86400,
    )
    await store.approvals.save(
        {"action": "close_account"},
        thread_id=thread_id,
        agent_id="support",
        node="close",
        ttl=0.001,
    )
    await asyncio.sleep(0.005)  # let the short one expire
    return 2, 1


async def seed_feedback(store: Store, thread_id: str, user: str) -> int:
    """Ratings from three agents spread over the last eight days; how many."""
    now = now_ms()
    ratings = {"support": [5, 4, 4, 5, 3, 5], "billing": [2, 3, 3, 4], "tech": [4, 5, 4]}
    n = 0
    for agent, values in ratings.items():
        for i, rating in enumerate(values):
            await store.feedback.add(
                thread_id=thread_id if agent == "support" else None,
                user_id=user,
                agent_id=agent,
                rating=rating,
                comment=f"{agent} answer {i + 1}",
                created_at=now - (i * 3 + n % 2) * DAY_MS // 2 - n * 60_000,
            )
            n += 1
    return n


async def seed_team(store: Store, user: str) -> str:
    """A team with one session holding two runs and their messages; the team's id."""
    team = (await store.teams.import_team(TEAM_CONFIG, user, check_exists=True)).data
    session = (
        await store.teams.upsert(Session(user_id=user, team_id=team.id, name="Write a post"))
    ).data
    tasks = [("complete", "Write a post about otters"), ("error", "Translate it")]
    for status, task in tasks:
        run = (
            await store.teams.upsert(
                Run(session_id=session.id, user_id=user, status=status, task={"content": task})
            )
        ).data
        for source, text in TURNS:
            await store.teams.upsert(
                Message(
                    session_id=session.id,
                    run_id=run.id,
                    role="user" if source == "user" else "assistant",
                    content=[{"type": "text", "text": text or task}],
                    metadata={"source": source},
                )
            )
    return str(team.id)


async def seed_generic_checkpoints(store: Store) -> str:
    """Three JSON checkpoints of a plan-and-act graph thread; the thread id."""
    thread_id = f"graph-{new_id()}"
    states = [
        {"step": 0, "values": {"question": "Which plan?"}},
        {"step": 1, "values": {"question": "Which plan?", "plan": ["search", "answer"]}},
        {"step": 2, "values": {"question": "Which plan?", "plan": ["answer"], "notes": "found"}},
    ]
    parent = None
    for state in states:
        cid = new_id()
        await store.checkpoints.save(
            thread_id,
            cid,
            state["values"],
            parent_id=parent,
            metadata={"step": state["step"], "source": "loop"},
        )
        parent = cid
    return thread_id


class _Post(TypedDict, total=False):
    topic: str
    draft: str
    approved: bool


async def seed_langgraph(store: Store) -> str | None:
    """A two-node LangGraph run stopped at an interrupt; its thread id, or None without
    ``langgraph`` installed."""
    try:
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import interrupt

        from ..compat.langgraph import LibSQLSaver
    except ImportError:
        return None

    def write(state: _Post) -> _Post:
        return {"draft": f"Five facts about {state['topic']}."}

    def review(state: _Post) -> _Post:
        answer = interrupt({"question": "Publish this draft?", "draft": state.get("draft")})
        return {"approved": answer == "yes"}

    builder: Any = StateGraph(_Post)
    builder.add_node("write", write)
    builder.add_node("review", review)
    builder.add_edge(START, "write")
    builder.add_edge("write", "review")
    builder.add_edge("review", END)
    graph = builder.compile(checkpointer=LibSQLSaver(store))
    thread_id = f"langgraph-{new_id()}"
    await graph.ainvoke({"topic": "otters"}, {"configurable": {"thread_id": thread_id}})
    return thread_id


async def seed_for_ui(store: Store) -> None:
    """Seed every domain and print one line saying what is there."""
    user = "demo-user"
    root, forks = await seed_threads(store, user)
    session = await seed_conversation(store, user)
    pending, expired = await seed_approvals(store, root)
    feedback = await seed_feedback(store, root, user)
    team = await seed_team(store, user)
    graphs = [await seed_generic_checkpoints(store)]
    langgraph = await seed_langgraph(store)
    if langgraph is not None:
        graphs.append(langgraph)
    print(
        f"kept for `sqlstore ui`: thread {root} with {forks} forks, conversation {session}, "
        f"{pending} pending and "
        f"{expired} expired approvals, {feedback} ratings, team {team} with 1 session and "
        f"2 runs, checkpoints of graph threads {' '.join(graphs)}"
    )
