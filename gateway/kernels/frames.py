"""Data-frame exports: the helper call a `kernel/dataframe` request makes, and the stream
its answer comes through.

Each kernel has a frames channel, read by the gateway itself frame by frame (zmtp.py: at most
4 frames and CHUNK + 4 KiB a message, checked before anything is held). With ipc the gateway
listens in its own part of the run directory (`gateway/frames`, which the kernel cannot
replace; a unix socket, which also crosses gVisor's file proxy, unlike a FIFO) and the kernel
helper's libzmq DEALER connects. With tcp the kernel listens on its frames port and the gateway
dials it for each export; the helper challenges the connection and the gateway's answer
`[name, N, proof]` tells it whose connection it is; every payload travels sealed
(frames_seal.py). Messages are `[name, kind, payload]`:

    kernel → gateway   H <JSON header: status, total, rows, columns, or an error>
                       D <a chunk of the Arrow IPC stream, at most CHUNK bytes>   (on credit)
                       E                                                          (the end)
    gateway → kernel   C <n>: room for n more chunks   S: stop (the client went away)
                       (tcp: none of these; TCP's flow control is the credit, a hang-up the stop)

The kernel sends a chunk only on credit (tcp: only as fast as the gateway reads), so however
fast the kernel writes the gateway holds a bounded part of a frame: WINDOW chunks waiting, the
one being read and the ones its caller holds (ipc: received without a copy; tcp: opened into
reused buffers while the caller does not hold them, the one being read in the connection's
own buffer; tcp's large buffers are kept across exports, buffers.py).
Messages for another export (a stale one) are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from gateway.kernels import frames_seal
from gateway.kernels.errors import KernelDied, KernelExecuteFailed
from gateway.kernels.rundir import RunDir
from gateway.kernels.zmtp import RouterClosedError, ZmtpRouter

FRAME: Final = "frame"  # the user_expression's name
SOCKET: Final = "frames"  # the ipc socket's name in the run directory's gateway/ part
CHUNK: Final = 4 << 20  # the kernel's helper sends the Arrow stream in chunks of this size
WINDOW: Final = 4  # chunks the kernel may send ahead of the gateway (16 MiB waiting at most)
_MAX_HEADER: Final = 1 << 20
_MAX_MESSAGE: Final = max(CHUNK, _MAX_HEADER) + 4096
_EOF_GRACE_S: Final = 2.0  # after the helper returned, the pipe must close within this
_MAX_STALE: Final = 64  # messages of no export in progress one export may see (a few are left
# by an abandoned export: those in flight on its credit; a kernel sending more is refused)


@dataclass(frozen=True, kw_only=True)
class FrameRequest:
    variable: str
    offset: int
    limit: int
    columns: list[str] | None
    max_bytes: int
    timeout: float


def frame_expression(request: FrameRequest, name: str) -> str:
    """The kernel helper call; the variable is a checked identifier, the rest are literals."""
    columns = "None" if request.columns is None else json.dumps(request.columns)
    return (
        f"__import__('gateway_kernel').export_frame({request.variable}, "
        f"offset={request.offset}, limit={request.limit}, columns={columns}, "
        f"max_bytes={request.max_bytes}, name={name!r}, timeout={request.timeout!r})"
    )


class FrameChannel:
    """One kernel's frames channel, open while it lives: for ipc the gateway's own listener
    (`listen`), for tcp a dialer of the kernel's frames port (`dial`). Exports on it are
    serialized by the kernel's turn, so one reads at a time."""

    def __init__(
        self,
        router: ZmtpRouter,
        *,
        address: tuple[str, int] | None = None,
        key: bytes | None = None,
    ) -> None:
        self._router = router
        self._address = address
        self._key = key
        self._peer: bytes | None = None  # tcp: the current export's connection
        self._stale = 0  # messages dropped during the current export

    @classmethod
    def dial(cls, address: tuple[str, int], key: bytes) -> FrameChannel:
        """tcp: exports connect to the kernel's frames port at `address` (from the engine),
        sealed with the kernel's frames `key` (frames_seal.py). Call on the event loop."""
        router = ZmtpRouter.dialer(
            max_frame=_MAX_MESSAGE,
            max_frames=4,
            max_bytes=_MAX_MESSAGE,
            queue=WINDOW,  # TCP holds the kernel back once this many chunks wait
        )
        return cls(router, address=address, key=key)

    async def open(self, name: bytes, timeout: float) -> None:  # noqa: ASYNC109 - per connect
        """tcp: connect for export `name` before the helper is called (so the connection is
        waiting in the kernel's queue when the helper looks); ipc: nothing to connect. Raises
        KernelExecuteFailed."""
        self._stale = 0
        if self._address is None or self._key is None:
            return
        self.finish()
        try:
            self._peer = await self._router.dial(
                self._address, frames_seal.greeter(self._key, name), timeout
            )
        except (OSError, TimeoutError) as err:
            msg = f"Could not connect to the kernel's data-frame port ({err or 'timed out'})."
            raise KernelExecuteFailed(msg) from err

    def finish(self) -> None:
        """tcp: end the last export's connection (nothing for ipc)."""
        if self._peer is not None:
            self._router.hang_up(self._peer)
            self._peer = None

    @classmethod
    async def listen(cls, run_dir: RunDir) -> FrameChannel:
        """ipc: listen on `gateway/frames` in the run directory (through its handle) and hand
        it to the kernel's uid. Raises OSError."""
        run_dir.unlink(SOCKET)  # a gateway that died left its socket (re-attaching)
        router = await ZmtpRouter.bind(
            run_dir.gateway_url(SOCKET).removeprefix("ipc://"),
            max_frame=_MAX_MESSAGE,
            max_frames=4,  # name, kind, payload (and one spare)
            max_bytes=_MAX_MESSAGE,
            queue=2 * WINDOW,
        )
        try:
            run_dir.give_to_kernel(SOCKET)
        except OSError:
            router.close()
            raise
        return cls(router=router)

    async def receive(self, name: bytes) -> tuple[bytes, bytes, memoryview | None]:
        """The next message of export `name`: (peer, kind, payload); others are dropped, up to
        `_MAX_STALE` per export (each costs the event loop work). Raises
        KernelExecuteFailed."""
        stopped = "The kernel stopped while sending the data frame."
        while True:
            try:
                peer, frames = await self._router.receive()
            except RouterClosedError as err:  # closed: the kernel was stopped
                raise KernelExecuteFailed(stopped) from err
            message = self._taken(name, peer, frames)
            if message is not None:
                return message

    def receive_nowait(self, name: bytes) -> tuple[bytes, bytes, memoryview | None] | None:
        """As `receive`, when export `name`'s message is already here; else None (others
        waiting are dropped and counted on the way). Never waits; raises KernelExecuteFailed."""
        while (waiting := self._router.receive_nowait()) is not None:
            message = self._taken(name, *waiting)
            if message is not None:
                return message
        return None

    def _taken(
        self, name: bytes, peer: bytes, frames: list[memoryview]
    ) -> tuple[bytes, bytes, memoryview | None] | None:
        """(peer, kind, payload) of a message of export `name`; None for another's, which
        is counted (past `_MAX_STALE`, KernelExecuteFailed)."""
        if len(frames) >= 2 and frames[0] == name:
            return peer, bytes(frames[1]), frames[2] if len(frames) > 2 else None
        self._stale += 1
        if self._stale > _MAX_STALE:
            msg = "The kernel sent data-frame messages for no export in progress."
            raise KernelExecuteFailed(msg)
        return None

    @property
    def closed(self) -> bool:
        return self._router.closed

    def send(self, peer: bytes, name: bytes, kind: bytes, payload: bytes = b"") -> None:
        """Credit or stop for the kernel's helper; dropped when the peer cannot take it. tcp:
        credit is TCP's own, and a stop hangs the connection up."""
        if self.closed:
            return
        if self._address is None:
            self._router.send(peer, [name, kind, payload])
        elif kind == b"S":
            self._router.hang_up(peer)

    def close(self) -> None:
        self._router.close()


