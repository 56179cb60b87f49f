"""Server-sent events: response headers and frame encoding."""

from __future__ import annotations

from typing import Any, Final

import orjson
from aiohttp import web

HEADERS: Final = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}
KEEPALIVE: Final = b": keepalive\n\n"


def frame(event: str, data: Any, *, event_id: str | None = None) -> bytes:
    """One SSE frame; `data` is JSON (a single line, so no escaping of newlines is needed)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: ".encode() + orjson.dumps(data) + b"\n\n"


async def open_stream(request: web.Request) -> web.StreamResponse:
    """Send the headers of a 200 `text/event-stream` response (no caching, no proxy buffering) and
    return it for `frame`s to be written; used by the collab and kernel stream handlers.
    """
    response = web.StreamResponse(status=200, headers=HEADERS)
    await response.prepare(request)
    return response
