"""The tcp transport (issue #15), attacked for real on Docker (runc): a kernel on the kernel
network reaches nothing (not another kernel, not the host's own ports, not the gateway, not the
internet); a listener on that network learns nothing from the ZMQ traffic and cannot execute by
connecting or by replaying what it captured (CurveZMQ + HMAC), nor read a data frame off the
wire or out of the frames port (sealed with a key from the kernel's own); nothing the kernel writes
is on the host; the network and the host rules go when the gateway shuts down."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable

import pyarrow as pa
import pyarrow.ipc
import pytest
import zmq

from gateway.app import create_app
from gateway.kernels import firewall, frames_seal
from gateway.kernels.channels import TCP_PORTS
from gateway.kernels.docker import DockerBackend
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers, create_notebook

pytestmark = pytest.mark.docker


@pytest.fixture
def tcp_settings(docker_settings):
    # a network and bridge of this test's own: another gateway on the host (a test run beside
    # this one) may hold the default network, which then rightly stays at shutdown
    suffix = secrets.token_hex(3)
    return docker_settings.with_changes(
        kernel_transport="tcp",
        kernel_runtime="runc",
        kernel_pool_size=0,
        kernel_network=f"gateway-kernels-test-{suffix}",
        kernel_network_bridge=f"gwk-test-{suffix}",
    )


@pytest.fixture
async def tcp_gateway(aiohttp_client, tcp_settings, docker_engine, clock):
    app = create_app(tcp_settings, clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make("owner@example.com")
    yield client, owner, app
    instance = app[KERNELS_KEY].instance_id
    await client.close()
    assert_no_containers(docker_engine, instance)


async def _execute(client, owner, code, short_id="scratchpad"):
    resp = await client.post(
        owner.url(f"{short_id}/kernel/execute"), json={"code": code}, headers=owner.headers
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["status"] == "ok", body
    return body


def _value(body):
    return ast.literal_eval(body["result"]["text/plain"])


def _address(app, short_id="scratchpad") -> str:
    runtimes = app[KERNELS_KEY].live_runtimes()
    found = [r.address for r in runtimes if r.key.short_id == short_id and r.address]
    assert found, runtimes
    return str(found[0])


def _host_addresses(docker_engine, settings) -> list[str]:
    network = docker_engine.networks.get(settings.kernel_network)
    bridge_ip = network.attrs["IPAM"]["Config"][0]["Gateway"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: picks the outgoing address
        main_ip = probe.getsockname()[0]
    return [bridge_ip, main_ip, "127.0.0.1"]


CONNECT = """
import socket
def reach(host, port):
    s = socket.socket(); s.settimeout(2)
    try:
        s.connect((host, port)); return "open"
    except OSError as e:
        return type(e).__name__
    finally:
        s.close()
from concurrent.futures import ThreadPoolExecutor
with ThreadPoolExecutor(16) as pool:
    reached = list(pool.map(lambda target: reach(*target), {targets!r}))
