"""Every error the gateway produces has one shape: PostHog's {type, code, detail, attr}.

The exceptions, each tested here, are PostHog's own: `{"error": ...}` on sharing password
rules and share logins, and an empty body on the refused hard delete.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway.app import create_app
from gateway.auth import requires


def assert_error_shape(body: dict[str, Any], *, status_type: str, code: str) -> None:
    assert set(body) == {"type", "code", "detail", "attr"}
    assert body["type"] == status_type
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]


async def test_domain_error(client, jane):
    resp = await client.get(jane.url("missing"), headers=jane.headers)
    assert resp.status == 404
    assert_error_shape(await resp.json(), status_type="invalid_request", code="not_found")


async def test_router_404_and_405(client, jane):
    resp = await client.get("/no/such/route")
    assert resp.status == 404
    assert_error_shape(await resp.json(), status_type="invalid_request", code="not_found")
    resp = await client.post("/_health")
    assert resp.status == 405
    assert_error_shape(await resp.json(), status_type="invalid_request", code="method_not_allowed")
    assert "GET" in resp.headers["Allow"]
    assert (await resp.json())["detail"] == 'Method "POST" not allowed.'


async def test_validation_error_names_the_field(client, jane):
    resp = await client.post(jane.url(), json={"title": 1}, headers=jane.headers)
    assert resp.status == 400
    body = await resp.json()
    assert_error_shape(body, status_type="validation_error", code="invalid_input")
    assert body["attr"] == "title"


async def test_malformed_and_non_object_json(client, jane):
    for raw in (
        b"{nope",
        b"[1, 2]",
        b"\xff\xfe",
        b'"str"',
        b"1e999999",
        b'{"content": NaN}',
        b'{"content": [Infinity]}',
        b'{"title": "\xed\xa0\x80"}',
    ):
        resp = await client.post(jane.url(), data=raw, headers=jane.headers)
        assert resp.status == 400, raw
        assert_error_shape(await resp.json(), status_type="validation_error", code="invalid_input")


async def test_oversized_body_is_413(aiohttp_client, settings, clock, accounts):
    small = create_app(settings.with_changes(max_body_bytes=2048), clock=clock)
    client = await aiohttp_client(small)
    from gateway.keys import STORE_KEY
    from tests.conftest import Accounts

    jane = await Accounts(client.server.app[STORE_KEY], clock).make()
    resp = await client.post(
        jane.url(), data=b'{"title": "' + b"x" * 4096 + b'"}', headers=jane.headers
    )
    assert resp.status == 413
    assert_error_shape(await resp.json(), status_type="invalid_request", code="payload_too_large")


async def test_unexpected_exception_is_a_generic_500(aiohttp_client, settings, clock, caplog):
    app = create_app(settings, clock=clock)

    async def explode(request: web.Request) -> web.Response:
        msg = "secret internals"
        raise RuntimeError(msg)

    app.router.add_get("/boom", explode)
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR):
        resp = await client.get("/boom")
    assert resp.status == 500
    body = await resp.json()
    assert_error_shape(body, status_type="server_error", code="error")
    assert "secret" not in body["detail"]
    assert "secret internals" in caplog.text


async def test_auth_errors(client):
    resp = await client.get("/api/projects/1/notebooks/")
    assert_error_shape(
        await resp.json(), status_type="authentication_error", code="not_authenticated"
    )


async def test_requires_keeps_the_scope_for_the_schema():
    @requires("notebook:read")
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    assert getattr(handler, "required_scope", None) == "notebook:read"


async def test_unreadable_body_encoding_is_400(client, jane):
    resp = await client.post(
        jane.url(), data=b"not gzip at all", headers={**jane.headers, "Content-Encoding": "gzip"}
    )
    assert resp.status == 400
    assert_error_shape(await resp.json(), status_type="validation_error", code="invalid_input")
