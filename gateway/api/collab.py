"""ProseMirror collab authority: save steps (compare-and-swap), stream the log, presence."""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

from aiohttp import web

from gateway.api._context import load_notebook, now, principal, store
from gateway.api._render import json_response, notebook_json
from gateway.api._request import opt_int, opt_json_size, opt_str, req_str
from gateway.api._schemas import NOTEBOOK, STRING_OR_NULL, obj, sse_events
from gateway.api.notebooks import PREFIX
from gateway.auth import requires
from gateway.collab import Presence, Subscription
from gateway.contract import Body, Operation, Param, Reply, declared_body, operation
from gateway.errors import CollabConflict, CollabStale, InvalidRequest, ServiceUnavailable
from gateway.keys import COLLAB_HUB_KEY, SETTINGS_KEY
from gateway.sse import KEEPALIVE, frame, open_stream
from gateway.store import UNSET
from gateway.store.records import (
    CollabAccepted,
    CollabEntry,
    CollabSave,
    user_name,
)
from gateway.store.records import (
    CollabConflict as Conflicted,
)

routes = web.RouteTableDef()

# `N` alone means `N-0`, as a Redis stream id does (PostHog hands the header to XREAD).
_EVENT_ID: Final = re.compile(r"^(\d{1,18})(?:-(\d{1,18}))?$")
_BACKLOG_PAGE: Final = 500
_MAX_CLIENT_ID: Final = 200
_CLIENT_ID: Final = {"type": "string", "maxLength": _MAX_CLIENT_ID}
_VERSION: Final = {"type": "integer", "minimum": 0}
_SAVE: Final = Operation(
    "notebooks_collab_save_create",
    replies=(
        Reply(200, "Accepted: the notebook at its new version.", NOTEBOOK),
        Reply(
            409,
            "Behind: the steps to rebase over.",
            obj(
                ("code", "steps", "client_ids", "version"),
                code={"type": "string", "enum": ["conflict"]},
                steps={"type": "array"},
                client_ids={"type": "array", "items": {"type": ["string", "null"]}},
                version={"type": "integer"},
            ),
        ),
        Reply(
            410,
            "The missed steps are gone: reload the notebook.",
            obj(("code",), code={"type": "string", "enum": ["conflict_stale"]}),
        ),
    ),
    body=Body(
        obj(
            ("client_id", "version", "steps", "content"),
            client_id=_CLIENT_ID,
            version=_VERSION,
            steps={"type": "array"},
            content={"description": "The document after the steps (ProseMirror JSON)."},
            text_content=STRING_OR_NULL,
            title={"type": "string", "maxLength": 256},
            cursor_head={"type": ["integer", "null"]},
        ),
        required=True,
    ),
)
_PRESENCE: Final = Operation(
    "notebooks_collab_presence_create",
    replies=(Reply(204, "Broadcast."),),
    body=Body(
        obj(("client_id", "version"), client_id=_CLIENT_ID, version=_VERSION, cursor={}),
        required=True,
    ),
)
_STREAM: Final = Operation(
    "notebooks_collab_stream_retrieve",
    replies=(
        Reply(
            200,
            "Server-sent events: `step` and `update` (with ids `N-0`, `N-1`), `presence`, "
            "`error`, and `: keepalive` comments.",
            sse_events("step", "update", "presence", "error"),
            media="text/event-stream",
        ),
    ),
    errors=(ServiceUnavailable,),
    params=(
        Param(
            "Last-Event-ID",
            {"type": "string", "pattern": "^[0-9]{1,18}(-[0-9]{1,18})?$"},
            where="header",
            description="Resume after this entry (`0-0`: everything kept; `N` is `N-0`).",
        ),
    ),
)


def _required(body: dict[str, Any], attr: str) -> Any:
    if attr not in body:
        msg = f"{attr} is required."
        raise InvalidRequest(msg, attr=attr)
    return body[attr]


def _version(body: dict[str, Any]) -> int:
    _required(body, "version")
    version = opt_int(body, "version", minimum=0)
    assert isinstance(version, int)
    return version


def _parse_save(body: dict[str, Any]) -> CollabSave:
    client_id = req_str(body, "client_id", max_length=_MAX_CLIENT_ID)
    version = _version(body)
    steps = _required(body, "steps")
    if not isinstance(steps, list):
        msg = "steps must be a list."
        raise InvalidRequest(msg, attr="steps")
    content = opt_json_size(_required(body, "content"), "content")
    opt_json_size(steps, "steps")
    text_content = opt_str(body, "text_content", nullable=True)
    cursor_head = body.get("cursor_head")
    if cursor_head is not None and (
        isinstance(cursor_head, bool) or not isinstance(cursor_head, int)
    ):
        msg = "cursor_head must be an integer or null."
        raise InvalidRequest(msg, attr="cursor_head")
    title = opt_str(body, "title", max_length=256)
    return CollabSave(
        client_id=client_id,
        version=version,
        steps=steps,
        content=content,
        text_content=text_content if isinstance(text_content, str) else "",
        title=UNSET if title is UNSET or title is None else title,
        cursor_head=cursor_head,
    )


