"""Domain writes whose first answer is lost (a loopback fault proxy in front of real tursodb
and sqld): the store sends the idempotent batch again, each write is stored exactly once,
and each call reports what really happened."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint

import sqlstore
from sqlstore.compat.langgraph import LibSQLSaver
from sqlstore.domains.team_models import Team
from tests.conftest import unique
from tests.faultproxy import FaultProxy, drop_every, drop_first_answer_of_each_write
from tests.servers import ServerProcess
from tests.test_teams import team_config


class Lossy:
    """A store through a proxy that drops each write's first answer, and a direct one."""

    def __init__(self, proxy: FaultProxy, store: sqlstore.Store, direct: sqlstore.Store) -> None:
        self.proxy = proxy
        self.store = store
        self.direct = direct

    async def count(self, sql: str, *args: object) -> int:
        return int((await self.direct.client.execute(sql, args)).scalar() or 0)


@pytest.fixture
async def lossy(remote_server: ServerProcess) -> AsyncIterator[Lossy]:
    async with (
        sqlstore.Store(remote_server.url) as direct,
        FaultProxy(remote_server.url, drop_first_answer_of_each_write()) as proxy,
        sqlstore.Store(proxy.url) as store,
    ):
        yield Lossy(proxy, store, direct)


async def test_conversation_save(lossy: Lossy) -> None:
    user = unique("u")
    saved = await lossy.store.conversations.save(
        user, "s", "a", {"role": "user", "content": [{"text": "hi"}]}
    )
    assert [m.content for m in saved.inserted] == [[{"text": "hi"}]]
    assert saved.message_count == 1
    assert lossy.proxy.dropped >= 1
    assert await lossy.store.conversations.count(user, "s", "a") == 1


async def test_thread_create_add_message_and_fork(lossy: Lossy) -> None:
    user = unique("u")
    thread = await lossy.store.threads.create(user, title="t", metadata={"k": 1})
    assert thread.title == "t" and thread.metadata == {"k": 1}
    message = await lossy.store.threads.add_message(thread.id, "user", "hello")
    assert message.seq == 1 and message.content == "hello"
    fork = await lossy.store.threads.fork(thread.id, 0, title="f")
    assert fork.parent_id == thread.id
    assert lossy.proxy.dropped >= 3
    assert await lossy.count("SELECT count(*) FROM threads WHERE user_id = ?", user) == 2
    assert await lossy.count("SELECT count(*) FROM messages WHERE thread_id = ?", thread.id) == 1
    assert await lossy.count("SELECT count(*) FROM messages WHERE thread_id = ?", fork.id) == 1
    stored = await lossy.direct.threads.get(thread.id)
    assert stored is not None and stored.message_count == 1


async def test_feedback_and_approvals(lossy: Lossy) -> None:
    thread = await lossy.store.threads.create(unique("u"))
    feedback = await lossy.store.feedback.add(thread_id=thread.id, rating=1, comment="ok")
    assert feedback.rating == 1
    approval = await lossy.store.approvals.save({"step": 2}, thread_id=thread.id)
    assert approval.state == {"step": 2}
    assert lossy.proxy.dropped >= 3
    assert await lossy.count("SELECT count(*) FROM feedback WHERE thread_id = ?", thread.id) == 1
    assert await lossy.count("SELECT count(*) FROM approvals WHERE thread_id = ?", thread.id) == 1


async def test_teams_upsert_and_import(lossy: Lossy) -> None:
    user = unique("u")
    upserted = await lossy.store.teams.upsert(Team(user_id=user, config=team_config("a")))
    assert upserted.status and upserted.created
    imported = await lossy.store.teams.import_team(team_config("b"), user, check_exists=True)
    assert imported.status and imported.created
    plain = await lossy.store.teams.import_team(team_config("c"), user)
    assert plain.status and plain.created
    assert lossy.proxy.dropped >= 3
    assert await lossy.count("SELECT count(*) FROM teams WHERE user_id = ?", user) == 3


async def test_langgraph_aput_and_aput_writes(lossy: Lossy) -> None:
    thread = unique("lg")
    config: RunnableConfig = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    saver = LibSQLSaver(lossy.store)
    stored = await saver.aput(config, empty_checkpoint(), {"step": 1}, {})
    await saver.aput_writes(stored, [("a", 1), ("b", 2)], "task-1")
    assert lossy.proxy.dropped >= 2
    found = await LibSQLSaver(lossy.direct).aget_tuple(stored)
    assert found is not None
    assert found.pending_writes == [("task-1", "a", 1), ("task-1", "b", 2)]
    assert len([c async for c in LibSQLSaver(lossy.direct).alist(config)]) == 1


async def test_many_domain_writes_with_one_answer_in_five_lost(
    remote_server: ServerProcess,
) -> None:
    user = unique("u")
    n = 60
    async with (
        FaultProxy(remote_server.url, drop_every(5)) as proxy,
        sqlstore.Store(proxy.url) as store,
    ):
        thread = await store.threads.create(user)
        for i in range(n):
            kind = i % 3
            if kind == 0:
                saved = await store.conversations.save(
                    user, "s", "a", {"role": "user", "content": [{"text": str(i)}]}
                )
                assert len(saved.inserted) == 1 and saved.skipped == 0
            elif kind == 1:
                message = await store.threads.add_message(thread.id, "user", str(i))
                assert message.content == str(i)
            else:
                created = await store.threads.create(user, title=str(i))
                assert created.title == str(i)
        assert proxy.dropped >= n // 5
    async with sqlstore.Store(remote_server.url) as direct:
        assert await direct.conversations.count(user, "s", "a") == n // 3
        assert [m.content for m in await direct.threads.messages(thread.id)] == [
            str(i) for i in range(n) if i % 3 == 1
        ]
        assert len(await direct.threads.list(user_id=user, limit=100)) == 1 + n // 3 + 1
