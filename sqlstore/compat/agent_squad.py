"""A drop-in ``SqlChatStorage`` for agent-squad, on sqlstore's conversations domain.

``AgentSquad(storage=SqlChatStorage("file:chat.db"))`` works unchanged. Same four methods,
argument names and return types as agent-squad's own ``SqlChatStorage``, plus
``initialize()`` and ``close()``; differences (all deliberate):

- every save is one atomic batch: the message index, the same-role check and trimming
  happen inside SQL, so concurrent saves never collide and never read the whole history;
- ``initialize()`` is optional: the first call initializes lazily; after ``close()``
  every call raises ``UnavailableError`` (a closed storage never reopens itself);
- content blocks are kept verbatim (text, tool use, tool results, images, anything JSON);
  ``citations`` and a ``TimestampedMessage``'s timestamp are kept too;
- ``max_history_size`` keeps exactly the newest N messages (as agent-squad's SQL storage
  does, no even rounding); a value below 1 raises ``ValidationError``;
- reads are bounded: ``fetch_chat`` without a size, the conversation a save returns
  without a size, and ``fetch_all_chats`` return at most ``read_limit`` newest messages
  (default 1000);
- ``fetch_all_chats`` prefixes an assistant message's first text block with
  ``[agent_id] `` and keeps every other block; a message whose first block is not text
  gets a text block in front (so agent-squad's classifier, which reads
  ``content[0]['text']``, never fails on tool-use, image or empty content).

Requires the ``agent-squad`` extra; agent_squad is imported only by this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent_squad.storage import ChatStorage  # type: ignore[import-untyped]
from agent_squad.types import (  # type: ignore[import-untyped]
    ConversationMessage,
    TimestampedMessage,
)

from ..domains.conversations import MAX_READ, ConversationStore, SessionMessage
from ..domains.messages import Message, NewMessage
from ..errors import ValidationError
from ..store import Store

DEFAULT_READ_LIMIT = 1000


def _role(role: Any) -> Any:
    """agent-squad roles may be ``ParticipantRole`` members or their string values."""
    value = getattr(role, "value", role)
    return value


def to_new_message(message: Any) -> NewMessage:
    """An agent-squad ConversationMessage (or TimestampedMessage) as a NewMessage."""
    if not isinstance(message, ConversationMessage):
        raise ValidationError(
            f"expected an agent-squad ConversationMessage, not {type(message).__name__}"
        )
    content = message.content
    if content is None:
        raise ValidationError("a message needs content (a list of blocks), not None")
    metadata: dict[str, Any] = {}
    citations = getattr(message, "citations", None)
    if citations is not None:
        metadata["citations"] = citations
    timestamp = getattr(message, "timestamp", None)
    return NewMessage(
        role=_role(message.role),
        content=content,
        metadata=metadata,
        created_at=timestamp if isinstance(message, TimestampedMessage) and timestamp else None,
    )


def to_conversation_message(message: Message, content: Any = None) -> ConversationMessage:
    """A stored message as agent-squad's TimestampedMessage (a ConversationMessage)."""
    result = TimestampedMessage(
        role=message.role,
        content=message.content if content is None else content,
        timestamp=message.created_at,
    )
    result.citations = message.metadata.get("citations")
    return result


def _with_leading_text(blocks: list[Any], prefix: str) -> list[Any]:
    first = blocks[0] if blocks else None
    if isinstance(first, dict) and isinstance(first.get("text"), str):
        joined = f"{prefix} {first['text']}" if prefix else first["text"]
        return [{**first, "text": joined}, *blocks[1:]]
    return [{"text": prefix}, *blocks]


def format_session_message(entry: SessionMessage) -> ConversationMessage:
    """A session message the way agent-squad's ``fetch_all_chats`` shows it."""
    message = entry.message
    content = message.content
    blocks = content if isinstance(content, list) else [{"text": str(content)}]
    prefix = f"[{entry.agent_id}]" if message.role == "assistant" else ""
    return to_conversation_message(message, _with_leading_text(blocks, prefix))


