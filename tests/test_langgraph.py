"""LibSQLSaver: LangGraph's conformance suite, a real graph with interrupt/resume across a
restart, time travel, and the saver's own behaviour, on both backends."""

from __future__ import annotations

import asyncio
import operator
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple, empty_checkpoint
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT, RESUME
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, StateSnapshot, interrupt

import sqlstore
from sqlstore.compat.langgraph import LibSQLSaver
from sqlstore.drivers.local import LocalClient
from sqlstore.errors import ValidationError
from tests.conftest import unique
from tests.vm_steps import vm_steps

# -- LangGraph's conformance suite -------------------------------------------------------


async def test_conformance_suite_full(db_url: str) -> None:
    @checkpointer_test(name="LibSQLSaver")
    async def factory() -> AsyncIterator[LibSQLSaver]:
        async with LibSQLSaver.from_url(db_url) as saver:
            yield saver

    report = await validate(factory)
    report.print_report()
    expected = {c.value for c in ALL_CAPABILITIES}
    assert set(report.results) == expected
    for name, result in report.results.items():
        assert result.detected, f"{name} not detected"
        assert result.tests_skipped == 0, f"{name} skipped tests"
        assert result.tests_failed == 0, f"{name} failed: {result.failures}"
        assert result.passed is True and result.tests_passed > 0, name
    assert report.passed_all_base() and report.passed_all()
    assert report.conformance_level() == "FULL"
    counts = {name: r.tests_passed for name, r in report.results.items()}
    assert sum(counts.values()) >= 58 + 23, counts


# -- a real graph: interrupt, restart, resume, time travel -------------------------------


class State(TypedDict, total=False):
    topic: str
    draft: str
    notes: Annotated[list[str], operator.add]
    approved: str


async def write(state: State) -> dict[str, Any]:
    return {"draft": f"draft about {state['topic']}", "notes": [f"wrote {state['topic']}"]}


async def review(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "approve?", "draft": state["draft"]})
    return {"approved": answer, "notes": [f"reviewed: {answer}"]}


def write_sync(state: State) -> dict[str, Any]:
    return {"draft": f"draft about {state['topic']}", "notes": [f"wrote {state['topic']}"]}


def review_sync(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "approve?", "draft": state["draft"]})
    return {"approved": answer, "notes": [f"reviewed: {answer}"]}


def build(sync: bool = False) -> StateGraph[State]:
    builder = StateGraph(State)
    if sync:
        builder.add_node("write", write_sync)
        builder.add_node("review", review_sync)
    else:
        builder.add_node("write", write)
        builder.add_node("review", review)
    builder.add_edge(START, "write")
    builder.add_edge("write", "review")
    builder.add_edge("review", END)
    return builder


def config(thread: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread}}


def summary(snapshots: list[StateSnapshot]) -> list[tuple[Any, ...]]:
    """What must match between savers: steps, sources, next nodes and values."""
    metas = [dict(s.metadata or {}) for s in snapshots]
    return [
        (m.get("step"), m.get("source"), s.next, s.values)
        for m, s in zip(metas, snapshots, strict=True)
    ]


async def reference_run() -> tuple[dict[str, Any], dict[str, Any], list[tuple[Any, ...]]]:
    graph = build().compile(checkpointer=InMemorySaver())
    cfg = config("reference")
    first = await graph.ainvoke({"topic": "cats", "notes": []}, cfg)
    final = await graph.ainvoke(Command(resume="yes"), cfg)
    history = [s async for s in graph.aget_state_history(cfg)]
    return first, final, summary(history)


