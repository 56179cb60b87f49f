"""A tcp kernel's sealed data-frame channel (gateway/kernels/frames_seal.py, zmtp.py's dialer,
and the kernel helper's own end from images/kernel/gateway_kernel.py), without Docker: both
ends are the real code, on 127.0.0.1; hostile kernels and strangers are raw sockets or the
helper's own link misused."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import struct
import threading
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.ipc
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.kernels import frames_seal
from gateway.kernels.buffers import SHELF
from gateway.kernels.errors import KernelExecuteFailed
from gateway.kernels.frames import (
    _MAX_MESSAGE,
    CHUNK,
    FRAME,
    WINDOW,
    FrameChannel,
    _Stream,
    frame_stream,
    most_messages,
)
from gateway.kernels.zmtp import RouterClosedError, ZmtpRouter

SECRET = b"rq:rCfIrI]S0v*Bw5R:Gzs&1y(fo1m.eC6ZJXXwu"  # a Z85 Curve secret, as in the records
OTHER = b"Yne@$w&%tr8?ZYL!kH+d)Q3Pb0kpCj(4Mx>.b-tA"
KEY = frames_seal.frames_key(SECRET)


class Kernel:
    """The kernel's side: its frames listener for `secret`, and links taken from it in a
    thread (as the helper takes them, blocking)."""

    def __init__(self, helper: ModuleType, secret: bytes) -> None:
        self.frames = helper._SealedFrames(0, secret)
        self.port = self.frames._listener.getsockname()[1]

    async def link(self, name: bytes, timeout: float = 5.0) -> Any:  # noqa: ASYNC109 - the helper's
        return await asyncio.to_thread(self.frames.link, name, timeout)

    def close(self) -> None:
        self.frames.close()


@pytest.fixture
def kernel(kernel_helper):
    made: list[Kernel] = []

    def make(secret: bytes = SECRET) -> Kernel:
        made.append(Kernel(kernel_helper, secret))
        return made[-1]

    yield make
    for one in made:
        one.close()


@pytest.fixture
async def dialer():
    # the limits FrameChannel.dial sets
    made = ZmtpRouter.dialer(
        max_frame=_MAX_MESSAGE, max_frames=4, max_bytes=_MAX_MESSAGE, queue=WINDOW
    )
    yield made
    made.close()


async def _dial(router: ZmtpRouter, port: int, name: bytes, key: bytes = KEY) -> bytes:
    return await router.dial(("127.0.0.1", port), frames_seal.greeter(key, name), 5.0)


async def _receive(router: ZmtpRouter, timeout: float = 5.0) -> list[bytes]:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        _, frames = await router.receive()
    return [bytes(f) for f in frames]


def _frame(flags: int, body: bytes) -> bytes:
    if len(body) < 256:
        return bytes((flags, len(body))) + body
    return bytes((flags | 0x02,)) + struct.pack(">Q", len(body)) + body


def _message(*frames: bytes) -> bytes:
    return b"".join(_frame(0 if n == len(frames) - 1 else 1, f) for n, f in enumerate(frames))


async def _export_payloads(
    kernel: Kernel, dialer: ZmtpRouter, helper: ModuleType, name: bytes, table: pa.Table
) -> tuple[bytes, list[memoryview]]:
    """One whole export of `table` as export `name`: the peer and every message's payload
    (views, as the HTTP side holds them)."""
    peer = await _dial(dialer, kernel.port, name)
    link = await kernel.link(name)
    assert link is not None
    header = {"status": "ok", "total": table.num_rows}
    task = asyncio.ensure_future(
        asyncio.to_thread(helper._send_frame, link, name, header, table, 5.0)
    )
    payloads: list[memoryview] = []
    async with asyncio.timeout(30):
        while True:
            _, frames = await dialer.receive()
            assert bytes(frames[0]) == name
            payloads.append(frames[2])
            if bytes(frames[1]) == b"E":
                break
    assert await task is True
    link.close()
    return peer, payloads


async def _connections_ended() -> None:
    """Wait for the connections' threads (which give their buffers back as they end)."""
    for thread in [t for t in threading.enumerate() if t.name == "tcp-frames"]:
        await asyncio.to_thread(thread.join, 5.0)
        assert not thread.is_alive()


