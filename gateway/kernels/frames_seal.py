"""Sealed data frames: what keeps a tcp kernel's data-frame stream secret and whole on the
kernel network.

CurveZMQ carries every other tcp channel, but libzmq's Curve (XSalsa20-Poly1305) encrypts about
0.7 GB/s here and TLS through Python's ssl module about 1.4 (a record at a time, with copies on
both ends): under half of a raw pyarrow write once the rest of the path is paid. So each message
of a tcp export is sealed with AES-256-GCM (the CPU's AES instructions, ~7 GB/s, one call per
chunk, without the GIL), on a plain TCP connection the gateway opens for that export:

- keys: the frames key is SHA-256 of a label and the kernel's Curve secret, which both ends
  already hold (the kernel in its connection info, the gateway in its records), so nothing new
  travels or is stored; every other key is HMAC-SHA256 of the frames key over a label and what
  it is for, so no key serves two purposes;
- the greeting: the kernel, when its helper takes the connection, sends a fresh 16-byte random
  challenge; the gateway answers `[name, "N", HMAC(open key(name), challenge)]`, which proves
  it holds the frames key for this connection only (a recorded answer opens nothing later);
- the stream: every kernel message `[name, kind, sealed]` carries its payload (an empty one for
  the end) sealed under the data key of (name, challenge), with its number in the stream as
  the nonce and `name + NUL + kind` as associated data. The number is never sent: the gateway
  counts, so a message dropped, repeated, reordered, altered, moved to another export or to
  another kind does not open, and the stream only ends with an end message that opens. A key
  of its own per connection means no nonce is ever used twice under one key.

A listener sees names, kinds and sizes, never a header or a byte of a frame; without the
Curve secret nobody can open, forge or answer. The kernel's helper
(images/kernel/gateway_kernel.py) seals by the same rules; tests/kernels/test_frames_seal.py
checks the two against each other.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.kernels.buffers import POOLED, SHELF, unviewed
from gateway.kernels.zmtp import Frames, Greet, Unseal, encode

_LABEL: Final = b"notebook-gateway frames key 1\x00"
CHALLENGE: Final = 16  # bytes of the kernel's challenge
TAG: Final = 16  # bytes a sealed payload adds
_POOL: Final = 8  # reused buffers per export (more payloads held at once get new ones)


def frames_key(curve_secret: bytes) -> bytes:
    """The kernel's frames key, from its Z85 Curve secret."""
    return hashlib.sha256(_LABEL + curve_secret).digest()


def _derive(key: bytes, purpose: bytes, *parts: bytes) -> bytes:
    return hmac.digest(key, purpose + b"\x00" + b"\x00".join(parts), "sha256")


def answer(key: bytes, name: bytes, challenge: bytes) -> list[bytes]:
    """The gateway's answer to the kernel's `challenge` on export `name`'s connection."""
    open_key = _derive(key, b"open", name)
    return [name, b"N", hmac.digest(open_key, challenge, "sha256")]


def data_key(key: bytes, name: bytes, challenge: bytes) -> bytes:
    return _derive(key, b"data", name, challenge)


def nonce(number: int) -> bytes:
    return number.to_bytes(12, "big")


def greeter(key: bytes, name: bytes) -> Greet:
    """The gateway's side of export `name`'s greeting, for ZmtpRouter.dial: read the kernel's
    challenge, answer it, and return the Opener of the stream that follows."""

    def greet(read: Callable[[int], bytes], send: Callable[[bytes], None]) -> Unseal:
        challenge = read(CHALLENGE)
        send(encode(answer(key, name, challenge)))
        return Opener(data_key(key, name, challenge), name)

    return greet


class Opener:
    """Opens the messages of one export's connection, in order, for its reading thread:
    `[name, kind, sealed]` becomes `[name, kind, payload]`. Raises ValueError for anything
    that does not open (the connection is then ended). Large payloads are opened into
    buffers from the shelf (buffers.py), given back by `close` when the connection ends."""

    def __init__(self, key: bytes, name: bytes) -> None:
        self._aead = AESGCM(key)
        self._name = name
        self._count = 0
        self._pool: list[bytearray] = []

    def __call__(self, frames: Frames) -> Frames:
        if len(frames) != 3 or frames[0] != self._name or len(frames[2]) < TAG:
            msg = "a data-frame message that is not sealed for this export"
            raise ValueError(msg)
        name, kind, sealed = frames
        payload = self._buffer(len(sealed) - TAG)
        try:
            self._aead.decrypt_into(
                nonce(self._count), sealed, bytes(name) + b"\x00" + bytes(kind), payload
            )
        except InvalidTag as err:
            msg = "a data-frame message that does not open (altered, out of order or forged)"
            raise ValueError(msg) from err
        self._count += 1
        return [name, kind, payload]

    def _buffer(self, size: int) -> memoryview:
        """Room for a payload: one of this export's buffers no view refers to any more, or
        one from the shelf (kept while this export holds few), or a new one."""
        if size >= POOLED:
            for buffer in self._pool:
                if len(buffer) >= size and unviewed(buffer):
                    return memoryview(buffer)[:size]
            if len(self._pool) < _POOL:
                self._pool.append(SHELF.take(size))
                return memoryview(self._pool[-1])[:size]
        return memoryview(bytearray(size))

    def close(self) -> None:
        """The connection ended: its buffers go back to the shelf (those still sent from
        are taken again only once nothing views them)."""
        for buffer in self._pool:
            SHELF.give(buffer)
        self._pool.clear()