async def test_interrupt_then_resume_in_a_new_saver(db_url: str) -> None:
    ref_first, ref_final, ref_history = await reference_run()
    cfg = config(unique("thread"))

    async with LibSQLSaver.from_url(db_url) as saver:
        graph = build().compile(checkpointer=saver)
        first = await graph.ainvoke({"topic": "cats", "notes": []}, cfg)
        state = await graph.aget_state(cfg)
    assert state.next == ("review",)
    assert [i.value for i in first["__interrupt__"]] == [
        i.value for i in ref_first["__interrupt__"]
    ]

    # A "restarted process": the first saver and its store are closed; a new one resumes.
    async with sqlstore.Store(db_url) as store:
        saver2 = LibSQLSaver(store)
        graph = build().compile(checkpointer=saver2)
        pending = await graph.aget_state(cfg)
        assert pending.next == ("review",)
        assert [i.value for i in pending.interrupts] == [
            {"question": "approve?", "draft": "draft about cats"}
        ]
        final = await graph.ainvoke(Command(resume="yes"), cfg)
        history = [s async for s in graph.aget_state_history(cfg)]
    assert final == ref_final
    assert final["notes"] == ["wrote cats", "reviewed: yes"]
    assert summary(history) == ref_history


async def test_time_travel_and_fork_match_in_memory_saver(db_url: str) -> None:
    async def travel(saver: Any, thread: str) -> list[Any]:
        graph = build().compile(checkpointer=saver)
        cfg = config(thread)
        first = await graph.ainvoke({"topic": "cats", "notes": []}, cfg)
        first["__interrupt__"] = [i.value for i in first["__interrupt__"]]  # ids differ
        outputs: list[Any] = [first]
        outputs.append(await graph.ainvoke(Command(resume="yes"), cfg))
        history = [s async for s in graph.aget_state_history(cfg)]
        before_review = next(s for s in history if s.next == ("review",))
        replay = await graph.ainvoke(None, before_review.config)  # hits the interrupt again
        outputs.append([i.value for i in replay["__interrupt__"]])
        outputs.append(await graph.ainvoke(Command(resume="no"), cfg))
        fork = await graph.aupdate_state(before_review.config, {"draft": "edited draft"})
        forked = await graph.ainvoke(None, fork)
        outputs.append([i.value for i in forked["__interrupt__"]])
        outputs.append(await graph.ainvoke(Command(resume="fork-ok"), cfg))
        outputs.append(summary([s async for s in graph.aget_state_history(cfg)]))
        outputs.append(summary([s async for s in graph.aget_state_history(cfg, limit=3)]))
        return outputs

    expected = await travel(InMemorySaver(), "reference")
    async with LibSQLSaver.from_url(db_url) as saver:
        got = await travel(saver, unique("thread"))
    assert got == expected
    assert got[3]["approved"] == "no" and got[5]["draft"] == "edited draft"
    assert len(got[6]) == 8 and len(got[7]) == 3


async def test_delete_thread_removes_everything(db_url: str) -> None:
    thread, other = unique("thread"), unique("thread")
    async with LibSQLSaver.from_url(db_url) as saver:
        graph = build().compile(checkpointer=saver)
        for t in (thread, other):
            await graph.ainvoke({"topic": "cats", "notes": []}, config(t))
        await saver.adelete_thread(thread)
        assert await saver.aget_tuple(config(thread)) is None
        assert [t async for t in saver.alist(config(thread))] == []
        assert (await graph.aget_state(config(thread))).values == {}
        for table in ("checkpoints", "checkpoint_writes", "checkpoint_blobs"):
            left = await saver.store.execute(
                f"SELECT count(*) FROM {table} WHERE thread_id = ?", (thread,)
            )
            assert left.scalar() == 0, table
        assert (await graph.aget_state(config(other))).next == ("review",)


async def test_sync_methods_from_another_thread(db_url: str) -> None:
    cfg = config(unique("thread"))
    async with LibSQLSaver.from_url(db_url) as saver:
        graph = build(sync=True).compile(checkpointer=saver)
        # A sync graph run in a worker thread uses put / put_writes / get_tuple.
        out = await asyncio.to_thread(lambda: graph.invoke({"topic": "dogs", "notes": []}, cfg))
        assert "__interrupt__" in out
        final = await asyncio.to_thread(lambda: graph.invoke(Command(resume="ok"), cfg))
        assert final["approved"] == "ok"
        latest = await asyncio.to_thread(saver.get_tuple, cfg)
        assert latest is not None and latest.checkpoint["channel_values"]["approved"] == "ok"
        listed = await asyncio.to_thread(lambda: list(saver.list(cfg, limit=2)))
        assert [t.checkpoint["id"] for t in listed][:1] == [latest.checkpoint["id"]]
        assert len(listed) == 2
        thread_id = cfg["configurable"]["thread_id"]
        await asyncio.to_thread(saver.delete_thread, thread_id)
        assert await saver.aget_tuple(cfg) is None
        with pytest.raises(asyncio.InvalidStateError):
            saver.get_tuple(cfg)  # on the loop's own thread: refused, not deadlocked
        with pytest.raises(asyncio.InvalidStateError):
            saver.put(cfg, empty_checkpoint(), {}, {})
    assert threading.active_count() >= 1


