"""The generic checkpoints API (store.checkpoints) on both backends."""

from __future__ import annotations

import pytest

import sqlstore
from sqlstore.domains.common import new_id
from sqlstore.errors import ValidationError
from tests.conftest import unique


async def test_save_get_json_and_bytes(store: sqlstore.Store) -> None:
    thread = unique("thread")
    first, second = new_id(), new_id()
    saved = await store.checkpoints.save(
        thread, first, {"step": 1, "values": ["a", "é"]}, metadata={"run_id": "r1"}
    )
    assert saved.type == "json"
    assert saved.payload == {"step": 1, "values": ["a", "é"]}
    assert saved.metadata == {"run_id": "r1"}
    assert saved.namespace == "" and saved.parent_id is None
    raw = await store.checkpoints.save(
        thread, second, b"\x00\x01raw", parent_id=first, type="msgpack"
    )
    assert raw.payload == b"\x00\x01raw" and raw.type == "msgpack"

    latest = await store.checkpoints.get(thread)
    assert latest is not None and latest.checkpoint_id == second
    assert latest.parent_id == first and latest.payload == b"\x00\x01raw"
    older = await store.checkpoints.get(thread, first)
    assert older is not None and older.payload["values"] == ["a", "é"]
    assert await store.checkpoints.get(thread, new_id()) is None
    assert await store.checkpoints.get(unique("nobody")) is None


async def test_save_is_an_upsert_keeping_created_at(store: sqlstore.Store) -> None:
    thread = unique("thread")
    cid = new_id()
    first = await store.checkpoints.save(thread, cid, {"v": 1})
    again = await store.checkpoints.save(thread, cid, {"v": 2}, metadata={"k": "x"})
    assert again.payload == {"v": 2} and again.metadata == {"k": "x"}
    assert again.created_at == first.created_at
    assert len(await store.checkpoints.list(thread)) == 1


async def test_namespaces_are_separate(store: sqlstore.Store) -> None:
    thread = unique("thread")
    root, sub = new_id(), new_id()
    await store.checkpoints.save(thread, root, 1)
    await store.checkpoints.save(thread, sub, 2, namespace="child:1")
    latest_root = await store.checkpoints.get(thread)
    assert latest_root is not None and latest_root.checkpoint_id == root
    latest_sub = await store.checkpoints.get(thread, namespace="child:1")
    assert latest_sub is not None and latest_sub.payload == 2
    assert [c.checkpoint_id for c in await store.checkpoints.list(thread)] == [sub, root]
    only_root = await store.checkpoints.list(thread, namespace="")
    assert [c.checkpoint_id for c in only_root] == [root]


async def test_list_newest_first_with_keyset_pages(store: sqlstore.Store) -> None:
    thread = unique("thread")
    ids = [new_id() for _ in range(7)]
    for i, cid in enumerate(ids):
        await store.checkpoints.save(thread, cid, {"i": i})
    page1 = await store.checkpoints.list(thread, limit=3)
    assert [c.checkpoint_id for c in page1] == ids[::-1][:3]
    page2 = await store.checkpoints.list(thread, before=page1[-1].checkpoint_id, limit=3)
    assert [c.checkpoint_id for c in page2] == ids[::-1][3:6]
    page3 = await store.checkpoints.list(thread, before=page2[-1], limit=3)  # the item itself
    assert [c.payload["i"] for c in page3] == [0]
    # The older dict shape still reads: checkpoint["payload"], and to_dict().
    assert page3[0]["payload"] == {"i": 0} and page3[0].to_dict()["checkpoint_id"] == ids[0]
    with pytest.raises(KeyError):
        page3[0]["nope"]


async def test_delete_thread(store: sqlstore.Store) -> None:
    thread, other = unique("thread"), unique("thread")
    for _ in range(3):
        await store.checkpoints.save(thread, new_id(), {})
    await store.checkpoints.save(thread, new_id(), {}, namespace="ns")
    await store.checkpoints.save(other, new_id(), {})
    assert await store.checkpoints.delete_thread(thread) == 4
    assert await store.checkpoints.list(thread) == []
    assert len(await store.checkpoints.list(other)) == 1
    assert await store.checkpoints.delete_thread(thread) == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.save("", new_id(), {}),
        lambda c: c.save("t", "", {}),
        lambda c: c.save("t", new_id(), {1, 2}),
        lambda c: c.save("t", new_id(), {"x": object()}),
        lambda c: c.save("t", new_id(), {}, namespace=None),
        lambda c: c.save("t", new_id(), {}, metadata=["not", "a", "dict"]),
        lambda c: c.save("t", new_id(), {}, type="msgpack"),
        lambda c: c.save("t", new_id(), b"x", type=""),
        lambda c: c.save("t", new_id(), {}, parent_id=5),
        lambda c: c.get(None),
        lambda c: c.list("t", limit=0),
        lambda c: c.list("t", limit=10_000),
        lambda c: c.list("t", before=""),
        lambda c: c.delete_thread(""),
    ],
)
async def test_bad_input_is_rejected_before_io(db_url: str, call: object) -> None:
    # A store that was never initialized: any I/O would raise UnavailableError instead.
    store = sqlstore.Store(db_url)
    with pytest.raises(ValidationError):
        await call(store.checkpoints)  # type: ignore[operator]
