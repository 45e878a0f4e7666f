"""A mixed local workload, run under ``strace -f`` by tests/test_local_inline.py: it prints
the event-loop thread's native id, then how many writes ran inline on the loop; every
write, checkpoint and journal mode below must leave all of its fsync / fdatasync calls to
other threads. In WAL mode a thread of its own checkpoints now and then with a connection
of its own, as another process would, so inline writes meet WALs that start over.

Run: ``python -m tests.loop_syscalls FOLDER``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import sqlstore

ROW = "x" * 3000  # ~1 page: 2,000 commits write 2,000+ WAL frames, past the autocheckpoint


def other_checkpoints(path: Path, stop: threading.Event) -> None:
    """Checkpoint the file every few milliseconds in every mode, as another process would."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    modes = ("PASSIVE", "FULL", "RESTART", "TRUNCATE")
    i = 0
    while not stop.wait(0.003):
        conn.execute(f"PRAGMA wal_checkpoint({modes[i % 4]})")
        i += 1
    conn.close()


async def workload(url: str, statements: list[str], writes: int, **options: Any) -> int:
    """Writes with a read after each, after ``statements`` (journal modes, checkpoints);
    how many writes ran inline."""
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
    return int(getattr(client, "inline_writes", 0))


async def main(folder: Path) -> None:
    print(threading.get_native_id(), flush=True)  # the thread that runs the event loop
    inline = await workload(f"file:{folder / 'wal.db'}", [], 2000)  # restarts, checkpoints
    stop = threading.Event()
    checkpoints = threading.Thread(target=other_checkpoints, args=(folder / "wal.db", stop))
    checkpoints.start()
    start = time.perf_counter()
    inline += await workload(f"file:{folder / 'wal.db'}", [], 2000)  # and another's
    stop.set()
    checkpoints.join()
    print(inline, round(time.perf_counter() - start, 1), flush=True)
    await workload(f"file:{folder / 'full.db'}", [], 200, durability="full")
    await workload(f"file:{folder / 'delete.db'}", ["PRAGMA journal_mode = DELETE"], 200)
    await workload(f"file:{folder / 'truncate.db'}", ["PRAGMA journal_mode = TRUNCATE"], 200)
    await workload(f"file:{folder / 'nolock.db'}?nolock=1", [], 200)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
