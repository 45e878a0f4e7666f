"""Lifecycle: concurrent initialize() shares one client and leaks nothing after close();
a closed store or adapter refuses every call; a forked child cannot use its parent's
client, and can open its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from agent_squad.types import ConversationMessage, ParticipantRole  # type: ignore[import-untyped]

import sqlstore
from sqlstore.compat.agent_squad import SqlChatStorage
from sqlstore.compat.agentomatic import LibSQLStore
from sqlstore.compat.langgraph import LibSQLSaver
from sqlstore.errors import UnavailableError
from tests.conftest import unique


def open_fds() -> set[str]:
    """What this process's file descriptors point at (files, sockets)."""
    found: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own)
            found.add(f"{fd}:{os.readlink(f'/proc/self/fd/{fd}')}")
    return found


def workers() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("sqlstore-"))


async def workers_after_close() -> int:
    """The worker threads left, once a closed worker had its moment to end (it answers
    close() just before its thread returns)."""
    for _ in range(100):
        if not any(t.name.startswith("sqlstore-") and t.is_alive() for t in threading.enumerate()):
            break
        await asyncio.sleep(0.01)
    return workers()


async def test_ten_concurrent_initialize_calls_share_one_client(db_url: str) -> None:
    fds, threads = open_fds(), workers()
    store = sqlstore.Store(db_url)
    opened = await asyncio.gather(*(store.initialize() for _ in range(10)))
    assert all(s is store for s in opened)
    client = store.client
    await asyncio.gather(*(store.initialize() for _ in range(10)))
    assert store.client is client
    assert await store.schema_version() > 0
    if store.backend == "local":
        assert workers() == threads + 1
    await store.close()
    assert await workers_after_close() == threads
    assert open_fds() <= fds  # no connection, socket or WAL file left open


async def test_langgraph_parallel_first_calls_share_one_client(db_url: str) -> None:
    fds, threads = open_fds(), workers()
    saver = LibSQLSaver.from_url(db_url)
    config: Any = {"configurable": {"thread_id": unique("t"), "checkpoint_ns": ""}}
    found = await asyncio.gather(*(saver.aget_tuple(config) for _ in range(10)))
    assert found == [None] * 10
    if saver.store.backend == "local":
        assert workers() == threads + 1
    await saver.aclose()
    assert await workers_after_close() == threads
    assert open_fds() <= fds
    with pytest.raises(UnavailableError):
        await saver.aget_tuple(config)


async def test_close_during_initialize_leaves_nothing_open(db_url: str) -> None:
    fds, threads = open_fds(), workers()
    store = sqlstore.Store(db_url)
    opening = asyncio.ensure_future(store.initialize())
    await asyncio.sleep(0)
    await store.close()
    with pytest.raises(UnavailableError):
        await opening
    assert await workers_after_close() == threads
    assert open_fds() <= fds


Call = Callable[[], Awaitable[Any]]


def _store_calls(store: sqlstore.Store) -> dict[str, Call]:
    k = (unique("u"), unique("s"), "agent")
    return {
        "initialize": store.initialize,
        "execute": lambda: store.execute("SELECT 1"),
        "batch": lambda: store.batch(["SELECT 1"]),
        "stats": store.stats,
        "health_check": store.health_check,
        "schema_version": store.schema_version,
        "threads.create": lambda: store.threads.create(user_id="u"),
        "threads.get": lambda: store.threads.get("t"),
        "conversations.save": lambda: store.conversations.save(
            *k, {"role": "user", "content": "hi"}
        ),
        "feedback.list": lambda: store.feedback.list(),
        "approvals.get": lambda: store.approvals.get("a"),
        "checkpoints.get": lambda: store.checkpoints.get("t"),
        "teams.get": lambda: store.teams.get("team"),
    }


async def test_every_call_after_close_raises_unavailable(db_url: str) -> None:
    store = await sqlstore.Store(db_url).initialize()
    calls = _store_calls(store)
    await store.close()
    await store.close()  # twice is fine
    for name, call in calls.items():
        with pytest.raises(UnavailableError):
            await call()
        assert name  # (the name shows in the traceback of a failure)


