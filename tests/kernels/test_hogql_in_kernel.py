"""`hogql_execute()` in a kernel: same translator, same isolation, through the run directory."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from gateway.analytics.load import demo_events
from gateway.app import create_app
from gateway.keys import ANALYTICS_KEY, KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers

pytestmark = pytest.mark.docker
QUERY = "select event, count() as c from events group by event order by event"


@pytest.fixture
async def gw(aiohttp_client, docker_settings, docker_engine, clock):
    app = create_app(docker_settings.with_changes(kernel_pool_size=1), clock=clock)
    client = await aiohttp_client(app)
    accounts = Accounts(app[STORE_KEY], clock)
    owner = await accounts.make("owner@example.com", project_id=1)
    outsider = await accounts.make("outsider@example.com", project_id=2)
    app[ANALYTICS_KEY].insert_events(
        1, demo_events(500, now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC))
    )
    yield client, owner, outsider
    instance = app[KERNELS_KEY].instance_id
    await client.close()
    assert_no_containers(docker_engine, instance)


async def _execute(client, account, code):
    resp = await client.post(
        account.url("scratchpad/kernel/execute"),
        json={"code": code, "timeout": 60},
        headers=account.headers,
    )
    body = await resp.json()
    assert resp.status == 200, body
    return body


async def test_same_rows_as_the_route(gw):
    client, owner, _ = gw
    resp = await client.post(
        owner.url("scratchpad/hogql/execute"), json={"query": QUERY}, headers=owner.headers
    )
    expected = (await resp.json())["results"]
    body = await _execute(
        client,
        owner,
        f"import json\ndf = hogql_execute({QUERY!r})\nprint(json.dumps(df.values.tolist()))",
    )
    assert body["status"] == "ok", (body["error_name"], body["error_value"])
    assert json.loads(body["stdout"]) == expected
    assert body["variables"]["df"]["type"] == "DataFrame"
    assert body["variables"]["df"]["columns"] == ["event", "c"]


async def test_placeholders_come_from_kernel_globals(gw):
    client, owner, _ = gw
    body = await _execute(
        client,
        owner,
        "ev = 'signed_up'\n"
        "bool(hogql_execute('select count() as n from events where event = {ev}')"
        "['n'][0] == hogql_execute(\"select countIf(event = 'signed_up')"
        " as n from events\")['n'][0])",
    )
    assert body["result"] == {"text/plain": "True"}, (body["error_name"], body["error_value"])


async def test_hogql_errors_are_python_exceptions(gw):
    client, owner, _ = gw
    body = await _execute(client, owner, "hogql_execute('select cnt() from events')")
    assert body["error_name"] == "HogQLError"
    assert "Perhaps you meant 'count(...)'" in body["error_value"]


async def test_another_projects_kernel_sees_only_its_own_data(gw):
    client, owner, outsider = gw
    mine = await _execute(
        client, owner, "int(hogql_execute('select count() as n from events')['n'][0])"
    )
    assert mine["result"] == {"text/plain": "500"}
    theirs = await _execute(
        client, outsider, "int(hogql_execute('select count() as n from events')['n'][0])"
    )
    assert theirs["result"] == {"text/plain": "0"}, "project 2 sees none of project 1's events"


async def test_list_placeholders_from_kernel_values(gw):
    client, owner, _ = gw
    body = await _execute(
        client,
        owner,
        "names = ('signed_up', '$pageleave')\n"
        "a = int(hogql_execute('select count() as n from events"
        " where event in {names}')['n'][0])\n"
        "b = int(hogql_execute(\"select countIf(event in ('signed_up',"
        " '$pageleave')) as n from events\")['n'][0])\n"
        "(a == b, a > 0)",
    )
    assert body["result"] == {"text/plain": "(True, True)"}, (
        body["error_name"],
        body["error_value"],
    )


async def test_the_projects_timezone_reaches_the_kernel(gw):
    client, owner, _ = gw
    await client.server.app[STORE_KEY].set_project_timezone(1, "Asia/Tokyo")
    body = await _execute(
        client,
        owner,
        "d = hogql_execute('select toStartOfDay(timestamp) as day from events limit 1')\n"
        "print(d['day'].dt.tz, d['day'][0].hour)",
    )
    assert body["status"] == "ok", (body["error_name"], body["error_value"])
    assert body["stdout"].split() == ["Asia/Tokyo", "0"]