class _Stream:
    """The chunks of one export as they arrive, granting the kernel one chunk of credit per
    chunk handed on."""

    def __init__(self, channel: FrameChannel, peer: bytes, name: bytes) -> None:
        self._channel = channel
        self._peer = peer
        self._name = name
        self.ended = False

    def start(self) -> None:
        self._channel.send(self._peer, self._name, b"C", str(WINDOW).encode())

    async def next(self) -> memoryview | bytes | None:
        """The next chunk (perhaps empty); None at the end. Raises KernelExecuteFailed on a
        broken stream."""
        if self.ended:
            return None
        _, kind, payload = await self._channel.receive(self._name)
        return self._handed_on(kind, payload)

    def next_nowait(self) -> tuple[bool, memoryview | bytes | None]:
        """(True, what `next` returns) when that needs no wait, else (False, None)."""
        if self.ended:
            return True, None
        message = self._channel.receive_nowait(self._name)
        if message is None:
            return False, None
        return True, self._handed_on(message[1], message[2])

    def _handed_on(self, kind: bytes, payload: memoryview | None) -> memoryview | bytes | None:
        if kind == b"D" and payload is not None:
            self._channel.send(self._peer, self._name, b"C", b"1")
            return payload
        self.ended = True
        if kind != b"E":
            msg = "The kernel sent a broken data frame stream."
            raise KernelExecuteFailed(msg)
        return None

    def stop(self) -> None:
        if not self.ended:
            self._channel.send(self._peer, self._name, b"S")