def test_keys_are_per_kernel_export_and_connection():
    assert frames_seal.frames_key(SECRET) == KEY  # re-attachment needs nothing new
    assert frames_seal.frames_key(OTHER) != KEY
    c1, c2 = bytes(16), bytes(15) + b"\x01"
    keys = {
        frames_seal.data_key(KEY, b"a", c1),
        frames_seal.data_key(KEY, b"a", c2),
        frames_seal.data_key(KEY, b"b", c1),
        frames_seal.data_key(frames_seal.frames_key(OTHER), b"a", c1),
    }
    assert len(keys) == 4
    name, kind, proof = frames_seal.answer(KEY, b"a", c1)
    assert (name, kind) == (b"a", b"N")
    assert proof not in keys  # the answer's key is not the data key
    assert proof != frames_seal.answer(KEY, b"a", c2)[2]
    assert proof != frames_seal.answer(KEY, b"b", c1)[2]
    assert proof != frames_seal.answer(frames_seal.frames_key(OTHER), b"a", c1)[2]


async def test_an_export_crosses_whole_and_in_order(kernel, dialer, kernel_helper):
    """The helper's real writer, sealed: header, Arrow chunks, end; the same table arrives,
    and chunks still held are never overwritten by later ones (reused buffers)."""
    k = kernel()
    rows = 2_000_000  # 32 MB: more chunks than the reused buffers
    table = pa.table({"a": pa.array(range(rows)), "b": pa.array(range(rows), pa.float64())})
    # views, not copies: every chunk kept alive to the end
    peer, held = await _export_payloads(k, dialer, kernel_helper, b"x", table)
    assert b'"status": "ok"' in bytes(held[0])
    chunks = held[1:-1]
    assert len(chunks) > 8
    assert max(map(len, chunks)) <= CHUNK
    data = b"".join(chunks)
    assert len(data) == kernel_helper.stream_size(table)
    assert pyarrow.ipc.open_stream(io.BytesIO(data)).read_all().equals(table)
    dialer.hang_up(peer)


async def test_a_kernel_with_another_key_gets_no_stream_through(kernel, dialer, kernel_helper):
    """An impostor at the kernel's address (or a kernel holding another key): the gateway's
    opening does not prove itself to it, and what it sends does not open."""
    impostor = kernel(OTHER)
    await _dial(dialer, impostor.port, b"x")
    assert await impostor.link(b"x", timeout=1.0) is None  # the opening is not its key's
    k = kernel()
    await _dial(dialer, k.port, b"y", key=frames_seal.frames_key(OTHER))
    assert await k.link(b"y", timeout=1.0) is None  # nor is this one
    # a sender with the wrong key, as a kernel that skipped the answer's check would be: the
    # gateway refuses its first message
    with socket.create_server(("127.0.0.1", 0)) as listener:
        await _dial(dialer, listener.getsockname()[1], b"z")
        raw, _ = await asyncio.to_thread(listener.accept)
    with raw:
        challenge = bytes(range(16))
        raw.sendall(challenge)
        await asyncio.to_thread(raw.recv, 4096)  # the answer, not checked
        wrong = frames_seal.data_key(frames_seal.frames_key(OTHER), b"z", challenge)
        link = kernel_helper._SealedLink(raw, wrong)
        link.send_multipart([b"z", b"H", b"{}"])
        with pytest.raises(TimeoutError):
            await _receive(dialer, timeout=1.0)
        link.close()


