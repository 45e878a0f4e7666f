"""Web UI benchmark: each page's server time on a database of 1,000,000 messages.

Builds (once, kept at ``--db``) a local database with ``--scale`` x 1,000,000 messages in
10,000 threads (100 each; every 50th thread has two forks), 20,000 feedback rows, 2,000
approvals (half expired), 200 teams whose sessions are every 10th thread (two runs each,
holding its messages), and 20,000 generic checkpoints in 2,000 threads, written with raw
sqlite3 in the shape the domains write. Then serves the UI app in process (httpx over ASGI,
no socket) and times every page: the median and worst of ``--repeat`` requests, each one
whole request through Starlette, the SQL and Jinja2.
Prints ``name value unit`` lines; raw sqlite3 timings of the heaviest statements (the
overview's count of every table and its dbstat size scan) stand beside them.

Run: ``.venv/bin/python benchmarks/bench_ui.py [--scale 0.1] [--db PATH] [--repeat 20]``.
Target: at most 100 ms per page.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlstore  # noqa: E402
from sqlstore.domains.common import new_ids, now_ms  # noqa: E402
from sqlstore.ui.app import create_app  # noqa: E402
from sqlstore.ui.queries import _COUNTS, _SIZES, TABLES  # noqa: E402

MESSAGES_PER_THREAD = 100
DAY = 86_400_000


def report(name: str, value: float, unit: str = "ms") -> None:
    """One result line."""
    print(f"{name} {value:.2f} {unit}", flush=True)


async def create_schema(path: Path) -> None:
    """An empty database at the current schema."""
    async with sqlstore.Store(f"file:{path}"):
        pass


def build(path: Path, scale: float) -> None:
    """Fill an empty database with the benchmark's rows (raw sqlite3, one transaction)."""
    rnd = random.Random(7)
    n_threads = max(10, int(10_000 * scale))
    now = now_ms()
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    with db:
        team_ids = new_ids(max(2, n_threads // 50))
        db.executemany(
            "INSERT INTO teams (id, user_id, name, config, config_hash, version, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
            [
                (t, f"user-{i % 100}", f"team {i}", f'{{"label": "team {i}"}}', f"h{i}", now, now)
                for i, t in enumerate(team_ids)
            ],
        )
        thread_ids = new_ids(n_threads)
        rows = []
        for i, tid in enumerate(thread_ids):
            team = team_ids[i % len(team_ids)] if i % 10 == 0 else None
            updated = now - (n_threads - i) * 1000
            rows.append(
                (
                    tid,
                    f"user-{i % 1000}",
                    f"session-{i}",
                    f"agent-{i % 20}",
                    team,
                    f"Conversation {i} about {rnd.choice(['refunds', 'login', 'otters'])}",
                    tid,
                    MESSAGES_PER_THREAD,
                    MESSAGES_PER_THREAD,
                    updated - 60_000,
                    updated,
                )
            )
        db.executemany(
            "INSERT INTO threads (id, user_id, session_id, agent_id, team_id, title, root_id, "
            "message_count, last_seq, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        forks = []
        for i in range(0, n_threads, 50):
            parent = thread_ids[i]
            for f, fid in enumerate(new_ids(2)):
                forks.append(
                    (
                        fid,
                        "user-fork",
                        parent,
                        10 + f,
                        parent,
                        f'"{parent}","{fid}",',
                        now - i,
                        now - i,
                    )
                )
        db.executemany(
            "INSERT INTO threads (id, user_id, parent_id, fork_seq, root_id, lineage, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            forks,
        )
        content = '[{"type": "text", "text": "%s"}]'
        for start in range(0, n_threads, 500):
            batch = []
            for tid in thread_ids[start : start + 500]:
                ids = new_ids(MESSAGES_PER_THREAD)
                for seq in range(1, MESSAGES_PER_THREAD + 1):
                    role = "user" if seq % 2 else "assistant"
                    text = f"message {seq} of the thread, with some words to make it real"
                    batch.append((ids[seq - 1], tid, seq, role, content % text, now - seq))
            db.executemany(
                "INSERT INTO messages (id, thread_id, seq, role, content, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                batch,
            )
        n_feedback = max(10, int(20_000 * scale))
        db.executemany(
            "INSERT INTO feedback (id, thread_id, user_id, agent_id, rating, comment, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    fid,
                    thread_ids[i % n_threads],
                    f"user-{i % 1000}",
                    f"agent-{i % 20}",
                    rnd.randint(1, 5),
                    "ok",
                    now - rnd.randint(0, 60) * DAY,
                )
                for i, fid in enumerate(new_ids(n_feedback))
            ],
        )
        n_approvals = max(10, int(2_000 * scale))
        db.executemany(
            "INSERT INTO approvals (id, thread_id, agent_id, node, state, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    aid,
                    thread_ids[i % n_threads],
                    f"agent-{i % 20}",
                    "review",
                    '{"step": 1}',
                    now - DAY,
                    now + (DAY if i % 2 else -DAY),
                )
                for i, aid in enumerate(new_ids(n_approvals))
            ],
        )
        runs = []
        for i, tid in enumerate(thread_ids[::10]):
            for rid in new_ids(2):
                runs.append((rid, tid, f"user-{i % 100}", "complete", now, now))
        db.executemany(
            "INSERT INTO runs (id, thread_id, user_id, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            runs,
        )
        # A session's two runs hold its messages: the first 50, then the rest.
        db.executemany(
            "UPDATE messages SET run_id = ? WHERE thread_id = ? AND seq > ? AND seq <= ?",
            [(rid, tid, 50 * (k % 2), 50 * (k % 2) + 50) for k, (rid, tid, *_) in enumerate(runs)],
        )
        n_checkpoints = max(10, int(20_000 * scale))
        db.executemany(
            "INSERT INTO checkpoints (thread_id, checkpoint_id, parent_id, type, payload, "
            "metadata, created_at) VALUES (?, ?, NULL, 'json', ?, ?, ?)",
            [
                (
                    f"graph-{i % (n_checkpoints // 10)}",
                    cid,
                    f'{{"step": {i}, "notes": "x"}}',
                    f'{{"step": {i}}}',
                    now,
                )
                for i, cid in enumerate(new_ids(n_checkpoints))
            ],
        )
    db.execute("ANALYZE")
    db.close()


