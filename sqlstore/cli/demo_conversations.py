"""``sqlstore demo``'s conversation part: a short multi-agent chat, trimmed, then printed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..domains.common import new_id

if TYPE_CHECKING:
    from ..store import Store


async def demo_conversation(store: Store) -> None:
    """Hold a short conversation with two agents, trim one to its newest 4, print it."""
    conv = store.conversations
    user, session = "demo-user", f"demo-{new_id()}"
    turns = [
        ("billing", "user", "Why was I charged twice?"),
        ("billing", "assistant", "One charge is a pending hold; it drops off in 3 days."),
        ("tech", "user", "Also, the app crashes on login."),
        ("tech", "assistant", "Update to 2.4.1; the login crash is fixed there."),
        ("billing", "user", "Can you refund the hold now?"),
        ("billing", "assistant", "Done: the hold is released."),
        ("billing", "user", "Thanks!"),
    ]
    for agent, role, text in turns:
        await conv.save(
            user, session, agent, {"role": role, "content": [{"text": text}]}, max_history=4
        )
    print(f"conversation {session}: {len(turns)} turns saved, billing kept to its newest 4")
    for entry in await conv.session(user, session):
        message = entry.message
        text = message.content[0]["text"] if message.content else ""
        print(f"  #{message.seq:<2} {entry.agent_id:<8} {message.role:<9} {text}")
    counts = {agent: await conv.count(user, session, agent) for agent in ("billing", "tech")}
    print(f"messages kept per agent: {counts}")
    deleted = await conv.delete_session(user, session)
    print(
        f"deleted the demo session: {deleted.conversations} conversations, "
        f"{deleted.messages} messages"
    )