@pytest.mark.parametrize(
    "tamper",
    ["flip a payload bit", "swap the kind", "drop a message", "repeat a message", "unsealed"],
)
async def test_a_stream_altered_on_the_way_is_refused(dialer, tamper):
    """What a kernel (or anything between) sends that was not sealed in order for this export
    ends the connection before the loop sees it."""
    server = await asyncio.start_server(lambda r, w: served.set_result((r, w)), "127.0.0.1", 0)
    served: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    port = server.sockets[0].getsockname()[1]
    challenge = bytes(range(16))
    aead = AESGCM(frames_seal.data_key(KEY, b"x", challenge))

    def sealed(number: int, kind: bytes, payload: bytes) -> bytes:
        return aead.encrypt(frames_seal.nonce(number), payload, b"x\x00" + kind)

    messages = [
        _message(b"x", b"H", sealed(0, b"H", b"{}")),
        _message(b"x", b"D", sealed(1, b"D", b"chunk one")),
        _message(b"x", b"D", sealed(2, b"D", b"chunk two")),
    ]
    if tamper == "flip a payload bit":
        messages[1] = messages[1][:-1] + bytes((messages[1][-1] ^ 1,))
    elif tamper == "swap the kind":
        messages[1] = _message(b"x", b"E", sealed(1, b"D", b"chunk one"))
    elif tamper == "drop a message":
        del messages[1]
    elif tamper == "repeat a message":
        messages.insert(1, messages[0])
    else:
        messages[1] = _message(b"x", b"D", b"chunk one in the clear, no tag at all")
    await _dial(dialer, port, b"x")
    reader, writer = await served
    writer.write(challenge)
    answer = await reader.readexactly(len(_message(*frames_seal.answer(KEY, b"x", challenge))))
    assert answer == _message(*frames_seal.answer(KEY, b"x", challenge))
    writer.write(b"".join(messages))
    await writer.drain()
    assert await _receive(dialer) == [b"x", b"H", b"{}"]  # the first message opened
    with pytest.raises(TimeoutError):
        await _receive(dialer, timeout=1.0)  # nothing after the altered one
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # and the gateway hung up
    writer.close()
    server.close()


async def test_a_stranger_gets_nothing_but_a_challenge(kernel):
    """A plain client, a made-up proof, a proof for another challenge (a recorded answer
    replayed), one made with another kernel's key: closed after the challenge, nothing else."""
    k = kernel()
    recorded = _message(*frames_seal.answer(KEY, b"x", bytes(16)))
    other = frames_seal.frames_key(OTHER)
    answers = [
        lambda _: b"GET / HTTP/1.1\r\n\r\n",
        lambda _: _message(b"x", b"N", bytes(32)),
        lambda _: recorded,
        lambda challenge: _message(*frames_seal.answer(other, b"x", challenge)),
    ]
    for make in answers:
        reader, writer = await asyncio.open_connection("127.0.0.1", k.port)
        looking = asyncio.ensure_future(k.link(b"x", timeout=1.0))
        challenge = await reader.readexactly(16)
        writer.write(make(challenge))
        await writer.drain()
        assert await looking is None
        got = b""
        async with asyncio.timeout(5):
            with contextlib.suppress(ConnectionResetError):  # closed with its bytes unread
                got = await reader.read()
        assert got == b""
        writer.close()


async def test_an_answer_recorded_on_the_wire_opens_nothing_later(kernel, dialer):
    """The gateway's real answer, captured and replayed on a new connection, does not take a
    later export of the same name (a fresh challenge), nor does it spoil the first."""
    k = kernel()
    await _dial(dialer, k.port, b"x")
    link = await k.link(b"x")
    assert link is not None
    link.send_multipart([b"x", b"E"])
    assert await _receive(dialer) == [b"x", b"E", b""]
    link.close()
    # what a sniffer saw: the gateway's answer to that connection's challenge, replayed
    reader, writer = await asyncio.open_connection("127.0.0.1", k.port)
    looking = asyncio.ensure_future(k.link(b"x", timeout=1.0))
    challenge = await reader.readexactly(16)
    writer.write(_message(*frames_seal.answer(KEY, b"x", bytes(16))))  # not this challenge
    assert challenge != bytes(16)
    assert await looking is None
    writer.close()