async def test_every_adapter_refuses_calls_after_close(db_url: str) -> None:
    squad = SqlChatStorage(db_url)
    await squad.initialize()
    await squad.close()
    message = ConversationMessage(role=ParticipantRole.USER.value, content=[{"text": "hi"}])
    squad_calls: tuple[Awaitable[Any], ...] = (
        squad.initialize(),
        squad.save_chat_message("u", "s", "a", message),
        squad.save_chat_messages("u", "s", "a", [message]),
        squad.fetch_chat("u", "s", "a"),
        squad.fetch_all_chats("u", "s"),
    )
    for call in squad_calls:
        with pytest.raises(UnavailableError):  # it used to reopen itself
            await call

    ago = LibSQLStore(db_url)
    await ago.initialize()
    await ago.close()
    calls: tuple[Awaitable[Any], ...] = (
        ago.initialize(),
        ago.create_thread("t", "u", "agent"),
        ago.get_thread("t"),
        ago.add_message("t", "user", "hi"),
        ago.get_suspended_state("a"),
        ago.get_stats(),
    )
    for call in calls:
        with pytest.raises(UnavailableError):
            await call

    async with sqlstore.Store(db_url) as shared:  # a saver on a store the caller owns
        saver = LibSQLSaver(shared)
        await saver.setup()
        await saver.aclose()
        config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
        with pytest.raises(UnavailableError):
            await saver.aget_tuple(config)
        assert await shared.execute("SELECT 1")  # the caller's store stays open


# -- fork ---------------------------------------------------------------------------------


async def _in_child(url: str, store: sqlstore.Store, client: Any, unopened: sqlstore.Store) -> str:
    """What a forked child sees: the inherited store and client refuse, quickly and clearly;
    a store of its own works."""
    outcomes = []
    for name, call in (
        ("store", lambda: store.threads.create(user_id="child")),
        ("client", lambda: client.execute("SELECT 1")),
        ("batch", lambda: client.batch(["SELECT 1"])),
    ):
        try:
            await asyncio.wait_for(call(), 5)
            outcomes.append(f"{name}: no error")
        except UnavailableError as exc:
            outcomes.append(f"{name}: ok" if "fork" in str(exc) else f"{name}: {exc}")
        except Exception as exc:
            outcomes.append(f"{name}: {type(exc).__name__}: {exc}")
    await store.close()  # drops the parent's client without touching it
    await client.close()
    async with sqlstore.Store(url) as own:
        thread = await own.threads.create(user_id="child")
        outcomes.append(f"own: {thread.user_id}")
    async with unopened:  # made before the fork, opened after it: the child's own
        thread = await unopened.threads.create(user_id="child")
        outcomes.append(f"made before the fork: {thread.user_id}")
    return "; ".join(outcomes)


def test_a_forked_child_cannot_use_its_parents_client(db_url: str) -> None:
    loop = asyncio.new_event_loop()
    try:
        store = loop.run_until_complete(sqlstore.Store(db_url).initialize())
        client = loop.run_until_complete(sqlstore.connect(db_url))
        unopened = sqlstore.Store(db_url)  # a store made at import time, say
        loop.run_until_complete(store.threads.create(user_id="parent"))
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report on the pipe, never return into pytest
            code = 1
            try:
                child_loop = asyncio.new_event_loop()
                text = child_loop.run_until_complete(_in_child(db_url, store, client, unopened))
                os.write(write, text.encode())
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        deadline = 60.0
        while deadline > 0:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            loop.run_until_complete(asyncio.sleep(0.05))
            deadline -= 0.05
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung")
        report = os.read(read, 65536).decode()
        os.close(read)
        assert os.waitstatus_to_exitcode(status) == 0, report
        assert report == (
            "store: ok; client: ok; batch: ok; own: child; made before the fork: child"
        )
        # The parent's store and client are untouched by the child.
        assert loop.run_until_complete(client.execute("SELECT 1")).scalar() == 1
        assert loop.run_until_complete(store.threads.create(user_id="parent again"))
        loop.run_until_complete(client.close())
        loop.run_until_complete(store.close())
    finally:
        loop.close()
