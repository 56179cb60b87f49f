"""The shelf of large receive buffers (gateway/kernels/buffers.py): reuse across owners, never
a buffer that is still viewed, a bounded shelf."""

from __future__ import annotations

import threading

from gateway.kernels.buffers import KEPT, POOLED, SLAB, Shelf, unviewed


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
    shelf = Shelf(kept=4)
    for _ in range(4):
        shelf.give(bytearray(SLAB))
    clash = threading.Event()
    owned: set[int] = set()
    lock = threading.Lock()

    def owner() -> None:
        for _ in range(500):
            buffer = shelf.take(SLAB)
            with lock:
                if id(buffer) in owned:
                    clash.set()
                owned.add(id(buffer))
            with lock:
                owned.discard(id(buffer))
            shelf.give(buffer)

    threads = [threading.Thread(target=owner) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not clash.is_set()