async def test_a_later_exports_connection_is_kept_for_it(kernel, dialer):
    """The helper of export `a` started late, after the gateway had connected for `b` too:
    `a` takes its own, and `b`'s waits for `b`; a second connection for `b` does not replace
    the first."""
    k = kernel()
    await _dial(dialer, k.port, b"b")
    await _dial(dialer, k.port, b"b")
    await _dial(dialer, k.port, b"a")
    a = await k.link(b"a")
    b = await k.link(b"b", timeout=0.1)  # already held: no wait
    assert a is not None
    assert b is not None
    a.send_multipart([b"a", b"E"])
    b.send_multipart([b"b", b"E"])
    got = {tuple(await _receive(dialer)), tuple(await _receive(dialer))}
    assert got == {(b"a", b"E", b""), (b"b", b"E", b"")}
    assert await k.link(b"b", timeout=0.5) is None, "the second `b` was closed, not kept"
    a.close()
    b.close()


async def test_connections_left_behind_do_not_fill_the_port(kernel, dialer):
    """Exports the gateway gave up, or whose helper never ran (an unknown variable fails
    before it), leave their connections: the kernel takes and drops them as they come, so
    the port's queue (16) never fills and the next export is served."""
    k = kernel()
    for n in range(40):
        peer = await _dial(dialer, k.port, f"gone-{n}".encode())
        dialer.hang_up(peer)
    await _dial(dialer, k.port, b"x")
    link = await k.link(b"x", timeout=10.0)
    assert link is not None
    link.send_multipart([b"x", b"E"])
    assert await _receive(dialer) == [b"x", b"E", b""]
    link.close()
    assert len(k.frames._held) <= k.frames.HELD


async def test_a_trickling_stranger_does_not_hold_the_helper(kernel, dialer, kernel_helper):
    """A connection that answers a byte at a time has ANSWER_S, not the export's timeout: the
    gateway's own connection, queued behind it, is served."""
    k = kernel()
    _, writer = await asyncio.open_connection("127.0.0.1", k.port)
    await _dial(dialer, k.port, b"x")
    looking = asyncio.ensure_future(k.link(b"x", timeout=20.0))
    async with asyncio.timeout(15):
        while not looking.done():
            writer.write(b"\x01")
            await writer.drain()
            await asyncio.sleep(0.3)
    link = looking.result()
    assert link is not None
    link.send_multipart([b"x", b"E"])
    assert await _receive(dialer) == [b"x", b"E", b""]
    link.close()
    writer.close()
    assert kernel_helper._SealedFrames.ANSWER_S < 5


async def test_a_slow_reader_is_not_a_timeout_while_it_reads(kernel_helper):
    """The link's timeout bounds each piece it sends, not a whole 4 MiB chunk: a reader
    slower than 4 MiB per timeout but steady gets the whole chunk."""
    ours, theirs = socket.socketpair()
    link = kernel_helper._SealedLink(ours, bytes(32))
    link.settimeout(1.0)
    payload = bytes(CHUNK)
    rate = 3 << 20  # bytes per second: the chunk takes the reader > 1 s
    try:
        sending = asyncio.ensure_future(
            asyncio.to_thread(link.send_multipart, [b"x", b"D", payload])
        )
        total = CHUNK + 64  # the chunk sealed, and its frames' heads
        got = 0
        theirs.setblocking(False)
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with asyncio.timeout(30):
            while got < total and not sending.done():
                await asyncio.sleep(0.01)
                # paced by the clock, not by the loop's turns: a late turn catches up
                allowed = int((loop.time() - began) * rate)
                with contextlib.suppress(BlockingIOError):
                    while got < allowed:
                        got += len(theirs.recv(min(64 * 1024, allowed - got)))
            await sending
    finally:
        link.close()
        theirs.close()


async def _linked_after_a_header(kernel, dialer) -> Any:
    """Export "x" connected, its header sent and received; the kernel's link."""
    k = kernel()
    await _dial(dialer, k.port, b"x")
    link = await k.link(b"x")
    link.send_multipart([b"x", b"H", b"{}"])
    assert await _receive(dialer) == [b"x", b"H", b"{}"]
    return link


async def test_a_frame_over_the_limit_ends_the_connection_unread(kernel, dialer):
    link = await _linked_after_a_header(kernel, dialer)
    # a long frame announced past max_frame: refused from its size alone
    with pytest.raises(OSError):
        for _ in range(64):
            await asyncio.to_thread(link.send_multipart, [b"x", b"D", bytes(_MAX_MESSAGE + 1)])
    with pytest.raises(TimeoutError):
        await _receive(dialer, timeout=0.5)
    link.close()


