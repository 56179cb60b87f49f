"""The shelf of large receive buffers (gateway/kernels/buffers.py): reuse across owners, never
a buffer that is still viewed, a bounded shelf."""

from __future__ import annotations

import threading

from gateway.kernels.buffers import KEPT, POOLED, SLAB, Shelf, unviewed
from gateway.kernels.frames import _MAX_MESSAGE


def test_a_slab_holds_the_largest_data_frame_message():
    assert _MAX_MESSAGE <= SLAB  # else the shelf would silently stop being used


def test_a_given_buffer_is_taken_again():
    shelf = Shelf()
    buffer = shelf.take(POOLED)
    assert len(buffer) == SLAB  # every kept buffer fits any data-frame message
    shelf.give(buffer)
    assert shelf.take(SLAB) is buffer
    assert len(shelf) == 0  # taken: the shelf no longer has it


def test_a_buffer_still_viewed_is_not_handed_out_until_its_views_go():
    shelf = Shelf()
    buffer = shelf.take(SLAB)
    view = memoryview(buffer)[:10]  # a payload still being sent
    shelf.give(buffer)
    assert shelf.take(SLAB) is not buffer
    view.release()
    assert shelf.take(SLAB) is buffer


def test_small_large_and_odd_buffers_are_not_kept():
    shelf = Shelf()
    assert len(shelf.take(POOLED - 1)) == POOLED - 1
    assert len(shelf.take(SLAB + 1)) == SLAB + 1
    for size in (POOLED - 1, SLAB + 1, 5 << 20):
        shelf.give(bytearray(size))
    assert len(shelf) == 0


def test_the_shelf_is_bounded_and_keeps_one_buffer_once():
    shelf = Shelf()
    buffers = [shelf.take(SLAB) for _ in range(KEPT + 3)]
    shelf.give(buffers[0])
    shelf.give(buffers[0])
    assert len(shelf) == 1
    for buffer in buffers[1:]:
        shelf.give(buffer)
    assert len(shelf) == KEPT


def test_unviewed_leaves_the_buffer_as_it_was():
    buffer = bytearray(b"abc")
    assert unviewed(buffer)
    assert buffer == b"abc"
    view = memoryview(buffer)
    assert not unviewed(buffer)
    assert buffer == b"abc"
    view.release()


def test_owners_in_threads_never_share_a_buffer():
    """Four owners take at once, each marks its buffer, and all check their marks only
    once every one has taken (a barrier, so the windows overlap whatever the scheduling):
    a buffer handed to two owners carries the other's mark."""
    owners = 4
    shelf = Shelf(kept=owners)
    for _ in range(owners):
        shelf.give(bytearray(SLAB))
    taken, checked = threading.Barrier(owners), threading.Barrier(owners)
    clashes: list[int] = []

    def owner(mark: int) -> None:
        for _ in range(50):
            buffer = shelf.take(SLAB)
            buffer[0] = mark
            taken.wait()
            if buffer[0] != mark:
                clashes.append(mark)
            checked.wait()
            shelf.give(buffer)

    threads = [threading.Thread(target=owner, args=(n,)) for n in range(owners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not clashes
    assert len(shelf) == owners  # every buffer came back, none was made anew
