"""Ids made client-side: time-ordered UUIDv7 strings (below every domain).

A retried write carries the same ids, so the domains can store it idempotently.
"""

from __future__ import annotations

import os
import random

from .clock import now_ms

_last_uuid7 = (0, 0)
_random = random.Random()
"""Ids need uniqueness, not secrecy: a PRNG seeded from os.urandom, reseeded in a forked child."""
os.register_at_fork(after_in_child=_random.seed)


def new_id() -> str:
    """A time-ordered UUIDv7 string, generated client-side so retried writes are idempotent.

    Ids made by one process are strictly increasing, even within one millisecond.
    """
    global _last_uuid7
    ms = now_ms()
    last_ms, last_seq = _last_uuid7
    if ms <= last_ms:
        ms, seq = last_ms, last_seq + 1
        if seq >= 1 << 12:
            ms, seq = last_ms + 1, 0
    else:
        seq = _random.getrandbits(10)  # leave room to count up within the millisecond
    _last_uuid7 = (ms, seq)
    rand = _random.getrandbits(62)
    value = (ms << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_ids(count: int) -> list[str]:
    """``count`` ids as ``new_id`` makes them (strictly increasing), made in one go for a
    bulk write: the millisecond's text is formatted once, not once per id."""
    global _last_uuid7
    ms = now_ms()
    last_ms, last_seq = _last_uuid7
    if ms <= last_ms:
        ms, seq = last_ms, last_seq + 1
    else:
        seq = _random.getrandbits(10)
    ids: list[str] = []
    getrandbits = _random.getrandbits
    while len(ids) < count:
        if seq >= 1 << 12:
            ms, seq = ms + 1, 0
        prefix = f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7"
        end = min(1 << 12, seq + count - len(ids))
        for s in range(seq, end):
            rand = getrandbits(62)  # after the variant bits "10"
            ids.append(f"{prefix}{s:03x}-{0x8000 | rand >> 48:04x}-{rand & 0xFFFFFFFFFFFF:012x}")
        seq = end
    if ids:
        _last_uuid7 = (ms, seq - 1)
    return ids
