"""The warm pool: ready kernels with the default config, taken once, refilled."""

from __future__ import annotations

import asyncio

from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, create_notebook


async def _until(predicate):
    async with asyncio.timeout(30):
        while not predicate():  # noqa: ASYNC110 - polls the manager's pool, which has no event
            await asyncio.sleep(0.02)


async def test_start_takes_a_pooled_kernel_and_the_pool_refills(make_gateway, clock):
    client = await make_gateway(kernel_pool_size=1)
    app = client.server.app
    manager = app[KERNELS_KEY]
    owner = await Accounts(app[STORE_KEY], clock).make()
    await _until(lambda: manager.pool_ready == 1)
    pooled_id = manager._pool.runtimes()[0].id
    resp = await client.post(owner.url("scratchpad/kernel/start"), headers=owner.headers)
    body = await resp.json()
    assert body["id"] == pooled_id
    await _until(lambda: manager.pool_ready == 1)
    assert manager._pool.runtimes()[0].id != pooled_id, "a fresh kernel refills the pool"
    # The taken kernel is the owner's from now on, and the pooled one is someone else's later.
    other = await Accounts(app[STORE_KEY], clock).make("other@example.com")
    resp = await client.post(other.url("scratchpad/kernel/start"), headers=other.headers)
    assert (await resp.json())["id"] not in {pooled_id}


async def test_non_default_config_does_not_use_the_pool(make_gateway, clock):
    client = await make_gateway(kernel_pool_size=1)
    app = client.server.app
    manager = app[KERNELS_KEY]
    owner = await Accounts(app[STORE_KEY], clock).make()
    await create_notebook(client, owner, short_id="big")
    await client.post(owner.url("big/kernel/config"), json={"cpu_cores": 2}, headers=owner.headers)
    await _until(lambda: manager.pool_ready == 1)
    pooled_id = manager._pool.runtimes()[0].id
    resp = await client.post(owner.url("big/kernel/start"), headers=owner.headers)
    body = await resp.json()
    assert body["id"] != pooled_id
    assert body["cpu_cores"] == 2
    assert manager._pool.runtimes()[0].id == pooled_id


async def test_refills_start_a_few_kernels_at_a_time(make_gateway, clock):
    client = await make_gateway(kernel_pool_size=4, kernel_pool_fill_parallel=1)
    pool = client.server.app[KERNELS_KEY]._pool
    most = 0

    def full() -> bool:
        nonlocal most
        most = max(most, pool.starting)
        return bool(pool.ready == 4)

    await _until(full)
    assert most == 1, "one start at a time, never four at once"


async def test_a_take_refills_only_after_the_delay(make_gateway, clock, monkeypatch):
    """The refill after a take waits `kernel_pool_refill_delay_s`: the taker's first cells
    do not share the CPU with the new kernel's start."""
    client = await make_gateway(kernel_pool_size=1, kernel_pool_refill_delay_s=1.5)
    app = client.server.app
    manager = app[KERNELS_KEY]
    pool = manager._pool
    owner = await Accounts(app[STORE_KEY], clock).make()
    await _until(lambda: manager.pool_ready == 1)
    loop = asyncio.get_running_loop()
    launches: list[float] = []
    launch = pool._lifecycle.launch

    async def timed(*args, **kwargs):
        launches.append(loop.time())
        return await launch(*args, **kwargs)

    monkeypatch.setattr(pool._lifecycle, "launch", timed)
    taken_at = loop.time()
    resp = await client.post(owner.url("scratchpad/kernel/start"), headers=owner.headers)
    assert resp.status == 200
    assert pool.filling == 1 and pool.starting == 0  # scheduled, not started
    await _until(lambda: manager.pool_ready == 1)
    assert len(launches) == 1
    assert launches[0] - taken_at >= 1.5


async def test_shutdown_does_not_wait_out_a_refill_delay(make_gateway, clock):
    client = await make_gateway(kernel_pool_size=1, kernel_pool_refill_delay_s=600)
    app = client.server.app
    manager = app[KERNELS_KEY]
    owner = await Accounts(app[STORE_KEY], clock).make()
    await _until(lambda: manager.pool_ready == 1)
    resp = await client.post(owner.url("scratchpad/kernel/start"), headers=owner.headers)
    assert resp.status == 200
    assert manager._pool.filling == 1
    loop = asyncio.get_running_loop()
    began = loop.time()
    await client.close()
    assert loop.time() - began < 30  # not the 600 s delay
    assert manager._pool.filling == 0 and manager.pool_ready == 0


async def test_a_delayed_refill_gives_way_to_starts_that_reached_the_cap(make_gateway, clock):
    """Kernels started while a refill waits out its delay count first: the refill does not
    take the gateway past `kernel_max_count`."""
    client = await make_gateway(
        kernel_pool_size=1, kernel_max_count=2, kernel_pool_refill_delay_s=1.0
    )
    app = client.server.app
    manager = app[KERNELS_KEY]
    owner = await Accounts(app[STORE_KEY], clock).make()
    await create_notebook(client, owner, short_id="second")
    await _until(lambda: manager.pool_ready == 1)
    resp = await client.post(owner.url("scratchpad/kernel/start"), headers=owner.headers)
    assert resp.status == 200  # the pooled kernel; its refill waits
    resp = await client.post(owner.url("second/kernel/start"), headers=owner.headers)
    assert resp.status == 200  # a cold start within the delay: the cap (2) is reached
    await _until(lambda: manager._pool.filling == 0)
    assert manager.pool_ready == 0
    assert len(manager.live_runtimes()) == 2


async def test_concurrent_cold_starts_stop_at_the_kernel_cap(make_gateway, clock):
    """Starts in flight count toward `kernel_max_count`: three notebooks starting at once on
    a gateway capped at two get two kernels and one 503 naming the cap."""
    client = await make_gateway(kernel_pool_size=0, kernel_max_count=2)
    app = client.server.app
    manager = app[KERNELS_KEY]
    owner = await Accounts(app[STORE_KEY], clock).make()
    for name in ("n1", "n2", "n3"):
        await create_notebook(client, owner, short_id=name)
    responses = await asyncio.gather(
        *(
            client.post(owner.url(f"{name}/kernel/start"), headers=owner.headers)
            for name in ("n1", "n2", "n3")
        )
    )
    assert sorted(r.status for r in responses) == [200, 200, 503]
    refused = next(r for r in responses if r.status == 503)
    assert "maximum of 2 kernels" in (await refused.json())["reason"]
    assert len(manager.live_runtimes()) == 2
