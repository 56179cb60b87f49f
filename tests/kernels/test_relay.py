"""The kernel message relay (gateway/kernels/relay.py), the process holding a kernel's sockets.

The first tests speak raw ZMQ to a real relay process the way a hostile kernel would (no Docker,
no kernel); the last ones run real kernels on every backend through the HTTP API: a relay that
dies is the kernel's death, and no relay outlives its kernel or its gateway.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from gateway.app import create_app
from gateway.kernels.channels import CurveKeys, Endpoint
from gateway.kernels.relay import KernelRelay, RelayFactory, Route, channel_route, jupyter_routes
from gateway.keys import KERNELS_KEY
from tests.conftest import relay_processes

ROOT = Path(__file__).resolve().parents[2]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _gone(pid: int) -> bool:
    """Exited (a zombie waiting for its parent counts: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in {"Z", "X"}


@pytest.fixture
async def factory():
    started = await RelayFactory.start()
    yield started
    await started.close()
    assert relay_processes() == [], "no relay outlives its factory's close"


@pytest.fixture
async def relay(tmp_path, factory):
    started = await KernelRelay.start(tmp_path / "relays" / "r", memory_mb=128, factory=factory)
    yield started
    await started.close()
    assert not (tmp_path / "relays" / "r").exists(), "close() removes its private directory"
    assert _gone(started.pid)


class _Sockets:
    """The test's own sockets (it plays the kernel and the gateway), all closed at the end."""

    def __init__(self) -> None:
        self.ctx = zmq.asyncio.Context()
        self.made: list[zmq.asyncio.Socket] = []

    def __call__(self, kind: int, url: str | None = None, *, bind: bool = False) -> Any:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        if url is not None:
            (sock.bind if bind else sock.connect)(url)
        self.made.append(sock)
        return sock

    def adopt(self, sock: zmq.asyncio.Socket) -> zmq.asyncio.Socket:
        self.made.append(sock)
        return sock


@pytest.fixture
def ctx():
    sockets = _Sockets()
    yield sockets
    for sock in sockets.made:
        sock.close(linger=0)
    sockets.ctx.term()


async def _recv(sock: zmq.asyncio.Socket, timeout: float = 5.0) -> list[bytes] | None:  # noqa: ASYNC109 - a test's bound
    if not await sock.poll(int(timeout * 1000)):
        return None
    return await sock.recv_multipart()


async def _subscribed(pub: zmq.asyncio.Socket, pull: zmq.asyncio.Socket) -> None:
    """Past ZMQ's slow joiner: probe until one probe went through the relay."""
    for _ in range(100):
        await pub.send_multipart([b"probe"])
        if await _recv(pull, 0.1) is not None:
            while await _recv(pull, 0.2) is not None:
                pass
            return
    raise AssertionError("the relay never subscribed")


async def _iopub(relay: KernelRelay, ctx, tmp_path, **limits: int):
    url = f"ipc://{tmp_path}/k-iopub"
    pub = ctx(zmq.PUB, url, bind=True)
    route = Route(
        name="iopub",
        kind="iopub",
        endpoint=Endpoint(url=url, bind=False),
        max_bytes=limits.get("max_bytes", 1000),
        max_frames=limits.get("max_frames", 4),
        queue=1,
    )
    await relay.open([route], 30)
    pull = ctx(zmq.PULL, relay.url("iopub"), bind=False)
    await _subscribed(pub, pull)
    return pub, pull


async def test_messages_over_the_frame_or_byte_limit_never_reach_the_gateway(relay, ctx, tmp_path):
    pub, pull = await _iopub(relay, ctx, tmp_path, max_bytes=1000, max_frames=4)
    sent = [
        [b"a"],
        [b"x"] * 5,  # too many frames
        [b"y" * 1001],  # one frame, too large
        [b"b", b"c"],
        [b"z" * 600, b"z" * 600],  # each frame under the limit, the message over it
        [b"q"] * 4,  # exactly at the limits
        [b"d"],
    ]
    for frames in sent:
        await pub.send_multipart(frames)
    got = [await _recv(pull) for _ in range(4)]
    assert got == [[b"a"], [b"b", b"c"], [b"q"] * 4, [b"d"]]
    async with asyncio.timeout(5):
        while relay.dropped.get("iopub") != 3:  # noqa: ASYNC110 - reported every 0.5 s
            await asyncio.sleep(0.05)


async def test_shell_requests_and_replies_pass_both_ways(relay, ctx, tmp_path):
    url = f"ipc://{tmp_path}/k-shell"
    kernel = ctx(zmq.ROUTER, url, bind=True)
    (route,) = [
        r
        for r in jupyter_routes({"shell": url, "iopub": url, "control": url}, max_message=100)
        if r.name == "shell"
    ]
    await relay.open([route], 30)
    gateway = ctx(zmq.DEALER, relay.url("shell"), bind=False)
    await gateway.send_multipart([b"<IDS|MSG>", b"request"])
    identity, *request = await _recv(kernel) or [b""]
    assert request == [b"<IDS|MSG>", b"request"]
    await kernel.send_multipart([identity, b"x" * 101])  # over the limit: dropped
    await kernel.send_multipart([identity, b"reply"])
    assert await _recv(gateway) == [b"reply"]


async def test_a_router_route_keeps_each_kernel_peer_apart(relay, ctx, tmp_path):
    url = f"ipc://{tmp_path}/bridge"
    await relay.open(
        [channel_route("bridge", Endpoint(url=url, bind=True), max_message=100, queue=4)], 30
    )
    gateway = ctx.adopt(relay.socket("bridge", queue=4, max_message=100))
    peers = [ctx(zmq.DEALER, url, bind=False) for _ in range(2)]
    for n, peer in enumerate(peers):
        await peer.send_multipart([b"", f"from {n}".encode()])
    for _ in peers:
        identity, _, payload = await _recv(gateway) or [b"", b"", b""]
        await gateway.send_multipart([identity, b"", b"to " + payload[-1:]])
    for n, peer in enumerate(peers):
        assert await _recv(peer) == [b"", f"to {n}".encode()]
    await peers[0].send_multipart([b""] + [b"f"] * 8)  # 9 frames: over the route's 8
    await peers[0].send_multipart([b"", b"after"])
    assert (await _recv(gateway) or [])[1:] == [b"", b"after"]


async def test_a_socket_left_open_never_joins_the_next_relay(ctx, tmp_path, factory):
    """Gateway sockets name a relay's directory by descriptor number, which the next relay may
    get once this one is closed: a socket still open (a leak, a crashed connection) must not
    reconnect to it and take half of its messages (DEALERs share out what they send)."""

    def _shell(url: str) -> Route:
        return Route(
            name="shell",
            kind="dealer",
            endpoint=Endpoint(url=url, bind=False),
            max_bytes=100,
            max_frames=4,
            queue=4,
        )

    first = await KernelRelay.start(tmp_path / "relays" / "a", memory_mb=64, factory=factory)
    url = f"ipc://{tmp_path}/k-a"
    ctx(zmq.ROUTER, url, bind=True)
    await first.open([_shell(url)], 30)
    ctx.adopt(first.socket("shell", queue=4, max_message=100))  # left open
    stale_url = first.url("shell")
    await first.close()
    second = await KernelRelay.start(tmp_path / "relays" / "b", memory_mb=64, factory=factory)
    try:
        assert second.url("shell") == stale_url, "the directory's descriptor number is reused"
        url = f"ipc://{tmp_path}/k-b"
        kernel = ctx(zmq.ROUTER, url, bind=True)
        await second.open([_shell(url)], 30)
        await asyncio.sleep(0.3)  # a reconnecting socket would have joined by now (100 ms)
        gateway = ctx.adopt(second.socket("shell", queue=4, max_message=100))
        await gateway.send_multipart([b"hello"])
        identity, _ = await _recv(kernel) or [b"", b""]
        for n in range(10):
            await kernel.send_multipart([identity, str(n).encode()])
        got = [await _recv(gateway, 2.0) for _ in range(10)]
        assert got == [[str(n).encode()] for n in range(10)]
    finally:
        await second.close()


async def test_curve_routes_speak_to_a_curve_kernel_and_only_to_it(relay, ctx, tmp_path):
    """tcp: the kernel binds its channel as a CurveZMQ server of its key; the relay connects
    as the gateway did. A server with another key gets nothing through."""
    keys = CurveKeys.new()
    kernel = ctx(zmq.DEALER)
    kernel.curve_secretkey = keys.secret
    kernel.curve_publickey = keys.public
    kernel.curve_server = True
    kernel.bind("tcp://127.0.0.1:*")
    url = kernel.getsockopt_string(zmq.LAST_ENDPOINT)
    impostor = ctx(zmq.DEALER)
    other = CurveKeys.new()
    impostor.curve_secretkey, impostor.curve_publickey = other.secret, other.public
    impostor.curve_server = True
    impostor.bind("tcp://127.0.0.1:*")
    impostor_url = impostor.getsockopt_string(zmq.LAST_ENDPOINT)
    await relay.open(
        [
            channel_route(
                "frames", Endpoint(url=url, bind=False, curve=keys), max_message=4096, queue=4
            ),
            channel_route(
                "bridge",
                Endpoint(url=impostor_url, bind=False, curve=keys),
                max_message=4096,
                queue=4,
            ),
        ],
        30,
    )
    frames = ctx.adopt(relay.socket("frames", queue=4, max_message=4096))
    bridge = ctx.adopt(relay.socket("bridge", queue=4, max_message=4096))
    await kernel.send_multipart([b"name", b"H", b"{}"])
    identity, *rest = await _recv(frames) or [b""]
    assert rest == [b"name", b"H", b"{}"]
    await frames.send_multipart([identity, b"name", b"C", b"16"])
    assert await _recv(kernel) == [b"name", b"C", b"16"]
    # a DEALER can send once a peer completed the handshake: the relay never does with it
    assert not await impostor.poll(1000, zmq.POLLOUT), "a server without the kernel's key"
    assert await _recv(bridge, 0.1) is None


async def test_failed_handshakes_before_a_connection_do_not_end_the_relay(relay, ctx):
    """A tcp kernel whose port answers before it speaks Curve (or with another key) is
    retried; only a connection that broke after its handshake ends the relay."""
    other = CurveKeys.new()
    server = ctx(zmq.ROUTER)
    server.curve_secretkey, server.curve_publickey = other.secret, other.public
    server.curve_server = True
    server.bind("tcp://127.0.0.1:*")
    url = server.getsockopt_string(zmq.LAST_ENDPOINT)
    urls = {"shell": url, "iopub": url, "control": url}
    routes = jupyter_routes(urls, max_message=4096, curve=CurveKeys.new())
    await relay.open([r for r in routes if r.name == "shell"], 30)
    await asyncio.sleep(1.5)  # several failed handshakes (a retry every 100 ms)
    assert not relay.died.done()


async def test_a_message_over_the_relays_memory_ends_only_the_relay(relay, ctx, tmp_path):
    pub, pull = await _iopub(relay, ctx, tmp_path, max_bytes=64 << 20, max_frames=256)
    before = _rss_mb(os.getpid())
    blob = memoryview(b"A" * (32 << 20))
    await pub.send_multipart([blob] * 8, copy=False)  # 256 MiB, the relay may hold 128
    async with asyncio.timeout(30):
        reason = await asyncio.shield(relay.died)
    assert "could not hold (kernel_relay_memory_mb = 128)" in reason
    assert await _recv(pull, 0.5) is None
    assert _rss_mb(os.getpid()) - before < 64, "this process (the gateway) holds none of it"


async def test_a_gateway_that_does_not_read_slows_the_kernel_instead_of_filling_the_relay(
    relay, ctx, tmp_path
):
    """1 MiB messages published faster than the gateway reads (it reads nothing here): the
    relay holds a few of them and stops reading; the kernel's PUB drops the rest."""
    pub, pull = await _iopub(relay, ctx, tmp_path, max_bytes=2 << 20, max_frames=4)
    pub.setsockopt(zmq.SNDHWM, 4)  # the test process plays the kernel: keep its side small too
    blob = memoryview(b"B" * (1 << 20))
    for _ in range(300):
        await pub.send(blob, copy=False)
        await asyncio.sleep(0)
    await asyncio.sleep(1)
    assert not relay.died.done()
    assert _rss_mb(relay.pid) < 60, f"the relay holds {_rss_mb(relay.pid):.0f} MB"
    received = 0
    while await _recv(pull, 0.5) is not None:
        received += 1
    assert 1 <= received < 300


async def test_the_relay_ends_with_its_gateway(tmp_path):
    """A gateway that dies (SIGKILL: no clean-up at all) takes its relays and their factory
    with it: they see the end of their control sockets."""
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        sys.path.insert(0, {str(ROOT)!r})
        from gateway.kernels.relay import KernelRelay, RelayFactory

        async def main():
            factory = await RelayFactory.start()
            place = Path({str(tmp_path / "relays" / "x")!r})
            relay = await KernelRelay.start(place, memory_mb=64, factory=factory)
            print(relay.pid, factory._process.pid, flush=True)
            await asyncio.sleep(300)

        asyncio.run(main())
    """)
    gateway = subprocess.Popen(  # noqa: ASYNC220 - a plain child, killed below
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    )
    try:
        assert gateway.stdout is not None
        pids = [int(p) for p in (await asyncio.to_thread(gateway.stdout.readline)).split()]
        assert not any(_gone(pid) for pid in pids)
        gateway.send_signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            while not all(_gone(pid) for pid in pids):  # noqa: ASYNC110 - other processes
                await asyncio.sleep(0.05)
    finally:
        gateway.kill()
        gateway.wait()
        if gateway.stdout is not None:
            gateway.stdout.close()


# -- real kernels through the HTTP API (subprocess always, Docker behind the marker) -----------


async def _execute(client, owner, code):
    resp = await client.post(
        owner.url("scratchpad/kernel/execute"), json={"code": code}, headers=owner.headers
    )
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_a_dead_relay_is_the_kernels_death(kernel_client, owner):
    first = await _execute(kernel_client, owner, "x = 1")
    assert first["status"] == "ok"
    runtime = kernel_client.server.app[KERNELS_KEY].live_runtimes()[0]
    assert runtime.relay is not None
    os.kill(runtime.relay.pid, signal.SIGKILL)
    async with asyncio.timeout(30):
        while runtime.status != "error":  # noqa: ASYNC110 - the watcher sets it
            await asyncio.sleep(0.05)
    url = owner.url("scratchpad/kernel/status")
    status = await (await kernel_client.get(url, headers=owner.headers)).json()
    assert status["last_error"] == "Kernel died: its message relay stopped (signal SIGKILL)."
    assert runtime.provisioner.sandbox_id is not None
    assert await runtime.provisioner.poll() is not None, "the sandbox was stopped with it"
    fresh = await _execute(kernel_client, owner, "x")
    assert fresh["error_name"] == "NameError", "a fresh kernel"
    assert fresh["kernel_runtime"]["id"] != first["kernel_runtime"]["id"]
    assert len(relay_processes()) == 1, "one relay: the fresh kernel's"


async def test_no_relay_outlives_its_kernel(kernel_client, owner):
    url = owner.url("scratchpad/kernel")
    assert relay_processes() == []
    await kernel_client.post(url + "/start", headers=owner.headers)
    (first,) = relay_processes()
    await kernel_client.post(url + "/restart", headers=owner.headers)
    (second,) = relay_processes()
    assert second != first and _gone(first)
    await kernel_client.post(url + "/stop", headers=owner.headers)
    assert relay_processes() == []
    # the gateway's own shutdown (make_gateway's teardown) checks again after a start
    await kernel_client.post(url + "/start", headers=owner.headers)
    assert len(relay_processes()) == 1


async def test_relay_directories_a_dead_gateway_left_are_removed_at_start(
    aiohttp_client, settings, clock
):
    stale = settings.data_dir / "relays" / "0123456789abcdef"
    stale.mkdir(parents=True)
    (stale / "iopub").write_bytes(b"")
    client = await aiohttp_client(create_app(settings, clock=clock))
    assert not stale.exists()
    await client.close()
