"""L1: a client that trickles its request body (or headers) must not hold a connection forever.

Each test opens a raw socket to a real server, sends a request whose body (or header block)
never completes, and expects the server to give up within its timeout plus a margin: a 408 in
PostHog's error shape for bodies, a closed connection for headers.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiohttp import web

from gateway.app import create_app

TIMEOUT = 1.0
MARGIN = 3.0


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    status_line = await reader.readline()
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in {b"\r\n", b""}:
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


@pytest.fixture
def settings(settings):
    return settings.with_changes(body_read_timeout_s=TIMEOUT)


@pytest.fixture
def server(client):
    return client.server


@pytest.mark.parametrize(
    "head",
    [
        # anonymous capture: no authentication needed to hold a connection
        b"POST /capture/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n",
        # the same with a chunked body
        b"POST /batch/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n[\r\n",
    ],
    ids=["capture-content-length", "batch-chunked"],
)
async def test_a_trickled_body_gets_408_within_the_timeout(server, head):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    began = time.monotonic()
    writer.write(head)
    await writer.drain()

    async def trickle() -> None:
        while True:
            await asyncio.sleep(0.3)
            writer.write(b"1" if b"chunked" not in head else b"")
            await writer.drain()

    feeder = asyncio.create_task(trickle())
    try:
        status, _, body = await asyncio.wait_for(_read_response(reader), TIMEOUT + MARGIN)
    finally:
        feeder.cancel()
        writer.close()
    elapsed = time.monotonic() - began
    assert status == 408, body
    assert elapsed < TIMEOUT + MARGIN
    error = json.loads(body)
    assert error["type"] == "invalid_request"
    assert error["code"] == "request_timeout"
    assert "body_read_timeout_s" in error["detail"]
    assert error["attr"] is None


@pytest.mark.parametrize(
    "path",
    ["notebooks/", "scratchpad/kernel/execute", "{short_id}/collab/save"],
    ids=["create-notebook", "execute", "collab-save"],
)
async def test_an_authenticated_trickled_body_gets_408(server, client, jane, path):
    from tests.conftest import create_notebook

    notebook = await create_notebook(client, jane, title="t")
    path = path.format(short_id=notebook["short_id"])
    url = jane.url() + ("" if path == "notebooks/" else path)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    began = time.monotonic()
    writer.write(
        f"POST {url} HTTP/1.1\r\nHost: x\r\nAuthorization: {jane.headers['Authorization']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n{".encode()
    )
    await writer.drain()
    status, _, body = await asyncio.wait_for(_read_response(reader), TIMEOUT + MARGIN)
    writer.close()
    assert status == 408, body
    assert time.monotonic() - began < TIMEOUT + MARGIN
    assert json.loads(body)["code"] == "request_timeout"


async def test_the_connection_is_closed_after_a_408(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /capture/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[")
    await writer.drain()
    status, _, _ = await asyncio.wait_for(_read_response(reader), TIMEOUT + MARGIN)
    assert status == 408
    # nothing more is served on this connection: the server hangs up (it never reads the
    # rest of a body it gave up on as the next request)
    rest = await asyncio.wait_for(reader.read(), 15)
    assert rest == b""
    writer.close()


async def test_a_body_sent_in_time_is_unaffected(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    body = b'{"api_key": "phc_nope", "event": "x"}'
    writer.write(
        b"POST /capture/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    await writer.drain()
    await asyncio.sleep(TIMEOUT / 2)
    writer.write(body)
    await writer.drain()
    status, _, _ = await asyncio.wait_for(_read_response(reader), TIMEOUT + MARGIN)
    await asyncio.sleep(TIMEOUT)  # the stopped timer must not fire into a finished request
    writer.close()
    assert status != 408


async def test_trickled_headers_are_cut_off(settings):
    """aiohttp's keep-alive timeout also bounds a header block that never completes."""
    app = create_app(settings.with_changes(header_read_timeout_s=TIMEOUT))
    runner = web.AppRunner(app, keepalive_timeout=app_settings_timeout(app))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        began = time.monotonic()
        writer.write(b"GET /_health HTTP/1.1\r\n")
        await writer.drain()
        closed = False
        while time.monotonic() - began < TIMEOUT + MARGIN:
            try:
                data = await asyncio.wait_for(reader.read(1), 0.3)
            except TimeoutError:
                try:
                    writer.write(b"X-A: b\r\n")
                    await writer.drain()
                except ConnectionError:
                    closed = True
                    break
                continue
            assert data == b"", data
            closed = True
            break
        writer.close()
        assert closed, "a connection trickling headers stayed open"
        assert time.monotonic() - began < TIMEOUT + MARGIN
    finally:
        await runner.cleanup()


def app_settings_timeout(app: web.Application) -> float:
    from gateway.keys import SETTINGS_KEY

    return app[SETTINGS_KEY].header_read_timeout_s
