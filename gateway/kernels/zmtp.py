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
(ZMTP 3.1 PING, for one) are ignored: the kernel's sockets enable no heartbeats.

tcp kernels: the gateway dials the kernel (`dial`), one connection per export, and speaks the
same frames inside TLS 1.3 (frames_tls.py) with no ZMTP greeting: the handshake has already
proved both ends. The connection's thread is the only user of its TLS object (OpenSSL's are
not safe to share between threads), so nothing is sent on it after the opening message: TCP's
own flow control holds the kernel back while the queue is full, and `hang_up` is the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import os
import socket
import ssl
import struct
import threading
from collections import deque
from typing import Final, cast

_log = logging.getLogger(__name__)
_SIGNATURE: Final = b"\xff" + bytes(7) + b"\x01\x7f"  # byte 9's low bit set: ZMTP 2+, not 1.0
_GREETING: Final = _SIGNATURE + b"\x03\x00" + b"NULL".ljust(20, b"\x00") + bytes(32)
_MORE: Final = 0x01
_LONG: Final = 0x02
_COMMAND: Final = 0x04
_MAX_COMMAND: Final = 4096  # READY carries two short properties
_STREAM_BUFFER: Final = 64 * 1024  # heads and small bodies come from here, larger ones direct
_TLS_READ: Final = 1 << 20  # TLS: socket reads of up to this much, decrypted from memory

type Frames = list[memoryview]


class RouterClosedError(Exception):
    """The router was closed (the kernel is being stopped) while a receive waited."""


class _RefusedError(Exception):
    """A peer broke the protocol or a limit: its connection ends."""


def _frame(flags: int, body: bytes) -> bytes:
    if len(body) < 256:
        return bytes((flags, len(body))) + body
    return bytes((flags | _LONG,)) + struct.pack(">Q", len(body)) + body


def _message(frames: list[bytes]) -> bytes:
    last = len(frames) - 1
    return b"".join(_frame(0 if n == last else _MORE, bytes(f)) for n, f in enumerate(frames))


def _ready() -> bytes:
    name, value = b"Socket-Type", b"ROUTER"
    body = b"\x05READY" + bytes((len(name),)) + name + struct.pack(">I", len(value)) + value
    return _frame(_COMMAND, body)


class _Reader:
    """Blocking reads from one connection: heads come from a buffer; the rest of a body larger
    than what is buffered is received straight into the body's own buffer with one MSG_WAITALL
    call (the GIL is taken again once per body, not per socket read)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffered = io.BufferedReader(socket.SocketIO(sock, "rb"), _STREAM_BUFFER)

    def read(self, size: int) -> memoryview:
        """`size` bytes. Raises EOFError when the peer is gone."""
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


class _TlsReader:
    """The client side of one TLS connection, reading as `_Reader` does. The socket is read in
    pieces of up to 1 MiB into the TLS object's memory (a socket object's TLS reads each
    16 KiB record with two system calls), and records are decrypted straight into each
    body's buffer. Only its connection's thread uses it."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=False)
        self._raw = memoryview(bytearray(_TLS_READ))

    def handshake(self) -> None:
        """Raises ssl.SSLError (a certificate other than the kernel's, for one), OSError."""
        while True:
            try:
                self._tls.do_handshake()
            except ssl.SSLWantReadError:
                self._flush()
                self._fill()
                continue
            self._flush()
            return

    def send(self, data: bytes) -> None:
        self._tls.write(data)
        self._flush()

    def read(self, size: int) -> memoryview:
        """`size` bytes. Raises EOFError when the peer is gone."""
        view = memoryview(bytearray(size))
        done = 0
        while done < size:
            try:
                # with a buffer it returns the count (typeshed says bytes)
                got = cast("int", self._tls.read(size - done, view[done:]))
            except ssl.SSLWantReadError:
                self._fill()
                continue
            except ssl.SSLZeroReturnError as err:  # the peer closed TLS
                raise EOFError from err
            if not got:
                raise EOFError
            done += got
        return view

    def _flush(self) -> None:
        if data := self._outgoing.read():
            self._sock.sendall(data)

    def _fill(self) -> None:
        got = self._sock.recv_into(self._raw)
        if not got:
            raise EOFError
        self._incoming.write(self._raw[:got])

    def close(self) -> None:
        self._raw.release()


