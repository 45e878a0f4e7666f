"""Threads, messages, feedback, approvals, forks and lineage on both backends."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

import sqlstore
from sqlstore.domains.messages import NewMessage
from tests.conftest import unique


async def _thread_with(store: sqlstore.Store, n: int, user: str | None = None) -> str:
    thread = await store.threads.create(user or unique("u"), agent_id="bot", title="t")
    await store.threads.add_messages(
        thread.id,
        [
            NewMessage("user" if i % 2 == 0 else "assistant", f"m{i}", created_at=1000 + i)
            for i in range(n)
        ],
    )
    return thread.id


# --- threads -------------------------------------------------------------------------


async def test_create_get_and_duplicate_is_a_conflict(store: sqlstore.Store) -> None:
    tid = unique("t")
    created = await store.threads.create("alice", thread_id=tid, title="hi", metadata={"a": 1})
    assert created.id == tid and created.root_id == tid and created.message_count == 0
    with pytest.raises(sqlstore.ConflictError):
        await store.threads.create("mallory", thread_id=tid, title="overwrite", metadata={})
    with pytest.raises(sqlstore.ConflictError):
        await store.threads.create("alice", thread_id=tid, title="hi", metadata={"a": 2})
    # The create rule: the same content again is an idempotent retry (e.g. a re-sent create).
    again = await store.threads.create("alice", thread_id=tid, title="hi", metadata={"a": 1})
    assert again == created
    got = await store.threads.get(tid)
    assert got is not None
    assert (got.user_id, got.title, got.metadata) == ("alice", "hi", {"a": 1})
    assert await store.threads.get(unique("none")) is None


async def test_bad_input_is_rejected_before_io(store: sqlstore.Store) -> None:
    with pytest.raises(sqlstore.ValidationError):
        await store.threads.create("")
    with pytest.raises(sqlstore.ValidationError):
        await store.threads.create("u", metadata=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(sqlstore.ValidationError):
        await store.threads.list(limit=0)


async def test_update_merges_metadata_and_keeps_the_id(store: sqlstore.Store) -> None:
    t = await store.threads.create("u", metadata={"a": 1, "nested": {"x": 1}})
    one = await store.threads.update(t.id, metadata={"b": 2, "nested": {"y": 2}})
    assert one.metadata == {"a": 1, "b": 2, "nested": {"x": 1, "y": 2}}
    two = await store.threads.update(t.id, title="renamed", metadata={"a": None})
    assert two.id == t.id and two.title == "renamed"
    assert two.metadata == {"b": 2, "nested": {"x": 1, "y": 2}}
    stored = await store.threads.get(t.id)
    assert stored is not None and stored.metadata == two.metadata and stored.title == "renamed"
    untitled = await store.threads.update(t.id)
    assert untitled.title == "renamed"  # title not given: kept
    with pytest.raises(sqlstore.NotFoundError):
        await store.threads.update(unique("none"), metadata={"a": 1})


async def test_concurrent_metadata_updates_are_not_lost(store: sqlstore.Store) -> None:
    t = await store.threads.create("u")
    await asyncio.gather(*(store.threads.update(t.id, metadata={f"k{i}": i}) for i in range(10)))
    stored = await store.threads.get(t.id)
    assert stored is not None and stored.metadata == {f"k{i}": i for i in range(10)}


async def test_list_newest_updated_first_with_keyset_pages(store: sqlstore.Store) -> None:
    user = unique("u")
    ids = [
        (await store.threads.create(user, agent_id="a" if i % 2 else "b", created_at=1000 + i)).id
        for i in range(5)
    ]
    await store.threads.add_message(ids[1], "user", "bump")  # now the most recently updated
    listed = await store.threads.list(user_id=user)
    assert listed[0].id == ids[1]
    expected = sorted(listed, key=lambda t: (t.updated_at, t.id), reverse=True)
    assert [t.id for t in listed] == [t.id for t in expected]
    first = await store.threads.list(user_id=user, limit=2)
    rest = await store.threads.list(user_id=user, limit=10, before=first[-1])
    assert [t.id for t in first + rest] == [t.id for t in listed]
    only_a = await store.threads.list(user_id=user, agent_id="a")
    assert {t.id for t in only_a} == {ids[1], ids[3]}


async def test_list_order_is_total_on_equal_times(store: sqlstore.Store) -> None:
    user = unique("u")
    for i in range(4):
        await store.threads.create(user, thread_id=f"{user}-{i}", created_at=5000)
    listed = await store.threads.list(user_id=user)
    assert [t.id for t in listed] == [f"{user}-{i}" for i in (3, 2, 1, 0)]


# --- messages ------------------------------------------------------------------------


async def test_messages_bump_counters_and_page_both_ways(store: sqlstore.Store) -> None:
    tid = await _thread_with(store, 25)
    thread = await store.threads.get(tid)
    assert thread is not None and thread.message_count == 25 and thread.last_seq == 25
    oldest = await store.threads.messages(tid, limit=10)
    assert [m.content for m in oldest] == [f"m{i}" for i in range(10)]
    nxt = await store.threads.messages(tid, limit=10, after_seq=oldest[-1].seq)
    assert [m.content for m in nxt] == [f"m{i}" for i in range(10, 20)]
    newest = await store.threads.recent_messages(tid, limit=5)
    assert [m.content for m in newest] == [f"m{i}" for i in range(20, 25)]  # newest, in order
    older = await store.threads.recent_messages(tid, limit=5, before_seq=newest[0].seq)
    assert [m.content for m in older] == [f"m{i}" for i in range(15, 20)]


async def test_add_message_to_missing_thread_is_not_found(store: sqlstore.Store) -> None:
    with pytest.raises(sqlstore.NotFoundError):
        await store.threads.add_message(unique("none"), "user", "x")
    with pytest.raises(sqlstore.ValidationError):
        await store.threads.add_message(unique("none"), "wizard", "x")


async def test_retried_messages_are_stored_once(store: sqlstore.Store) -> None:
    t = await store.threads.create("u")
    batch = [NewMessage("user", "a", id=unique("m")), NewMessage("assistant", "b", id=unique("m"))]
    first = await store.threads.add_messages(t.id, batch)
    assert len(first) == 2
    assert await store.threads.add_messages(t.id, batch) == first  # the stored ones back
    (one,) = first[:1]
    assert await store.threads.add_message(t.id, "user", "a", message_id=one.id) == one
    again = await store.threads.get(t.id)
    assert again is not None and again.message_count == 2 and again.last_seq == 2


@pytest.mark.parametrize("size", [1, 3, 150])
async def test_a_message_id_names_one_message_in_the_whole_database(
    store: sqlstore.Store, size: int
) -> None:
    """An id stored in another thread, or in this one with other content, is a
    ConflictError naming it, and nothing of the call is stored (single and batched, also
    across the 100-row statements of a large batch)."""
    t, other = await store.threads.create("u"), await store.threads.create("u")
    taken = await store.threads.add_message(other.id, "user", "theirs", message_id=unique("m"))
    mine = await store.threads.add_message(t.id, "user", "mine", message_id=unique("m"))

    def batch(last: NewMessage) -> list[NewMessage]:
        return [NewMessage("user", f"n{i}") for i in range(size - 1)] + [last]

    cases = [
        (batch(NewMessage("user", "theirs", id=taken.id)), f"{taken.id}.*{other.id}"),
        (batch(NewMessage("user", "changed", id=mine.id)), f"{mine.id}.*other content"),
        (batch(NewMessage("assistant", "mine", id=mine.id)), "other content"),
        (batch(NewMessage("user", "mine", {"k": 1}, id=mine.id)), "other content"),
    ]
    for messages, match in cases:
        with pytest.raises(sqlstore.ConflictError, match=match):
            await store.threads.add_messages(t.id, messages)
    if size == 1:
        with pytest.raises(sqlstore.ConflictError, match=taken.id):
            await store.threads.add_message(t.id, "user", "theirs", message_id=taken.id)
    for thread, expected in ((t, [mine]), (other, [taken])):
        assert await store.threads.messages(thread.id) == expected
        got = await store.threads.get(thread.id)
        assert got is not None and got.message_count == 1 and got.last_seq == 1


# --- forks and lineage ---------------------------------------------------------------


async def test_fork_copies_prefix_with_times_and_content(store: sqlstore.Store) -> None:
    tid = await _thread_with(store, 10)
    parent = await store.threads.update(tid, metadata={"topic": "x"})
    fork = await store.threads.fork(tid, 3, title="branch", metadata={"extra": True})
    assert fork.parent_id == tid and fork.root_id == parent.root_id == tid
    assert fork.fork_seq == 4 and fork.message_count == 4 and fork.title == "branch"
    assert fork.metadata == {"topic": "x", "extra": True}
    src = await store.threads.messages(tid, limit=4)
    copied = await store.threads.messages(fork.id)
    assert [(m.seq, m.role, m.content, m.created_at) for m in copied] == [
        (m.seq, m.role, m.content, m.created_at) for m in src
    ]
    assert [m.created_at for m in copied] == [1000, 1001, 1002, 1003]
    assert {m.id for m in copied}.isdisjoint({m.id for m in src})
    more = await store.threads.add_message(fork.id, "user", "next")
    assert more.seq == 5
    untitled = await store.threads.fork(tid, 0)
    assert untitled.title == "Fork of t" and untitled.message_count == 1


async def test_fork_outside_the_thread_writes_nothing(store: sqlstore.Store) -> None:
    tid = await _thread_with(store, 3)
    child = unique("fork")
    with pytest.raises(sqlstore.ValidationError):
        await store.threads.fork(tid, 3, new_thread_id=child)
    with pytest.raises(sqlstore.ValidationError):
        await store.threads.fork(tid, -1, new_thread_id=child)
    assert await store.threads.get(child) is None
    count = await store.execute("SELECT count(*) FROM messages WHERE thread_id = ?", (child,))
    assert count.scalar() == 0
    with pytest.raises(sqlstore.NotFoundError):
        await store.threads.fork(unique("none"), 0, new_thread_id=child)
    taken = await store.threads.create("u")
    with pytest.raises(sqlstore.ConflictError):
        await store.threads.fork(tid, 0, new_thread_id=taken.id)
    # The create rule for forks: the same fork again (a re-sent call) answers the stored one.
    made = await store.threads.fork(tid, 1, new_thread_id=unique("f"), title="t", metadata={"k": 1})
    again = await store.threads.fork(tid, 1, new_thread_id=made.id, title="t", metadata={"k": 1})
    assert again == made
    for other in ({"index": 0}, {"title": "u"}, {"metadata": {"k": 2}}):
        args: dict[str, Any] = {"index": 1, "title": "t", "metadata": {"k": 1}, **other}
        with pytest.raises(sqlstore.ConflictError):
            await store.threads.fork(tid, new_thread_id=made.id, **args)
    kept = await store.threads.get(taken.id)
    assert kept is not None and kept.parent_id is None and kept.message_count == 0


async def test_lineage_has_all_ancestors_and_the_whole_subtree(store: sqlstore.Store) -> None:
    root = await _thread_with(store, 4)
    a = await store.threads.fork(root, 1)
    b = await store.threads.fork(root, 2)
    a1 = await store.threads.fork(a.id, 0)
    a1x = await store.threads.fork(a1.id, 0)
    lin = await store.threads.lineage(a1.id)
    assert lin is not None
    assert [t.id for t in lin.ancestors] == [root, a.id]
    assert [t.id for t in lin.descendants] == [a1x.id]
    top = await store.threads.lineage(root)
    assert top is not None and top.ancestors == []
    assert [t.id for t in top.descendants] == [a.id, b.id, a1.id, a1x.id]  # grandchildren too
    assert await store.threads.lineage(unique("none")) is None


async def test_lineage_survives_a_cycle(store: sqlstore.Store) -> None:
    root = await _thread_with(store, 2)
    a = await store.threads.fork(root, 0)
    b = await store.threads.fork(a.id, 0)
    await store.execute("UPDATE threads SET parent_id = ? WHERE id = ?", (b.id, a.id))
    lin = await store.threads.lineage(b.id)
    assert lin is not None
    assert {t.id for t in lin.ancestors} == {a.id}
    assert {t.id for t in lin.descendants} == {a.id}


async def test_delete_cascades_and_reroots_forks(store: sqlstore.Store) -> None:
    root = await _thread_with(store, 4)
    mid = await store.threads.fork(root, 2)
    leaf = await store.threads.fork(mid.id, 1)
    leaf2 = await store.threads.fork(leaf.id, 0)
    side = await store.threads.fork(root, 0)
    await store.feedback.add(thread_id=mid.id, rating=4)
    await store.approvals.save({"s": 1}, thread_id=mid.id)
    await store.checkpoints.save(mid.id, unique("c"), {"v": 1})

    assert await store.threads.delete(mid.id) is True
    assert await store.threads.delete(mid.id) is False
    for table in ("messages", "feedback", "approvals", "checkpoints"):
        left = await store.execute(f"SELECT count(*) FROM {table} WHERE thread_id = ?", (mid.id,))
        assert left.scalar() == 0, table
    moved = await store.threads.get(leaf.id)
    assert moved is not None and moved.parent_id is None and moved.root_id == leaf.id
    assert [m.content for m in await store.threads.messages(leaf.id)] == ["m0", "m1"]
    below = await store.threads.get(leaf2.id)
    assert below is not None and below.root_id == leaf.id and below.parent_id == leaf.id
    lin = await store.threads.lineage(leaf2.id)
    assert lin is not None and [t.id for t in lin.ancestors] == [leaf.id]
    top = await store.threads.lineage(root)
    assert top is not None and [t.id for t in top.descendants] == [side.id]
    again = await store.threads.fork(leaf2.id, 0)
    assert again.root_id == leaf.id

    assert await store.threads.delete(root) is True  # deleting a root re-roots its forks
    alone = await store.threads.get(side.id)
    assert alone is not None and alone.root_id == side.id and alone.parent_id is None


# --- feedback ------------------------------------------------------------------------


async def test_feedback_add_validate_and_list(store: sqlstore.Store) -> None:
    tid = await _thread_with(store, 2)
    user, agent = unique("u"), unique("agent")
    with pytest.raises(sqlstore.ValidationError):
        await store.feedback.add(thread_id=tid, rating=6)
    with pytest.raises(sqlstore.ValidationError):
        await store.feedback.add(thread_id=tid, rating=0)
    with pytest.raises(sqlstore.NotFoundError):
        await store.feedback.add(thread_id=unique("none"), rating=3)
    made = [
        await store.feedback.add(
            thread_id=tid,
            user_id=user,
            agent_id=agent,
            rating=1 + i % 5,
            comment=f"c{i}",
            correction="better",
            query="q",
            response="r",
            metadata={"i": i},
            message_id="m",
        )
        for i in range(6)
    ]
    by_thread = await store.feedback.list(thread_id=tid)
    assert [f.id for f in by_thread] == [f.id for f in reversed(made)]
    page = await store.feedback.list(user_id=user, limit=4)
    rest = await store.feedback.list(user_id=user, before=page[-1])
    assert [f.id for f in page + rest] == [f.id for f in reversed(made)]
    by_agent = await store.feedback.list(agent_id=agent, limit=1)
    assert by_agent[0].comment == "c5" and by_agent[0].metadata == {"i": 5}
    fid = unique("fb")
    first = await store.feedback.add(feedback_id=fid, thread_id=tid, rating=5)
    retry = await store.feedback.add(feedback_id=fid, thread_id=tid, rating=5)
    assert first == retry
    changes: list[dict[str, Any]] = [
        {"rating": 4},
        {"comment": "more"},
        {"created_at": 1},
        {"thread_id": None},
    ]
    for changed in changes:
        with pytest.raises(sqlstore.ConflictError, match=fid):
            await store.feedback.add(
                **{"feedback_id": fid, "thread_id": tid, "rating": 5, **changed}
            )
    assert await store.feedback.list(thread_id=tid, limit=1) == [first]
    assert len(await store.feedback.list(thread_id=tid, limit=100)) == 7


# --- approvals -----------------------------------------------------------------------


async def test_approvals_ttl_and_expiry(store: sqlstore.Store) -> None:
    tid = await _thread_with(store, 1)
    agent = unique("agent")
    live = await store.approvals.save({"q": "x"}, thread_id=tid, agent_id=agent, node="review")
    assert live.expires_at - live.created_at == 7 * 86400 * 1000
    short = await store.approvals.save({"q": "y"}, thread_id=tid, agent_id=agent, ttl=0.001)
    await asyncio.sleep(0.05)
    assert await store.approvals.get(short.id) is None  # expired, before any cleanup
    got = await store.approvals.get(live.id)
    assert got is not None and got.state == {"q": "x"} and got.node == "review"
    assert [a.id for a in await store.approvals.list(thread_id=tid)] == [live.id]
    assert [a.id for a in await store.approvals.list(agent_id=agent)] == [live.id]
    longer = await store.approvals.save({"q": "z"}, agent_id=agent, ttl=timedelta(hours=1))
    assert longer.expires_at - longer.created_at == 3600 * 1000
    page = await store.approvals.list(agent_id=agent, limit=1)
    assert [a.id for a in page] == [longer.id]
    assert [a.id for a in await store.approvals.list(agent_id=agent, before=page[0])] == [live.id]
    assert await store.approvals.cleanup_expired() >= 1
    left = await store.execute("SELECT count(*) FROM approvals WHERE id = ?", (short.id,))
    assert left.scalar() == 0
    assert await store.approvals.delete(live.id) is True
    assert await store.approvals.delete(live.id) is False
    with pytest.raises(sqlstore.ValidationError):
        await store.approvals.save({}, ttl=0)


async def test_stats_and_health(store: sqlstore.Store) -> None:
    before = await store.stats()
    tid = await _thread_with(store, 3)
    await store.feedback.add(thread_id=tid, rating=5)
    await store.approvals.save({}, thread_id=tid)
    after = await store.stats()
    assert after["threads"] >= before["threads"] + 1
    assert after["messages"] >= before["messages"] + 3
    assert after["feedback"] >= before["feedback"] + 1
    assert after["approvals"] >= before["approvals"] + 1
    assert (await store.health_check())["ok"] is True


async def test_add_many_messages_across_insert_statements(store: sqlstore.Store) -> None:
    """More messages than one INSERT takes: numbered 1..n without gaps, counters right."""
    from sqlstore.domains.messages import VALUES_ROWS

    thread = await store.threads.create(unique("user"))
    n = VALUES_ROWS + 1
    added = await store.threads.add_messages(
        thread.id, [{"role": "user", "content": i} for i in range(n)]
    )
    assert [(m.seq, m.content) for m in added] == [(i + 1, i) for i in range(n)]
    again = await store.threads.add_messages(thread.id, [{"role": "assistant", "content": "x"}])
    assert [m.seq for m in again] == [n + 1]
    fresh = await store.threads.get(thread.id)
    assert fresh is not None and fresh.message_count == n + 1 and fresh.last_seq == n + 1


async def test_seq_never_goes_back_after_deletes(store: sqlstore.Store) -> None:
    """After the newest messages are deleted (by any path), the next message of the thread
    or conversation gets a seq above every seq it ever had."""
    thread = await store.threads.create(unique("user"))
    await store.threads.add_messages(thread.id, [{"role": "user", "content": i} for i in "abc"])
    await store.execute("DELETE FROM messages WHERE thread_id = ? AND seq >= 2", (thread.id,))
    one = await store.threads.add_message(thread.id, "assistant", "d")
    assert one.seq == 4
    many = await store.threads.add_messages(
        thread.id, [{"role": "user", "content": i} for i in "ef"]
    )
    assert [m.seq for m in many] == [5, 6]

    k = (unique("user"), "s", "a")
    saved = await store.conversations.save_many(*k, [{"role": "user", "content": i} for i in "ab"])
    await store.execute("DELETE FROM messages WHERE thread_id = ?", (saved.thread_id,))
    again = await store.conversations.save(*k, {"role": "user", "content": "c"})
    assert [m.seq for m in again.inserted] == [3]
    more = await store.conversations.save_many(
        *k, [{"role": "user", "content": i} for i in "de"], skip_same_role=False
    )
    assert [m.seq for m in more.inserted] == [4, 5]


async def test_every_list_pages_with_the_boundary_item_of_the_previous_page(
    store: sqlstore.Store,
) -> None:
    """One paging shape: the item itself is the cursor (its seq, time and id, or checkpoint
    id are accepted too), for thread messages, conversations, sessions and checkpoints."""
    tid = await _thread_with(store, 7)
    forward = await store.threads.messages(tid, limit=3)
    nxt = await store.threads.messages(tid, limit=3, after=forward[-1])
    assert [m.seq for m in forward + nxt] == [1, 2, 3, 4, 5, 6]
    assert nxt == await store.threads.messages(tid, limit=3, after_seq=3)
    back = await store.threads.recent_messages(tid, limit=3)
    older = await store.threads.recent_messages(tid, limit=3, before=back[0])
    assert [m.seq for m in older + back] == [2, 3, 4, 5, 6, 7]
    assert older == await store.threads.recent_messages(tid, limit=3, before_seq=5)

    user = unique("u")
    conv = store.conversations
    for agent in ("a", "b"):
        await conv.save_many(user, "s1", agent, [{"role": "user", "content": i} for i in "xyz"])
    await conv.save(user, "s2", "a", {"role": "user", "content": "later"})
    newest = await conv.newest(user, "s1", "a", 2)
    assert [m.seq for m in await conv.newest(user, "s1", "a", 2, before=newest[0])] == [1]
    page = await conv.session(user, "s1", 4)
    rest = await conv.session(user, "s1", 4, before=page[0])
    assert len(page) == 4 and len(rest) == 2
    assert rest == await conv.session(user, "s1", 4, before=page[0].message)
    first = await conv.sessions(user, 1)
    assert [s.session_id for s in await conv.sessions(user, 5, before=first[-1])] == ["s1"]
    with pytest.raises(sqlstore.ValidationError):
        await store.threads.messages(tid, after="3")  # type: ignore[arg-type]
