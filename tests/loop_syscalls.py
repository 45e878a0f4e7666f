"""A mixed local workload, run under ``strace -f`` by tests/test_local_inline.py: it prints
the event-loop thread's native id, and every write, checkpoint and journal mode below must
leave all of its fsync / fdatasync calls to other threads.

Run: ``python -m tests.loop_syscalls FOLDER``.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

import sqlstore

ROW = "x" * 3000  # ~1 page: 2,000 commits write 2,000+ WAL frames, past the autocheckpoint


async def workload(url: str, statements: list[str], writes: int, **options: Any) -> None:
    """Writes with a read after each, after ``statements`` (journal modes, checkpoints)."""
    client = await sqlstore.connect(url, **options)
    await client.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    for sql in statements:
        await client.execute(sql)
    for i in range(writes):
        await client.execute("INSERT INTO t (v) VALUES (?)", (ROW,))
        await client.batch([("INSERT INTO t (v) VALUES (?)", (str(i),)), ("SELECT 1", ())])
        await client.execute("SELECT count(*) FROM t")
        await client.batch([("SELECT max(id) FROM t", ()), ("SELECT 2", ())])
        if i % 500 == 499:
            await client.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await client.close()


async def main(folder: Path) -> None:
    print(threading.get_native_id(), flush=True)  # the thread that runs the event loop
    await workload(f"file:{folder / 'wal.db'}", [], 2000)  # WAL restarts, autocheckpoints
    await workload(f"file:{folder / 'full.db'}", [], 200, durability="full")
    await workload(f"file:{folder / 'delete.db'}", ["PRAGMA journal_mode = DELETE"], 200)
    await workload(f"file:{folder / 'truncate.db'}", ["PRAGMA journal_mode = TRUNCATE"], 200)
    await workload(f"file:{folder / 'nolock.db'}?nolock=1", [], 200)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
