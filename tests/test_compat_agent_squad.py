"""sqlstore.compat.agent_squad.SqlChatStorage: a drop-in ChatStorage, driven by AgentSquad."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from agent_squad.agents import Agent, AgentOptions  # type: ignore[import-untyped]
from agent_squad.classifiers import Classifier, ClassifierResult  # type: ignore[import-untyped]
from agent_squad.orchestrator import AgentSquad  # type: ignore[import-untyped]
from agent_squad.storage import ChatStorage  # type: ignore[import-untyped]
from agent_squad.types import (  # type: ignore[import-untyped]
    ConversationMessage,
    ParticipantRole,
    TimestampedMessage,
)

from sqlstore.compat.agent_squad import SqlChatStorage
from sqlstore.errors import ValidationError
from tests.conftest import unique


class EchoAgent(Agent):  # type: ignore[misc]
    """A stub agent: no model call; answers with how much history it was given."""

    async def process_request(
        self,
        input_text: str,
        user_id: str,
        session_id: str,
        chat_history: list[ConversationMessage],
        additional_params: dict[str, Any] | None = None,
    ) -> ConversationMessage:
        return ConversationMessage(
            role=ParticipantRole.ASSISTANT.value,
            content=[{"text": f"{self.id}({len(chat_history)} prior): {input_text}"}],
        )


class KeywordClassifier(Classifier):  # type: ignore[misc]
    """A stub classifier: picks the agent whose id starts the input; no network."""

    def __init__(self, agents: list[Agent]) -> None:
        super().__init__()
        self.by_id = {a.id: a for a in agents}
        self.histories: list[int] = []

    async def process_request(
        self, input_text: str, chat_history: list[ConversationMessage]
    ) -> ClassifierResult:
        self.histories.append(len(chat_history))
        agent_id = input_text.split(":", 1)[0]
        return ClassifierResult(selected_agent=self.by_id[agent_id], confidence=1.0)


def text(m: ConversationMessage) -> str:
    return str(m.content[0]["text"])


async def test_agent_squad_drives_several_turns(db_url: str) -> None:
    storage = SqlChatStorage(db_url)  # no initialize(): the first call does it
    assert isinstance(storage, ChatStorage)
    billing = EchoAgent(AgentOptions(name="Billing Agent", description="bills"))
    tech = EchoAgent(AgentOptions(name="Tech Agent", description="tech"))
    classifier = KeywordClassifier([billing, tech])
    squad = AgentSquad(storage=storage, classifier=classifier)
    squad.add_agent(billing)
    squad.add_agent(tech)
    user, session = unique("user"), unique("session")
    try:
        turns = [
            "billing-agent: hi",
            "tech-agent: help",
            "billing-agent: invoice",
            "tech-agent: ok",
        ]
        for turn in turns:
            response = await squad.route_request(turn, user, session)
            assert response.metadata.agent_id == turn.split(":")[0], text(response.output)
        assert text(response.output) == "tech-agent(2 prior): tech-agent: ok"
        assert classifier.histories == [0, 2, 4, 6]
        billing_chat = await storage.fetch_chat(user, session, "billing-agent")
        assert [(m.role, text(m)) for m in billing_chat] == [
            ("user", "billing-agent: hi"),
            ("assistant", "billing-agent(0 prior): billing-agent: hi"),
            ("user", "billing-agent: invoice"),
            ("assistant", "billing-agent(2 prior): billing-agent: invoice"),
        ]
        everything = await storage.fetch_all_chats(user, session)
        assert [text(m) for m in everything] == [
            "billing-agent: hi",
            "[billing-agent] billing-agent(0 prior): billing-agent: hi",
            "tech-agent: help",
            "[tech-agent] tech-agent(0 prior): tech-agent: help",
            "billing-agent: invoice",
            "[billing-agent] billing-agent(2 prior): billing-agent: invoice",
            "tech-agent: ok",
            "[tech-agent] tech-agent(2 prior): tech-agent: ok",
        ]
        assert all(isinstance(m, ConversationMessage) for m in everything)
        assert all(isinstance(m.role, str) for m in everything)
    finally:
        await storage.close()


async def test_orchestrator_trims_to_its_max_history(db_url: str) -> None:
    storage = SqlChatStorage(db_url)
    await storage.initialize()
    await storage.initialize()  # idempotent
    agent = EchoAgent(AgentOptions(name="Echo", description="echo"))
    squad = AgentSquad(
        options={"MAX_MESSAGE_PAIRS_PER_AGENT": 3},
        storage=storage,
        classifier=KeywordClassifier([agent]),
    )
    squad.add_agent(agent)
    user, session = unique("user"), unique("session")
    try:
        for i in range(4):
            await squad.route_request(f"echo: {i}", user, session)
        chat = await storage.fetch_chat(user, session, "echo")
        assert [text(m) for m in chat] == [
            "echo(3 prior): echo: 2",
            "echo: 3",
            "echo(3 prior): echo: 3",
        ]
    finally:
        await storage.close()


async def test_saves_return_the_conversation_and_skip_a_repeated_role(db_url: str) -> None:
    storage = SqlChatStorage(db_url)
    user, session = unique("user"), unique("session")
    try:
        first = await storage.save_chat_message(
            user, session, "a", ConversationMessage(ParticipantRole.USER, [{"text": "q1"}])
        )
        assert [(m.role, text(m)) for m in first] == [("user", "q1")]
        repeated = await storage.save_chat_message(
            user, session, "a", ConversationMessage("user", [{"text": "q1 again"}])
        )
        assert [text(m) for m in repeated] == ["q1"]  # agent-squad's rule: skipped
        reply = await storage.save_chat_message(
            user, session, "a", ConversationMessage("assistant", [{"text": "a1"}]), 5
        )
        assert [text(m) for m in reply] == ["q1", "a1"]
        batch = await storage.save_chat_messages(
            user,
            session,
            "a",
            [ConversationMessage("assistant", [{"text": "a2"}]), ConversationMessage("user", [])],
            3,
        )  # the batch has no same-role check (as agent-squad's); odd sizes are kept as given
        assert [(m.role, m.content) for m in batch] == [
            ("assistant", [{"text": "a1"}]),
            ("assistant", [{"text": "a2"}]),
            ("user", []),
        ]
        unchanged = await storage.save_chat_messages(user, session, "a", [])
        assert [m.content for m in unchanged] == [m.content for m in batch]
        newest2 = await storage.fetch_chat(user, session, "a", 2)
        assert [m.content for m in newest2] == [[{"text": "a2"}], []]
        with pytest.raises(ValidationError):
            await storage.save_chat_message(
                user, session, "a", ConversationMessage("user", [{"text": "x"}]), 0
            )
    finally:
        await storage.close()


async def test_rich_content_is_kept_and_never_crashes(db_url: str) -> None:
    storage = SqlChatStorage(db_url)
    user, session = unique("user"), unique("session")
    tool_use = [
        {"toolUse": {"toolUseId": "t1", "name": "lookup", "input": {"q": "x"}}},
        {"text": "calling a tool"},
    ]
    tool_result = [{"toolResult": {"toolUseId": "t1", "content": [{"json": {"n": 1}}]}}]
    image = [{"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}, {"text": "see"}]
    try:
        cited = ConversationMessage("user", [{"text": "with citations"}], citations=[{"id": 7}])
        stamped = TimestampedMessage("assistant", tool_use, timestamp=1_000)
        await storage.save_chat_messages(
            user,
            session,
            "tools",
            [
                stamped,
                cited,
                ConversationMessage("assistant", tool_result),
                ConversationMessage("user", image),
                ConversationMessage("assistant", []),
            ],
        )
        chat = await storage.fetch_chat(user, session, "tools")
        assert [m.content for m in chat] == [
            tool_use,
            [{"text": "with citations"}],
            tool_result,
            image,
            [],
        ]
        assert chat[0].timestamp == 1_000  # a TimestampedMessage's time is kept
        assert chat[1].citations == [{"id": 7}]
        everything = await storage.fetch_all_chats(user, session)
        assert [m.content for m in everything] == [
            [{"text": "[tools]"}, *tool_use],
            [{"text": "with citations"}],
            [{"text": "[tools]"}, *tool_result],
            [{"text": ""}, *image],
            [{"text": "[tools]"}],
        ]
        # agent-squad's classifier reads content[0]['text'] of every message: it must not fail
        assert Classifier.format_messages(everything).count("\n") == 4
        # A message without content (None) is refused with its whole batch (see
        # tests/test_hostile_inputs.py), not stored as an empty list.
        with pytest.raises(ValidationError):
            await storage.save_chat_messages(
                user, session, "tools", [cited, ConversationMessage("user", None)]
            )
        assert len(await storage.fetch_chat(user, session, "tools")) == 5
    finally:
        await storage.close()


async def test_a_batch_with_one_invalid_message_stores_nothing(db_url: str) -> None:
    storage = SqlChatStorage(db_url)
    user, session = unique("user"), unique("session")
    try:
        bad_batches: list[list[Any]] = [
            [ConversationMessage("user", [{"text": "ok"}]), ConversationMessage("robot", [])],
            [ConversationMessage("user", [{"text": "ok"}]), ConversationMessage("user", [{1, 2}])],
            [ConversationMessage("user", [{"text": "ok"}]), {"role": "user", "content": []}],
        ]
        for batch in bad_batches:
            with pytest.raises(ValidationError):
                await storage.save_chat_messages(user, session, "a", batch)
        assert await storage.fetch_chat(user, session, "a") == []
        assert await storage.fetch_all_chats(user, session) == []
    finally:
        await storage.close()


async def test_ten_concurrent_saves(db_url: str) -> None:
    user, session = unique("user"), unique("session")
    storages = [SqlChatStorage(db_url) for _ in range(10)]
    try:
        await asyncio.gather(
            *(
                s.save_chat_messages(
                    user, session, "a", [ConversationMessage("user", [{"text": str(i)}])]
                )
                for i, s in enumerate(storages)
            )
        )
        chat = await storages[0].fetch_chat(user, session, "a")
        assert sorted(text(m) for m in chat) == sorted(str(i) for i in range(10))
        seqs = await storages[0].store.conversations.newest(user, session, "a", 100)
        assert [m.seq for m in seqs] == list(range(1, 11))
    finally:
        for s in storages:
            await s.close()