# -- the saver's own behaviour ----------------------------------------------------------


def put_config(thread: str, parent: str | None = None, ns: str = "") -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread, "checkpoint_ns": ns}
    if parent is not None:
        conf["checkpoint_id"] = parent
    return {"configurable": conf}


def checkpoint(values: dict[str, Any], versions: dict[str, Any]) -> Any:
    cp = empty_checkpoint()
    cp["channel_values"] = values
    cp["channel_versions"] = versions
    return cp


async def test_unchanged_channels_are_stored_once(db_url: str) -> None:
    thread = unique("thread")
    big = [{"n": i, "text": "x" * 50} for i in range(200)]
    async with LibSQLSaver.from_url(db_url) as saver:
        parent = None
        for step in range(5):
            cp = checkpoint({"big": big, "step": step}, {"big": "1", "step": str(step + 1)})
            new: dict[str, Any] = {"step": str(step + 1)}
            if step == 0:
                new["big"] = "1"
            stored = await saver.aput(put_config(thread, parent), cp, {"step": step}, new)
            parent = stored["configurable"]["checkpoint_id"]
        blobs = await saver.store.execute(
            "SELECT channel, count(*) FROM checkpoint_blobs WHERE thread_id = ? GROUP BY channel",
            (thread,),
        )
        assert [tuple(r) for r in blobs.rows] == [("big", 1)]  # small "step" stays inline
        tuples = [t async for t in saver.alist(config(thread))]
        assert [t.checkpoint["channel_values"]["step"] for t in tuples] == [4, 3, 2, 1, 0]
        assert all(t.checkpoint["channel_values"]["big"] == big for t in tuples)
        await saver.aprune([thread], strategy="keep_latest")
        kept = [t async for t in saver.alist(config(thread))]
        assert len(kept) == 1 and kept[0].checkpoint["channel_values"]["big"] == big
        await saver.aprune([thread], strategy="delete")
        assert await saver.aget_tuple(config(thread)) is None
        left = await saver.store.execute(
            "SELECT count(*) FROM checkpoint_blobs WHERE thread_id = ?", (thread,)
        )
        assert left.scalar() == 0


async def test_pending_writes_idempotent_and_sorted(db_url: str) -> None:
    thread = unique("thread")
    async with LibSQLSaver.from_url(db_url) as saver:
        stored = await saver.aput(put_config(thread), checkpoint({}, {}), {}, {})
        await saver.aput_writes(stored, [("b", 1), ("a", 2)], "task-2", "~path, 2")
        await saver.aput_writes(stored, [("b", 99), ("a", 98)], "task-2", "~path, 2")  # retry
        await saver.aput_writes(stored, [("x", "first")], "task-1", "~path, 1")
        await saver.aput_writes(stored, [(INTERRUPT, "ask")], "task-1", "~path, 1")
        await saver.aput_writes(stored, [(INTERRUPT, "ask again")], "task-1", "~path, 1")
        await saver.aput_writes(stored, [(ERROR, "boom"), (RESUME, "yes")], "task-3", "")
        tup = await saver.aget_tuple(stored)
    assert tup is not None
    assert tup.pending_writes == [
        ("task-3", RESUME, "yes"),  # task_path "" sorts first; idx -4 before -1
        ("task-3", ERROR, "boom"),
        ("task-1", INTERRUPT, "ask again"),  # special channel: the retry replaces
        ("task-1", "x", "first"),
        ("task-2", "b", 1),  # ordinary channel: the first copy is kept
        ("task-2", "a", 2),
    ]


