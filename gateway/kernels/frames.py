"""Data-frame exports: the helper call a `kernel/dataframe` request makes, and the ZMQ
stream its answer comes through.

Each kernel has a frames channel (channels.py): with ipc a ROUTER the gateway binds in its own
part of the run directory (`gateway/frames`, which the kernel cannot replace; a unix socket,
which also crosses gVisor's file proxy, unlike a FIFO); with tcp the kernel binds the port
and the gateway connects through CurveZMQ. Messages are `[name, kind, payload]`:

    kernel → gateway   H <JSON header: status, total, rows, columns, or an error>
                       D <a chunk of the Arrow IPC stream, at most CHUNK bytes>   (on credit)
                       E                                                          (the end)
    gateway → kernel   C <n>: room for n more chunks   S: stop (the client went away)

The kernel sends a chunk only on credit, and the gateway grants one per chunk it hands on, so
it never holds more than WINDOW chunks of a frame, however fast the kernel writes; chunks are
received without a copy. Messages for another export (a stale one) are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import zmq
import zmq.asyncio

from gateway.kernels.channels import Endpoint, router
from gateway.kernels.errors import KernelDied, KernelExecuteFailed

FRAME: Final = "frame"  # the user_expression's name
SOCKET: Final = "frames"  # the ipc socket's name in the run directory's gateway/ part
CHUNK: Final = 1 << 20  # the kernel's helper sends the Arrow stream in chunks of this size
WINDOW: Final = 16  # chunks the kernel may send ahead of the gateway (16 MiB held at most)
_MAX_HEADER: Final = 1 << 20
_MAX_MESSAGE: Final = max(CHUNK, _MAX_HEADER) + 4096
_EOF_GRACE_S: Final = 2.0  # after the helper returned, the pipe must close within this


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
    """One kernel's frames socket (bound or connected per `endpoint`), open while it lives.
    Exports on it are serialized by the kernel's turn, so one reads at a time."""

    def __init__(self, endpoint: Endpoint) -> None:
        self._socket = router(endpoint, max_message=_MAX_MESSAGE, queue=2 * WINDOW)

    async def receive(self, name: bytes) -> tuple[bytes, bytes, zmq.Frame | None]:
        """The next message of export `name`: (peer, kind, payload); others are dropped."""
        while True:
            try:
                frames = await self._socket.recv_multipart(copy=False)
            except zmq.ZMQError as err:  # closed under us: the kernel was stopped
                msg = "The kernel stopped while sending the data frame."
                raise KernelExecuteFailed(msg) from err
            except asyncio.CancelledError as err:
                # pyzmq cancels a pending receive when the socket is closed (kernel stopped)
                task = asyncio.current_task()
                if not self._socket.closed or (task is not None and task.cancelling()):
                    raise
                msg = "The kernel stopped while sending the data frame."
                raise KernelExecuteFailed(msg) from err
            if len(frames) < 3 or frames[1].bytes != name:
                continue
            payload = frames[3] if len(frames) > 3 else None
            return frames[0].bytes, frames[2].bytes, payload

    def send(self, peer: bytes, name: bytes, kind: bytes, payload: bytes = b"") -> None:
        """Credit or stop for the kernel's helper; dropped when the peer cannot take it."""
        if self._socket.closed:
            return
        with contextlib.suppress(zmq.ZMQError):
            sent = self._socket.send_multipart([peer, name, kind, payload], flags=zmq.NOBLOCK)
            asyncio.ensure_future(sent).add_done_callback(_retrieve)

    def close(self) -> None:
        self._socket.close(linger=0)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # a send the kernel could not take is dropped, by design


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

    async def next(self) -> memoryview | bytes:
        """The next chunk; b"" at the end. Raises KernelExecuteFailed on a broken stream."""
        if self.ended:
            return b""
        _, kind, payload = await self._channel.receive(self._name)
        if kind == b"D" and payload is not None:
            self._channel.send(self._peer, self._name, b"C", b"1")
            return payload.buffer
        self.ended = True
        if kind != b"E":
            msg = "The kernel sent a broken data frame stream."
            raise KernelExecuteFailed(msg)
        return b""

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

    async def chunks(self) -> AsyncIterator[bytes | memoryview]:
        """The Arrow stream's chunks until the kernel's end message. Raises
        KernelExecuteFailed when the kernel sends nothing for `timeout` seconds, or does not end
        the stream once its helper has returned (a hostile kernel holding the request)."""
        if self._reader is None:
            return
        while chunk := await self._next_chunk(self._reader):
            yield chunk

    async def _next_chunk(self, reader: _Stream) -> bytes | memoryview:
        read = asyncio.ensure_future(reader.next())
        try:
            await asyncio.wait(
                {read, self._reply}, timeout=self._timeout, return_when="FIRST_COMPLETED"
            )
            if not read.done() and self._reply.done():
                # the helper has returned: what it sent is on its way, the end must follow
                await asyncio.wait({read}, timeout=_EOF_GRACE_S)
            if not read.done():
                msg = f"The kernel stopped sending the data frame for over {self._timeout:g} s."
                raise KernelExecuteFailed(msg)
            return read.result()
        finally:
            read.cancel()

    async def read_all(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])

    async def complete(self) -> None:
        """Raise KernelExecuteFailed unless the kernel's helper returned ok (call after EOF)."""
        with _export_failures(self._timeout):
            async with asyncio.timeout(self._timeout):
                found = await asyncio.shield(self._reply)
        value = _helper_result(found)
        if value.get("status") != "ok":
            msg = f"The data frame export did not finish ({value.get('error', 'error')})."
            raise KernelExecuteFailed(msg)


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


def _helper_result(found: dict[str, Any]) -> dict[str, Any]:
    value = found.get(FRAME) or {}
    if value.get("status") != "ok":
        return {"status": "error", "error": value.get("ename") or "error"}
    result: dict[str, Any] = (value.get("data") or {}).get("application/json") or {}
    return result


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
        if not reply.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reply, timeout)
        if reply.done() and not reply.cancelled():
            reply.exception()  # retrieved: a failure here was already reported


def _header(kind: bytes, payload: zmq.Frame | None) -> dict[str, Any]:
    if kind != b"H" or payload is None or len(payload) > _MAX_HEADER:
        return {"status": "error", "error": "bad_header"}
    try:
        meta = json.loads(payload.bytes)
    except ValueError:
        return {"status": "error", "error": "bad_header"}
    if not isinstance(meta, dict):
        return {"status": "error", "error": "bad_header"}
    return meta