class SqlChatStorage(ChatStorage):  # type: ignore[misc]
    """agent-squad ``ChatStorage`` on sqlstore: ``SqlChatStorage(url, auth_token=None)``.

    ``url`` is any sqlstore URL (``file:chat.db``, ``libsql://...``, ``https://...``) or a
    ``libsql_client.Client``. ``read_limit`` bounds the reads that have no size of their
    own; ``options`` go to the driver (see ``sqlstore.connect``).
    """

    def __init__(
        self,
        url: Any,
        auth_token: str | None = None,
        *,
        read_limit: int = DEFAULT_READ_LIMIT,
        **options: Any,
    ) -> None:
        super().__init__()
        if isinstance(read_limit, bool) or not isinstance(read_limit, int):
            raise ValidationError("read_limit must be an integer")
        if not 1 <= read_limit <= MAX_READ:
            raise ValidationError(f"read_limit must be from 1 to {MAX_READ}")
        self.store = Store(url, auth_token=auth_token, **options)
        self.read_limit = read_limit

    async def initialize(self) -> None:
        """Open the database and bring its schema up to date (idempotent; optional)."""
        await self.store.initialize()

    async def close(self) -> None:
        """Close the database connection; every later call raises UnavailableError."""
        await self.store.close()

    async def _conversations(self) -> ConversationStore:
        await self.store.initialize()  # a flag check once open; concurrent first calls share it
        return self.store.conversations

    def _history(self, max_history_size: int | None) -> int:
        if max_history_size is None:
            return self.read_limit
        if isinstance(max_history_size, bool) or not isinstance(max_history_size, int):
            raise ValidationError(f"max_history_size must be an integer, not {max_history_size!r}")
        return min(max_history_size, MAX_READ)

    async def save_chat_message(
        self,
        user_id: str,
        session_id: str,
        agent_id: str,
        new_message: ConversationMessage | TimestampedMessage,
        max_history_size: int | None = None,
    ) -> list[ConversationMessage]:
        """Save one message unless its role equals the last stored message's role
        (agent-squad's rule, checked inside SQL); return the conversation (bounded)."""
        message = to_new_message(new_message)
        conversations = await self._conversations()
        result = await conversations.save(
            user_id,
            session_id,
            agent_id,
            message,
            max_history=max_history_size,
            skip_same_role=True,
            history=self._history(max_history_size),
        )
        return [to_conversation_message(m) for m in result.messages]

    async def save_chat_messages(
        self,
        user_id: str,
        session_id: str,
        agent_id: str,
        new_messages: Sequence[ConversationMessage] | Sequence[TimestampedMessage],
        max_history_size: int | None = None,
    ) -> list[ConversationMessage]:
        """Save messages in one atomic batch (no same-role check, as in agent-squad);
        return the conversation (bounded). A list with one invalid message stores none."""
        if isinstance(new_messages, str | bytes) or not isinstance(new_messages, Sequence):
            raise ValidationError("new_messages must be a list of ConversationMessage")
        if not new_messages:
            return await self.fetch_chat(user_id, session_id, agent_id, max_history_size)
        messages = [to_new_message(m) for m in new_messages]
        conversations = await self._conversations()
        result = await conversations.save_many(
            user_id,
            session_id,
            agent_id,
            messages,
            max_history=max_history_size,
            history=self._history(max_history_size),
        )
        return [to_conversation_message(m) for m in result.messages]

    async def fetch_chat(
        self,
        user_id: str,
        session_id: str,
        agent_id: str,
        max_history_size: int | None = None,
    ) -> list[ConversationMessage]:
        """The conversation's newest ``max_history_size`` messages (``read_limit`` when
        None or 0), oldest first."""
        limit = max_history_size or self.read_limit
        conversations = await self._conversations()
        messages = await conversations.newest(user_id, session_id, agent_id, limit)
        return [to_conversation_message(m) for m in messages]

    async def fetch_all_chats(self, user_id: str, session_id: str) -> list[ConversationMessage]:
        """The session's newest ``read_limit`` messages across agents, oldest first, with
        assistant text shown as ``[agent_id] text``."""
        conversations = await self._conversations()
        entries = await conversations.session(user_id, session_id, self.read_limit)
        return [format_session_message(e) for e in entries]


__all__ = ["SqlChatStorage"]
