"""Worker processes for the multi-process tests: ``python -m tests.proc_worker JOB URL ...``."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import sqlstore


async def write(url: str, table: str, worker: int, n: int) -> None:
    """n single-statement writes, then n/10 small batches, from one process."""
    client = await sqlstore.connect(url)
    try:
        for i in range(n):
            await client.execute(f"INSERT INTO {table} (worker, i) VALUES (?, ?)", (worker, i))
        for i in range(n // 10):
            await client.batch(
                [
                    (f"INSERT INTO {table} (worker, i) VALUES (?, ?)", (worker, n + i * 2 + k))
                    for k in range(2)
                ]
            )
    finally:
        await client.close()


async def initialize(url: str) -> None:
    """Initialize a Store (schema and migrations) and print its schema version."""
    async with sqlstore.Store(url) as store:
        print(await store.schema_version())


async def import_team(url: str, user_id: str, path: str) -> None:
    """Import one team file with check_exists; print the team id and whether it was made."""
    async with sqlstore.Store(url) as store:
        r = await store.teams.import_team(path, user_id, check_exists=True)
        print(r.data.id, r.created)


async def converse(url: str, user_id: str, worker: int, n: int) -> None:
    """n single-message saves to one shared conversation, each its own atomic batch."""
    async with sqlstore.Store(url) as store:
        for i in range(n):
            await store.conversations.save(
                user_id, "shared", "agent", {"role": "user", "content": [{"text": f"{worker}:{i}"}]}
            )


async def mixed(url: str, worker: int, n: int, keep_streams: int = 0) -> None:
    """n domain writes of four kinds with ids made from (worker, i), so that the test can
    count exactly what must be stored: a conversation save, a thread create, a message
    added to the thread made just before, a piece of feedback on the thread before that.
    ``keep_streams`` > 0 (remote URLs only) keeps that many Hrana streams across calls."""
    user = f"w{worker}"
    options: dict[str, Any] = {"keep_streams": keep_streams} if keep_streams else {}
    async with sqlstore.Store(url, **options) as store:
        for i in range(n):
            kind = i % 4
            if kind == 0:
                message = {"role": "user", "content": [{"text": str(i)}], "id": f"{user}-c{i}"}
                await store.conversations.save(user, "s", "a", message)
            elif kind == 1:
                await store.threads.create(user, thread_id=f"{user}-t{i}")
            elif kind == 2:
                await store.threads.add_message(
                    f"{user}-t{i - 1}", "user", str(i), message_id=f"{user}-m{i}"
                )
            else:
                await store.feedback.add(
                    thread_id=f"{user}-t{i - 2}", rating=1, feedback_id=f"{user}-f{i}"
                )


def main(argv: list[str]) -> None:
    job, url, *rest = argv
    if job == "write":
        asyncio.run(write(url, rest[0], int(rest[1]), int(rest[2])))
    elif job == "initialize":
        asyncio.run(initialize(url))
    elif job == "import_team":
        asyncio.run(import_team(url, rest[0], rest[1]))
    elif job == "converse":
        asyncio.run(converse(url, rest[0], int(rest[1]), int(rest[2])))
    elif job == "mixed":
        asyncio.run(mixed(url, *(int(x) for x in rest[:3])))
    else:
        raise SystemExit(f"unknown job {job}")


if __name__ == "__main__":
    main(sys.argv[1:])
