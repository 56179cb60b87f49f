"""ZmtpRouter: the gateway's end of its data-frame channel to a kernel, read in Python.

Every other kernel socket belongs to the kernel's relay (relay.py), because libzmq assembles a
whole multipart message before anyone can look at it. Data frames are the one stream where the
relay's extra hop costs too much: 80 MB of Arrow would cross two more socket copies in a third
process (measured on the data-frame benchmark, 1M x 10 float64: 770-960 MB/s read by libzmq in
the gateway before, 600-680 through the relay, 620-730 with this reader). So for ipc kernels
the gateway itself listens on `gateway/frames` and speaks the small part of ZMTP 3 (RFC 37)
that the kernel helper's libzmq DEALER uses: the 64-byte greeting with the NULL mechanism, a
READY command, then frames (a flags byte, a 1- or 8-byte size, the body). Everything is
checked as it arrives, before anything is allocated for it: a frame over `max_frame` bytes, a
message over `max_frames` frames or `max_bytes` in total, a bad greeting, a command over 4 KiB,
or more than `max_peers` connections end the offending connection.

Each connection is read by a thread of its own with blocking `recv_into` straight into the
body's buffer (the copy runs without the GIL, beside the event loop that writes the HTTP
response, as libzmq's I/O thread did); complete messages go to the loop, at most `queue` of
them waiting, after which the thread stops reading (the kernel waits). Commands after READY
(ZMTP 3.1 PING, for one) are ignored, a few of them: nothing queues a command, so a kernel
sending them without end would hold the GIL in this thread; past `_MAX_COMMANDS` the
connection ends (the kernel's sockets enable no heartbeats). The loop sends and shuts down, the
thread reads and, at its end, closes the socket, each under one lock. Connections are taken at
most `_ACCEPT_BURST` a second (each costs the loop an accept and a thread).

tcp kernels: the gateway dials the kernel (`dial`), one connection per export, and speaks the
same frames with no ZMTP greeting; the connection's thread first runs the caller's `greet` (for
data frames, frames_seal.py's challenge and answer) and then checks and opens each message with
what it returned before the loop sees it. Nothing is sent after the greeting: TCP's own flow
control holds the kernel back while the queue is full, and `hang_up` is the stop. A ZMTP
command on such a connection ends it (it would be neither sealed nor queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import os
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol

from gateway.kernels.buffers import SHELF

_log = logging.getLogger(__name__)
_SIGNATURE: Final = b"\xff" + bytes(7) + b"\x01\x7f"  # byte 9's low bit set: ZMTP 2+, not 1.0
_GREETING: Final = _SIGNATURE + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + bytes(32)
_MORE: Final = 0x01
_LONG: Final = 0x02
_COMMAND: Final = 0x04
_MAX_COMMAND: Final = 4096  # READY carries two short properties
_MAX_COMMANDS: Final = 8  # ipc: READY and a few more; tcp (dialed): none
_ACCEPT_BURST: Final = 16  # ipc connections taken per second at most
_STREAM_BUFFER: Final = 64 * 1024  # heads and small bodies come from here, larger ones direct

type Frames = list[memoryview]


class Unseal(Protocol):
    """Opens a dialed connection's messages (raises ValueError for one to refuse); closed
    when the connection ends."""

    def __call__(self, frames: Frames, /) -> Frames: ...

    def close(self) -> None: ...


# (read exactly n bytes, send bytes) -> the connection's Unseal; raises ValueError, OSError
type Greet = Callable[[Callable[[int], bytes], Callable[[bytes], None]], Unseal]


class RouterClosedError(Exception):
    """The router was closed (the kernel is being stopped) while a receive waited."""


class _RefusedError(Exception):
    """A peer broke the protocol or a limit: its connection ends."""


def _frame(flags: int, body: bytes) -> bytes:
    if len(body) < 256:
        return bytes((flags, len(body))) + body
    return bytes((flags | _LONG,)) + struct.pack(">Q", len(body)) + body


def encode(frames: list[bytes]) -> bytes:
    """`frames` as one ZMTP message (no greeting)."""
    last = len(frames) - 1
    return b"".join(_frame(0 if n == last else _MORE, bytes(f)) for n, f in enumerate(frames))


def _ready() -> bytes:
    name, value = b"Socket-Type", b"ROUTER"
    body = b"\x05READY" + bytes((len(name),)) + name + struct.pack(">I", len(value)) + value
    return _frame(_COMMAND, body)


class _Reader:
    """Blocking reads from one connection: heads come from a buffer; the rest of a body larger
    than what is buffered is received straight into the body's own buffer with one MSG_WAITALL
    call (the GIL is taken again once per body, not per socket read). Its scratch buffer comes
    from the shelf (buffers.py) and goes back there on `close`."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffered = io.BufferedReader(socket.SocketIO(sock, "rb"), _STREAM_BUFFER)
        self._scratch = bytearray()

    def read(self, size: int, *, scratch: bool = False) -> memoryview:
        """`size` bytes; with `scratch`, in this reader's own buffer, which the next such read
        overwrites. Raises EOFError when the peer is gone."""
        if scratch:
            if len(self._scratch) < size:
                SHELF.give(self._scratch)
                self._scratch = SHELF.take(size)
            view = memoryview(self._scratch)[:size]
        else:
            view = memoryview(bytearray(size))
        done = self._buffered.readinto(view[: min(size, len(self._buffered.peek(1)))])
        while done < size:  # what was buffered is all taken: the socket itself is next
            got = self._sock.recv_into(view[done:], size - done, socket.MSG_WAITALL)
            if not got:
                raise EOFError
            done += got
        return view

    def close(self) -> None:
        self._buffered.close()
        SHELF.give(self._scratch)
        self._scratch = bytearray()


