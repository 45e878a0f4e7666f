"""The WAL index of a local database, read in place, so that the local driver can tell
whether a write will make SQLite sync before it commits it on the event loop.

In WAL mode with ``synchronous=NORMAL`` a commit syncs nothing. SQLite syncs in a
checkpoint, and when a write puts the first frame into the WAL: into an empty WAL, or at its
start again after a checkpoint copied every frame (a write then starts the WAL over and
syncs its new header). Two fields of the WAL index tell which: ``mxFrame``, the WAL's last
valid frame, and ``nBackfill``, how many frames checkpoints copied.
"""

from __future__ import annotations

import ctypes
import os

CHECKPOINT_FRAMES = 1000
"""WAL frames from which the local driver has the worker checkpoint after an inline write,
while writes go on (SQLite's default autocheckpoint size)."""

_MX_FRAME, _N_BACKFILL = 16, 96
"""Byte offsets of mxFrame (in the index header's first copy) and nBackfill (in the
checkpoint information that follows the header's two copies)."""


class WalIndex:
    """SQLite's own mapping of a database's ``-shm`` file in this process (the first
    region, which stays mapped while a connection of this process has the WAL open)."""

    __slots__ = ("_checkpointed", "_last", "limit")

    def __init__(self, address: int, limit: int) -> None:
        self._last = ctypes.c_uint32.from_address(address + _MX_FRAME)
        self._checkpointed = ctypes.c_uint32.from_address(address + _N_BACKFILL)
        self.limit = limit
        """Frames from which writes are left to the worker (whose commits checkpoint)."""

    @classmethod
    def find(cls, shm: str, limit: int) -> WalIndex | None:
        """The mapping of ``shm`` (a ``-shm`` file) in /proc/self/maps (so Linux only), or
        None. Opening the file instead is no option: closing any descriptor of a file drops
        every POSIX lock this process holds on it, SQLite's too, and another process that
        then finds the WAL index unlocked starts it over under SQLite's feet."""
        inode = str(os.stat(shm).st_ino)
        with open("/proc/self/maps") as maps:
            for line in maps:
                fields = line.split(maxsplit=5)  # range, perms, offset, device, inode, path
                if (
                    len(fields) == 6
                    and fields[4] == inode
                    and fields[2].strip("0") == ""
                    and fields[1].startswith("rw")
                    and fields[5].rstrip("\n").endswith("-shm")
                ):
                    low, high = (int(bound, 16) for bound in fields[0].split("-"))
                    if high - low >= 4096:
                        return cls(low, limit)
        return None

    def appends(self) -> bool:
        """Whether the write transaction under way, which holds the write lock, appends to
        a WAL of fewer than ``limit`` frames, so that its commit syncs nothing: the WAL has
        frames, and not all of them are checkpointed. (nBackfill only grows while the write
        lock is held: if it is below mxFrame now, it was when the transaction began, and
        SQLite will not start the WAL over.)"""
        return self._checkpointed.value < self._last.value < self.limit

    def wants_checkpoint(self) -> bool:
        """Whether the WAL has CHECKPOINT_FRAMES frames or more, not all checkpointed."""
        last = self._last.value
        return last >= CHECKPOINT_FRAMES and self._checkpointed.value < last
