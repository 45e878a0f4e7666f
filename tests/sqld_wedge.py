"""Reproduce sqld 0.24.32's write wedge: eight processes x N mixed domain writes (the
``mixed`` worker of tests/proc_worker.py) against a fresh sqld, a few times; a run whose
workers have not finished within ``--timeout`` seconds counts as wedged.

Run: ``python -m tests.sqld_wedge [--runs 4] [--writes 300] [--keep-streams 0] [--trace]``.
It prints ``name value unit`` lines. With ``--trace`` sqld logs its connection manager
(debug), and a wedged run also prints the write slot that the waiting writers loop on and
whether that slot's connection had closed before it was handed the slot (see the README's
Design section, *Load*). Not a test: on a loaded machine a run takes 5-60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import sqlstore
from tests.servers import ROOT, SqldServer

_SLOT = re.compile(r"current slot: Slot \{ id: (\d+), .*state: (\w+)")
_CLOSED = re.compile(r"closed in .* id=(\d+)")
_TRACE = "info,libsql_server::connection::connection_manager=debug"
_LOG_CAP = 200_000_000  # a spinning sqld logs tens of MB a second at debug level


async def _run(
    server: SqldServer, writes: int, keep: int, timeout: float
) -> tuple[float | None, int]:
    """One run on a fresh server: (seconds taken, or None when the workers stalled; how
    many workers failed)."""
    async with sqlstore.Store(server.url):
        pass  # the schema first
    env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"} | {"PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "tests.proc_worker", "mixed", server.url, str(w), str(writes), str(keep)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            cwd=ROOT,
            env=env,
        )
        for w in range(8)
    ]
    start = time.monotonic()
    while time.monotonic() - start < timeout and server.log_path.stat().st_size < _LOG_CAP:
        if all(p.returncode is not None for p in procs):
            return time.monotonic() - start, sum(p.returncode != 0 for p in procs)
        await asyncio.sleep(0.2)
    for p in procs:
        if p.returncode is None:
            p.kill()
        await p.wait()
    return None, 0


def _stuck_slot(log: Path) -> str:
    """The slot named by the last 'current slot' line of sqld's debug log, and whether its
    connection had closed before that line (so that nothing will ever take the slot)."""
    closed_at: dict[str, int] = {}
    last: tuple[str, str, int] | None = None
    with log.open(errors="replace") as lines:
        for number, line in enumerate(lines):
            if m := _CLOSED.search(line):
                closed_at[m.group(1)] = number
            elif m := _SLOT.search(line):
                last = (m.group(1), m.group(2), number)
    if last is None:
        return "no slot logged"
    conn, state, number = last
    closed = closed_at.get(conn, number) < number
    return f"held by connection {conn} ({state}), which had closed before: {closed}"


async def main(runs: int, writes: int, keep: int, timeout: float, trace: bool) -> None:
    wedged = 0
    for i in range(runs):
        with tempfile.TemporaryDirectory(prefix="sqld-wedge-") as tmp:
            if trace:
                os.environ["RUST_LOG"] = _TRACE
            server = SqldServer(Path(tmp) / "db.sqld")
            server.start()
            os.environ.pop("RUST_LOG", None)
            try:
                took, failed = await _run(server, writes, keep, timeout)
            finally:
                server.stop()
            if took is None:
                wedged += 1
                note = _stuck_slot(server.log_path) if trace else "(no trace)"
                print(f"run_{i}_wedged 1 slot: {note}", flush=True)
            else:
                print(f"run_{i}_seconds {took:.1f} s ({failed} workers failed)", flush=True)
    print(f"runs {runs} runs")
    print(f"wedged {wedged} runs (keep_streams={keep}, 8 x {writes} writes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Reproduce sqld 0.24.32's write wedge.")
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--writes", type=int, default=300, help="writes per process")
    parser.add_argument("--keep-streams", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds before a stall")
    parser.add_argument("--trace", action="store_true", help="sqld debug log, slot report")
    a = parser.parse_args()
    asyncio.run(main(a.runs, a.writes, a.keep_streams, a.timeout, a.trace))