class ZmtpRouter:
    """A ROUTER-like socket for one kernel's DEALER peers.

    `receive()` returns (peer, frames) of the next complete message; `send()` answers a peer
    (dropped when it is gone; ipc peers only); `close()` ends every connection and wakes a
    waiting receive with RouterClosedError. Made by `bind()` (ipc: the kernel connects) or
    `dialer()` (tcp: `dial` connects to the kernel), on the event loop that uses it.
    """

    def __init__(
        self,
        listener: socket.socket | None,
        *,
        max_frame: int,
        max_frames: int,
        max_bytes: int,
        queue: int,
        max_peers: int,
    ) -> None:
        self.max_frame = max_frame
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        self._max_peers = max_peers
        self._listener = listener
        self._loop = asyncio.get_running_loop()
        self._room = threading.BoundedSemaphore(queue)  # messages that may wait for the loop
        self._messages: deque[tuple[bytes, Frames]] = deque()
        self._peers: dict[bytes, socket.socket] = {}
        self._hung: set[bytes] = set()  # dialed peers hung up whose threads have not ended yet
        # Held around every send, shutdown and close of a connection's socket (the loop sends
        # and shuts down, the connection's thread closes): none meets a reused descriptor.
        self._sockets = threading.Lock()
        self._ids = itertools.count(1)
        self._waiter: asyncio.Future[None] | None = None
        self.closed = False
        self._accepting = None if listener is None else asyncio.ensure_future(self._accept())

    @classmethod
    async def bind(
        cls,
        path: str,
        *,
        max_frame: int,
        max_frames: int,
        max_bytes: int,
        queue: int,
        max_peers: int = 16,
    ) -> ZmtpRouter:
        """Listen at `path` (a unix socket it creates, mode 0600; e.g. through a directory
        handle, /proc/self/fd/N/name). Raises OSError."""
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            os.chmod(path, 0o600)
            listener.listen(max_peers)
            listener.settimeout(0)  # accepted on the loop
        except BaseException:
            listener.close()
            raise
        return cls(
            listener,
            max_frame=max_frame,
            max_frames=max_frames,
            max_bytes=max_bytes,
            queue=queue,
            max_peers=max_peers,
        )

    @classmethod
    def dialer(
        cls, *, max_frame: int, max_frames: int, max_bytes: int, queue: int, max_peers: int = 4
    ) -> ZmtpRouter:
        """A router that makes its connections itself (`dial`); call on its event loop."""
        return cls(
            None,
            max_frame=max_frame,
            max_frames=max_frames,
            max_bytes=max_bytes,
            queue=queue,
            max_peers=max_peers,
        )

    async def dial(
        self,
        address: tuple[str, int],
        greet: Greet,
        timeout: float,  # noqa: ASYNC109 - bounds the connect
    ) -> bytes:
        """Connect to `address` and return the new peer's id. Its thread then runs `greet`
        (blocking reads and sends on the connection: a hang-up ends them) and reads messages
        as `bind`'s peers are read, passing each through the Unseal `greet` returned, which
        must copy out what it keeps (a message's last frame may be in the reader's reused
        buffer); a ValueError from either ends the connection. Raises OSError, TimeoutError."""
        if self.closed or len(self._peers) >= self._max_peers:
            msg = "no room for another connection to the kernel"
            raise OSError(msg)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)  # noqa: FBT003 - the socket API
            async with asyncio.timeout(timeout):
                await self._loop.sock_connect(sock, address)
            if self.closed:
                msg = "the router was closed"
                raise OSError(msg)
        except BaseException:
            sock.close()
            raise
        sock.setblocking(True)  # noqa: FBT003 - read by its own thread
        ident = b"\x00" + next(self._ids).to_bytes(4, "big")
        self._peers[ident] = sock
        threading.Thread(
            target=self._serve_dialed, args=(sock, ident, greet), name="tcp-frames", daemon=True
        ).start()
        return ident

    def hang_up(self, peer: bytes) -> None:
        """End the connection to `peer` (its thread closes it) and drop what it sent that is
        still waiting, also when the connection has already ended."""
        sock = self._peers.pop(peer, None)  # its room is free now: its thread is ending
        if sock is not None:
            self._hung.add(peer)
            self._shut(sock)
        kept = deque(m for m in self._messages if m[0] != peer)
        for _ in range(len(self._messages) - len(kept)):
            self._room.release()
        self._messages = kept

    async def _accept(self) -> None:
        """Take the kernel's connections, at most `_ACCEPT_BURST` a second (a libzmq DEALER
        connects once and again only when its connection broke): each costs the loop an
        accept and a thread, so a kernel reconnecting without end waits instead."""
        assert self._listener is not None
        recent: deque[float] = deque(maxlen=_ACCEPT_BURST)
        while not self.closed:
            if len(recent) == _ACCEPT_BURST:
                await asyncio.sleep(max(0.0, recent[0] + 1.0 - self._loop.time()))
            try:
                sock, _ = await self._loop.sock_accept(self._listener)
            except OSError:
                return  # closed
            recent.append(self._loop.time())
            if len(self._peers) >= self._max_peers:
                sock.close()
                continue
            sock.settimeout(None)  # blocking: read by its own thread
            ident = b"\x00" + next(self._ids).to_bytes(4, "big")
            self._peers[ident] = sock
            threading.Thread(
                target=self._serve, args=(sock, ident), name="zmtp-frames", daemon=True
            ).start()

    # -- a connection's thread -------------------------------------------------------------

    def _serve(self, sock: socket.socket, ident: bytes) -> None:
        # one reader per connection; the loop only ever sends (credits) on the socket itself
        stream = _Reader(sock)
        try:
            sock.sendall(_GREETING + _ready())
            greeting = bytes(stream.read(len(_GREETING)))
            if greeting[0] != 0xFF or not greeting[9] & 1 or greeting[10] < 3:
                msg = "not a ZMTP 3 peer"
                raise _RefusedError(msg)
            if greeting[12:32].rstrip(b"\x00") != b"NULL":
                msg = "not the NULL mechanism"
                raise _RefusedError(msg)
            self._read_messages(stream, ident)
        except _RefusedError as err:
            _log.info("kernel frames connection closed: %s", err)
        except (OSError, EOFError, RuntimeError):
            pass  # the peer left, or the router (or its loop) was closed
        finally:
            stream.close()
            with self._sockets:
                sock.close()
            self._forget(ident)

    def _serve_dialed(self, sock: socket.socket, ident: bytes, greet: Greet) -> None:
        stream = _Reader(sock)
        unseal: Unseal | None = None
        try:
            try:
                unseal = greet(lambda size: bytes(stream.read(size)), sock.sendall)
            except ValueError as err:
                raise _RefusedError(str(err)) from err
            self._read_messages(stream, ident, unseal)
        except _RefusedError as err:
            _log.info("kernel frames connection closed: %s", err)
        except (OSError, EOFError, RuntimeError):
            pass  # the peer left, or it was hung up, or the router was closed
        except Exception:
            _log.exception("kernel frames connection failed")
        finally:
            try:
                if unseal is not None:
                    unseal.close()
            finally:
                stream.close()
                with self._sockets:
                    sock.close()
                self._forget(ident)

    def _read_messages(self, stream: _Reader, ident: bytes, unseal: Unseal | None = None) -> None:
        commands = 0
        while not self.closed and ident not in self._hung:
            # unseal copies a message out: its large payload can be read into scratch
            frames = self._message(stream, scratch=unseal is not None)
            if frames is None:  # a command: nothing queues it, so a flood is refused
                commands += 1
                if unseal is not None or commands > _MAX_COMMANDS:
                    msg = "ZMTP commands past the greeting's READY"
                    raise _RefusedError(msg)
                continue
            if unseal is not None:
                try:
                    frames = unseal(frames)
                except ValueError as err:
                    raise _RefusedError(str(err)) from err
            while not self._room.acquire(timeout=0.5):  # the loop is behind: wait
                if self.closed or ident in self._hung:
                    return
            self._loop.call_soon_threadsafe(self._deliver, ident, frames)

    def _forget(self, ident: bytes) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self._gone, ident)

    def _gone(self, ident: bytes) -> None:
        self._peers.pop(ident, None)
        self._hung.discard(ident)

    def _shut(self, sock: socket.socket) -> None:
        """Shut `sock` down (its thread's read returns, and the thread closes it)."""
        with self._sockets, contextlib.suppress(OSError):  # closed already: nothing to do
            sock.shutdown(socket.SHUT_RDWR)

    def _message(self, stream: _Reader, *, scratch: bool = False) -> Frames | None:
        """The next message, checked frame by frame before each is read; None for a command.
        With `scratch` a large last frame is read into the reader's own buffer (valid until
        the next message is read). Raises _RefusedError, OSError, EOFError."""
        frames: Frames = []
        total = 0
        while True:
            flags = stream.read(1)[0]
            size = struct.unpack(">Q", stream.read(8))[0] if flags & _LONG else stream.read(1)[0]
            if flags & _COMMAND:
                if size > _MAX_COMMAND or frames:
                    msg = f"a command of {size} bytes"
                    raise _RefusedError(msg)
                stream.read(size)
                return None
            total += size
            if size > self.max_frame or len(frames) >= self.max_frames or total > self.max_bytes:
                msg = f"a message over the limits (frame {len(frames) + 1})"
                raise _RefusedError(msg)
            last = not flags & _MORE
            reuse = scratch and last and size > _STREAM_BUFFER
            frames.append(stream.read(size, scratch=reuse) if size else memoryview(b""))
            if last:
                return frames

    # -- the loop's side -------------------------------------------------------------------

    def _deliver(self, ident: bytes, frames: Frames) -> None:
        if self.closed or ident in self._hung:
            self._room.release()
            return
        self._messages.append((ident, frames))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def receive_nowait(self) -> tuple[bytes, Frames] | None:
        """The next complete message when one is waiting, else None (never waits)."""
        if not self._messages:
            return None
        self._room.release()
        return self._messages.popleft()

    async def receive(self) -> tuple[bytes, Frames]:
        """The next complete message. Raises RouterClosedError once closed."""
        while not self._messages:
            if self.closed:
                raise RouterClosedError
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        self._room.release()
        return self._messages.popleft()

    def send(self, peer: bytes, frames: list[bytes]) -> None:
        """A message for `peer` (credit or stop, a few bytes); dropped when it is gone or
        cannot take it now, as a ZMQ ROUTER does. Dialed peers take nothing here."""
        sock = self._peers.get(peer)
        if sock is None or self._accepting is None:
            return
        data = encode(frames)
        try:
            with self._sockets:
                sent = sock.send(data, socket.MSG_DONTWAIT)
        except OSError:
            return
        if sent < len(data):  # half a message would garble the stream: start over
            self._shut(sock)

    def close(self) -> None:
        """End every connection and stop listening; idempotent (the path is the caller's)."""
        if self.closed:
            return
        self.closed = True
        if self._accepting is not None:
            self._accepting.cancel()
        if self._listener is not None:
            self._listener.close()
        for sock in list(self._peers.values()):
            self._shut(sock)
        self._messages.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
