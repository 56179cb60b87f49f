"""The one place that turns exceptions into HTTP error responses."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from gateway.errors import GatewayError, RequestTimeout
from gateway.keys import SETTINGS_KEY

_log = logging.getLogger(__name__)

# aiohttp's own HTTP errors (router 404/405, 413 from client_max_size) keep their status and get
# our body shape; these map their status to (type, code).
_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("validation_error", "invalid_input"),
    404: ("invalid_request", "not_found"),
    405: ("invalid_request", "method_not_allowed"),
    413: ("invalid_request", "payload_too_large"),
}


def error_response(
    status: int, body: dict[str, object] | None, headers: dict[str, str] | None = None
) -> web.Response:
    if body is None:
        return web.Response(status=status, headers=headers)
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render GatewayError, aiohttp HTTP errors ≥ 400 and unexpected exceptions as JSON.

    Unexpected exceptions are logged with their traceback and answered with a generic 500 whose
    detail never includes the exception text.
    """
    try:
        return await handler(request)
    except GatewayError as err:
        return error_response(err.status, err.body(), err.headers)
    except RequestPayloadError:
        # The body could not be read: a broken Content-Encoding (bad gzip), a truncated body.
        return error_response(
            400,
            {
                "type": "validation_error",
                "code": "invalid_input",
                "detail": "The request body could not be read (check its Content-Encoding).",
                "attr": None,
            },
        )
    except web.HTTPException as err:
        if err.status < 400:
            raise
        error_type, code = _HTTP_CODES.get(err.status, ("invalid_request", "error"))
        detail = _http_detail(err)
        headers = {k: v for k, v in err.headers.items() if k.lower() == "allow"}
        return error_response(
            err.status,
            {"type": error_type, "code": code, "detail": detail, "attr": None},
            headers,
        )
    except Exception:
        _log.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(
            500,
            {
                "type": "server_error",
                "code": "error",
                "detail": "A server error occurred.",
                "attr": None,
            },
        )


def _http_detail(err: web.HTTPException) -> str:
    if err.status == 404:
        return "Not found."
    if isinstance(err, web.HTTPMethodNotAllowed):
        return f'Method "{err.method}" not allowed.'
    if err.status == 413:
        return "Request body is too large."
    return err.reason


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
