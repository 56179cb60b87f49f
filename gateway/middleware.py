"""The one place that turns exceptions into HTTP error responses; the body read deadline; large
response bodies written a slice at a time."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any, Final

from aiohttp import payload, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.streams import StreamReader
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from gateway.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestTimeout,
)
from gateway.keys import SETTINGS_KEY

_log = logging.getLogger(__name__)

# response bodies larger than this are written in pieces of this size (sliced_body_middleware)
BODY_SLICE: Final = 256 * 1024


def error_response(
    status: int, body: dict[str, object] | None, headers: dict[str, str] | None = None
) -> web.Response:
    """The HTTP response for an error: `body` as JSON, or no body when it is None. Only
    `error_middleware` calls it, with a GatewayError's `body()` and `headers`.
    """
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


class _RouteMethodNotAllowed(GatewayError):
    """The router's 405 (a method no route has): PostHog's body, naming the method. (A
    route's own `MethodNotAllowed` answers with an empty body, as PostHog does.)"""

    status = MethodNotAllowed.status
    error_type = MethodNotAllowed.error_type
    code = MethodNotAllowed.code


_OTHER_STATUS: dict[int, type[GatewayError]] = {}


def _status_error(status: int) -> type[GatewayError]:
    """An error class for an aiohttp HTTP error status the tree has no class for."""
    if status not in _OTHER_STATUS:
        _OTHER_STATUS[status] = type(
            f"HTTP{status}", (GatewayError,), {"status": status, "error_type": "invalid_request"}
        )
    return _OTHER_STATUS[status]


async def _allow(request: web.Request, fallback: str) -> str:
    """The methods of the first resource whose path matches, in the router's order. aiohttp's
    own `Allow` merges every matching resource (`notebooks/activity` also matches
    `notebooks/{short_id}`), but only the first one ever serves the path."""
    for resource in request.app.router.resources():
        match, allowed = await resource.resolve(request)
        if match is None and allowed:
            return ",".join(sorted(allowed))
    return fallback


def _from_http(err: web.HTTPException) -> GatewayError:
    """aiohttp's own HTTP errors (router 404/405, 413 from client_max_size) as the tree's."""
    if err.status == 404:
        return NotFound("Not found.")
    if isinstance(err, web.HTTPMethodNotAllowed):
        allow = {k: v for k, v in err.headers.items() if k.lower() == "allow"}
        return _RouteMethodNotAllowed(f'Method "{err.method}" not allowed.', headers=allow)
    if err.status == 413:
        return PayloadTooLarge("Request body is too large.")
    if err.status == 400:
        return InvalidRequest(err.reason)
    return _status_error(err.status)(err.reason)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render GatewayError, aiohttp HTTP errors ≥ 400 and unexpected exceptions as JSON, every
    body built by the error tree (gateway/errors.py).

    Unexpected exceptions are logged with their traceback and answered with a generic 500 whose
    detail never includes the exception text.
    """
    try:
        return await handler(request)
    except GatewayError as err:
        error = err
    except RequestPayloadError:
        # The body could not be read: a broken Content-Encoding (bad gzip), a truncated body.
        error = InvalidRequest("The request body could not be read (check its Content-Encoding).")
    except web.HTTPException as err:
        if err.status < 400:
            raise
        error = _from_http(err)
        if "Allow" in error.headers:
            error.headers["Allow"] = await _allow(request, error.headers["Allow"])
    except Exception:
        _log.exception("Unhandled error on %s %s", request.method, request.path)
        error = GatewayError("A server error occurred.")
    return error_response(error.status, error.body(), error.headers)


class _BodyTimedOut(TimeoutError):
    """Set on a request's body stream when its deadline passes. A TimeoutError so that aiohttp's
    own lingering read after the response treats it as "give up and close the connection"."""


def _expire(content: StreamReader, timeout: float) -> None:
    if not content.is_eof():
        content.set_exception(_BodyTimedOut(f"body not received within {timeout:g} s"))


@web.middleware
async def body_timeout_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every request `body_read_timeout_s` from its headers to the end of its body.

    aiohttp has no body timeout: a client sending a byte every few seconds holds a connection
    (and a handler) for as long as it likes. Here a timer starts when the headers are in; if the
    body has not fully arrived when it fires, the body stream is failed, so whatever reads it
    (`read()`, `post()`, `json_object`, a multipart reader), before or after authentication,
    gets RequestTimeout (408). The timer stops when the body ends or the handler returns.
    Headers are bounded by aiohttp's `keepalive_timeout`, which also covers a connection that
    has not finished sending a request (see `Settings.header_read_timeout_s`).
    """
    content = request.content
    if not request.body_exists or content.is_eof():
        return await handler(request)
    timeout = request.app[SETTINGS_KEY].body_read_timeout_s
    timer = asyncio.get_running_loop().call_later(timeout, _expire, content, timeout)
    content.on_eof(timer.cancel)
    try:
        return await handler(request)
    except _BodyTimedOut as err:
        msg = f"The request body did not arrive within {timeout:g} s (body_read_timeout_s)."
        raise RequestTimeout(msg) from err
    finally:
        timer.cancel()


class SlicedPayload(payload.Payload):
    """A body of one or more byte strings, written `BODY_SLICE` bytes at a time (memoryviews:
    no copy, and the parts are never joined). Not a BytesPayload: that one warns
    (ResourceWarning) about every body over 1 MiB, the very bodies this one writes without
    holding the loop."""

    _value: tuple[bytes, ...]

    def __init__(self, value: bytes | Sequence[bytes], *, content_type: str) -> None:
        parts = (value,) if isinstance(value, bytes) else tuple(value)
        super().__init__(parts, content_type=content_type)
        self._length = sum(len(part) for part in parts)
        self._size = self._length

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return b"".join(self._value).decode(encoding, errors)

    async def as_bytes(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return b"".join(self._value)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        left = self._length if content_length is None else content_length
        for part in self._value:
            view = memoryview(part)[:left]
            left -= len(view)
            for start in range(0, len(view), BODY_SLICE):
                await writer.write(view[start : start + BODY_SLICE])
            if not left:
                return


@web.middleware
async def sliced_body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Write a response body larger than `BODY_SLICE` a slice at a time, so that writing it
    never holds the event loop (the outermost middleware: error responses pass it too).

    aiohttp writes a `web.Response` body in one piece: on Python before 3.12.9 it first joins
    the headers and the whole body into a new bytes object (`http_writer._writelines`: for a
    40 MB execute result ~20 ms of copying and page faults on the loop of the 2-core host), then
    hands all of it to one `socket.send`. With a `SlicedPayload` each slice is written and
    followed by aiohttp's flow-control drain, so other callbacks (`/_health` among them) run
    between slices. The bytes on the wire are the same: same `Content-Length`, not chunked.
    Measured with `bench/health_under_attack.py` (docs/benchmarks.md, "Health under attack").
    """
    response = await handler(request)
    if (
        type(response) is web.Response
        and not response.prepared
        and not response.compression
        and not response.chunked
    ):
        body: Any = response.body
        if isinstance(body, bytes | bytearray) and len(body) > BODY_SLICE:
            response.body = SlicedPayload(bytes(body), content_type=response.content_type)
    return response
