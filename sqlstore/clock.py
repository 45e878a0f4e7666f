"""The clock of sqlstore: integer milliseconds since the epoch, UTC (below every domain)."""

from __future__ import annotations

import time


def now_ms() -> int:
    """The current time as integer milliseconds since the epoch, UTC."""
    return time.time_ns() // 1_000_000
