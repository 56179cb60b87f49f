"""Nothing assumes the kernel is local (issue #15): with the tcp transport the gateway drives the
engine only through the Docker API at `DOCKER_HOST`, here a TCP endpoint (a forwarder to this
host's engine socket stands in for another host), and reaches kernels at the addresses the
engine reports."""

from __future__ import annotations

import contextlib
import secrets
import selectors
import socket
import threading
from collections.abc import Iterator

import pytest

from gateway.app import create_app
from gateway.kernels import firewall
from gateway.kernels.docker import DockerBackend
from gateway.kernels.errors import SandboxError
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers

pytestmark = pytest.mark.docker
ENGINE_SOCKET = "/var/run/docker.sock"


def _forward(client: socket.socket) -> None:
    """Copy bytes both ways between `client` and the engine's socket until either side ends."""
    engine = socket.socket(socket.AF_UNIX)
    with client, engine, selectors.DefaultSelector() as selector:
        engine.connect(ENGINE_SOCKET)
        selector.register(client, selectors.EVENT_READ, engine)
        selector.register(engine, selectors.EVENT_READ, client)
        with contextlib.suppress(OSError):
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)


@contextlib.contextmanager
def engine_over_tcp() -> Iterator[str]:
    """`tcp://127.0.0.1:<port>` forwarding every connection to the engine's unix socket."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_forward, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        server.close()


async def test_a_remote_engine_runs_tcp_kernels(
    aiohttp_client, docker_settings, docker_engine, clock, monkeypatch
):
    suffix = secrets.token_hex(3)
    settings = docker_settings.with_changes(
        kernel_transport="tcp",
        kernel_runtime="runc",
        kernel_pool_size=0,
        kernel_network=f"gateway-kernels-remote-{suffix}",
        kernel_network_bridge=f"gwk-rem-{suffix}",
    )
    bridge = settings.kernel_network_bridge
    with engine_over_tcp() as url:
        monkeypatch.setenv("DOCKER_HOST", url)
        # without rules of its own on that host, the gateway refuses rather than runs exposed
        app = create_app(settings, clock=clock)
        client = await aiohttp_client(app)
        owner = await Accounts(app[STORE_KEY], clock).make("owner@example.com")
        status = await (
            await client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
        ).json()
        assert "GATEWAY_KERNEL_FIREWALL=external" in status["sandbox"]["problem"]
        await client.close()
        # the operator installed them on the engine's host (here: this one)
        firewall.install(bridge)
        try:
            app = create_app(settings.with_changes(kernel_firewall="external"), clock=clock)
            client = await aiohttp_client(app)
            owner = await Accounts(app[STORE_KEY], clock).make("owner@example.com")
            resp = await client.post(
                owner.url("scratchpad/kernel/execute"),
                json={"code": "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})\n1+1"},
                headers=owner.headers,
            )
            body = await resp.json()
            assert body["status"] == "ok" and body["result"] == {"text/plain": "2"}, body
            frame = await client.get(
                owner.url("scratchpad/kernel/dataframe?variable_name=df"), headers=owner.headers
            )
            assert frame.status == 200 and (await frame.json())["rows"] == [{"a": 1}, {"a": 2}]
            status = await (
                await client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
            ).json()
            assert status["sandbox"]["firewall"] == "external"
            assert status["sandbox"]["problem"] is None
            # nor can it weigh the kernels' cgroup there: placed, and said who must
            cgroup = status["sandbox"]["cgroup"]
            assert cgroup["parent"] == settings.kernel_cgroup_parent
            assert cgroup["cpu_shares"] is None and "DOCKER_HOST" in cgroup["problem"]
            instance = app[KERNELS_KEY].instance_id
            await client.close()
            assert_no_containers(docker_engine, instance)
        finally:
            firewall.remove(bridge)


@contextlib.contextmanager
def engine_at(path: str) -> Iterator[None]:
    """A unix socket at `path` forwarding every connection to the engine's own socket."""
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            threading.Thread(target=_forward, args=(client,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        server.close()


async def test_an_engine_that_answers_only_after_start_up_gets_the_checked_sandbox(
    aiohttp_client, docker_settings, docker_engine, clock, monkeypatch, tmp_path
):
    """A gateway that starts before its engine (boot order) checks the sandbox at the first
    launch instead: tcp kernels never run without the host rules the check installs."""
    suffix = secrets.token_hex(3)
    settings = docker_settings.with_changes(
        kernel_transport="tcp",
        kernel_runtime="runc",
        kernel_pool_size=0,
        kernel_network=f"gateway-kernels-late-{suffix}",
        kernel_network_bridge=f"gwk-late-{suffix}",
    )
    bridge = settings.kernel_network_bridge
    path = str(tmp_path / "engine.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)  # the engine is not there yet
    owner = await Accounts(app[STORE_KEY], clock).make("owner@example.com")
    try:
        status = await (
            await client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
        ).json()
        assert "Docker engine unreachable" in status["sandbox"]["problem"]
        assert status["sandbox"]["firewall"] is None
        resp = await client.post(
            owner.url("scratchpad/kernel/start"), json={}, headers=owner.headers
        )
        assert resp.status == 503, await resp.text()
        with engine_at(path):
            assert not firewall.installed(bridge)
            resp = await client.post(
                owner.url("scratchpad/kernel/execute"), json={"code": "1+1"}, headers=owner.headers
            )
            body = await resp.json()
            assert body["status"] == "ok" and body["result"] == {"text/plain": "2"}, body
            assert firewall.installed(bridge)
            status = await (
                await client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
            ).json()
            assert status["sandbox"]["firewall"] == "iptables"
            assert status["sandbox"]["problem"] is None
            instance = app[KERNELS_KEY].instance_id
            await client.close()
            assert_no_containers(docker_engine, instance)
            assert not firewall.installed(bridge)  # removed with the network at shutdown
    finally:
        firewall.remove(bridge)
        with contextlib.suppress(Exception):
            docker_engine.networks.get(settings.kernel_network).remove()


async def test_kernels_are_re_attached_only_after_the_check_passed(
    docker_settings, docker_engine, monkeypatch, tmp_path
):
    """Recovery asks for leftovers right after the start-up check: if the engine answers only
    in between, the check runs first (the runtime known before any kernel is adopted)."""
    path = str(tmp_path / "engine.sock")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
    backend = DockerBackend(docker_settings.with_changes(kernel_transport="ipc"))
    try:
        await backend.check()
        assert "unreachable" in (backend.problem or "")
        with pytest.raises(SandboxError):
            await backend.leftovers("no-such-instance")
        with engine_at(path):
            assert await backend.leftovers("no-such-instance") == []
            assert backend.problem is None  # checked on the way
    finally:
        backend.close()
