"""Shared write pipelines: at most one write pipeline of a client in flight at a time;
writes that arrive meanwhile wait, and all of them go together in the next one.

Each waiting write stays its own Hrana request in that pipeline (an ``execute`` stays
autocommit, a batch its own ``BEGIN … COMMIT``), and the server answers each request
on its own, so each caller gets exactly its own result or error. 64 concurrent inserts
cost two round trips instead of 64 requests contending for the server's write lock.

The remote client sends a group (``send``) and sets each call's future; the retry rules
stay its own. Here: a caller whose ``timeout`` passes while its write still waits in the
queue leaves it with nothing sent (UnavailableError); one whose write is in a request
under way gets OutcomeUnknownError, like a write sent on its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import OutcomeUnknownError, UnavailableError

MAX_CALLS = 64
"""The most calls one shared pipeline carries."""
MAX_BYTES = 1 << 20
"""The most bytes of requests one shared pipeline carries (a larger call goes alone)."""


class Call:
    """One caller's request (encoded JSON) on its way: its deadline, its future (the
    request's pipeline result), and whether a request carrying it may be under way."""

    __slots__ = ("deadline", "future", "request", "sent")

    def __init__(self, request: bytes, deadline: float) -> None:
        self.request = request
        self.deadline = deadline
        self.future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.sent = False


Send = Callable[[list[Call]], Awaitable[None]]
"""Sends a group of calls in one pipeline (with retries) and resolves each call."""


class WriteQueue:
    """One client's writes: one pipeline in flight, the writes waiting meanwhile
    grouped into the next (at most ``MAX_CALLS`` calls and ``MAX_BYTES``)."""

    def __init__(self, send: Send, where: str) -> None:
        self._send = send
        self._where = where
        self._busy = False
        self._queue: deque[Call] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, call: Call) -> dict[str, Any]:
        """Send ``call`` (now when no write is under way, else with the next group) and
        return its pipeline result."""
        if not self._busy:
            self._busy = True
            try:
                await self._send([call])  # in the caller's task: as a call on its own
            finally:
                self._next()
            return call.future.result()
        self._queue.append(call)  # a call whose caller has gone is skipped by _next
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(loop.time() + call.deadline - time.monotonic()):
                return await call.future  # cancelled with its caller: never sent later
        except TimeoutError:
            if call.sent:
                raise OutcomeUnknownError(
                    f"the write was sent to {self._where} but the call's timeout passed "
                    "before its answer came: it may or may not have been applied"
                ) from None
            raise UnavailableError(
                "the call's timeout passed while its write waited for the client's write "
                f"pipeline; nothing of it was applied at {self._where}"
            ) from None

    def _next(self) -> None:
        """Start the next group of waiting calls, or mark the queue idle."""
        group: list[Call] = []
        size = 0
        while self._queue and len(group) < MAX_CALLS:
            call = self._queue[0]
            if call.future.done():  # its caller has gone
                self._queue.popleft()
                continue
            if group and size + len(call.request) > MAX_BYTES:
                break
            group.append(self._queue.popleft())
            size += len(call.request)
        if not group:
            self._busy = False
            return
        task = asyncio.get_running_loop().create_task(self._run(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, group: list[Call]) -> None:
        try:
            await self._send(group)
        except BaseException as exc:
            for call in group:
                if not call.future.done():
                    error = exc if isinstance(exc, Exception) else UnavailableError(repr(exc))
                    call.future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._next()


__all__ = ["MAX_BYTES", "MAX_CALLS", "Call", "WriteQueue"]
