"""Capture endpoints, fed by PostHog's own Python client library."""

from __future__ import annotations

import asyncio
import base64
import gzip

import orjson
import pytest
from posthog import Posthog

from gateway.hogql import translate
from gateway.keys import ANALYTICS_KEY


async def _count(client, project_id: int, where: str = "true") -> int:
    result = await client.server.app[ANALYTICS_KEY].run(
        translate(f"select count() from events where {where}", project_id=project_id)
    )
    return int(result.rows[0][0])


def _send(host: str, token: str, *, gzip_body: bool) -> None:
    posthog = Posthog(
        token, host=host, sync_mode=True, gzip=gzip_body, max_retries=0, disable_geoip=True
    )
    posthog.capture("signed_up", distinct_id="user-1", properties={"plan": "pro"})
    posthog.capture("$pageview", distinct_id="user-2", properties={"$browser": "Chrome"})
    posthog.shutdown()


@pytest.mark.parametrize("gzip_body", [False, True])
async def test_stock_posthog_client_events_arrive(client, jane, gzip_body):
    host = str(client.make_url("")).rstrip("/")
    await asyncio.to_thread(_send, host, jane.project.api_token, gzip_body=gzip_body)
    assert await _count(client, jane.project.id) == 2
    assert (
        await _count(client, jane.project.id, "event = 'signed_up' and properties.plan = 'pro'")
        == 1
    )


async def test_every_capture_path_and_shape(client, jane):
    token = jane.project.api_token
    event = {"event": "e", "distinct_id": "d", "properties": {"k": "v"}}
    for path, body in [
        ("/capture/", {**event, "api_key": token}),
        ("/e/", [{**event, "api_key": token}]),
        ("/i/v0/e/", {"event": "e", "properties": {"distinct_id": "d", "token": token}}),
        ("/batch", {"api_key": token, "batch": [event, event]}),
    ]:
        resp = await client.post(
            path, data=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert resp.status == 200, (path, await resp.text())
        assert await resp.json() == {"status": 1}
    form = {"data": base64.b64encode(orjson.dumps({**event, "api_key": token})).decode()}
    assert (await client.post("/e/", data=form)).status == 200
    gz = gzip.compress(orjson.dumps({**event, "api_key": token}))
    assert (await client.post("/e/?compression=gzip-js", data=gz)).status == 200
    assert await _count(client, jane.project.id) == 7


async def test_a_retried_request_lands_once(client, jane):
    """An SDK that never saw the answer resends the same events (same uuids): one row each, as
    PostHog keeps one per uuid; events without a uuid get fresh ones and all land."""
    token = jane.project.api_token
    same = [
        {"event": "$identify", "distinct_id": "d", "uuid": "0193a7a4-8c5e-7d1f-9c0e-1b2c3d4e5f60"},
        {"event": "click", "distinct_id": "d", "uuid": "0193A7A4-8C5E-7D1F-9C0E-1B2C3D4E5F61"},
    ]
    body = {"api_key": token, "batch": [*same, {"event": "no-uuid", "distinct_id": "d"}]}
    for _ in range(2):
        resp = await client.post("/batch", data=orjson.dumps(body))
        assert resp.status == 200 and await resp.json() == {"status": 1}
    # and twice within one batch
    twice = {"api_key": token, "batch": [same[0], same[0], {**same[1], "event": "other"}]}
    assert (await client.post("/batch", data=orjson.dumps(twice))).status == 200
    assert await _count(client, jane.project.id, "event = '$identify'") == 1
    assert await _count(client, jane.project.id, "event = 'click'") == 1
    assert await _count(client, jane.project.id, "event = 'other'") == 0
    assert await _count(client, jane.project.id, "event = 'no-uuid'") == 2


async def test_bad_requests(client, jane):
    token = jane.project.api_token
    event = {"event": "e", "distinct_id": "d"}
    resp = await client.post("/batch/", json={"batch": [event]})
    assert resp.status == 401
    resp = await client.post("/batch/", json={"api_key": "phc_nope", "batch": [event]})
    assert resp.status == 401
    resp = await client.post("/batch/", json={"api_key": token, "batch": [{"event": 3}]})
    assert resp.status == 400
    resp = await client.post("/batch/", json={"api_key": token, "batch": [event, {"x": 1}]})
    assert resp.status == 200, "invalid events in a batch are dropped, the rest kept"
    assert await _count(client, jane.project.id) == 1
    # Last: the server closes a connection whose body it could not decode.
    resp = await client.post("/batch/", data=b"{broken", headers={"Content-Encoding": "gzip"})
    assert resp.status == 400


async def test_gzip_bombs_are_refused(aiohttp_client, settings, clock):
    from gateway.app import create_app
    from gateway.keys import STORE_KEY
    from tests.conftest import Accounts

    client = await aiohttp_client(
        create_app(settings.with_changes(max_body_bytes=64 * 1024), clock=clock)
    )
    jane = await Accounts(client.server.app[STORE_KEY], clock).make()
    bomb = gzip.compress(
        b'{"api_key": "'
        + jane.project.api_token.encode()
        + b'", "x": "'
        + b"a" * 10_000_000
        + b'"}'
    )
    assert len(bomb) < 64 * 1024
    resp = await client.post("/batch/", data=bomb, headers={"Content-Encoding": "gzip"})
    assert resp.status == 413