def raw_timings(path: Path) -> None:
    """The overview's heaviest statements on raw sqlite3, for reference."""
    db = sqlite3.connect(path)
    for name, sql, args in (
        ("raw_sqlite3_count_all_tables", _COUNTS, ()),
        ("raw_sqlite3_dbstat_sizes", _SIZES, TABLES),
    ):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            db.execute(sql, args).fetchall()
            times.append((time.perf_counter() - start) * 1000)
        report(f"{name}_median", statistics.median(times))
    db.close()


async def time_pages(path: Path, repeat: int) -> None:
    """Every page's median and worst request time through the app."""
    url = f"file:{path}"
    store = sqlstore.Store(url)
    app = create_app(store, database_url=url)
    await store.initialize()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8765") as web:
        threads = await store.threads.list(limit=60)
        some = next(t for t in threads if t.message_count == MESSAGES_PER_THREAD)
        forked = (await store.execute("SELECT id FROM threads WHERE parent_id IS NOT NULL")).first()
        team = (await store.execute("SELECT id FROM teams ORDER BY created_at DESC")).first()
        session = (
            await store.execute("SELECT thread_id FROM runs ORDER BY created_at DESC")
        ).first()
        cp_thread = (await store.execute("SELECT thread_id FROM checkpoints")).first()
        assert forked and team and session and cp_thread
        cps = await store.checkpoints.list(str(cp_thread[0]), limit=5)
        t50 = threads[49]
        pages: dict[str, str] = {
            "overview": "/",
            "overview_sizes": "/?sizes=1",
            "threads": "/threads",
            "threads_older": f"/threads?before={t50.updated_at}:{t50.id}",
            "threads_by_user": f"/threads?user_id={some.user_id}",
            "threads_by_agent": f"/threads?agent_id={some.agent_id}",
            "threads_by_session": f"/threads?session_id={some.session_id}",
            "threads_by_team": f"/threads?team_id={team[0]}",
            "threads_search_id": f"/threads?q={some.id}",
            "threads_search_title": "/threads?q=otters",
            "thread_chat": f"/thread?id={some.id}",
            "thread_chat_older": f"/thread?id={some.id}&before_seq=51",
            "forks": "/forks",
            "fork_tree": f"/forks?id={forked[0]}",
            "approvals": "/approvals",
            "feedback": "/feedback",
            "feedback_by_agent": "/feedback?agent_id=agent-3",
            "teams": "/teams",
            "team": f"/team?id={team[0]}",
            "team_session": f"/session?id={session[0]}",
            "checkpoint_threads": "/checkpoints",
            "checkpoints": f"/checkpoints?thread_id={cp_thread[0]}",
            "checkpoint": f"/checkpoint?thread_id={cp_thread[0]}&id={cps[0]['checkpoint_id']}",
        }
        for name, path_ in pages.items():
            r = await web.get(path_)
            assert r.status_code == 200, (name, r.status_code, r.text[-300:])
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                r = await web.get(path_)
                times.append((time.perf_counter() - start) * 1000)
            report(f"ui_{name}_median", statistics.median(times))
            report(f"ui_{name}_max", max(times))
    await store.close()


def main() -> None:
    """Build the database if needed, then print the raw and per-page timings."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="x 1,000,000 messages")
    parser.add_argument("--db", type=Path, help="database file (built when missing)")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    path = args.db or Path(f"/tmp/sqlstore-bench-ui-{args.scale:g}.db")
    if not path.exists():
        start = time.perf_counter()
        asyncio.run(create_schema(path))
        build(path, args.scale)
        report("build_seconds", time.perf_counter() - start, "s")
    with sqlite3.connect(path) as db:
        report("messages", db.execute("SELECT count(*) FROM messages").fetchone()[0], "rows")
    raw_timings(path)
    asyncio.run(time_pages(path, args.repeat))


if __name__ == "__main__":
    main()
