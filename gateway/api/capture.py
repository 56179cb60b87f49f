"""PostHog-compatible capture: `/batch/`, `/capture/`, `/e/`, `/i/v0/e/`, and the minimal
`/flags/` and `/decide/` answers posthog-js asks for before it sends.

Bodies are decoded by `gateway.ingestion.payload` (every SDK shape: arrays, `{"batch"}`,
text/plain, gzip, base64 form `data`, sendBeacon). The project comes from its public token.
Invalid events in a batch are dropped and the rest kept (as PostHog does); none valid is 400.
Events, persons and groups are written in one transaction per request, off the event loop.

Browsers call these paths from other origins: preflight `OPTIONS` is answered and every answer
(errors too) carries `Access-Control-Allow-Origin` for an allowed origin (setting
`capture_cors_origins`, default any), echoing the origin with credentials as PostHog's capture.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Final

from aiohttp import web

from gateway.api._context import store
from gateway.api._render import json_response
from gateway.api._schemas import obj
from gateway.contract import Body, Operation, Param, Reply, operation
from gateway.errors import InvalidRequest, NotAuthenticated
from gateway.ingestion import CaptureRequest, decode_body, normalise_event, read_request
from gateway.keys import ANALYTICS_KEY, CLOCK_KEY, SETTINGS_KEY
from gateway.store.records import Project

routes = web.RouteTableDef()

CORS_PATHS: Final = frozenset(
    p + s for p in ("/batch", "/capture", "/e", "/i/v0/e", "/flags", "/decide") for s in ("", "/")
)
_PREFLIGHT_MAX_AGE: Final = "86400"
_EVENT: Final = obj(
    ("event",),
    event={"type": "string", "minLength": 1},
    distinct_id={"type": ["string", "integer"]},
    properties={"type": "object"},
    timestamp={"type": "string"},
    uuid={"type": "string"},
)
_CAPTURE_BODY: Final = Body(
    obj(
        ("api_key",),
        api_key={"type": "string", "minLength": 1, "description": "The project's token."},
        batch={"type": "array", "items": _EVENT},
        event={"type": "string", "minLength": 1},
        distinct_id={"type": ["string", "integer"]},
        properties={"type": "object"},
        sent_at={"type": "string"},
    ),
    required=True,
    checked=False,  # every SDK encoding (gzip, base64 forms, text/plain): decoded by ingestion
    # text/plain and form bodies (`data=<base64 or JSON>`) carry the same JSON: described in
    # words, since a schema cannot say "this object, base64-encoded in a form field"
    media=("application/json",),
)
# `?compression=gzip-js|base64` says how the body is encoded; a schema cannot tie a body to
# it, so it is described in words rather than offered as a free parameter.
_CAPTURE_PARAMS: tuple[Param, ...] = ()
_CAPTURED: Final = Reply(200, "Accepted.", obj(("status",), status={"type": "integer"}))
_FLAGS: Final = obj(
    ("flags", "featureFlags"),
    flags={"type": "object"},
    featureFlags={"type": "object"},
    featureFlagPayloads={"type": "object"},
)


def _capture_op(name: str) -> Operation:
    return Operation(
        name,
        replies=(_CAPTURED,),
        errors=(InvalidRequest, NotAuthenticated),
        params=_CAPTURE_PARAMS,
        body=_CAPTURE_BODY,
        description="The project token may also be in the events' `token`/`api_key`. "
        "`?compression=gzip-js` (gzip) or `base64`, and form bodies `data=<base64 or JSON>`, "
        "carry the same JSON as posthog-js sends it.",
    )


def _preflight_op(name: str) -> Operation:
    return Operation(name, replies=(Reply(200, "CORS headers for an allowed origin."),))


def _origin_allowed(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if not origin:
        return None
    allowed = request.app[SETTINGS_KEY].capture_cors_origins.strip()
    if allowed == "*" or origin in {o.strip() for o in allowed.split(",")}:
        return origin
    return None


async def cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: CORS headers on capture answers, errors included."""
    if request.path not in CORS_PATHS and not request.path.startswith("/array/"):
        return
    origin = _origin_allowed(request)
    if origin is None:
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers.add("Vary", "Origin")


