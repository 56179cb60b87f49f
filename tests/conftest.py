"""Shared fixtures: settings → app → client, plus accounts with API keys."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

import gateway
from gateway.app import create_app
from gateway.auth import new_api_key
from gateway.clock import FakeClock
from gateway.keys import STORE_KEY
from gateway.settings import Settings
from gateway.store import Project, Store, User


def pytest_report_header(config: pytest.Config) -> list[str]:
    import sqlite3

    return [
        f"gateway {gateway.__version__}, aiohttp {aiohttp.__version__}, "
        f"sqlite {sqlite3.sqlite_version}"
    ]


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    """Tests build Settings directly; nothing may depend on GATEWAY_* in the environment."""
    for key in list(os.environ):
        if key.startswith("GATEWAY_") and key != "GATEWAY_REQUIRE_DOCKER":
            monkeypatch.delenv(key)


@pytest.fixture
def settings(tmp_path) -> Settings:
    # Kernel tests that need Docker ask for `docker_settings`; the rest use the fast,
    # unsandboxed subprocess backend (a real ipykernel) so they never touch the engine.
    return Settings(
        data_dir=tmp_path / "data",
        secret_key="test-secret-key-0123456789abcdef",
        kernel_backend="subprocess",
        kernel_pool_size=0,
        kernel_startup_timeout_s=30,
        kernel_interrupt_grace_s=2,
    )


def _require_docker() -> bool:
    return os.environ.get("GATEWAY_REQUIRE_DOCKER") == "1"


def _docker_unavailable(reason: str):
    if _require_docker():
        pytest.fail(f"GATEWAY_REQUIRE_DOCKER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_engine():
    """A reachable engine: skipped locally without one, a failure in CI (GATEWAY_REQUIRE_DOCKER=1)."""
    import docker

    from gateway.kernels.stranded import close_stranded

    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as err:
        close_stranded(err)  # kept by the cached skip until the session ends
        _docker_unavailable(f"no Docker engine ({err})")
    yield client
    client.close()


@pytest.fixture(scope="session")
def kernel_image(docker_engine) -> str:
    """The kernel image, built (or found up to date) once per session by images/kernel/build.py."""
    import subprocess
    import sys
    from pathlib import Path

    build = Path(__file__).resolve().parent.parent / "images" / "kernel" / "build.py"
    result = subprocess.run(
        [sys.executable, str(build)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        _docker_unavailable(f"kernel image build failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def docker_settings(settings: Settings, kernel_image: str) -> Settings:
    # KERNEL_TEST_RUNTIME=runsc runs every Docker kernel test under gVisor, and
    # KERNEL_TEST_TRANSPORT=tcp over the tcp transport (make test does both)
    runtime = os.environ.get("KERNEL_TEST_RUNTIME", "runc")
    transport = os.environ.get("KERNEL_TEST_TRANSPORT", "ipc")
    return settings.with_changes(
        kernel_backend="docker",
        kernel_image=kernel_image,
        kernel_runtime=runtime,
        kernel_transport=transport,
    )


def assert_no_containers(engine, instance: str) -> None:
    """No container labelled with this gateway instance may exist (removed if one does)."""
    leftovers = engine.containers.list(all=True, filters={"label": f"gateway.instance={instance}"})
    for container in leftovers:
        container.remove(force=True)
    assert not leftovers, f"containers left behind: {[c.name for c in leftovers]}"


def _relay_tree() -> tuple[list[int], list[int]]:
    """(relay factories that are children of this process, where the gateway under test runs;
    relays forked by them): gateway/kernels/relay_process.py."""
    found: dict[int, tuple[int, bytes]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                stat = stat_file.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline_file:
                cmdline = cmdline_file.read()
        except OSError:
            continue
        found[int(entry.name)] = (int(stat.rsplit(b")", 1)[1].split()[1]), cmdline)
    ours = [
        p
        for p, (parent, cmd) in found.items()
        if parent == os.getpid() and b"relay_process.py" in cmd
    ]
    relays = [
        p for p, (parent, cmd) in found.items() if parent in ours and b"relay_process.py" in cmd
    ]
    return ours, relays


def relay_processes() -> list[int]:
    """The kernel message relays of the gateway under test (forked by its relay factory)."""
    return _relay_tree()[1]


async def end_relays_as_a_crash_would(app) -> None:
    """For tests that fake a gateway crash (a no-op shutdown) in this process: end its kernels'
    relays and their factory, as a dead gateway's would end (their control sockets close); the
    kernels themselves keep running."""
    from gateway.keys import KERNELS_KEY

    manager = app[KERNELS_KEY]
    for runtime in manager.live_runtimes():
        if runtime.relay is not None:
            await runtime.relay.close()
    await manager._lifecycle.close()


def assert_no_relays(settings: Settings) -> None:
    """No kernel message relay may outlive its kernel or gateway: no relay process of this
    test process and no private relay directory left (killed and removed if found)."""
    factories, relays = _relay_tree()
    leftovers = factories + relays
    for pid in leftovers:
        os.kill(pid, 9)
    root = settings.data_dir / "relays"
    places = [p.name for p in root.iterdir()] if root.exists() else []
    assert not leftovers, f"relay processes (factories {factories}) left behind: {leftovers}"
    assert not places, f"relay directories left behind: {places}"


@pytest.fixture
async def docker_gateway(aiohttp_client, docker_settings, docker_engine, clock):
    """A test client on an app with the Docker backend, and an owner account of project 1.
    After the test: no container of that gateway and no kernel run directory may be left."""
    from gateway.keys import KERNELS_KEY

    app = create_app(docker_settings, clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make("owner@example.com")
    yield client, owner
    instance = app[KERNELS_KEY].instance_id
    await client.close()
    assert_no_containers(docker_engine, instance)
    assert list(docker_settings.kernel_run_root.iterdir()) == [], "no run dir left behind"
    assert_no_relays(docker_settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(settings, clock):
    return create_app(settings, clock=clock)


@pytest.fixture
async def client(aiohttp_client, app):
    return await aiohttp_client(app)


@dataclass
class Account:
    user: User
    project: Project
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def url(self, path: str = "") -> str:
        return f"/api/projects/{self.project.id}/notebooks/{path}"


class Accounts:
    """Creates users, projects and keys directly in the running app's store."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock

    async def make(
        self, email: str = "jane@example.com", *, project_id: int = 1, scopes=("*",)
    ) -> Account:
        now = self.clock.now()
        user = await self.store.ensure_user(
            email, first_name=email.split("@", maxsplit=1)[0], now=now
        )
        project = await self.store.ensure_project(project_id, now=now)
        await self.store.add_member(user.id, project.id)
        raw, key_hash, mask = new_api_key()
        await self.store.create_api_key(
            user.id, key_hash=key_hash, mask=mask, scopes=tuple(scopes), label="t", now=now
        )
        return Account(user=user, project=project, key=raw)


@pytest.fixture
def accounts(client, clock) -> Accounts:
    return Accounts(client.server.app[STORE_KEY], clock)


@pytest.fixture
async def jane(accounts: Accounts) -> Account:
    return await accounts.make()


async def create_notebook(client, account: Account, **body: Any) -> dict[str, Any]:
    resp = await client.post(account.url(), json=body, headers=account.headers)
    assert resp.status == 201, await resp.text()
    notebook: dict[str, Any] = await resp.json()
    return notebook