class FrameExport:
    """One export in flight. `error` (NameError, not_a_frame, too_large, …) or `meta` (total,
    rows, columns) come first; then `chunks()` yields the Arrow stream as the kernel writes it
    and `complete()` says whether the kernel finished it."""

    def __init__(
        self,
        *,
        error: str | None,
        meta: dict[str, Any],
        reader: _Stream | None,
        reply: asyncio.Task[dict[str, Any]],
        timeout: float,
    ) -> None:
        self.error = error
        self.meta = meta
        self._reader = reader
        self._reply = reply
        self._timeout = timeout

    async def chunks(self, most: int) -> AsyncIterator[bytes | memoryview]:
        """The Arrow stream's chunks until the kernel's end message (only that ends it; empty
        chunks are skipped), for a stream of at most `most` bytes (the caller holds it to
        that). The helper's answer comes only once the stream is sent, within `timeout`; a
        kernel that answers early is held to the same bound: the time spent waiting for its
        chunks adds up to at most `timeout` seconds (then only its end may still come, within
        `_EOF_GRACE_S`). Raises KernelExecuteFailed past that, when the kernel does not end
        the stream soon after its helper has returned, or when it sends more messages than
        `most` bytes take (`most_messages`): each costs the event loop work, so a hostile
        kernel may not send a frame a byte at a time."""
        if self._reader is None:
            return
        loop = asyncio.get_running_loop()
        left = self._timeout
        allowed = most_messages(most)
        while True:
            begin = loop.time()
            chunk = await self._next_chunk(self._reader, left)
            left -= loop.time() - begin
            if chunk is None:
                return
            if left < 0:  # only the end may come in the grace after the budget
                msg = f"The kernel took over {self._timeout:g} s to send the data frame."
                raise KernelExecuteFailed(msg)
            allowed -= 1
            if allowed < 0:
                msg = "The kernel sent the data frame in more pieces than its size takes."
                raise KernelExecuteFailed(msg)
            if chunk:
                yield chunk

    async def _next_chunk(self, reader: _Stream, left: float) -> bytes | memoryview | None:
        here, chunk = reader.next_nowait()
        if here:  # most chunks of a fast kernel: no task, no wait
            return chunk
        read = asyncio.ensure_future(reader.next())
        try:
            await asyncio.wait(
                {read, self._reply}, timeout=max(0.0, left), return_when="FIRST_COMPLETED"
            )
            if not read.done() and self._reply.done():
                # the helper has returned: what it sent is on its way, the end must follow
                await asyncio.wait({read}, timeout=_EOF_GRACE_S)
            if not read.done():
                msg = f"The kernel took over {self._timeout:g} s to send the data frame."
                raise KernelExecuteFailed(msg)
            return read.result()
        finally:
            read.cancel()

    async def complete(self) -> None:
        """Raise KernelExecuteFailed unless the kernel's helper returned ok (call after EOF)."""
        with _export_failures(self._timeout):
            async with asyncio.timeout(self._timeout):
                found = await asyncio.shield(self._reply)
        value = _helper_result(found)
        if value.get("status") != "ok":
            msg = f"The data frame export did not finish ({value.get('error', 'error')})."
            raise KernelExecuteFailed(msg)


