"""What a delete leaves behind so that a late write does not bring the deleted back: the
SQL of the ``tombstones`` rows (kind, key, deleted_at), one piece per kind, for every
domain that deletes (threads, conversations, the LangGraph saver, retention).

- ``conversation``: a conversation's key ``json_array(user_id, session_id, agent_id)``; a
  save that began before ``deleted_at`` stores nothing (domains.conversations).
- ``checkpoints``: a thread id; a LangGraph checkpoint or write born before ``deleted_at``
  is undone in the batch that stored it (compat.langgraph).

Retention forgets tombstones older than a policy's age.
"""

from __future__ import annotations

CONVERSATION = "session_id IS NOT NULL AND agent_id IS NOT NULL"
"""The threads that are conversations (they have a session and an agent)."""

_UPSERT = "ON CONFLICT (kind, key) DO UPDATE SET deleted_at = excluded.deleted_at"


def conversation_tombstones(where: str, now: str) -> str:
    """An INSERT of a ``conversation`` tombstone for each conversation among the threads
    matching ``where`` (an SQL condition on ``threads``), deleted at ``now`` (an SQL
    parameter such as ``?3``); run it before the threads are deleted."""
    return f"""INSERT INTO tombstones (kind, key, deleted_at)
        SELECT 'conversation', json_array(user_id, session_id, agent_id), {now}
        FROM threads WHERE ({where}) AND {CONVERSATION}
        {_UPSERT}"""


def checkpoint_tombstones(thread_ids: str, now: str) -> str:
    """An INSERT of a ``checkpoints`` tombstone for each thread id in the SQL set
    ``thread_ids`` (a subquery or a list of parameters) that has checkpoints, deleted at
    ``now``; run it before the checkpoints are deleted."""
    return f"""INSERT INTO tombstones (kind, key, deleted_at)
        SELECT DISTINCT 'checkpoints', thread_id, {now} FROM checkpoints
        WHERE thread_id IN ({thread_ids})
        {_UPSERT}"""


TOMBSTONE_CHECKPOINTS = f"""INSERT INTO tombstones (kind, key, deleted_at)
    VALUES ('checkpoints', ?1, ?2) {_UPSERT}"""
"""A ``checkpoints`` tombstone for thread ?1 at ?2, whether or not it has checkpoints yet
(LangGraph ``adelete_thread``: a run in flight may not have stored one)."""
