"""Data-frame exports: the helper call a `kernel/dataframe` request makes, and the pipe its
answer comes through.

The gateway makes a FIFO in its own part of the kernel's run directory (`gateway/`, which the
kernel cannot change: see rundir.py) and opens its read end; the kernel's helper opens the
write end and writes a header (4-byte little-endian length, then JSON: status,
total, rows, columns, or an error) and then the Arrow IPC stream. The gateway reads while the
kernel writes, so the export and the transfer overlap, and a bounded buffer is all it holds.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import json
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from gateway.kernels.errors import KernelDied, KernelExecuteFailed
from gateway.kernels.rundir import RunDir

FRAME: Final = "frame"  # the user_expression's name
PIPE_SIZE: Final = 1 << 20  # Linux fcntl F_SETPIPE_SZ: a 1 MiB pipe means fewer wake-ups
_BUFFER: Final = 4 << 20  # the reader pauses the pipe past this much waiting
_MAX_HEADER: Final = 1 << 20
_F_SETPIPE_SZ: Final = 1031
_EOF_GRACE_S: Final = 2.0  # after the helper returned, the pipe must close within this


@dataclass(frozen=True, kw_only=True)
class FrameRequest:
    variable: str
    offset: int
    limit: int
    columns: list[str] | None
    max_bytes: int
    timeout: float


def frame_expression(request: FrameRequest, name: str, frames_dir: str) -> str:
    """The kernel helper call; the variable is a checked identifier, the rest are literals."""
    columns = "None" if request.columns is None else json.dumps(request.columns)
    return (
        f"__import__('gateway_kernel').export_frame({request.variable}, "
        f"offset={request.offset}, limit={request.limit}, columns={columns}, "
        f"max_bytes={request.max_bytes}, name={name!r}, frames_dir={frames_dir!r})"
    )


class _PipeReader(asyncio.Protocol):
    """The pipe's data as it arrives, chunk by chunk (nothing re-buffered or copied); reading
    pauses while more than `_BUFFER` bytes wait, so the kernel waits for a slow client."""

    def __init__(self) -> None:
        self._chunks: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._eof = False
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.ReadTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.ReadTransport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._queued += len(data)
        if self._queued > _BUFFER and not self._paused and self._transport is not None:
            self._transport.pause_reading()
            self._paused = True
        self._wake()

    def eof_received(self) -> bool | None:
        self._eof = True
        self._wake()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> bytes:
        """The next chunk; b"" once the writer has closed and everything was read."""
        while not self._chunks and not self._eof:
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        if not self._chunks:
            return b""
        chunk = self._chunks.popleft()
        self._queued -= len(chunk)
        if self._paused and self._queued <= _BUFFER // 2 and self._transport is not None:
            self._transport.resume_reading()
            self._paused = False
        return chunk

    async def readexactly(self, size: int) -> bytes | None:
        """`size` bytes (the header), or None at EOF before them."""
        parts, have = [], 0
        while have < size:
            chunk = await self.next()
            if not chunk:
                return None
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        if have > size:  # the rest is the Arrow stream: back to the front of the queue
            self._chunks.appendleft(data[size:])
            self._queued += have - size
        return data[:size]


class FrameExport:
    """One export in flight. `error` (NameError, not_a_frame, too_large, …) or `meta` (total,
    rows, columns) come first; then `chunks()` yields the Arrow stream as the kernel writes it
    and `complete()` says whether the kernel finished it."""

    def __init__(
        self,
        *,
        error: str | None,
        meta: dict[str, Any],
        reader: _PipeReader | None,
        reply: asyncio.Task[dict[str, Any]],
        timeout: float,
    ) -> None:
        self.error = error
        self.meta = meta
        self._reader = reader
        self._reply = reply
        self._timeout = timeout

    async def chunks(self) -> AsyncIterator[bytes]:
        """The Arrow stream's chunks until the kernel closes the pipe. Raises
        KernelExecuteFailed when the kernel sends nothing for `timeout` seconds, or keeps the
        pipe open after its helper has returned (a hostile kernel holding the request)."""
        if self._reader is None:
            return
        while chunk := await self._next_chunk(self._reader):
            yield chunk

    async def _next_chunk(self, reader: _PipeReader) -> bytes:
        read = asyncio.ensure_future(reader.next())
        try:
            await asyncio.wait(
                {read, self._reply}, timeout=self._timeout, return_when="FIRST_COMPLETED"
            )
            if not read.done() and self._reply.done():
                # the helper has returned: what it wrote is in the pipe, EOF must follow
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
async def frame_pipe(
    run_dir: RunDir,
    name: str,
    *,
    evaluate: Callable[[], Awaitable[dict[str, Any]]],
    # Bounds each wait for the helper's answer inside the context, not the caller's whole
    # `async with` (which streams the frame to the client): asyncio.timeout() cannot say that.
    timeout: float,  # noqa: ASYNC109 - a per-wait bound, see above
) -> AsyncIterator[FrameExport]:
    """Make the FIFO `gateway/<name>` in `run_dir`, start `evaluate()` (the helper call) and
    yield the export once its header (or the helper's failure) is known. On exit the pipe is
    closed and removed and the helper's answer awaited, so the kernel is idle again before the
    caller goes on."""
    loop = asyncio.get_running_loop()
    transport: asyncio.ReadTransport | None = None
    reply: asyncio.Task[dict[str, Any]] | None = None
    # Opening the read end first means the kernel's open never blocks; Linux reports no
    # readiness on a FIFO until a writer has come, so nothing is read before the kernel.
    try:
        fd = run_dir.make_fifo(name)
    except OSError as err:
        msg = f"Could not make the data-frame pipe ({err.strerror or err})."
        raise KernelExecuteFailed(msg) from err
    pipe = None
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, _F_SETPIPE_SZ, PIPE_SIZE)
        pipe = os.fdopen(fd, "rb", buffering=0)
        transport, reader = await loop.connect_read_pipe(_PipeReader, pipe)
        reply = asyncio.ensure_future(evaluate())
        header = asyncio.ensure_future(_header(reader))
        # the helper's own evaluation carries the timeout, so one of the two ends
        await asyncio.wait({header, reply}, return_when=asyncio.FIRST_COMPLETED)
        if header.done() and header.result() is not None:
            meta = header.result()
            assert meta is not None
            error = None if meta.get("status") == "ok" else str(meta.get("error", "error"))
            yield FrameExport(
                error=error,
                meta=meta,
                reader=reader if error is None else None,
                reply=reply,
                timeout=timeout,
            )
            return
        header.cancel()
        # The helper never wrote: the expression failed before it (NameError), or the kernel
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
        if transport is not None:
            transport.close()  # a helper still writing gets EPIPE and returns
        elif pipe is not None:
            pipe.close()
        else:
            os.close(fd)
        run_dir.unlink(name)
        if reply is not None and not reply.done():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(reply, timeout)
        if reply is not None and reply.done() and not reply.cancelled():
            reply.exception()  # retrieved: a failure here was already reported


async def _header(reader: _PipeReader) -> dict[str, Any] | None:
    size_field = await reader.readexactly(4)
    if size_field is None:
        return None
    (size,) = struct.unpack("<I", size_field)
    if size > _MAX_HEADER:
        return {"status": "error", "error": "bad_header"}
    encoded = await reader.readexactly(size)
    if encoded is None:
        return None
    try:
        meta: dict[str, Any] = json.loads(encoded)
    except ValueError:
        return None
    return meta
