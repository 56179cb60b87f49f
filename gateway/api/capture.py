"""PostHog-compatible event capture: `/batch/`, `/capture/`, `/e/`, `/i/v0/e/`.

What PostHog's SDKs send: `{"api_key": "phc_…", "batch": [events]}` or one event (with
`api_key` or `token`), JSON, optionally gzip (`Content-Encoding: gzip` or `?compression=gzip`),
or a form field `data` with base64 JSON (posthog-js). The project comes from its public capture
token. Invalid events in a batch are dropped (as PostHog does); a request with none valid is 400.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import zlib
from typing import Any

import orjson
from aiohttp import web

from gateway.api._context import store
from gateway.api._render import json_response
from gateway.errors import InvalidRequest, NotAuthenticated, PayloadTooLarge
from gateway.hogql.load import parse_event
from gateway.keys import ANALYTICS_KEY, CLOCK_KEY, SETTINGS_KEY

routes = web.RouteTableDef()


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Decompress with a ceiling, so a small gzip bomb cannot take the gateway's memory."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as err:
        msg = "The body is not valid gzip."
        raise InvalidRequest(msg) from err
    if len(out) > limit:
        msg = f"The decompressed body is larger than the {limit} byte limit."
        raise PayloadTooLarge(msg)
    return out


async def _payload(request: web.Request) -> Any:
    limit = request.app[SETTINGS_KEY].max_body_bytes
    raw = await request.read()
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()
        data = form.get("data")
        if not isinstance(data, str):
            msg = "The form needs a `data` field."
            raise InvalidRequest(msg, attr="data")
        try:
            raw = base64.b64decode(data + "=" * (-len(data) % 4))
        except (binascii.Error, ValueError) as err:
            msg = "`data` is not base64."
            raise InvalidRequest(msg, attr="data") from err
    # `Content-Encoding: gzip` bodies arrive decompressed (aiohttp, within client_max_size);
    # posthog-js marks gzip with a query parameter instead.
    if request.query.get("compression", "").startswith("gzip"):
        raw = _gunzip(raw, limit)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        msg = f"JSON parse error - {err}"
        raise InvalidRequest(msg) from err


def _events(payload: Any) -> tuple[str | None, list[Any]]:
    if isinstance(payload, list):
        token = next(
            (e.get("api_key") or e.get("token") for e in payload if isinstance(e, dict)), None
        )
        return token, payload
    if not isinstance(payload, dict):
        return None, []
    token = payload.get("api_key") or payload.get("token")
    if isinstance(payload.get("batch"), list):
        return token, payload["batch"]
    properties = payload.get("properties")
    if token is None and isinstance(properties, dict):
        token = properties.get("token")
    return token, [payload]


def _normalise(event: Any, now: dt.datetime) -> Any:
    """SDK events: `distinct_id` may sit in properties; a missing timestamp means now."""
    if not isinstance(event, dict):
        return event
    event = dict(event)
    properties = event.get("properties")
    if "distinct_id" not in event and isinstance(properties, dict):
        event["distinct_id"] = properties.get("distinct_id")
    if isinstance(event.get("distinct_id"), int | float):
        event["distinct_id"] = str(event["distinct_id"])
    event.setdefault("timestamp", now.isoformat())
    return event


async def _capture(request: web.Request) -> web.Response:
    token, raw_events = _events(await _payload(request))
    if not isinstance(token, str) or not token:
        msg = "API key is missing: send `api_key` (your project's phc_ token)."
        raise NotAuthenticated(msg)
    project = await store(request).project_by_token(token)
    if project is None:
        msg = "Project API key invalid."
        raise NotAuthenticated(msg)
    now = request.app[CLOCK_KEY].now()
    rows = []
    for raw in raw_events:
        try:
            rows.append(parse_event(_normalise(raw, now)))
        except (ValueError, TypeError):
            continue
    if not rows:
        msg = "No valid event in the request."
        raise InvalidRequest(msg)
    await asyncio.to_thread(request.app[ANALYTICS_KEY].insert_events, project.id, rows)
    return json_response({"status": 1})


@routes.post("/batch", name="capture_batch")
async def capture_batch(request: web.Request) -> web.Response:
    """Capture a batch of events (PostHog SDKs), authenticated by the project's token."""
    return await _capture(request)


@routes.post("/capture", name="capture_event")
async def capture_event(request: web.Request) -> web.Response:
    """Capture one event or a batch, authenticated by the project's token."""
    return await _capture(request)


@routes.post("/e", name="capture_e")
async def capture_e(request: web.Request) -> web.Response:
    """Capture (posthog-js path)."""
    return await _capture(request)


@routes.post("/i/v0/e", name="capture_i_v0_e")
async def capture_i_v0_e(request: web.Request) -> web.Response:
    """Capture (the newer ingestion path)."""
    return await _capture(request)
