"""Sealed data frames: what keeps a tcp kernel's data-frame stream secret and whole on the
kernel network.

CurveZMQ carries every other tcp channel, but libzmq's Curve (XSalsa20-Poly1305) encrypts about
0.7 GB/s here and TLS through Python's ssl module about 1.4 (a record at a time, with copies on
both ends): under half of a raw pyarrow write once the rest of the path is paid. So each message
of a tcp export is sealed with AES-256-GCM (the CPU's AES instructions, ~7 GB/s, one call per
chunk, without the GIL) — the construction of streaming AEADs (age, Tink), on a plain TCP
connection the gateway opens:

- the frames key: SHA-256 of a label and the kernel's Curve secret, which both ends already
  hold (the kernel in its connection info, the gateway in its records), so nothing new travels
  or is stored;
- each export's key: HMAC-SHA256(frames key, "export" + name), the name being a fresh random
  id the gateway makes per export, so no key ever seals two streams;
- the opening `[name, "N", HMAC(export key, "open" + name)]` proves the gateway to the kernel;
- every kernel message `[name, kind, sealed]` carries its payload (an empty one for the end)
  sealed with the message's number in the stream as the nonce and `name + kind` as associated
  data. The number is never sent: the gateway counts for itself, so a message dropped,
  repeated, reordered, altered, moved to another export or to another kind fails to open, and
  the stream only ends with an end message that opens.

A listener on the network sees names, kinds and sizes, never a header or a byte of the frame;
without the Curve secret nobody can open, forge or take a stream. The kernel's helper
(images/kernel/gateway_kernel.py) seals with the same rules; tests/kernels/test_frames_seal.py
checks that the two agree.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.kernels.zmtp import Frames

_LABEL: Final = b"notebook-gateway frames key 1\x00"
TAG: Final = 16  # bytes a sealed payload adds
_POOLED: Final = 1 << 20  # payloads this large are opened into reused buffers
# At most this many per export. Whether a buffer is free is read from its reference count,
# which only CPython with its GIL reports this way: elsewhere nothing is reused.
_POOL: Final = (
    8
    if sys.implementation.name == "cpython" and getattr(sys, "_is_gil_enabled", lambda: True)()
    else 0
)
_FREE: Final = 3  # sys.getrefcount of a pooled buffer nobody else holds (pool, loop, call)


def frames_key(curve_secret: bytes) -> bytes:
    """The kernel's frames key, from its Z85 Curve secret."""
    return hashlib.sha256(_LABEL + curve_secret).digest()


def export_key(key: bytes, name: bytes) -> bytes:
    return hmac.digest(key, b"export\x00" + name, "sha256")


def opening(key: bytes, name: bytes) -> list[bytes]:
    """The gateway's first message on export `name`'s connection (`key`: the frames key)."""
    return [name, b"N", hmac.digest(export_key(key, name), b"open\x00" + name, "sha256")]


def nonce(number: int) -> bytes:
    return number.to_bytes(12, "big")


class Opener:
    """Opens the messages of one export, in order, for the connection's reading thread:
    `[name, kind, sealed]` becomes `[name, kind, payload]`. Raises ValueError for anything
    that does not open (the connection is then ended)."""

    def __init__(self, key: bytes, name: bytes) -> None:
        self._aead = AESGCM(export_key(key, name))
        self._name = name
        self._count = 0
        self._pool: list[bytearray] = []

    def _buffer(self, size: int) -> memoryview:
        """Room for a payload: a pooled buffer nothing refers to any more (no view of it is
        left: sys.getrefcount counts the pool's and the call's references only), or a new
        one, pooled while the pool is small."""
        if size >= _POOLED:
            for buffer in self._pool:
                if sys.getrefcount(buffer) == _FREE and len(buffer) >= size:
                    return memoryview(buffer)[:size]
            if len(self._pool) < _POOL:
                self._pool.append(bytearray(size))
                return memoryview(self._pool[-1])[:size]
        return memoryview(bytearray(size))

    def __call__(self, frames: Frames) -> Frames:
        if len(frames) != 3 or frames[0] != self._name or len(frames[2]) < TAG:
            msg = "a data-frame message that is not sealed for this export"
            raise ValueError(msg)
        name, kind, sealed = frames
        payload = self._buffer(len(sealed) - TAG)
        try:
            self._aead.decrypt_into(nonce(self._count), sealed, bytes(name) + bytes(kind), payload)
        except InvalidTag as err:
            msg = "a data-frame message that does not open (altered, out of order or forged)"
            raise ValueError(msg) from err
        self._count += 1
        return [name, kind, payload]