def _last_event_id(request: web.Request) -> tuple[int, int] | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None:
        return None
    match = _EVENT_ID.match(raw.strip())
    if match is None:
        msg = "Last-Event-ID must look like '<version>-<n>', e.g. '0-0'."
        raise InvalidRequest(msg, attr="Last-Event-ID")
    return int(match.group(1)), int(match.group(2) or 0)


@routes.post(PREFIX + "/{short_id}/collab/save", name="save_collab")
@requires("notebook:write")
@operation(_SAVE)
async def save_collab(request: web.Request) -> web.Response:
    """Append steps at `version`: 200 notebook, 409 missed steps, 410 reload needed."""
    save = _parse_save(declared_body(request))
    caller = principal(request)
    outcome = await store(request).collab_save(
        caller.project.id,
        request.match_info["short_id"],
        save,
        user=caller.user,
        now=now(request),
    )
    if isinstance(outcome, CollabAccepted):
        return json_response(notebook_json(outcome.notebook))
    if isinstance(outcome, Conflicted):
        msg = "Someone else edited the Notebook"
        raise CollabConflict(
            msg,
            extra={
                "steps": outcome.steps,
                "client_ids": outcome.client_ids,
                "version": outcome.version,
            },
        )
    msg = "The missed changes are no longer kept; reload the notebook."
    raise CollabStale(msg)


@routes.post(PREFIX + "/{short_id}/collab/presence", name="post_collab_presence")
@requires("notebook:write")
@operation(_PRESENCE)
async def post_collab_presence(request: web.Request) -> web.Response:
    """Broadcast a caret position to the notebook's streams; 204."""
    body = declared_body(request)
    client_id = req_str(body, "client_id", max_length=_MAX_CLIENT_ID)
    version = _version(body)
    cursor = opt_json_size(body.get("cursor"), "cursor")
    notebook = await load_notebook(request)
    user = principal(request).user
    request.app[COLLAB_HUB_KEY].publish_presence(
        Presence(
            notebook_id=notebook.id,
            data={
                "type": "presence",
                "client_id": client_id,
                "user_id": user.id,
                "user_name": user_name(user),
                "version": version,
                "cursor": cursor,
            },
        )
    )
    return web.Response(status=204)


def _entry_frame(entry: CollabEntry) -> bytes:
    return frame(entry.event, entry.data, event_id=entry.id)


async def _send_backlog(
    request: web.Request, response: web.StreamResponse, notebook_id: str, last: tuple[int, int]
) -> tuple[int, int]:
    """Write every stored entry after `last`, a page at a time; returns the last id sent."""
    while True:
        backlog = await store(request).collab_entries(notebook_id, after=last, limit=_BACKLOG_PAGE)
        for entry in backlog:
            await response.write(_entry_frame(entry))
            last = (entry.version, entry.sub)
        if len(backlog) < _BACKLOG_PAGE:
            return last


async def _next_items(sub: Subscription, wait_s: float) -> list[CollabEntry | Presence]:
    """The subscription's next batch, or [] when nothing came within `wait_s` (idle)."""
    try:
        async with asyncio.timeout(wait_s):
            return await sub.next_batch()
    except TimeoutError:
        return []


async def _relay(
    response: web.StreamResponse,
    sub: Subscription,
    last: tuple[int, int],
    *,
    keepalive_s: float,
    deadline: float,
) -> None:
    """Write what the hub publishes (entries after `last`, presence) and keep-alives when
    idle, until the subscription closes or overflows or the loop clock reaches `deadline`."""
    loop = asyncio.get_running_loop()
    while not sub.closed:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        items = await _next_items(sub, min(keepalive_s, remaining))
        if sub.overflowed:
            await response.write(frame("error", {"error": "stream fell behind; resume"}))
            return
        if not items:
            if not sub.closed and loop.time() < deadline:
                await response.write(KEEPALIVE)
            continue
        for item in items:
            if isinstance(item, Presence):
                await response.write(frame("presence", item.data))
            elif (item.version, item.sub) > last:
                await response.write(_entry_frame(item))
                last = (item.version, item.sub)


@routes.get(PREFIX + "/{short_id}/collab/stream", name="stream_collab")
@requires("notebook:read")
@operation(_STREAM)
async def stream_collab(request: web.Request) -> web.StreamResponse:
    """SSE of steps and updates (with ids) and presence; resumes after Last-Event-ID."""
    notebook = await load_notebook(request)
    after = _last_event_id(request)
    settings = request.app[SETTINGS_KEY]
    hub = request.app[COLLAB_HUB_KEY]
    # Subscribe before reading the backlog: commits publish synchronously after COMMIT on
    # this loop, so anything not in the backlog read will be in the buffer.
    sub = hub.subscribe(notebook.id, user_id=principal(request).user.id)
    response = web.StreamResponse()
    try:
        last = after if after is not None else await store(request).collab_top(notebook.id)
        response = await open_stream(request)
        deadline = asyncio.get_running_loop().time() + settings.collab_stream_lifetime_s
        last = await _send_backlog(request, response, notebook.id, last)
        await _relay(
            response, sub, last, keepalive_s=settings.collab_keepalive_s, deadline=deadline
        )
        await response.write_eof()
    except ConnectionResetError:
        # The client went away: normal for SSE; it resumes with Last-Event-ID.
        pass
    finally:
        hub.unsubscribe(sub)
    return response
