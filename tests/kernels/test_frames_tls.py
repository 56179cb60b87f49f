"""A tcp kernel's data-frame channel in TLS (gateway/kernels/frames_tls.py, zmtp.py's dialer,
and the kernel helper's own end from images/kernel/gateway_kernel.py), without Docker: both
ends are the real code, on 127.0.0.1; hostile kernels are the helper's own link misused."""

from __future__ import annotations

import asyncio
import io
import ssl
from pathlib import Path
from types import ModuleType
from typing import Any

import pyarrow as pa
import pyarrow.ipc
import pytest

from gateway.kernels import frames_tls
from gateway.kernels.errors import KernelExecuteFailed
from gateway.kernels.frames import _MAX_MESSAGE, CHUNK, WINDOW, FrameChannel, _Stream
from gateway.kernels.zmtp import RouterClosedError, ZmtpRouter

SECRET = b"rq:rCfIrI]S0v*Bw5R:Gzs&1y(fo1m.eC6ZJXXwu"
OTHER = b"Yne@$w&%tr8?ZYL!kH+d)Q3Pb0kpCj(4Mx>.b-tA"


class Kernel:
    """The kernel's side: its frames listener with `identity`, and links taken from it in a
    thread (as the helper takes them, blocking)."""

    def __init__(self, helper: ModuleType, path: Path, identity: bytes) -> None:
        path.write_bytes(identity)
        self.frames = helper._TlsFrames(0, str(path))
        self.port = self.frames._listener.getsockname()[1]
        self.helper = helper

    async def link(self, name: bytes, timeout: float = 5.0) -> Any:  # noqa: ASYNC109 - the helper's
        return await asyncio.to_thread(self.frames.link, name, timeout)

    def close(self) -> None:
        self.frames._listener.close()


@pytest.fixture
def kernel(kernel_helper, tmp_path):
    made: list[Kernel] = []

    def make(secret: bytes = SECRET) -> Kernel:
        made.append(
            Kernel(kernel_helper, tmp_path / f"k{len(made)}.pem", frames_tls.identity(secret))
        )
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


def _context(secret: bytes = SECRET) -> ssl.SSLContext:
    return frames_tls.client_context(frames_tls.identity(secret))


async def _receive(router: ZmtpRouter, timeout: float = 5.0) -> list[bytes]:  # noqa: ASYNC109
    async with asyncio.timeout(timeout):
        _, frames = await router.receive()
    return [bytes(f) for f in frames]


def test_the_identity_is_a_pure_function_of_the_curve_secret():
    first = frames_tls.identity(SECRET)
    assert first == frames_tls.identity(SECRET)  # re-attachment needs nothing new
    assert first != frames_tls.identity(OTHER)
    assert first.startswith(b"-----BEGIN CERTIFICATE-----")
    assert b"-----BEGIN PRIVATE KEY-----" in first
    with pytest.raises(ValueError, match="certificate followed by its key"):
        frames_tls.client_context(b"-----BEGIN CERTIFICATE-----\n")


async def test_an_export_crosses_whole_and_in_order(kernel, dialer, kernel_helper):
    """The helper's real writer over TLS: header, Arrow chunks, end; the same table arrives."""
    k = kernel()
    rows = 1_000_000  # 16 MB: several chunks
    table = pa.table({"a": pa.array(range(rows)), "b": pa.array(range(rows), pa.float64())})
    peer = await dialer.dial(("127.0.0.1", k.port), _context(), [b"x", b"N"], 5.0)
    link = await k.link(b"x")
    assert link is not None
    header = {"status": "ok", "total": table.num_rows}
    sending = asyncio.to_thread(kernel_helper._send_frame, link, b"x", header, table, 5.0)
    task = asyncio.ensure_future(sending)
    received = [await _receive(dialer)]
    while received[-1][1] != b"E":
        received.append(await _receive(dialer))
    assert await task is True
    link.close()
    assert received[0][:2] == [b"x", b"H"]
    chunks = [m[2] for m in received[1:-1]]
    assert all(m[:2] == [b"x", b"D"] for m in received[1:-1])
    assert max(map(len, chunks)) <= CHUNK
    data = b"".join(chunks)
    assert len(data) == kernel_helper.stream_size(table)
    assert pyarrow.ipc.open_stream(io.BytesIO(data)).read_all().equals(table)
    dialer.hang_up(peer)


