"""A gateway client per kernel backend: `subprocess` always, `docker` behind the marker."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers


@pytest.fixture(params=["subprocess", pytest.param("docker", marks=pytest.mark.docker)])
def backend_settings(request, settings):
    if request.param == "docker":
        return request.getfixturevalue("docker_settings")
    return settings


@pytest.fixture
async def kernel_client(aiohttp_client, backend_settings, clock, request):
    app = create_app(backend_settings, clock=clock)
    client = await aiohttp_client(app)
    yield client
    if backend_settings.kernel_backend == "docker":
        # Shut the gateway down here (idempotent), then nothing of it may remain.
        instance = app[KERNELS_KEY].instance_id
        await client.close()
        assert_no_containers(request.getfixturevalue("docker_engine"), instance)


@pytest.fixture
async def owner(kernel_client, clock):
    return await Accounts(kernel_client.server.app[STORE_KEY], clock).make("owner@example.com")