async def test_every_write_is_one_batch(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    thread = unique("thread")
    async with LibSQLSaver.from_url(db_url) as saver:
        await saver.setup()
        calls: list[str] = []
        db = saver.store.resending  # what the saver writes and reads through
        real_batch, real_execute = db.batch, db.execute

        async def batch(statements: Any) -> Any:
            calls.append("batch")
            return await real_batch(statements)

        async def execute(sql: str, args: Any = ()) -> Any:
            calls.append("execute")
            return await real_execute(sql, args)

        monkeypatch.setattr(db, "batch", batch)
        monkeypatch.setattr(db, "execute", execute)
        cp = checkpoint({"doc": {"k": "v" * 300}, "n": 1}, {"doc": "1", "n": "1"})
        stored = await saver.aput(put_config(thread), cp, {"source": "input"}, {"doc": "1"})
        assert calls == ["batch"]
        await saver.aput_writes(stored, [("a", 1), (ERROR, "e"), ("b", [1, 2])], "t1")
        assert calls == ["batch", "batch"]
        calls.clear()
        tup = await saver.aget_tuple(config(thread))
        items = [t async for t in saver.alist(None, filter={"source": "input"}, limit=5)]
        assert calls == ["batch", "batch"]  # a page with its writes and blobs: one round trip
        assert tup is not None and tup.checkpoint["channel_values"]["doc"] == {"k": "v" * 300}
        assert len(tup.pending_writes or []) == 3 and len(items) >= 1


async def test_list_pages_filters_and_does_not_block_writers(db_url: str) -> None:
    thread = unique("thread")
    run = unique("run")
    async with LibSQLSaver.from_url(db_url) as saver:
        parent = None
        ids: list[str] = []
        for i in range(230):
            ns = "" if i % 3 else "child"
            meta: Any = {"source": "loop", "step": i, "even": i % 2 == 0}
            meta["tags"] = {"k": i % 5}
            if i == 7:
                meta["run_id"] = run
                meta["note"] = None
            stored = await saver.aput(put_config(thread, parent, ns), checkpoint({}, {}), meta, {})
            parent = stored["configurable"]["checkpoint_id"]
            ids.append(parent)
        every: list[CheckpointTuple] = []
        async for tup in saver.alist({"configurable": {"thread_id": thread}}):
            every.append(tup)
            # No lock is held while the caller iterates: a write from inside the loop runs.
            if len(every) == 150:
                await saver.aput(put_config(unique("other")), checkpoint({}, {}), {}, {})
        assert [t.checkpoint["id"] for t in every] == ids[::-1]
        root = [t async for t in saver.alist(put_config(thread))]
        assert len(root) == 153 and all(
            t.config["configurable"]["checkpoint_ns"] == "" for t in root
        )
        before = [t async for t in saver.alist(config(thread), before=every[10].config, limit=4)]
        assert [t.checkpoint["id"] for t in before] == ids[::-1][11:15]

        async def count(**filter: Any) -> int:
            return len([t async for t in saver.alist(config(thread), filter=filter)])

        assert await count(step=7) == 1
        assert await count(even=True) == 115
        assert await count(even=False, source="loop") == 115
        assert await count(tags={"k": 3}) == 46
        assert await count(run_id=run) == 1
        assert await count(note=None) == 230  # absent counts as None, like InMemorySaver
        assert await count(step="7") == 0  # types are not coerced
        await saver.adelete_for_runs([run])
        assert await count(run_id=run) == 0 and await count() == 229


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.aput({"configurable": {}}, empty_checkpoint(), {}, {}),
        lambda s: s.aput(put_config("t", ns=None), {"id": ""}, {}, {}),  # type: ignore[arg-type]
        lambda s: s.aput_writes(put_config("t"), [("a", 1)], "task"),  # no checkpoint id
        lambda s: s.aput_writes(put_config("t", "c"), [("a", 1)], ""),
        lambda s: s.aget_tuple({"configurable": {"thread_id": ""}}),
        lambda s: anext(s.alist(None, filter={'a") OR 1=1 --': 1})),
        lambda s: anext(s.alist(None, filter={"$.a": 1})),
        lambda s: anext(s.alist(None, filter={"a": object()})),
        lambda s: anext(s.alist(None, limit="10")),
        lambda s: s.adelete_thread(""),
        lambda s: s.adelete_for_runs("run-as-a-string"),
        lambda s: s.acopy_thread("a", ""),
        lambda s: s.aprune(["t"], strategy="keep_oldest"),
        lambda s: s.aprune([""]),
    ],
)
async def test_bad_input_is_rejected_before_io(db_url: str, call: Any) -> None:
    saver = LibSQLSaver(sqlstore.Store(db_url))  # never opened: any I/O would open it
    with pytest.raises(ValidationError):
        await call(saver)
    with pytest.raises(sqlstore.errors.UnavailableError):
        saver.store.client  # noqa: B018