async def _body(request: web.Request) -> CaptureRequest:
    raw = await request.read()
    # `Content-Encoding: gzip` bodies arrive decompressed (aiohttp, within client_max_size);
    # posthog-js marks gzip with `?compression=gzip-js` instead.
    payload = await asyncio.to_thread(
        decode_body,
        raw,
        content_type=request.content_type,
        compression=request.query.get("compression", "").lower(),
        limit=request.app[SETTINGS_KEY].max_body_bytes,
    )
    return read_request(payload, dict(request.query))


async def _project(request: web.Request, token: str | None) -> Project:
    if not isinstance(token, str) or not token:
        msg = "API key is missing: send `api_key` (your project's phc_ token)."
        raise NotAuthenticated(msg)
    project = await store(request).project_by_token(token)
    if project is None:
        msg = "Project API key invalid."
        raise NotAuthenticated(msg)
    return project


async def _capture(request: web.Request) -> web.Response:
    body = await _body(request)
    project = await _project(request, body.token)
    now = request.app[CLOCK_KEY].now()
    events = []
    reasons = []
    for raw in body.events:
        try:
            events.append(normalise_event(raw, now=now, sent_at=body.sent_at))
        except (ValueError, TypeError) as err:
            reasons.append(str(err))
    if not events:
        detail = f": {reasons[0]}" if reasons else ""
        msg = f"No valid event in the request{detail}."
        raise InvalidRequest(msg)
    await asyncio.to_thread(request.app[ANALYTICS_KEY].ingest, project.id, events, now=now)
    return json_response({"status": 1})


@routes.post("/batch", name="capture_batch")
@operation(_capture_op("capture_batch"))
async def capture_batch(request: web.Request) -> web.Response:
    """Capture a batch of events (PostHog SDKs), authenticated by the project's token."""
    return await _capture(request)


@routes.post("/capture", name="capture_event")
@operation(_capture_op("capture_event"))
async def capture_event(request: web.Request) -> web.Response:
    """Capture one event or a batch, authenticated by the project's token."""
    return await _capture(request)


@routes.post("/e", name="capture_e")
@operation(_capture_op("capture_e"))
async def capture_e(request: web.Request) -> web.Response:
    """Capture (posthog-js path: arrays, gzip-js, base64 form `data`, sendBeacon)."""
    return await _capture(request)


@routes.post("/i/v0/e", name="capture_i_v0_e")
@operation(_capture_op("capture_i_v0_e"))
async def capture_i_v0_e(request: web.Request) -> web.Response:
    """Capture (the newer ingestion path)."""
    return await _capture(request)


def _flags_answer(*, config: bool) -> dict[str, Any]:
    """No feature flags, nothing remote to load: posthog-js initialises and sends events."""
    answer: dict[str, Any] = {
        "flags": {},
        "featureFlags": {},
        "featureFlagPayloads": {},
        "errorsWhileComputingFlags": False,
        "quotaLimited": [],
        "requestId": str(uuid.uuid4()),
    }
    if config:
        answer |= {
            "supportedCompression": ["gzip", "gzip-js"],
            "config": {"enable_collect_everything": True},
            "autocapture_opt_out": False,
            "autocaptureExceptions": False,
            "capturePerformance": False,
            "elementsChainAsString": True,
            "heatmaps": False,
            "isAuthenticated": False,
            "sessionRecording": False,
            "siteApps": [],
            "surveys": False,
            "toolbarParams": {},
            "editorParams": {},
        }
    return answer


async def _flags(request: web.Request, *, config: bool) -> web.Response:
    body = await _body(request)
    await _project(request, body.token)
    return json_response(_flags_answer(config=config))


@routes.post("/flags", name="evaluate_flags")
@operation(
    Operation(
        "evaluate_flags",
        replies=(Reply(200, "No flags.", _FLAGS),),
        errors=(InvalidRequest, NotAuthenticated),
        params=(*_CAPTURE_PARAMS, Param("config", {"type": "string"})),
        body=_CAPTURE_BODY,
    )
)
async def evaluate_flags(request: web.Request) -> web.Response:
    """Feature flags for a distinct id: none (posthog-js; `?config=true` adds its config)."""
    return await _flags(request, config=request.query.get("config") == "true")


