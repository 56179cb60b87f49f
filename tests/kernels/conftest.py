"""A gateway client per kernel backend: `subprocess` always, `docker` behind the marker; the
kernel image's helper module loaded on the host (`kernel_helper`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from gateway.app import create_app
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers, assert_no_relays

_HELPER = Path(__file__).resolve().parents[2] / "images" / "kernel" / "gateway_kernel.py"


@pytest.fixture(scope="session")
def kernel_helper() -> ModuleType:
    """images/kernel/gateway_kernel.py as a module of its own (outside a kernel: no set-up)."""
    spec = importlib.util.spec_from_file_location("gateway_kernel_under_test", _HELPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["subprocess", pytest.param("docker", marks=pytest.mark.docker)])
def backend_settings(request, settings):
    if request.param == "docker":
        return request.getfixturevalue("docker_settings")
    return settings


@pytest.fixture
async def make_gateway(aiohttp_client, backend_settings, clock, request):
    """Start a gateway on this backend; at teardown shut it down and check nothing remains."""
    started = []

    async def make(**changes):
        app = create_app(backend_settings.with_changes(**changes), clock=clock)
        client = await aiohttp_client(app)
        started.append((app, client))
        return client

    yield make
    for app, client in started:
        instance = app[KERNELS_KEY].instance_id
        await client.close()  # idempotent: runs the app's cleanup now
        if backend_settings.kernel_backend == "docker":
            assert_no_containers(request.getfixturevalue("docker_engine"), instance)
        assert_no_relays(backend_settings)


@pytest.fixture
async def kernel_client(make_gateway):
    return await make_gateway()


@pytest.fixture
async def owner(kernel_client, clock):
    return await Accounts(kernel_client.server.app[STORE_KEY], clock).make("owner@example.com")
