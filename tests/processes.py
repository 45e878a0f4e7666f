"""Run several worker processes at once and collect their outcomes."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def run_workers(*argvs: list[str], timeout: float = 120) -> list[tuple[int, str, str]]:
    """Start ``python -m tests.proc_worker ARGV`` for each argv together; (code, out, err)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.proc_worker",
            *argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=env,
        )
        for argv in argvs
    ]
    try:
        outs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), timeout)
    except BaseException:  # a timeout (or Ctrl-C): no worker outlives the test
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
        await asyncio.gather(*(proc.wait() for proc in procs))
        raise
    return [
        (p.returncode or 0, out.decode(), err.decode())
        for p, (out, err) in zip(procs, outs, strict=True)
    ]