class ZmtpRouter:
    """A ROUTER-like socket for one kernel's DEALER peers.

    `receive()` returns (peer, frames) of the next complete message; `send()` answers a peer
    (dropped when it is gone; ipc peers only); `close()` ends every connection and wakes a
    waiting receive with RouterClosedError. Made by `bind()` (ipc: the kernel connects) or
    `dialer()` (tcp: `dial` connects to the kernel over TLS), on the event loop that uses it.
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
        self._room = threading.Semaphore(queue)  # messages that may wait for the loop
        self._messages: deque[tuple[bytes, Frames]] = deque()
        self._peers: dict[bytes, socket.socket] = {}
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
        context: ssl.SSLContext,
        opening: list[bytes],
        timeout: float,  # noqa: ASYNC109 - also bounds the TLS handshake in the thread
    ) -> bytes:
        """Connect to `address` and return the new peer's id once TCP is connected; its thread
        then does the TLS handshake (`context`; at most `timeout` seconds), sends `opening` and
        reads messages as `bind`'s peers are read. Raises OSError, TimeoutError."""
        if self.closed or len(self._peers) >= self._max_peers:
            msg = "no room for another connection to the kernel"
            raise OSError(msg)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)  # noqa: FBT003 - the socket API
            async with asyncio.timeout(timeout):
                await self._loop.sock_connect(sock, address)
        except BaseException:
            sock.close()
            raise
        ident = b"\x00" + next(self._ids).to_bytes(4, "big")
        self._peers[ident] = sock
        threading.Thread(
            target=self._serve_tls,
            args=(sock, ident, context, opening, timeout),
            name="tls-frames",
            daemon=True,
        ).start()
        return ident

    def hang_up(self, peer: bytes) -> None:
        """End the connection to `peer` (its thread closes it); nothing when it is gone."""
        sock = self._peers.get(peer)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    async def _accept(self) -> None:
        assert self._listener is not None
        while not self.closed:
            try:
                sock, _ = await self._loop.sock_accept(self._listener)
            except OSError:
                return  # closed
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
            sock.close()
            self._forget(ident)

    def _serve_tls(
        self,
        sock: socket.socket,
        ident: bytes,
        context: ssl.SSLContext,
        opening: list[bytes],
        timeout: float,
    ) -> None:
        try:
            sock.settimeout(timeout)  # connect is done; this bounds the handshake
            stream = _TlsReader(sock, context)
            stream.handshake()
            stream.send(_message(opening))
            sock.settimeout(None)  # blocking reads: hang_up or close wakes them
            self._read_messages(stream, ident)
        except _RefusedError as err:
            _log.info("kernel frames connection closed: %s", err)
        except ssl.SSLCertVerificationError as err:
            _log.warning("kernel frames connection refused: %s", err)
        except (OSError, EOFError, RuntimeError, ValueError):
            pass  # the peer left or failed the handshake, or the router was closed
        finally:
            sock.close()
            self._forget(ident)

    def _read_messages(self, stream: _Reader | _TlsReader, ident: bytes) -> None:
        while not self.closed:
            frames = self._message(stream)
            if frames is None:
                continue  # a command
            while not self._room.acquire(timeout=0.5):  # the loop is behind: wait
                if self.closed:
                    return
            self._loop.call_soon_threadsafe(self._deliver, ident, frames)

    def _forget(self, ident: bytes) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self._peers.pop, ident, None)

    def _message(self, stream: _Reader | _TlsReader) -> Frames | None:
        """The next message, checked frame by frame before each is read; None for a command.
        Raises _RefusedError, OSError, EOFError."""
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
            frames.append(stream.read(size) if size else memoryview(b""))
            if not flags & _MORE:
                return frames

    # -- the loop's side -------------------------------------------------------------------

    def _deliver(self, ident: bytes, frames: Frames) -> None:
        if self.closed:
            return
        self._messages.append((ident, frames))
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

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
        cannot take it now, as a ZMQ ROUTER does. Dialed (TLS) peers take nothing here."""
        sock = self._peers.get(peer)
        if sock is None or self._accepting is None:
            return
        data = _message(frames)
        try:
            sent = sock.send(data, socket.MSG_DONTWAIT)
        except OSError:
            return
        if sent < len(data):  # half a message would garble the stream: start over
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

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
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # its thread's recv returns; it closes it
        self._messages.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
