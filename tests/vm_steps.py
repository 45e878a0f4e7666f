"""Count the SQLite VM instructions a call runs on a local store (in tens): a cost measure
that does not depend on the machine's load, for tests that a cost does not grow."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from sqlstore.drivers.local import LocalClient


async def vm_steps(client: LocalClient, call: Callable[[], Awaitable[Any]]) -> int:
    """Tens of SQLite VM instructions that ``call()`` ran on ``client``'s connection."""
    counter = [0]

    def tick() -> int:
        counter[0] += 1
        return 0

    def install(conn: sqlite3.Connection) -> None:
        conn.set_progress_handler(tick, 10)

    def remove(conn: sqlite3.Connection) -> None:
        conn.set_progress_handler(None, 0)

    await client.run_in_worker(install)
    try:
        await call()
    finally:
        await client.run_in_worker(remove)
    return counter[0]
