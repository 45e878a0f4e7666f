"""LibSQLStore as Agentomatic's store: a real AgentPlatform app over HTTP, and the
BaseStore contract called directly, on both backends. No model calls (a stub agent)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from agentomatic import AgentPlatform
from agentomatic.storage import BaseStore
from fastapi.testclient import TestClient

import sqlstore
from sqlstore.compat import agentomatic as compat
from sqlstore.compat.agentomatic import LibSQLStore
from tests.conftest import unique

AGENTS = Path(__file__).resolve().parent / "agentomatic_agents"
A = "/api/v1/echo"


def _ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def test_every_basestore_method_is_implemented() -> None:
    for name, member in inspect.getmembers(BaseStore, inspect.iscoroutinefunction):
        if name.startswith("_"):
            continue
        mine = getattr(LibSQLStore, name)
        assert mine is not member, f"{name} is BaseStore's stub"
        ours = list(inspect.signature(mine).parameters.values())
        theirs = list(inspect.signature(member).parameters.values())
        assert [(p.name, p.kind) for p in ours] == [(p.name, p.kind) for p in theirs], name


def test_platform_routes(db_url: str) -> None:
    store = LibSQLStore(db_url)
    platform = AgentPlatform.from_folder(
        AGENTS, store=store, enable_telemetry=False, log_level="WARNING", summarize_after=0
    )
    app = platform.build()
    tid, user = unique("t"), unique("u")
    with TestClient(app) as c:
        thread = _ok(
            c.post(
                f"{A}/threads",
                json={"thread_id": tid, "user_id": user, "title": "first", "metadata": {"a": 1}},
            )
        )
        assert thread["id"] == tid and thread["agent_name"] == "echo"
        assert thread["metadata"] == {"a": 1} and thread["parent_thread_id"] is None

        first = _ok(
            c.post(f"{A}/chat", json={"content": "hello", "thread_id": tid, "user_id": user})
        )
        assert first["response"].startswith("echo: hello")
        second = _ok(
            c.post(f"{A}/chat", json={"content": "again", "thread_id": tid, "user_id": user})
        )
        assert second["history_loaded"] == 2
        page = _ok(c.get(f"{A}/threads/{tid}/messages", params={"limit": 10, "offset": 0}))
        assert [m["content"] for m in page["messages"]][::2] == ["hello", "again"]
        assert [m["id"] for m in page["messages"]] == [1, 2, 3, 4]
        assert all(m["timestamp"].endswith("+00:00") for m in page["messages"])
        tail = _ok(c.get(f"{A}/threads/{tid}/messages", params={"limit": 2, "offset": 2}))
        assert [m["id"] for m in tail["messages"]] == [3, 4]

        patched = _ok(
            c.patch(f"{A}/threads/{tid}", json={"title": "renamed", "metadata": {"b": 2}})
        )
        assert patched["title"] == "renamed" and patched["metadata"] == {"a": 1, "b": 2}

        fork_id = f"{tid}-fork"
        fork = _ok(
            c.post(
                f"{A}/threads/{tid}/fork",
                json={"message_index": 1, "new_thread_id": fork_id, "title": "forked"},
            )
        )
        assert fork["parent_thread_id"] == tid and fork["fork_message_index"] == 1
        assert fork["message_count"] == 2
        forked = _ok(c.get(f"{A}/threads/{fork_id}/messages"))["messages"]
        assert [(m["content"], m["timestamp"]) for m in forked] == [
            (m["content"], m["timestamp"]) for m in page["messages"][:2]
        ]
        grand = _ok(
            c.post(
                f"{A}/threads/{fork_id}/fork",
                json={"message_index": 0, "new_thread_id": f"{tid}-g"},
            )
        )
        lineage = _ok(c.get(f"{A}/threads/{tid}/lineage"))
        assert [t["id"] for t in lineage["descendants"]] == [fork_id, grand["id"]]
        up = _ok(c.get(f"{A}/threads/{grand['id']}/lineage"))
        assert [t["id"] for t in up["ancestors"]] == [tid, fork_id]
        assert c.post(f"{A}/threads/{tid}/fork", json={"message_index": 99}).status_code == 404
        assert c.post(f"{A}/threads/nope-{tid}/fork", json={"message_index": 0}).status_code == 404

        listed = _ok(c.get(f"{A}/threads", params={"user_id": user}))
        assert listed["threads"][0]["id"] == grand["id"]  # newest updated first
        assert {t["id"] for t in listed["threads"]} == {tid, fork_id, grand["id"]}

        recorded = _ok(
            c.post(
                f"{A}/feedback",
                json={
                    "thread_id": tid,
                    "user_id": user,
                    "rating": 5,
                    "comment": "nice",
                    "query": "hello",
                    "response": "echo",
                    "feedback_type": "rating",
                },
            )
        )
        assert recorded["status"] == "recorded"
        api_fb = _ok(
            c.post(
                "/api/v1/feedback",
                params={"thread_id": tid, "user_id": user, "agent_name": "echo", "rating": 4},
            )
        )
        assert api_fb["rating"] == 4 and api_fb["feedback_type"] == "thumbs"
        mine = [f for f in _ok(c.get(f"{A}/feedback"))["feedback"] if f["user_id"] == user]
        assert [f["rating"] for f in mine] == [4, 5]  # newest first
        assert mine[1]["comment"] == "nice" and mine[1]["feedback_type"] == "rating"

        s1 = c.post(
            f"{A}/chat", json={"content": "please approve me", "thread_id": tid, "user_id": user}
        )
        assert s1.status_code == 202
        s2 = c.post(
            f"{A}/chat", json={"content": "approve this too", "thread_id": tid, "user_id": user}
        )
        approval_1 = s1.json()["detail"]["approval_id"]
        approval_2 = s2.json()["detail"]["approval_id"]
        pending = _ok(c.get(f"{A}/threads/{tid}/pending"))
        assert {p["id"] for p in pending["pending"]} == {approval_1, approval_2}
        assert all(p["node_name"] == "human_review" for p in pending["pending"])
        approved = _ok(c.post(f"{A}/threads/{tid}/approve", json={"approval_id": approval_1}))
        assert "approved=True" in approved["response"]
        rejected = _ok(
            c.post(f"{A}/threads/{tid}/reject", json={"approval_id": approval_2, "reason": "no"})
        )
        assert rejected["status"] == "rejected"
        assert _ok(c.get(f"{A}/threads/{tid}/pending"))["count"] == 0
        assert (
            c.post(f"{A}/threads/{tid}/approve", json={"approval_id": "missing"}).status_code == 404
        )

        stats = _ok(c.get("/api/v1/storage/stats"))
        assert stats["backend"] == "LibSQLStore" and stats["threads"] >= 3
        assert c.get("/health").json()["storage"]["status"] == "healthy"

        assert _ok(c.delete(f"{A}/threads/{fork_id}"))["status"] == "deleted"
        orphan = _ok(c.get(f"{A}/threads/{grand['id']}"))
        assert orphan["parent_thread_id"] is None
        assert _ok(c.get(f"{A}/threads/{grand['id']}/messages"))["count"] == 1
        cleared = _ok(c.delete(f"{A}/threads/{tid}/messages"))
        assert cleared["thread"]["message_count"] == 0
        with pytest.raises(sqlstore.ConflictError):  # a taken id is refused, not overwritten
            c.post(f"{A}/threads", json={"thread_id": tid, "user_id": "other"})
        assert _ok(c.get(f"{A}/threads/{tid}"))["user_id"] == user


@pytest.fixture
async def ago(db_url: str) -> AsyncIterator[LibSQLStore]:
    store = LibSQLStore(db_url)
    await store.initialize()
    await store.initialize()  # the platform may call it twice
    yield store
    await store.close()


async def test_duplicate_create_is_refused(ago: LibSQLStore) -> None:
    tid = unique("t")
    await ago.create_thread(tid, "alice", "echo", title="mine", metadata={"k": 1})
    with pytest.raises(sqlstore.ConflictError):
        await ago.create_thread(tid, "bob", "echo", title="theirs")
    kept = await ago.get_thread(tid)
    assert kept is not None and kept["user_id"] == "alice" and kept["metadata"] == {"k": 1}


async def test_memory_reads_the_newest_messages(ago: LibSQLStore) -> None:
    tid = unique("t")
    await ago.create_thread(tid, "u", "echo")
    for i in range(30):
        await ago.add_message(tid, "user", f"m{i}")
    memory = await ago.get_messages(tid, limit=5)  # what the memory manager calls
    assert [m["content"] for m in memory] == [f"m{i}" for i in range(25, 30)]
    oldest = await ago.get_messages(tid, limit=5, offset=0)  # what the route calls
    assert [m["content"] for m in oldest] == [f"m{i}" for i in range(5)]
    assert [m["id"] for m in await ago.get_messages(tid, limit=3, offset=10)] == [11, 12, 13]
    assert len(await ago.get_messages(tid, limit=5000)) == 30
    thread = await ago.get_thread(tid)
    assert thread is not None and thread["message_count"] == 30


async def test_expired_state_is_never_returned(ago: LibSQLStore) -> None:
    tid = unique("t")
    await ago.create_thread(tid, "u", "echo")
    saved = await ago.save_suspended_state("ap-" + tid, tid, "echo", "review", {"q": "x"})
    assert saved["state_snapshot"] == {"q": "x"} and saved["node_name"] == "review"
    assert (await ago.get_suspended_state("ap-" + tid)) == saved
    await ago.store.execute("UPDATE approvals SET expires_at = 1 WHERE id = ?", ("ap-" + tid,))
    assert await ago.get_suspended_state("ap-" + tid) is None
    assert await ago.list_suspended_states(thread_id=tid) == []
    assert await ago.cleanup_expired_states() >= 1
    assert await ago.delete_suspended_state("ap-" + tid) is False


async def test_threads_feedback_checkpoints_and_logs(ago: LibSQLStore) -> None:
    user = unique("u")
    tid = unique("t")
    await ago.create_thread(tid, user, "echo", metadata={"a": 1})
    assert (await ago.update_thread(tid, metadata={"b": 2}))["metadata"] == {"a": 1, "b": 2}  # type: ignore[index]
    assert await ago.update_thread(unique("none"), title="x") is None
    fb = await ago.add_feedback(tid, user, "echo", rating=5, message_id=2, query="q")
    assert fb["message_id"] == 2 and fb["response"] == "" and fb["feedback_type"] == "thumbs"
    assert [f["id"] for f in await ago.get_feedback(user_id=user)] == [fb["id"]]
    await ago.save_checkpoint(tid, "", "c1", None, {"v": 1}, {"step": 1})
    await ago.save_checkpoint(tid, "", "c2", "c1", {"v": 2}, {"step": 2})
    latest = await ago.get_checkpoint(tid, "", "")
    assert latest is not None and latest["checkpoint"] == {"v": 2}
    assert latest["parent_checkpoint_id"] == "c1"
    listed = await ago.list_checkpoints(tid, "")
    assert [c["checkpoint_id"] for c in listed] == ["c2", "c1"]
    assert [c["checkpoint_id"] for c in await ago.list_checkpoints(tid, "", before="c2")] == ["c1"]
    assert await ago.fork_thread(tid, 0, unique("f")) is None  # no message at index 0
    assert await ago.fork_thread(tid, -1, unique("f")) is None

    log = await ago.create_invocation_log(
        agent_name="echo", thread_id=tid, input_data={"x": 1}, duration_ms=1.5
    )
    assert (await ago.get_invocation_log(log["id"])) == log
    assert [x["id"] for x in await ago.list_invocation_logs(thread_id=tid)] == [log["id"]]
    assert await ago.count_invocation_logs(thread_id=tid) == 1
    name = unique("agent")
    analysis = await ago.save_log_analysis(
        agent_name=name, score=0.5, summary="s", status="ok", recommendations=["r"]
    )
    assert await ago.get_latest_log_analysis(name) == analysis
    assert await ago.list_log_analyses(agent_name=name) == [analysis]
    run = await ago.create_optimization_run(
        experiment_id="e", agent_name=name, best_score=0.9, learnings=["l"]
    )
    assert await ago.get_optimization_run(run["id"]) == run
    assert await ago.list_optimization_runs(agent_name=name) == [run]

    assert await ago.delete_thread(tid) is True
    assert await ago.get_checkpoint(tid, "", "") is None
    assert await ago.get_feedback(user_id=user) == []
    assert await ago.delete_thread(tid) is False
    health = await ago.health_check()
    assert health["status"] == "healthy"


async def test_concurrent_chats_keep_every_message(ago: LibSQLStore) -> None:
    tid = unique("t")
    await ago.create_thread(tid, "u", "echo")
    await asyncio.gather(*(ago.add_message(tid, "user", f"m{i}") for i in range(20)))
    messages = await ago.get_messages(tid, limit=100, offset=0)
    assert sorted(m["content"] for m in messages) == sorted(f"m{i}" for i in range(20))
    assert [m["id"] for m in messages] == list(range(1, 21))


def test_iso_matches_datetime() -> None:
    def reference(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()

    probes = [0, 1, 999, 1000, 59_999, 60_000, 1_712_345_678_000, 1_712_345_678_901]
    probes += [4_102_444_799_999, 4_102_444_800_000, 4_102_444_800_001, 253_402_300_799_999]
    probes += [1_700_000_000_000 + 7_919 * i for i in range(5000)]
    for ms in probes:
        assert compat.iso(ms) == reference(ms), ms
    assert compat.iso(None) is None


async def test_row_reads_match_the_domain_decoding(
    ago: LibSQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compat, "MAX_LIMIT", 4)  # page through every loop with few rows
    user, tid = unique("u"), unique("t")
    await ago.create_thread(tid, user, "echo", title="t", metadata={"a": [1]})
    base = 1_712_345_678_000
    await ago.store.threads.add_messages(
        tid,
        [
            {
                "role": "user" if i % 2 else "assistant",
                "content": f"m{i}" if i % 3 else [{"text": f"m{i}"}],
                "metadata": {"i": i} if i % 4 else None,
                "created_at": base + 1_237 * (i // 3),  # some share a time
            }
            for i in range(11)
        ],
    )
    stored = [compat.message_dict(m) for m in await ago.store.threads.messages(tid)]
    assert len(stored) == 11 and stored[3]["metadata"] == {"i": 3}
    for limit in (1, 4, 5, 9, 11, 50):
        assert await ago.get_messages(tid, limit=limit) == stored[-limit:]
        for offset in (0, 3, 10, 11):
            page = stored[offset : offset + limit]
            assert await ago.get_messages(tid, limit=limit, offset=offset) == page
    assert await ago.get_messages(tid, limit=0) == []

    for i in range(6):
        await ago.create_thread(f"{tid}-{i}", user, "echo", metadata={"n": i} if i % 2 else None)
    touched = "UPDATE threads SET updated_at = updated_at + 5001 WHERE id = ?"
    await ago.store.execute(touched, (f"{tid}-2",))  # updated_at later than created_at
    native = [compat.thread_dict(t) for t in await ago.store.threads.list(user_id=user)]
    assert len(native) == 7 and native[0]["id"] == f"{tid}-2"
    for limit in (1, 4, 5, 7, 20):
        assert await ago.list_threads(user_id=user, limit=limit) == native[:limit]
        for offset in (0, 2, 6, 7):
            page = native[offset : offset + limit]
            assert await ago.list_threads(user_id=user, limit=limit, offset=offset) == page
    assert await ago.list_threads(user_id=user, agent_name="echo", limit=3) == native[:3]
    assert await ago.list_threads(user_id=user, agent_name="other") == []
