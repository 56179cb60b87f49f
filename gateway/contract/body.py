"""Reading a JSON request body: bounded, strict, and every failure a 400/413."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from gateway.errors import InvalidRequest, PayloadTooLarge


async def json_object(request: web.Request, *, allow_empty: bool = True) -> dict[str, Any]:
    """The body as a JSON object. Empty body → {} when allowed; anything else → 400/413."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as err:
        msg = f"Request body is larger than the {request.client_max_size} byte limit."
        raise PayloadTooLarge(msg) from err
    if not raw.strip():
        if allow_empty:
            return {}
        msg_0 = "A JSON body is required."
        raise InvalidRequest(msg_0)
    try:
        # orjson is strict: no NaN/Infinity, valid UTF-8 only, bounded depth. What is stored
        # is therefore always valid JSON, which GET passes through without re-encoding.
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        msg = f"JSON parse error - {err}"
        raise InvalidRequest(msg, attr=None) from err
    if not isinstance(body, dict):
        msg = f"Expected a JSON object but got {type(body).__name__}."
        raise InvalidRequest(msg)
    return body
