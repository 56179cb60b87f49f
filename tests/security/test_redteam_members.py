"""Red-team (second pass, after issue #10): a member with a read-only key shares the gateway's
HogQL machinery with everyone else. No Docker: the subprocess kernel backend is never started.

The text limits and the per-query budgets hold for one query; these tests send several at once
and look at what other tenants (another project's member, an anonymous capture client) get.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import Account, Accounts

# Under every text limit (4,500 tokens); the worker spends well over 3 s on it, then is killed.
SLOW_TRANSLATION = "select " + "+".join(["1"] * 2251)
# Translates at once; DuckDB runs it until the query timeout interrupts it.
SLOW_QUERY = "select count() from numbers(1000000) a cross join numbers(1000000) b"


async def _hogql(client, account: Account, query: str):
    return await client.post(
        account.url("scratchpad/hogql/execute"), json={"query": query}, headers=account.headers
    )


@pytest.fixture
async def attacker(accounts: Accounts) -> Account:
    return await accounts.make("mallory@example.com", project_id=1, scopes=("query:read",))


@pytest.fixture
async def victim(accounts: Accounts) -> Account:
    return await accounts.make("victim@example.com", project_id=2, scopes=("query:read",))


async def _flood(client, attacker: Account, query: str, count: int) -> list[asyncio.Task[Any]]:
    tasks = [asyncio.create_task(_hogql(client, attacker, query)) for _ in range(count)]
    await asyncio.sleep(0.5)  # all of them are in: translating, waiting for a worker, or running
    return tasks


async def _drain(tasks: list[asyncio.Task[Any]]) -> list[int]:
    responses = await asyncio.gather(*tasks)
    return [r.status for r in responses]


async def test_one_member_cannot_take_every_translator(client, attacker, victim):
    assert (await _hogql(client, victim, "select 1")).status == 200  # the workers are up
    tasks = await _flood(client, attacker, SLOW_TRANSLATION, 8)
    started = time.perf_counter()
    resp = await _hogql(client, victim, "select 1")
    elapsed = time.perf_counter() - started
    statuses = await _drain(tasks)
    assert set(statuses) <= {400, 429, 503}, statuses  # the attacker's own queries are refused
    assert resp.status == 200, f"{resp.status} after {elapsed:.1f} s: {await resp.text()}"
    assert elapsed < 5, f"another project's `select 1` took {elapsed:.1f} s"


@pytest.fixture
def settings(settings):
    # a shorter query budget keeps the test short; the default is 30 s
    return settings.with_changes(hogql_timeout_s=8.0)


async def test_slow_queries_do_not_stall_capture(client, attacker, victim):
    tasks = await _flood(client, attacker, SLOW_QUERY, 6)
    event = {"event": "e", "distinct_id": "d", "api_key": victim.project.api_token}
    started = time.perf_counter()
    resp = await client.post("/capture/", json=event)
    elapsed = time.perf_counter() - started
    health_started = time.perf_counter()
    health = await client.get("/_health")
    health_elapsed = time.perf_counter() - health_started
    statuses = await _drain(tasks)
    # what runs is stopped at the query timeout (400); the rest are over this project's share
    # of translations or queries (429)
    assert set(statuses) <= {400, 429} and 400 in statuses, statuses
    assert health.status == 200
    assert resp.status == 200, await resp.text()
    assert elapsed < 2, f"an anonymous capture took {elapsed:.1f} s (health {health_elapsed:.2f})"


async def test_one_member_cannot_hold_every_collab_stream(aiohttp_client, settings, clock):
    from gateway.app import create_app
    from gateway.keys import STORE_KEY
    from tests.conftest import create_notebook

    app = create_app(
        settings.with_changes(collab_max_streams=8, collab_max_streams_per_user=4), clock=clock
    )
    client = await aiohttp_client(app)
    accounts = Accounts(app[STORE_KEY], clock)
    owner = await accounts.make("owner@example.com", project_id=1)
    reader = await accounts.make("mallory@example.com", project_id=1, scopes=("notebook:read",))
    victim = await accounts.make("victim@example.com", project_id=2)
    await create_notebook(client, owner, short_id="nb")
    await create_notebook(client, victim, short_id="nb")
    held = []
    for _ in range(4):  # a read-only key, opening streams and never reading them
        resp = await client.get(reader.url("nb/collab/stream"), headers=reader.headers)
        assert resp.status == 200
        held.append(resp)
    refused = await client.get(reader.url("nb/collab/stream"), headers=reader.headers)
    assert refused.status == 429, "the fifth stream of one user is refused"
    held.append(refused)
    resp = await client.get(victim.url("nb/collab/stream"), headers=victim.headers)
    status = resp.status
    for stream in [*held, resp]:
        stream.close()
    assert status == 200, f"another project's collab/stream got {status}"
