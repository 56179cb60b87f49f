"""M2: one member must not be able to take the host's kernel slots or resources.

Kernels are counted per user and per project (429 over `kernel_max_per_user` /
`kernel_max_per_project`, starts in flight included), and `kernel/config` may not set more CPU,
memory or idle time than the gateway's maxima (403 naming the limit); a stored config above
them is clamped at start.
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.app import create_app
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers, create_notebook


@pytest.fixture(params=["subprocess", pytest.param("docker", marks=pytest.mark.docker)])
def backend_settings(request, settings):
    base = request.getfixturevalue("docker_settings") if request.param == "docker" else settings
    return base


@pytest.fixture
async def gateway(aiohttp_client, backend_settings, clock, request):
    started = []

    async def make(**changes):
        app = create_app(backend_settings.with_changes(**changes), clock=clock)
        client = await aiohttp_client(app)
        started.append((app, client))
        return client, Accounts(app[STORE_KEY], clock)

    yield make
    for app, client in started:
        instance = app[KERNELS_KEY].instance_id
        await client.close()
        if backend_settings.kernel_backend == "docker":
            assert_no_containers(request.getfixturevalue("docker_engine"), instance)


async def _start(client, account, short_id):
    return await client.post(account.url(f"{short_id}/kernel/start"), headers=account.headers)


async def test_a_user_cannot_start_more_than_their_kernels(gateway):
    client, accounts = await gateway(kernel_max_per_user=2)
    jane = await accounts.make("jane@example.com")
    notebooks = [(await create_notebook(client, jane, title=f"n{i}"))["short_id"] for i in range(2)]
    for short_id in ("scratchpad", notebooks[0]):
        resp = await _start(client, jane, short_id)
        assert resp.status == 200, await resp.text()

    resp = await _start(client, jane, notebooks[1])
    assert resp.status == 429
    error = await resp.json()
    assert error["code"] == "kernel_quota_exceeded"
    assert error["type"] == "throttled_error"
    assert "kernel_max_per_user = 2" in error["detail"]
    # executing is starting too
    resp = await client.post(
        jane.url(f"{notebooks[1]}/kernel/execute"), json={"code": "1"}, headers=jane.headers
    )
    assert resp.status == 429
    assert len(client.server.app[KERNELS_KEY].live_runtimes()) == 2

    # the live ones still work; stopping one frees a place
    resp = await _start(client, jane, "scratchpad")
    assert resp.status == 200
    resp = await client.post(jane.url("scratchpad/kernel/stop"), headers=jane.headers)
    assert (await resp.json())["stopped"] is True
    resp = await _start(client, jane, notebooks[1])
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("backend_settings", ["subprocess"], indirect=True)
async def test_concurrent_starts_cannot_overrun_the_user_quota(gateway):
    client, accounts = await gateway(kernel_max_per_user=2)
    jane = await accounts.make("jane@example.com")
    notebooks = [(await create_notebook(client, jane, title=f"n{i}"))["short_id"] for i in range(4)]
    responses = await asyncio.gather(*(_start(client, jane, s) for s in notebooks))
    statuses = sorted(r.status for r in responses)
    assert statuses == [200, 200, 429, 429]
    assert len(client.server.app[KERNELS_KEY].live_runtimes()) == 2


@pytest.mark.parametrize("backend_settings", ["subprocess"], indirect=True)
async def test_a_project_cannot_start_more_than_its_kernels(gateway):
    client, accounts = await gateway(kernel_max_per_user=5, kernel_max_per_project=2)
    jane = await accounts.make("jane@example.com")
    bob = await accounts.make("bob@example.com")
    carol = await accounts.make("carol@example.com")
    other = await accounts.make("olga@example.com", project_id=2)
    assert (await _start(client, jane, "scratchpad")).status == 200
    assert (await _start(client, bob, "scratchpad")).status == 200

    resp = await _start(client, carol, "scratchpad")
    assert resp.status == 429
    error = await resp.json()
    assert error["code"] == "kernel_quota_exceeded"
    assert "kernel_max_per_project = 2" in error["detail"]
    # another project is not affected
    assert (await _start(client, other, "scratchpad")).status == 200


@pytest.mark.parametrize("backend_settings", ["subprocess"], indirect=True)
@pytest.mark.parametrize(
    ("attr", "value", "setting"),
    [
        ("memory_gb", 16, "kernel_max_memory_gb"),
        ("cpu_cores", 2, "kernel_max_cpu_cores"),
        ("idle_timeout_seconds", 43200, "kernel_max_idle_timeout_s"),
    ],
)
async def test_a_member_cannot_configure_more_than_the_maximum(gateway, attr, value, setting):
    client, accounts = await gateway(
        kernel_max_cpu_cores=1, kernel_max_memory_gb=2, kernel_max_idle_timeout_s=3600
    )
    owner = await accounts.make("owner@example.com")
    member = await accounts.make("member@example.com")
    short_id = (await create_notebook(client, owner, title="shared"))["short_id"]

    resp = await client.post(
        member.url(f"{short_id}/kernel/config"), json={attr: value}, headers=member.headers
    )
    assert resp.status == 403
    error = await resp.json()
    assert error["code"] == "kernel_config_over_limit"
    assert error["attr"] == attr
    assert setting in error["detail"]
    notebook = await client.get(owner.url(short_id), headers=owner.headers)
    assert (await notebook.json()).get("kernel_config", {}).get(attr) != value

    # at the maximum is fine
    limits = {"memory_gb": 2, "cpu_cores": 1, "idle_timeout_seconds": 3600}
    resp = await client.post(
        member.url(f"{short_id}/kernel/config"), json={attr: limits[attr]}, headers=member.headers
    )
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("backend_settings", ["subprocess"], indirect=True)
async def test_a_stored_config_over_the_maximum_is_clamped(gateway):
    client, accounts = await gateway(kernel_max_memory_gb=2, kernel_max_cpu_cores=1)
    owner = await accounts.make("owner@example.com")
    short_id = (await create_notebook(client, owner, title="old"))["short_id"]
    # stored before the maxima were lowered
    await client.server.app[STORE_KEY].set_kernel_config(
        owner.project.id, short_id, {"memory_gb": 16, "cpu_cores": 8}
    )
    resp = await _start(client, owner, short_id)
    assert resp.status == 200, await resp.text()
    runtime = client.server.app[KERNELS_KEY].live_runtimes()[0]
    assert runtime.resources.memory_gb == 2
    assert runtime.resources.cpu_cores == 1