@routes.post("/decide", name="decide")
@operation(
    Operation(
        "decide",
        replies=(Reply(200, "No flags.", _FLAGS),),
        errors=(InvalidRequest, NotAuthenticated),
        params=(*_CAPTURE_PARAMS,),
        body=_CAPTURE_BODY,
    )
)
async def decide(request: web.Request) -> web.Response:
    """Legacy flags and config for older posthog-js: no flags, nothing remote."""
    return await _flags(request, config=True)


def _remote_config(token: str) -> dict[str, Any]:
    return {"token": token, "hasFeatureFlags": False, **_flags_answer(config=True)}


@routes.get("/array/{token}/config", name="remote_config")
@operation(
    Operation(
        "remote_config",
        replies=(Reply(200, "The remote config.", {"type": "object"}),),
        errors=(NotAuthenticated,),
    )
)
async def remote_config(request: web.Request) -> web.Response:
    """posthog-js's remote config for a project token: gzip accepted, nothing else enabled."""
    token = request.match_info["token"]
    await _project(request, token)
    return json_response(_remote_config(token))


@routes.get("/array/{token}/config.js", name="remote_config_js")
@operation(
    Operation(
        "remote_config_js",
        replies=(
            Reply(
                200,
                "The remote config as a script.",
                {"type": "string"},
                media="application/javascript",
            ),
        ),
        errors=(NotAuthenticated,),
    )
)
async def remote_config_js(request: web.Request) -> web.Response:
    """The same remote config as a script (`window._POSTHOG_REMOTE_CONFIG[token]`)."""
    token = request.match_info["token"]
    await _project(request, token)
    config = json.dumps(_remote_config(token))
    script = (
        "window._POSTHOG_REMOTE_CONFIG = window._POSTHOG_REMOTE_CONFIG || {};"
        f" window._POSTHOG_REMOTE_CONFIG[{json.dumps(token)}] = {{config: {config}, siteApps: []}};"
    )
    return web.Response(text=script, content_type="application/javascript")


async def _preflight(request: web.Request) -> web.Response:
    response = web.Response(status=200)
    if _origin_allowed(request) is not None:
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        wanted = request.headers.get("Access-Control-Request-Headers")
        if wanted:
            response.headers["Access-Control-Allow-Headers"] = wanted[:1024]
        response.headers["Access-Control-Max-Age"] = _PREFLIGHT_MAX_AGE
    return response


@routes.options("/batch", name="preflight_batch")
@operation(_preflight_op("preflight_batch"))
async def preflight_batch(request: web.Request) -> web.Response:
    """CORS preflight for capture."""
    return await _preflight(request)


@routes.options("/capture", name="preflight_capture")
@operation(_preflight_op("preflight_capture"))
async def preflight_capture(request: web.Request) -> web.Response:
    """CORS preflight for capture."""
    return await _preflight(request)


@routes.options("/e", name="preflight_e")
@operation(_preflight_op("preflight_e"))
async def preflight_e(request: web.Request) -> web.Response:
    """CORS preflight for capture (posthog-js)."""
    return await _preflight(request)


@routes.options("/i/v0/e", name="preflight_i_v0_e")
@operation(_preflight_op("preflight_i_v0_e"))
async def preflight_i_v0_e(request: web.Request) -> web.Response:
    """CORS preflight for capture."""
    return await _preflight(request)


@routes.options("/flags", name="preflight_flags")
@operation(_preflight_op("preflight_flags"))
async def preflight_flags(request: web.Request) -> web.Response:
    """CORS preflight for flags."""
    return await _preflight(request)


@routes.options("/decide", name="preflight_decide")
@operation(_preflight_op("preflight_decide"))
async def preflight_decide(request: web.Request) -> web.Response:
    """CORS preflight for decide."""
    return await _preflight(request)
