"""Large response bodies leave in slices (`sliced_body_middleware`), byte for byte the same as
one write: `/_health` answers between the slices of a multi-MB execute result (issue #10)."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

import orjson
import pytest
from aiohttp import web

from gateway.api._render import long_json_response
from gateway.api.dataframe import _page_json, json_value
from gateway.middleware import BODY_SLICE, SlicedPayload, sliced_body_middleware

BIG = os.urandom(5 * BODY_SLICE + 123)  # over aiohttp's 1 MiB "large body" warning too


class _Recorder:
    """A stream writer that keeps what it is given, one entry per write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    async def write(self, chunk: bytes | memoryview) -> None:
        self.writes.append(bytes(chunk))
        await asyncio.sleep(0)


def _app() -> web.Application:
    async def big(_: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="application/json")

    async def small(_: web.Request) -> web.Response:
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(BIG)
        await response.write_eof()
        return response

    app = web.Application(middlewares=[sliced_body_middleware])
    app.router.add_get("/big", big)
    app.router.add_get("/small", small)
    app.router.add_get("/streamed", streamed)
    return app


async def test_a_large_body_arrives_whole_with_its_length(aiohttp_client):
    client = await aiohttp_client(_app())
    resp = await client.get("/big")
    assert resp.status == 200
    assert resp.headers["Content-Length"] == str(len(BIG))
    assert "Transfer-Encoding" not in resp.headers
    assert resp.headers["Content-Type"] == "application/json"
    assert await resp.read() == BIG
    head = await client.head("/big")
    assert head.status == 200
    assert await head.read() == b""
    # keep-alive still works after a sliced body
    small = await client.get("/small")
    assert await small.json() == {"ok": True}
    streamed = await client.get("/streamed")
    assert await streamed.read() == BIG


async def test_the_middleware_slices_only_large_plain_bodies():
    request = web.Request.__new__(web.Request)  # never read by the middleware

    async def big(_: web.Request) -> web.StreamResponse:
        return web.Response(body=BIG, content_type="application/json")

    async def small(_: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * BODY_SLICE)

    sliced = await sliced_body_middleware(request, big)
    assert isinstance(sliced, web.Response)
    assert isinstance(sliced.body, SlicedPayload)
    assert sliced.content_type == "application/json"
    kept = await sliced_body_middleware(request, small)
    assert isinstance(kept, web.Response)
    assert kept.body == b"x" * BODY_SLICE


async def test_a_sliced_payload_writes_one_slice_at_a_time():
    writer = _Recorder()
    await SlicedPayload(BIG, content_type="x/y").write(writer)  # type: ignore[arg-type]
    assert [len(w) for w in writer.writes] == [BODY_SLICE] * 5 + [123]
    assert b"".join(writer.writes) == BIG
    writer = _Recorder()
    await SlicedPayload(BIG, content_type="x/y").write_with_length(writer, BODY_SLICE + 5)  # type: ignore[arg-type]
    assert b"".join(writer.writes) == BIG[: BODY_SLICE + 5]


async def test_a_long_json_body_has_orjson_s_own_bytes():
    long = 'é ✓ 😀 "q" \\ \n\t\x01' * 60_000  # over _LONG_STRING, every kind of escape
    body = {
        "status": "ok",
        "stdout": long,
        "result": {"text/plain": long[::-1], "n": 1},
        "media": [{"mime_type": "image/png", "data": "A" * 700_000}, None, 2.5],
        "short": "x",
        "looks_like_a_placeholder": "0123:0",
    }
    response = await long_json_response(body)
    assert isinstance(response.body, SlicedPayload)
    assert response.content_type == "application/json"
    writer = _Recorder()
    await response.body.write(writer)  # type: ignore[arg-type]
    assert b"".join(writer.writes) == orjson.dumps(body)
    assert max(len(w) for w in writer.writes) <= BODY_SLICE
    small = await long_json_response({"a": [1, "b"]})
    assert await small.body.as_bytes() == orjson.dumps({"a": [1, "b"]})  # type: ignore[union-attr]


@pytest.mark.parametrize("count", [0, 1, 50, 51, 500])
async def test_a_data_frame_page_has_orjson_s_own_bytes(count):
    when = datetime(2026, 12, 2, 5, 40, tzinfo=UTC)
    rows = [
        {
            "s": "é" * 300 + str(n),
            "f": n / 3,
            "n": None,
            "t": when,
            "l": [1, n],
            "nan": float("nan"),
        }
        for n in range(count)
    ]
    columns = ["s", "f", "n", "t", "l", "nan"]
    expected = orjson.dumps(
        {"columns": columns, "rows": rows, "row_count": 20_000},
        default=json_value,
        option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME,
    )
    assert b"".join(await _page_json(columns, rows, 20_000)) == expected