async def test_a_stop_hangs_up_drops_what_waits_and_the_helper_returns(
    kernel, dialer, kernel_helper
):
    """The client went away: the gateway's stop ends the connection and frees the chunks
    waiting for it, and a helper blocked on a full connection returns False instead of
    writing on."""
    k = kernel()
    channel = FrameChannel(dialer, address=("127.0.0.1", k.port), key=KEY)
    await channel.open(b"x", 5.0)
    link = await k.link(b"x")
    # 128 MB: more than the queue and both sockets' buffers can take (up to 32 + 4 MB here)
    big = pa.table({"a": np.zeros(16_000_000, dtype="int64")})
    task = asyncio.ensure_future(
        asyncio.to_thread(kernel_helper._send_frame, link, b"x", {"status": "ok"}, big, 30.0)
    )
    try:
        peer, kind, _ = await channel.receive(b"x")
        assert kind == b"H"
        async with asyncio.timeout(20):  # the queue fills: the kernel writes faster than we take
            while len(dialer._messages) < WINDOW:  # noqa: ASYNC110 - filled by the reader thread
                await asyncio.sleep(0.05)
        _Stream(channel, peer, b"x").stop()
        assert not dialer._messages, "dropped with the connection"
        async with asyncio.timeout(10):
            assert await task is False
        async with asyncio.timeout(5):
            while any(t.name == "tcp-frames" for t in threading.enumerate()):  # noqa: ASYNC110 - polled
                await asyncio.sleep(0.05)
        assert not dialer._peers
    finally:
        link.close()


async def test_a_hang_up_after_the_stream_ended_still_drops_what_waits(kernel, dialer):
    """The whole export arrived and its connection ended before the client went away: what
    waits for the loop is dropped all the same."""
    k = kernel()
    peer = await _dial(dialer, k.port, b"x")
    link = await k.link(b"x")
    for kind in (b"H", b"D", b"E"):
        link.send_multipart([b"x", kind, b"-" * 300])
    link.close()
    async with asyncio.timeout(5):
        while dialer._peers:  # noqa: ASYNC110 - the reading thread ends on its own; polled
            await asyncio.sleep(0.05)
    assert len(dialer._messages) == 3
    dialer.hang_up(peer)
    assert not dialer._messages


async def test_close_wakes_a_waiting_receive_and_refuses_more(dialer, kernel):
    k = kernel()
    waiting = asyncio.ensure_future(dialer.receive())
    await asyncio.sleep(0)
    dialer.close()
    with pytest.raises(RouterClosedError):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(OSError, match="no room"):
        await _dial(dialer, k.port, b"x")


async def test_a_closed_port_is_a_clear_failure(dialer):
    channel = FrameChannel(dialer, address=("127.0.0.1", 9), key=KEY)
    with pytest.raises(KernelExecuteFailed) as failed:
        await channel.open(b"x", 2.0)
    assert "Could not connect to the kernel's data-frame port" in failed.value.extra["reason"]


def test_a_kernel_without_its_curve_secret_does_not_start_its_frames_port(kernel_helper):
    with pytest.raises(RuntimeError, match="Curve secret"):
        kernel_helper._SealedFrames(0, b"")


async def test_a_zmtp_command_ends_a_dialed_connection(kernel, dialer):
    """A dialed connection carries sealed messages only: a ZMTP command (nothing seals or
    queues it) from the kernel ends it, and what follows is never delivered."""
    link = await _linked_after_a_header(kernel, dialer)
    with contextlib.suppress(OSError):
        link._raw.sendall(b"\x04\x00")  # an empty command, written by a hostile kernel
        link.send_multipart([b"x", b"E"])
    with pytest.raises(TimeoutError):
        await _receive(dialer, timeout=0.5)
    async with asyncio.timeout(5):
        while dialer._peers:  # noqa: ASYNC110 - the reading thread ends on its own; polled
            await asyncio.sleep(0.05)
    link.close()