def most_messages(size: int) -> int:
    """The most chunk messages the kernel's helper sends for a stream of `size` bytes: its
    writer sends a message per write of 1 MiB or more (in CHUNK pieces), after flushing what
    smaller writes gathered (at least 3 MiB, or whatever preceded such a write), so at most
    ~2.6 per MiB; 3 per MiB and a few more."""
    return 8 + 3 * -(-size // (1 << 20))


@contextlib.contextmanager
def _export_failures(timeout: float) -> Iterator[None]:
    """Around a wait (bounded by `timeout`) for the helper's answer: a dead kernel or the
    timeout becomes KernelExecuteFailed."""
    try:
        yield
    except KernelDied as err:
        msg = "The kernel died while exporting the data frame."
        raise KernelExecuteFailed(msg) from err
    except TimeoutError as err:
        msg = f"Exporting the data frame took over {timeout:g} s."
        raise KernelExecuteFailed(msg) from err


def _helper_result(found: Any) -> dict[str, Any]:
    """The helper's answer from the kernel's reply (which the kernel controls: anything not
    shaped as an answer is an error)."""
    value = found.get(FRAME) if isinstance(found, dict) else None
    if not isinstance(value, dict) or value.get("status") != "ok":
        name = value.get("ename") if isinstance(value, dict) else None
        return {"status": "error", "error": name if isinstance(name, str) and name else "error"}
    data = value.get("data")
    result = data.get("application/json") if isinstance(data, dict) else None
    return result if isinstance(result, dict) else {}


@contextlib.asynccontextmanager
async def frame_stream(
    channel: FrameChannel,
    name: str,
    *,
    evaluate: Callable[[], Awaitable[dict[str, Any]]],
    # Bounds each wait for the helper's answer inside the context, not the caller's whole
    # `async with` (which streams the frame to the client): asyncio.timeout() cannot say that.
    timeout: float,  # noqa: ASYNC109 - a per-wait bound, see above
) -> AsyncIterator[FrameExport]:
    """Start `evaluate()` (the helper call, which sends export `name` on `channel`) and yield
    the export once its header (or the helper's failure) is known. On exit a helper still
    sending is told to stop and its answer awaited, so the kernel is idle again before the
    caller goes on."""
    key = name.encode()
    await channel.open(key, timeout)
    reply = asyncio.ensure_future(evaluate())
    header = asyncio.ensure_future(channel.receive(key))
    stream: _Stream | None = None
    try:
        # the helper's own evaluation carries the timeout, so one of the two ends
        await asyncio.wait({header, reply}, return_when=asyncio.FIRST_COMPLETED)
        if header.done() and not header.cancelled() and header.exception() is None:
            peer, kind, payload = header.result()
            meta = _header(kind, payload)
            error = None if meta.get("status") == "ok" else str(meta.get("error", "error"))
            if error is None:
                stream = _Stream(channel, peer, key)
                stream.start()
            yield FrameExport(error=error, meta=meta, reader=stream, reply=reply, timeout=timeout)
            return
        header.cancel()
        # The helper never sent: the expression failed before it (NameError), or the kernel
        # died or timed out.
        with _export_failures(timeout):
            async with asyncio.timeout(timeout):
                found = await asyncio.shield(reply)
        result = _helper_result(found)
        yield FrameExport(
            error=str(result.get("error", "error")),
            meta=result,
            reader=None,
            reply=reply,
            timeout=timeout,
        )
    finally:
        header.cancel()
        if header.done() and not header.cancelled():
            header.exception()  # retrieved: the reply says why
        if stream is not None:
            stream.stop()  # a helper still sending returns at its next credit wait
        try:
            if not reply.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(reply, timeout)
            if reply.done() and not reply.cancelled():
                reply.exception()  # retrieved: a failure here was already reported
        finally:
            channel.finish()


def _header(kind: bytes, payload: memoryview | None) -> dict[str, Any]:
    if kind != b"H" or payload is None or len(payload) > _MAX_HEADER:
        return {"status": "error", "error": "bad_header"}
    try:
        meta = json.loads(bytes(payload))
    except (ValueError, RecursionError):  # RecursionError: nested past the parser's depth
        return {"status": "error", "error": "bad_header"}
    if not isinstance(meta, dict):
        return {"status": "error", "error": "bad_header"}
    return meta
