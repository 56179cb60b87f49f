"""Where the gateway's own channels to a kernel (the HogQL bridge, the data-frame stream) live.

Two transports (`kernel_transport`):
- `ipc`: the gateway binds a unix socket in its part of the kernel's run directory
  (`gateway/<name>`, which the kernel cannot replace) and the kernel connects to it.
- `tcp`: the kernel can reach nothing, the gateway included, so the kernel binds the port and
  the gateway connects to the address the engine reports: the bridge as a CurveZMQ client of
  the kernel's per-kernel key (through the kernel's relay), the data-frame port with sealed
  messages (frames_seal.py); a listener on the kernel network learns nothing, forges nothing.

The bridge's gateway end is a ROUTER with a bounded message size and queue; data frames are
read by the gateway's own frame reader (zmtp.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import zmq
import zmq.asyncio

from gateway.kernels.types import ConnectionInfo, connection_info

# Ports a tcp kernel binds inside its own network namespace (every kernel has its own address).
TCP_PORTS: Final = {
    "shell": 5001,
    "iopub": 5002,
    "stdin": 5003,
    "control": 5004,
    "hb": 5005,
    "bridge": 5006,
    "frames": 5007,
}


@dataclass(frozen=True, kw_only=True)
class CurveKeys:
    """A kernel's CurveZMQ key pair (Z85). The kernel is the server; the gateway's client sockets
    use the same pair, as jupyter_client does, so one secret in the records re-attaches."""

    public: bytes
    secret: bytes

    @classmethod
    def new(cls) -> CurveKeys:
        public, secret = zmq.curve_keypair()
        return cls(public=public, secret=secret)

    @classmethod
    def from_secret(cls, secret: str) -> CurveKeys:
        raw = secret.encode("ascii")
        return cls(public=zmq.curve_public(raw), secret=raw)


def tcp_view(key: str, curve: CurveKeys) -> ConnectionInfo:
    """The connection info of a tcp kernel (it binds every port on its own address)."""
    return connection_info(
        transport="tcp",
        ip="0.0.0.0",  # noqa: S104 - inside the kernel's own network namespace
        ports=TCP_PORTS,
        key=key,
        curve=(curve.public, curve.secret),
    )


def tcp_urls(address: str) -> dict[str, str]:
    """ZMQ urls of every channel of the tcp kernel at `address` (from the engine)."""
    return {name: f"tcp://{address}:{port}" for name, port in TCP_PORTS.items()}


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """One gateway channel: `bind` (ipc, in the run directory) or connect (tcp, with Curve)."""

    url: str
    bind: bool
    curve: CurveKeys | None = None


def router(endpoint: Endpoint, *, max_message: int, queue: int = 16) -> zmq.asyncio.Socket:
    """The gateway's ROUTER socket for `endpoint`: messages over `max_message` bytes drop the
    peer, at most `queue` messages wait in either direction."""
    socket = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
    socket.setsockopt(zmq.MAXMSGSIZE, max_message)
    socket.setsockopt(zmq.LINGER, 0)
    socket.setsockopt(zmq.RCVHWM, queue)
    socket.setsockopt(zmq.SNDHWM, queue)
    if endpoint.curve is not None:
        socket.curve_secretkey = endpoint.curve.secret
        socket.curve_publickey = endpoint.curve.public
        socket.curve_serverkey = endpoint.curve.public
    try:
        if endpoint.bind:
            socket.bind(endpoint.url)
        else:
            socket.connect(endpoint.url)
    except zmq.ZMQError:
        socket.close(linger=0)
        raise
    return socket