async def test_only_the_kernels_own_identity_gets_through(kernel, dialer):
    """A gateway with another key gets no handshake, and the kernel gives it nothing; a kernel
    with another key (an impostor at the kernel's address) gets nothing from the gateway."""
    k = kernel()
    await dialer.dial(("127.0.0.1", k.port), _context(OTHER), [b"x", b"N"], 5.0)
    assert await k.link(b"x", timeout=1.0) is None
    impostor = kernel(OTHER)
    await dialer.dial(("127.0.0.1", impostor.port), _context(), [b"y", b"N"], 5.0)
    assert await impostor.link(b"y", timeout=1.0) is None
    with pytest.raises(TimeoutError):
        await _receive(dialer, timeout=0.5)


async def test_a_plain_client_gets_nothing_from_the_frames_port(kernel):
    k = kernel()
    reader, writer = await asyncio.open_connection("127.0.0.1", k.port)
    writer.write(b"\x01\x01x\x00\x01N")  # the opening, without TLS
    await writer.drain()
    assert await k.link(b"x", timeout=1.0) is None
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # closed, nothing sent
    writer.close()


async def test_a_later_exports_connection_is_kept_for_it(kernel, dialer):
    """The helper of export `a` started late, after the gateway had connected for `b` too:
    `a` takes its own, and `b`'s waits for `b`."""
    k = kernel()
    await dialer.dial(("127.0.0.1", k.port), _context(), [b"b", b"N"], 5.0)
    await dialer.dial(("127.0.0.1", k.port), _context(), [b"a", b"N"], 5.0)
    a = await k.link(b"a")
    b = await k.link(b"b", timeout=0.1)  # already held: no wait
    assert a is not None
    assert b is not None
    a.send_multipart([b"a", b"E"])
    b.send_multipart([b"b", b"E"])
    got = {tuple(await _receive(dialer)), tuple(await _receive(dialer))}
    assert got == {(b"a", b"E"), (b"b", b"E")}
    a.close()
    b.close()


async def test_a_frame_over_the_limit_ends_the_connection_unread(kernel, dialer):
    k = kernel()
    await dialer.dial(("127.0.0.1", k.port), _context(), [b"x", b"N"], 5.0)
    link = await k.link(b"x")
    link.send_multipart([b"x", b"H", b"{}"])
    assert await _receive(dialer) == [b"x", b"H", b"{}"]
    # a long frame announced past max_frame: refused from its size alone
    with pytest.raises(OSError):
        for _ in range(64):
            await asyncio.to_thread(link.send_multipart, [b"x", b"D", bytes(_MAX_MESSAGE + 1)])
    with pytest.raises(TimeoutError):
        await _receive(dialer, timeout=0.5)
    link.close()


async def test_a_stop_hangs_up_and_the_helper_returns(kernel, dialer, kernel_helper):
    """The client went away: the gateway's stop ends the connection, and a helper blocked on
    a full connection returns False instead of writing on."""
    k = kernel()
    channel = FrameChannel(dialer, address=("127.0.0.1", k.port), context=_context())
    await channel.open(b"x", 5.0)
    link = await k.link(b"x")
    big = pa.table({"a": list(range(4_000_000))})  # 32 MB: more than the queue and the socket hold
    task = asyncio.ensure_future(
        asyncio.to_thread(kernel_helper._send_frame, link, b"x", {"status": "ok"}, big, 30.0)
    )
    peer, kind, _ = await channel.receive(b"x")
    assert kind == b"H"
    _Stream(channel, peer, b"x").stop()
    async with asyncio.timeout(10):
        assert await task is False
    link.close()


async def test_close_wakes_a_waiting_receive_and_refuses_more(dialer, kernel):
    k = kernel()
    waiting = asyncio.ensure_future(dialer.receive())
    await asyncio.sleep(0)
    dialer.close()
    with pytest.raises(RouterClosedError):
        await asyncio.wait_for(waiting, 5)
    with pytest.raises(OSError, match="no room"):
        await dialer.dial(("127.0.0.1", k.port), _context(), [b"x", b"N"], 5.0)


async def test_a_closed_port_is_a_clear_failure(dialer):
    channel = FrameChannel(dialer, address=("127.0.0.1", 9), context=_context())
    with pytest.raises(KernelExecuteFailed) as failed:
        await channel.open(b"x", 2.0)
    assert "Could not connect to the kernel's data-frame port" in failed.value.extra["reason"]
