"""The gateway's own ZMTP listener for an ipc kernel's data frames (gateway/kernels/zmtp.py).

Peers are pyzmq DEALER sockets (libzmq, as in the kernel's helper) and raw unix sockets that
speak broken or hostile ZMTP; the router must stay bounded and keep serving good peers.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest
import zmq
import zmq.asyncio

from gateway.kernels.errors import KernelExecuteFailed
from gateway.kernels.frames import _MAX_STALE, FrameChannel, _Stream
from gateway.kernels.zmtp import _ACCEPT_BURST, RouterClosedError, ZmtpRouter

GREETING = b"\xff" + bytes(7) + b"\x01\x7f" + b"\x03\x01" + b"NULL".ljust(20, b"\x00") + bytes(32)
_READY_BODY = b"\x05READY\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER"
READY = bytes((0x04, len(_READY_BODY))) + _READY_BODY


@pytest.fixture
async def router(tmp_path):
    made = await ZmtpRouter.bind(
        str(tmp_path / "frames"),
        max_frame=1000,
        max_frames=4,
        max_bytes=1500,
        queue=4,
        max_peers=3,
    )
    yield made
    made.close()


@pytest.fixture
def dealer(tmp_path):
    ctx = zmq.asyncio.Context()
    sockets = []

    def make():
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(f"ipc://{tmp_path / 'frames'}")
        sockets.append(sock)
        return sock

    yield make
    for sock in sockets:
        sock.close(linger=0)
    ctx.term()


async def _raw(tmp_path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_unix_connection(str(tmp_path / "frames"))


async def _closed_by_router(reader: asyncio.StreamReader) -> bool:
    """Whether the router ends the connection (after its greeting and READY)."""
    async with asyncio.timeout(5):
        try:
            while await reader.read(4096):
                pass
        except ConnectionResetError:
            pass  # aborted: the router does not wait for the peer to read its last bytes
    return True


async def test_a_libzmq_dealer_talks_to_it_both_ways(router, dealer):
    kernel = dealer()
    await kernel.send_multipart([b"name", b"H", b'{"status": "ok"}'])
    await kernel.send_multipart([b"name", b"D", b"x" * 1000])  # a frame at the cap
    await kernel.send_multipart([b"name", b"E", b""])
    async with asyncio.timeout(5):
        messages = [await router.receive() for _ in range(3)]
    peers = {peer for peer, _ in messages}
    assert len(peers) == 1
    assert [[bytes(f) for f in frames] for _, frames in messages] == [
        [b"name", b"H", b'{"status": "ok"}'],
        [b"name", b"D", b"x" * 1000],
        [b"name", b"E", b""],
    ]
    router.send(peers.pop(), [b"name", b"C", b"16"])
    assert await asyncio.wait_for(kernel.recv_multipart(), 5) == [b"name", b"C", b"16"]


async def test_messages_over_the_limits_close_only_that_connection(router, dealer, tmp_path):
    for bad in ([b"a"] * 5, [b"x" * 1001], [b"x" * 800, b"x" * 800]):
        reader, writer = await _raw(tmp_path)
        writer.write(GREETING + READY)
        for n, frame in enumerate(bad):
            more = 1 if n < len(bad) - 1 else 0
            head = bytes((more | 2,)) + struct.pack(">Q", len(frame))
            writer.write(head + frame)
        assert await _closed_by_router(reader), bad
        writer.close()
    good = dealer()
    await good.send_multipart([b"still", b"served"])
    async with asyncio.timeout(5):
        _, frames = await router.receive()
    assert [bytes(f) for f in frames] == [b"still", b"served"]


async def test_a_huge_announced_frame_is_refused_before_anything_is_allocated(router, tmp_path):
    reader, writer = await _raw(tmp_path)
    writer.write(GREETING + READY + b"\x02" + struct.pack(">Q", 1 << 40))  # a 1 TiB frame
    assert await _closed_by_router(reader)
    writer.close()


@pytest.mark.parametrize(
    "greeting",
    [
        b"GET / HTTP/1.1\r\n" * 4,
        GREETING[:10] + b"\x02\x00" + GREETING[12:],
        GREETING[:12] + b"PLAIN".ljust(20, b"\x00") + GREETING[32:],
    ],
    ids=["http", "zmtp2", "plain"],
)
async def test_anything_but_zmtp3_with_null_is_refused(router, tmp_path, greeting):
    reader, writer = await _raw(tmp_path)
    writer.write(greeting)
    assert await _closed_by_router(reader)
    writer.close()


async def test_connections_beyond_the_cap_are_refused(router, tmp_path):
    held = [await _raw(tmp_path) for _ in range(3)]
    for _, writer in held:
        writer.write(GREETING)
    reader, writer = await _raw(tmp_path)
    assert await _closed_by_router(reader)
    writer.close()
    for _, w in held:
        w.close()


async def test_a_reader_that_falls_behind_pauses_the_kernel_and_loses_nothing(router, dealer):
    kernel = dealer()
    for n in range(200):
        await kernel.send_multipart([b"n", str(n).encode()])
    await asyncio.sleep(0.5)
    assert len(router._messages) <= 4 + 1, "at most `queue` messages wait (one in flight)"
    async with asyncio.timeout(10):
        got = [bytes((await router.receive())[1][1]) for _ in range(200)]
    assert got == [str(n).encode() for n in range(200)]


async def test_close_wakes_a_waiting_receive(router):
    waiting = asyncio.ensure_future(router.receive())
    await asyncio.sleep(0.05)
    router.close()
    with pytest.raises(RouterClosedError):
        await asyncio.wait_for(waiting, 5)


async def test_the_listener_is_private_until_handed_to_the_kernel(router, tmp_path):
    assert (tmp_path / "frames").stat().st_mode & 0o777 == 0o600


async def test_a_flood_of_commands_ends_the_connection(router, tmp_path):
    """Commands are neither queued nor limited by the loop's pace: past READY and a few more
    (PING, say) the connection ends, instead of its thread parsing them without end."""
    reader, writer = await _raw(tmp_path)
    writer.write(GREETING + READY + b"\x04\x00" * 100_000)
    assert await _closed_by_router(reader)
    writer.close()


async def test_messages_for_no_export_are_dropped_only_so_often(router, dealer):
    """Messages of another export (an abandoned one left a few) are dropped; a kernel that
    keeps sending them, each a turn of the event loop, gets its export refused."""
    kernel = dealer()
    channel = FrameChannel(router)
    await channel.open(b"now", 5.0)  # ipc: nothing to connect; the export's count starts
    for _ in range(_MAX_STALE):
        await kernel.send_multipart([b"old", b"D", b"x"])
    await kernel.send_multipart([b"now", b"H", b"{}"])
    async with asyncio.timeout(5):
        assert (await channel.receive(b"now"))[1] == b"H"
    for _ in range(_MAX_STALE + 1):
        await kernel.send_multipart([b"old", b"D", b"x"])
    with pytest.raises(KernelExecuteFailed) as failed:
        async with asyncio.timeout(5):
            await channel.receive(b"now")
    assert "no export in progress" in failed.value.extra["reason"]


async def test_a_message_already_here_is_taken_without_a_wait(router, dealer):
    """`receive_nowait` (how a chunk already waiting is handed on) returns only the export's
    own message, drops and counts another's on the way, as `receive` does, and returns None
    when nothing waits; at its end a stream says so without waiting."""
    kernel = dealer()
    channel = FrameChannel(router)
    await channel.open(b"now", 5.0)
    assert channel.receive_nowait(b"now") is None
    await kernel.send_multipart([b"old", b"D", b"x"])
    await kernel.send_multipart([b"now", b"D", b"y"])
    got = None
    async with asyncio.timeout(5):
        while got is None:  # the router's own queue: no event to wait on
            await asyncio.sleep(0.005)
            got = channel.receive_nowait(b"now")
    _, kind, payload = got
    assert (kind, bytes(payload or b"")) == (b"D", b"y")
    assert channel._stale == 1
    assert channel.receive_nowait(b"now") is None
    stream = _Stream(channel, b"peer", b"now")
    assert stream.next_nowait() == (False, None)
    stream.ended = True
    assert stream.next_nowait() == (True, None)


async def test_a_kernel_reconnecting_without_end_is_taken_a_few_times_a_second(router, tmp_path):
    """Each connection costs the loop an accept and a thread: a kernel that connects and
    hangs up in a loop gets at most _ACCEPT_BURST of them taken per second."""
    first = next(router._ids)
    loop = asyncio.get_running_loop()
    begin = loop.time()
    while loop.time() - begin < 1.5:
        with contextlib.suppress(OSError):
            _, writer = await asyncio.wait_for(_raw(tmp_path), 0.05)
            writer.close()
        await asyncio.sleep(0)
    taken = next(router._ids) - first - 1
    assert 0 < taken <= 2 * _ACCEPT_BURST + 1  # two seconds' worth, begun
