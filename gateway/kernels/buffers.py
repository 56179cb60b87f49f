"""Large receive buffers, kept for reuse across data-frame connections.

A tcp export receives its Arrow stream into buffers of a few MiB (the connection's read buffer
and the payloads it opens). Fresh ones cost a page fault per 4 KiB and the zeroing of every
page, each export again: on the data-frame benchmark ~3,600 faults and ~8 ms of the gateway's
CPU per 80 MB export. So the gateway keeps up to `KEPT` of them (`SLAB` bytes each, room for
the largest data-frame message; tests/kernels/test_buffers.py checks that against frames.py)
for the next connection, whoever's it is.

A buffer belongs to one owner at a time: `take` removes it from the shelf, `give` puts it back.
It may be given back while a view of it is still being read (the HTTP response still sending
the last chunk): `take` hands out only buffers nothing views any more, checked under the shelf's
lock, so a buffer is never written while anyone still reads it.
"""

from __future__ import annotations

import threading
from typing import Final

SLAB: Final = (4 << 20) + 4096  # a data-frame message at most (frames.CHUNK + 4 KiB)
POOLED: Final = 1 << 20  # smaller buffers are not worth keeping
KEPT: Final = 8  # buffers on the shelf at most (32 MiB)


def unviewed(buffer: bytearray) -> bool:
    """Whether nothing holds a view of `buffer` (so nothing reads it): a bytearray refuses to
    change size while any view of it (a memoryview, a slice of one, a buffer a C function
    holds) exists. Call only as `buffer`'s owner, or under the shelf's lock."""
    try:
        buffer.append(0)
    except BufferError:
        return False
    buffer.pop()
    return True


class Shelf:
    """Buffers of `SLAB` bytes waiting for their next owner; thread-safe."""

    def __init__(self, kept: int = KEPT) -> None:
        self._kept = kept
        self._buffers: list[bytearray] = []
        self._lock = threading.Lock()

    def take(self, size: int) -> bytearray:
        """A buffer of at least `size` bytes that nothing views: from the shelf when one is
        there (and `size` fits a slab), else a new one."""
        if POOLED <= size <= SLAB:
            with self._lock:
                for n, buffer in enumerate(self._buffers):
                    if unviewed(buffer):
                        return self._buffers.pop(n)
            return bytearray(SLAB)
        return bytearray(size)

    def give(self, buffer: bytearray) -> None:
        """Put `buffer` back for another owner (dropped when the shelf is full or it is not
        a slab). Its views may still be read: `take` waits for them to go."""
        if len(buffer) != SLAB:
            return
        with self._lock:
            if len(self._buffers) < self._kept and all(b is not buffer for b in self._buffers):
                self._buffers.append(buffer)

    def __len__(self) -> int:
        return len(self._buffers)


SHELF: Final = Shelf()
