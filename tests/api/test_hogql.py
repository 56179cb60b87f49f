"""`POST hogql/execute` through the app: PostHog's response shape and error body."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.analytics.load import demo_events
from gateway.keys import ANALYTICS_KEY, SETTINGS_KEY
from tests.conftest import create_notebook


@pytest.fixture
async def loaded(client, jane):
    events = list(demo_events(300, now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
    client.server.app[ANALYTICS_KEY].insert_events(jane.project.id, events)
    return len(events)


async def _hogql(client, account, body, short_id="scratchpad"):
    return await client.post(
        account.url(f"{short_id}/hogql/execute"), json=body, headers=account.headers
    )


async def test_response_shape(client, jane, loaded):
    resp = await _hogql(
        client,
        jane,
        {"query": "select event, count() from events group by event order by count() desc"},
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert set(body) == {"query", "results", "columns", "types", "hasMore", "limit", "offset"}
    assert body["columns"] == ["event", "count()"]
    assert body["types"] == [["event", "String"], ["count()", "UInt64"]]  # as ClickHouse
    assert sum(row[1] for row in body["results"]) == loaded
    assert (body["hasMore"], body["limit"], body["offset"]) == (False, 100, 0)


async def test_explicit_limit_has_no_paging_keys(client, jane, loaded):
    body = await (await _hogql(client, jane, {"query": "select uuid from events limit 5"})).json()
    assert len(body["results"]) == 5
    assert "hasMore" not in body


async def test_default_limit_pages(client, jane, loaded):
    body = await (await _hogql(client, jane, {"query": "select uuid from events"})).json()
    assert (len(body["results"]), body["hasMore"]) == (100, True)


async def test_errors_are_400_with_positions(client, jane):
    resp = await _hogql(client, jane, {"query": "select cnt() from events"})
    assert resp.status == 400
    assert await resp.json() == {
        "error": "Unsupported function call 'cnt(...)'. Perhaps you meant 'count(...)'?",
        "code": "hogql_query_error",
        "start": 7,
        "end": 12,
    }
    for body in (
        {},
        {"query": 5},
        {"query": "select 1", "values": [1]},
        {"query": "select {x}", "values": {"x": {"nested": 1}}},
        {"query": "select {x}", "values": {"x": [[1]]}},
        {"query": ""},
    ):
        resp = await _hogql(client, jane, body)
        assert resp.status == 400, body


async def test_values_fill_placeholders(client, jane, loaded):
    resp = await _hogql(
        client,
        jane,
        {"query": "select count() from events where event = {e}", "values": {"e": "nope"}},
    )
    assert (await resp.json())["results"] == [[0]]


async def test_list_values(client, jane, loaded):
    resp = await _hogql(
        client,
        jane,
        {
            "query": "select count() from events where event in {names}",
            "values": {"names": ["$pageview", "signed_up"]},
        },
    )
    both = (await resp.json())["results"][0][0]
    resp = await _hogql(
        client,
        jane,
        {"query": "select countIf(event = '$pageview') + countIf(event = 'signed_up') from events"},
    )
    assert both == (await resp.json())["results"][0][0] > 0


async def test_notebook_must_exist_but_scratchpad_needs_none(client, jane):
    assert (await _hogql(client, jane, {"query": "select 1"}, "missing")).status == 404
    await create_notebook(client, jane, short_id="nb")
    assert (await _hogql(client, jane, {"query": "select 1"}, "nb")).status == 200


async def test_projects_see_only_their_own_events(client, accounts, jane, loaded):
    other = await accounts.make("other@example.com", project_id=2)
    body = await (await _hogql(client, other, {"query": "select count() from events"})).json()
    assert body["results"] == [[0]]


async def test_arrow_variant_keeps_types(client, jane, loaded):
    import io

    import pyarrow as pa
    import pyarrow.ipc

    resp = await client.post(
        jane.url("scratchpad/hogql/execute"),
        json={
            "query": "select event, count() as c, min(timestamp) as first from events"
            " group by event order by event"
        },
        headers={**jane.headers, "Accept": "application/vnd.apache.arrow.stream"},
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    table = pyarrow.ipc.open_stream(io.BytesIO(await resp.read())).read_all()
    assert table.column_names == ["event", "c", "first"]
    assert pa.types.is_timestamp(table.schema.field("first").type)
    assert int(resp.headers["X-Total-Count"]) == table.num_rows > 0
    body = await (
        await _hogql(
            client,
            jane,
            {"query": "select event, count() as c from events group by event order by event"},
        )
    ).json()
    assert table.select(["event", "c"]).to_pylist() == [
        {"event": e, "c": c} for e, c in body["results"]
    ]
    leftovers = list((client.server.app[SETTINGS_KEY].data_dir / "hogql-results").glob("*"))
    assert leftovers == [], "temporary result files are removed"


async def test_project_timezone_applies(client, jane, loaded):
    from gateway.keys import STORE_KEY

    await client.server.app[STORE_KEY].set_project_timezone(jane.project.id, "Asia/Tokyo")
    body = await (
        await _hogql(client, jane, {"query": "select toStartOfDay(timestamp) as d from events"})
    ).json()
    assert body["types"] == [["d", "DateTime64(6, 'Asia/Tokyo')"]]
    assert all(row[0].endswith("T00:00:00+09:00") for row in body["results"])