async def test_copy_thread_and_namespaces(db_url: str) -> None:
    src, dst = unique("thread"), unique("thread")
    async with LibSQLSaver.from_url(db_url) as saver:
        graph = build().compile(checkpointer=saver)
        await graph.ainvoke({"topic": "owls", "notes": []}, config(src))
        await saver.acopy_thread(src, dst)
        copied = await graph.aget_state(config(dst))
        assert copied.next == ("review",) and copied.values["draft"] == "draft about owls"
        final = await graph.ainvoke(Command(resume="copied"), config(dst))
        assert final["approved"] == "copied"
        assert (await graph.aget_state(config(src))).next == ("review",)


async def test_list_every_thread_pages_through_equal_ids(db_url: str) -> None:
    """alist(None) pages by (checkpoint_id, thread_id, namespace): copies share ids."""
    src, dst = unique("thread"), unique("thread")
    marker = unique("marker")
    async with LibSQLSaver.from_url(db_url) as saver:
        parent = None
        for i in range(120):
            meta: Any = {"marker": marker, "step": i}
            stored = await saver.aput(put_config(src, parent), checkpoint({}, {}), meta, {})
            parent = stored["configurable"]["checkpoint_id"]
        await saver.acopy_thread(src, dst)
        listed = [t async for t in saver.alist(None, filter={"marker": marker})]
    keys = [(t.checkpoint["id"], t.config["configurable"]["thread_id"]) for t in listed]
    assert len(keys) == 240 and len(set(keys)) == 240
    assert keys == sorted(keys, reverse=True)


async def test_list_every_thread_does_not_sort_the_table(tmp_path: Path) -> None:
    """alist(None)'s first page walks the checkpoints_newest index: it costs the same VM
    instructions with 10,000 checkpoints in the table as with 100 (without the index,
    each page sorted the whole table)."""
    async with sqlstore.Store(f"file:{tmp_path / 'all.db'}", inline_budget=0) as store:
        client = store.client
        assert isinstance(client, LocalClient)
        saver = LibSQLSaver(store)
        await saver.aput(put_config("seed"), checkpoint({}, {}), {"step": 0}, {})
        costs: dict[int, int] = {}
        for size in (100, 10_000):
            await store.execute(
                """INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_id,
                    type, payload, metadata, created_at, run_id, blob_versions)
                WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                SELECT 'bulk-' || ?1, checkpoint_ns, printf('%08d', i), parent_id, type,
                    payload, metadata, created_at, run_id, blob_versions
                FROM checkpoints, n WHERE thread_id = 'seed'""",
                (size,),
            )

            async def first_page() -> None:
                assert len([t async for t in saver.alist(None, limit=10)]) == 10

            costs[size] = await vm_steps(client, first_page)
    assert costs[10_000] <= costs[100] * 1.2 + 20, costs


async def test_saver_on_a_borrowed_store_leaves_it_open(db_url: str) -> None:
    thread = unique("thread")
    async with sqlstore.Store(db_url) as store:
        async with LibSQLSaver(store) as saver:
            graph = build().compile(checkpointer=saver)
            await graph.ainvoke({"topic": "bees", "notes": []}, config(thread))
        assert (await store.checkpoints.get(thread)) is not None  # generic API sees it
        assert await store.checkpoints.delete_thread(thread) >= 3
        assert await LibSQLSaver(store).aget_tuple(config(thread)) is None