def _helper_ok() -> Callable[[], Awaitable[dict[str, Any]]]:
    """The kernel's reply that its helper returned ok, soon after its header (a hostile
    kernel sends it before its stream is done)."""

    async def reply() -> dict[str, Any]:
        await asyncio.sleep(0.3)
        return {FRAME: {"status": "ok", "data": {"application/json": {"status": "ok"}}}}

    return reply


async def _send_as_kernel(k: Kernel, messages: list[tuple[bytes, bytes]], pause: float) -> None:
    """The kernel's side of export "x": `messages` (kind, payload), `pause` seconds apart,
    until they are all sent or the gateway hangs up."""
    link = await k.link(b"x")
    try:
        for kind, payload in messages:
            await asyncio.to_thread(link.send_multipart, [b"x", kind, payload])
            await asyncio.sleep(pause)
    except OSError:
        pass  # hung up
    finally:
        link.close()


async def test_a_trickling_kernel_cannot_hold_an_export_past_its_timeout(kernel, dialer):
    """The helper's answer came at once and a byte follows every half second: the time spent
    waiting for the kernel adds up, and the export fails at its timeout, not never."""
    k = kernel()
    channel = FrameChannel(dialer, address=("127.0.0.1", k.port), key=KEY)
    trickle = [(b"H", json.dumps({"status": "ok", "total": 1}).encode())]
    trickle += [(b"D", b"-")] * 1000
    sending = asyncio.ensure_future(_send_as_kernel(k, trickle, 0.5))
    loop = asyncio.get_running_loop()
    begin = loop.time()
    async with frame_stream(channel, "x", evaluate=_helper_ok(), timeout=2.0) as export:
        assert export.error is None
        with pytest.raises(KernelExecuteFailed) as failed:
            async with asyncio.timeout(15):
                async for _ in export.chunks(1 << 20):
                    pass
    assert "took over 2 s" in failed.value.extra["reason"]
    assert loop.time() - begin < 6
    async with asyncio.timeout(5):
        await sending  # the gateway hung up on it


async def test_only_the_end_message_ends_a_stream(kernel, dialer):
    """An empty chunk is not the end: a stream ends with its end message only, so one cut
    short by an empty chunk never looks whole."""
    k = kernel()
    channel = FrameChannel(dialer, address=("127.0.0.1", k.port), key=KEY)
    header = (b"H", json.dumps({"status": "ok", "total": 2}).encode())
    messages = [header, (b"D", b"abc"), (b"D", b""), (b"D", b"def"), (b"E", b"")]
    sending = asyncio.ensure_future(_send_as_kernel(k, messages, 0.0))
    async with frame_stream(channel, "x", evaluate=_helper_ok(), timeout=5.0) as export:
        async with asyncio.timeout(10):
            chunks = [bytes(chunk) async for chunk in export.chunks(6)]
    assert chunks == [b"abc", b"def"]
    await sending


async def test_a_frame_sent_a_byte_at_a_time_is_refused(kernel, dialer):
    """Each message costs the event loop a turn: more messages than the stream's size takes
    (the helper's own writer never needs them) end the export."""
    k = kernel()
    channel = FrameChannel(dialer, address=("127.0.0.1", k.port), key=KEY)
    header = (b"H", json.dumps({"status": "ok", "total": 1}).encode())
    messages = [header, *[(b"D", b"x")] * 100, (b"E", b"")]
    sending = asyncio.ensure_future(_send_as_kernel(k, messages, 0.0))
    got = 0
    async with frame_stream(channel, "x", evaluate=_helper_ok(), timeout=5.0) as export:
        with pytest.raises(KernelExecuteFailed) as failed:
            async with asyncio.timeout(10):
                async for _ in export.chunks(100):
                    got += 1
    assert "more pieces than its size takes" in failed.value.extra["reason"]
    assert got == most_messages(100) < 100
    async with asyncio.timeout(5):
        await sending


class _Counted:
    """What the helper's writer sends, counted (the gateway's side of the socket)."""

    credit = float("inf")

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def send_multipart(self, frames: list[Any], **_: Any) -> None:
        if bytes(frames[1]) == b"D":
            self.sizes.append(len(memoryview(frames[2]).cast("B")))