reached
"""


async def test_a_tcp_kernel_reaches_nothing(tcp_gateway, docker_engine, tcp_settings):
    client, owner, app = tcp_gateway
    notebook = await create_notebook(client, owner, title="other")
    await _execute(client, owner, "1", short_id=notebook["short_id"])
    other = _address(app, notebook["short_id"])
    await _execute(client, owner, "1")
    server = socket.create_server(("0.0.0.0", 0))  # a host service on every address  # noqa: S104
    server.listen()
    port = server.getsockname()[1]
    gateway_port = client.server.port
    hosts = _host_addresses(docker_engine, tcp_settings)
    targets = [
        *[(host, port) for host in hosts],  # the host's own services
        *[(host, gateway_port) for host in hosts],  # the gateway
        (other, TCP_PORTS["shell"]),  # another kernel
        (other, TCP_PORTS["bridge"]),
        ("1.1.1.1", 443),  # the internet
    ]
    try:
        body = await _execute(client, owner, CONNECT.format(targets=targets))
    finally:
        server.close()
    results = dict(zip(targets, _value(body), strict=True))
    assert "open" not in results.values(), results
    # the gateway itself reaches the kernel (its answers above came that way) and the rules
    # let the kernel answer: only connections the host opens
    assert firewall.installed(tcp_settings.kernel_network_bridge)


_SO_RCVBUFFORCE = 33  # Linux; not in the socket module


class _Sniffer:
    """Every IPv4 TCP payload on the kernel bridge while running (root: AF_PACKET)."""

    def __init__(self, interface: str) -> None:
        self._socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003))
        self._socket.bind((interface, 0))
        self._socket.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 64 << 20)  # root: no drops
        self._socket.settimeout(0.1)
        self.segments: list[tuple[str, int, bytes]] = []  # (destination, port, payload)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        stopped_at = None
        while stopped_at is None or time.monotonic() - stopped_at < 2.0:  # a bounded drain
            if stopped_at is None and self._stop.is_set():
                stopped_at = time.monotonic()
            try:
                frame = self._socket.recv(1 << 17)  # offloaded segments exceed the MTU
            except TimeoutError:
                if stopped_at is not None:  # stopped, and everything queued is read
                    return
                continue
            if len(frame) < 34 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
                continue
            header = (frame[14] & 0x0F) * 4
            tcp = 14 + header
            destination = socket.inet_ntoa(frame[30:34])
            port = struct.unpack("!H", frame[tcp + 2 : tcp + 4])[0]
            payload = frame[tcp + (frame[tcp + 12] >> 4) * 4 :]
            if payload:
                self.segments.append((destination, port, bytes(payload)))

    def __enter__(self) -> _Sniffer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()

    def data(self) -> bytes:
        return b"".join(payload for _, _, payload in self.segments)


async def test_a_listener_learns_nothing_and_cannot_execute(tcp_gateway, tcp_settings):
    client, owner, app = tcp_gateway
    await _execute(client, owner, "counter = 0")
    address = _address(app)
    runtime = next(r for r in app[KERNELS_KEY].live_runtimes() if r.address == address)
    marker = "SNIFF-ME-7f3a9"
    with _Sniffer(tcp_settings.kernel_network_bridge) as sniffer:
        code = f"counter += 1\nprint({marker!r}[::-1] + {marker!r}[::-1])\n{marker!r}"
        body = await _execute(client, owner, code)
        await asyncio.sleep(0.2)
    assert marker in body["result"]["text/plain"]
    captured = sniffer.data()
    shell = b"".join(p for d, port, p in sniffer.segments if (d, port) == (address, 5001))
    assert len(captured) > 500 and shell, "the sniffer saw the execution's traffic"
    # neither the code, its output, the message types nor the HMAC key cross in the clear
    for secret in (marker.encode(), marker[::-1].encode(), b"execute_request", b"counter"):
        assert secret not in captured
    assert runtime.connection_key.encode() not in captured

    # replaying what was captured on a fresh connection executes nothing
    for port in (TCP_PORTS["shell"], TCP_PORTS["control"]):
        with contextlib.suppress(OSError), socket.create_connection((address, port), 2) as raw:
            raw.sendall(shell)
            await asyncio.sleep(0.5)
    # a ZMQ client without the kernel's key, and one with Curve but without the HMAC key
    context = zmq.Context()
    try:
        plain = context.socket(zmq.DEALER)
        plain.connect(f"tcp://{address}:{TCP_PORTS['shell']}")
        curved = context.socket(zmq.DEALER)
        public, secret = zmq.curve_keypair()
        curved.curve_publickey, curved.curve_secretkey = public, secret
        assert runtime.curve is not None
        curved.curve_serverkey = runtime.curve.public
        curved.connect(f"tcp://{address}:{TCP_PORTS['shell']}")
        forged = [
            b"<IDS|MSG>",
            b"0" * 64,  # a signature made without the key
            b'{"msg_id": "x", "msg_type": "execute_request", "session": "s", "username": "u",'
            b' "version": "5.3", "date": "2026-01-01T00:00:00Z"}',
            b"{}",
            b"{}",
            b'{"code": "counter += 100", "silent": false}',
        ]
        for sock in (plain, curved):
            sock.setsockopt(zmq.LINGER, 0)
            sock.send_multipart(forged)
        await asyncio.sleep(1.0)
        assert not plain.poll(500) and not curved.poll(500), "no reply to a stranger"
    finally:
        context.destroy(linger=0)
    assert _value(await _execute(client, owner, "counter")) == 1


FRAME = """
import pandas as pd
marker = "FRAME-SNIFF-c41d"
df = pd.DataFrame({"s": [marker + str(i) for i in range(20000)], "n": range(20000)})
"""


async def _stranger(address: str, answer: Callable[[bytes], bytes]) -> bytes:
    """What a client that is not the gateway gets from the frames port: it connects first (so
    the helper meets it before the gateway's own connection), reads the challenge, sends
    `answer(challenge)` and reads until the kernel closes."""
    reader, writer = await asyncio.open_connection(address, TCP_PORTS["frames"])
    got = b""
    with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
        async with asyncio.timeout(30):
            got = await reader.readexactly(16)
            writer.write(answer(got))
            got += await reader.read()
    writer.close()
    return got


def _zmtp(*frames: bytes) -> bytes:
    return b"".join(
        bytes((0 if n == len(frames) - 1 else 1, len(f))) + f for n, f in enumerate(frames)
    )


async def test_a_data_frame_cannot_be_read_off_the_wire_or_the_port(tcp_gateway, tcp_settings):
    client, owner, app = tcp_gateway
    await _execute(client, owner, FRAME)
    address = _address(app)
    other = frames_seal.frames_key(b"another kernel's Curve secret, 40 chars!")
    strangers = [
        asyncio.ensure_future(_stranger(address, answer))
        for answer in (
            lambda _: b"GET / HTTP/1.1\r\n\r\n",
            lambda _: _zmtp(b"frame-0", b"N", bytes(32)),  # a made-up proof
            lambda challenge: _zmtp(*frames_seal.answer(other, b"frame-0", challenge)),
        )
    ]
    await asyncio.sleep(0.5)  # both are queued at the port before the export starts
    with _Sniffer(tcp_settings.kernel_network_bridge) as sniffer:
        resp = await client.get(
            owner.url("scratchpad/kernel/dataframe") + "?variable_name=df&limit=20000",
            headers={**owner.headers, "Accept": "application/vnd.apache.arrow.stream"},
        )
        body = await resp.read()
        await asyncio.sleep(0.2)
    assert resp.status == 200, body[:300]
    table = pyarrow.ipc.open_stream(io.BytesIO(body)).read_all()
    assert table.column("s")[19999].as_py() == "FRAME-SNIFF-c41d19999"
    assert isinstance(table.schema.field("n").type, pa.DataType)
    captured = sniffer.data()
    assert len(captured) > len(body), "the frame crossed the bridge while the sniffer listened"
    assert b"FRAME-SNIFF-c41d" not in captured
    assert body[:64] not in captured and b"stream_bytes" not in captured  # schema, header
    for got in await asyncio.gather(*strangers):
        assert b"FRAME-SNIFF" not in got
        assert len(got) == 16, "the kernel sends a stranger its challenge and nothing else"


async def test_nothing_the_kernel_writes_is_on_the_host(tcp_gateway, docker_engine, tcp_settings):
    client, owner, app = tcp_gateway
    code = """
import os
written = []
for folder in ("/tmp", "/home/kernel", "/run/kernel", "/opt", "/"):
    try:
        with open(os.path.join(folder, "marker-5b1e"), "w") as f:
            f.write("x")
        written.append(folder)
    except OSError:
        pass
written
"""
    assert _value(await _execute(client, owner, code)) == ["/tmp", "/home/kernel"]
    runtime = app[KERNELS_KEY].live_runtimes()[0]
    assert runtime.run_dir is None
    assert not any(tcp_settings.kernel_run_root.iterdir()), "no run directory on the host"
    container = docker_engine.containers.get(runtime.provisioner.sandbox_id)
    assert container.attrs["Mounts"] == []
    # the tmpfs mounts are memory, not the host's disk
    assert set(container.attrs["HostConfig"]["Tmpfs"]) == {"/tmp", "/home/kernel"}


async def test_shutdown_removes_the_network_and_the_rules(
    aiohttp_client, tcp_settings, docker_engine, clock
):
    app = create_app(tcp_settings, clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make("owner@example.com")
    await _execute(client, owner, "1")
    bridge = tcp_settings.kernel_network_bridge
    assert firewall.installed(bridge)
    instance = app[KERNELS_KEY].instance_id
    await client.close()
    assert_no_containers(docker_engine, instance)
    assert tcp_settings.kernel_network not in {n.name for n in docker_engine.networks.list()}
    assert not firewall.installed(bridge)


async def test_a_wrong_network_or_runtime_is_a_reason_not_a_fallback(
    aiohttp_client, tcp_settings, docker_engine, clock
):
    backend = DockerBackend(tcp_settings)
    try:
        gvisor = {"runsc": {"path": "runsc", "runtimeArgs": ["--network=none"]}}
        backend.runtime = "runsc"
        reason = await backend._check_network(gvisor)
        assert reason is not None and "ipc" in reason
    finally:
        backend.close()
    # a network of that name that lets kernels talk to each other is refused, not used
    name = "gateway-kernels-wrong"
    network = docker_engine.networks.create(name, driver="bridge")
    try:
        app = create_app(tcp_settings.with_changes(kernel_network=name), clock=clock)
        client = await aiohttp_client(app)
        owner = await Accounts(app[STORE_KEY], clock).make("owner@example.com")
        status = await (
            await client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
        ).json()
        assert "not an internal" in status["sandbox"]["problem"]
        resp = await client.post(owner.url("scratchpad/kernel/start"), headers=owner.headers)
        assert resp.status == 503
        await client.close()
    finally:
        network.remove()


async def test_a_gateway_beside_another_keeps_its_network_and_rules(
    aiohttp_client, tcp_settings, docker_engine, clock
):
    """Two gateways on one host share the kernel network: when one shuts down and takes the
    network and rules with it, the other makes both again before its next kernel."""
    first = create_app(tcp_settings, clock=clock)
    second = create_app(tcp_settings, clock=clock)
    first_client = await aiohttp_client(first)
    second_client = await aiohttp_client(second)
    owner = await Accounts(second[STORE_KEY], clock).make("owner@example.com")
    await first_client.close()  # no kernel uses the network: it and the rules go
    bridge = tcp_settings.kernel_network_bridge
    assert not firewall.installed(bridge)
    await _execute(second_client, owner, "1")
    assert firewall.installed(bridge), "rules back before the kernel started"
    instance = second[KERNELS_KEY].instance_id
    await second_client.close()
    assert_no_containers(docker_engine, instance)
    assert not firewall.installed(bridge)
