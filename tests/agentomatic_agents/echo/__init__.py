"""A stub Agentomatic agent for the tests: no model, no network.

It echoes the query with the number of history messages it was given, and suspends for a
human approval when the query mentions "approve" (until the approval is granted).
"""

from __future__ import annotations

import uuid
from typing import Any

from agentomatic import AgentManifest
from agentomatic.core import AgentSuspendedException

manifest = AgentManifest(name="echo", slug="echo", description="Echo stub", framework="custom")


async def node_fn(state: dict[str, Any]) -> dict[str, Any]:
    """Echo the query; suspend on "approve" until approved."""
    query = state.get("current_query", "")
    meta = state.get("metadata") or {}
    if "approve" in query and not meta.get("hitl_approved"):
        raise AgentSuspendedException(
            approval_id=f"appr_{uuid.uuid4().hex[:8]}",
            node_name="human_review",
            state_snapshot={
                "current_query": query,
                "thread_id": state.get("thread_id"),
                "metadata": dict(meta),
            },
            message="needs a human",
        )
    history = len(state.get("messages") or [])
    return {
        "response": f"echo: {query} (history={history}, approved={bool(meta.get('hitl_approved'))})"
    }