@pytest.mark.parametrize(
    "table",
    [
        pa.table({"a": np.arange(2_000_000), "b": np.arange(2_000_000, dtype="float64")}),
        pa.table({f"c{i}": np.arange(131_072) for i in range(40)}),  # 1 MiB columns
        pa.table({f"c{i}": np.arange(1_000) for i in range(3_000)}),  # many small buffers
        pa.table({"s": [f"row {i}" * (i % 13) for i in range(300_000)]}),
    ],
    ids=["long", "mebibyte-columns", "wide", "strings"],
)
def test_the_helpers_writer_stays_within_the_message_bound(kernel_helper, table):
    sink = _Counted()
    header = {"status": "ok", "total": table.num_rows}
    assert kernel_helper._send_frame(sink, b"x", header, table, 5.0)
    size = kernel_helper.stream_size(table)
    assert sum(sink.sizes) == size
    assert len(sink.sizes) <= most_messages(size)


@pytest.fixture
def empty_shelf():
    """The gateway's shelf of buffers, emptied for the test (other tests leave buffers on it)
    and given its buffers back after."""
    kept = list(SHELF._buffers)
    SHELF._buffers.clear()
    yield SHELF
    SHELF._buffers[:] = kept


def _large(payloads: list[memoryview]) -> list[memoryview]:
    return [p for p in payloads if len(p) >= 1 << 20]


async def test_the_next_export_takes_its_buffers_from_the_shelf(
    kernel, dialer, kernel_helper, empty_shelf
):
    """An export's large buffers (the one sealed messages are received into and those they
    are opened into) go back to the shelf when its connection ends, and the next export
    takes them instead of faulting in fresh pages."""
    k = kernel()
    table = pa.table({"a": pa.array(np.full(1_000_000, 1.0))})  # 8 MB: two 4 MiB chunks
    peer, payloads = await _export_payloads(k, dialer, kernel_helper, b"one", table)
    assert len(_large(payloads)) == 2
    del payloads
    dialer.hang_up(peer)
    await _connections_ended()
    shelved = [id(b) for b in empty_shelf._buffers]
    assert len(shelved) == 3  # the receiving buffer and the two opened into
    peer, payloads = await _export_payloads(k, dialer, kernel_helper, b"two", table)
    assert {id(p.obj) for p in _large(payloads)} <= set(shelved)
    # the connection may end as soon as the kernel closes its side (its buffers go back then,
    # still viewed by `payloads`); once it has, the shelf holds the same three: none was made
    # anew (a fresh one would be given back beside them)
    dialer.hang_up(peer)
    await _connections_ended()
    assert sorted(id(b) for b in empty_shelf._buffers) == sorted(shelved)


async def test_a_buffer_still_held_is_not_reused_while_the_next_export_runs(
    kernel, dialer, kernel_helper, empty_shelf
):
    """The last chunk of an export is still held (being sent to the client) when its
    connection ends and its buffer goes back to the shelf: the next export leaves that
    buffer alone, and the held chunk keeps its bytes."""
    k = kernel()
    first = pa.table({"a": pa.array(np.full(1_000_000, 1.0))})
    peer, payloads = await _export_payloads(k, dialer, kernel_helper, b"one", first)
    still_held = _large(payloads)[-1]  # as `_stream_arrow` holds the last chunk
    kept = bytes(still_held)
    del payloads
    dialer.hang_up(peer)
    await _connections_ended()
    assert any(b is still_held.obj for b in empty_shelf._buffers)
    second = pa.table({"a": pa.array(np.full(1_000_000, 2.0))})
    peer, payloads = await _export_payloads(k, dialer, kernel_helper, b"two", second)
    assert all(p.obj is not still_held.obj for p in payloads)
    assert bytes(still_held) == kept  # nor was it received into
    data = b"".join(bytes(p) for p in payloads[1:-1])
    assert pyarrow.ipc.open_stream(io.BytesIO(data)).read_all().equals(second)
    dialer.hang_up(peer)
