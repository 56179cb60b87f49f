"""The public viewer: `/shared/{token}` (HTML) and `/shared/{token}.json`, with passwords.

No API key here. A link works while its config is enabled, unexpired and its notebook live.
A password-protected link needs a share token (cookie or Bearer), bought with a password.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

import orjson
from aiohttp import web

from gateway.api._render import json_response
from gateway.api._request import form_fields
from gateway.api._schemas import SCENE, obj
from gateway.contract import (
    ERROR,
    Body,
    Operation,
    Reply,
    body_schema,
    check,
    json_object,
    operation,
)
from gateway.errors import (
    InvalidRequest,
    NotAuthenticated,
    NotFound,
    ShareLoginFailed,
    TooManyRequests,
)
from gateway.keys import (
    CLOCK_KEY,
    SHARE_LIMITER_KEY,
    SHARE_TOKENS_KEY,
    SHARED_QUERIES_KEY,
    STORE_KEY,
)
from gateway.share_links import SHARE_COOKIE, SHARE_TOKEN_TTL, ShareClaims, check_password
from gateway.store import Notebook, SharingConfig
from gateway.store.records import notebook_detail
from gateway.viewer import (
    HEADERS,
    QueryOutcome,
    document,
    hogql_queries,
    render_notebook,
    unlock_document,
)

routes = web.RouteTableDef()

_HTML: Final = "text/html"
_PAGE: Final = {"type": "string"}
_UNLOCK: Final = Body(
    obj(password={"type": "string"}),
    checked=False,  # JSON or a form: read by the handler, checked against this schema
    media=("application/json", "application/x-www-form-urlencoded", "multipart/form-data"),
)


def _split(token_path: str) -> tuple[str, bool]:
    token, _, extension = token_path.partition(".")
    return token, extension == "json"


async def _lookup(request: web.Request) -> tuple[SharingConfig, Notebook, bool]:
    token, as_json = _split(request.match_info["token"])
    found = await request.app[STORE_KEY].find_shared(token, now=request.app[CLOCK_KEY].now())
    if found is None:
        msg = "Not found."
        raise NotFound(msg)
    config, notebook = found
    wants_json = as_json or "application/json" in request.headers.get("Accept", "")
    return config, notebook, wants_json


def _unlocked(request: web.Request, config: SharingConfig) -> bool:
    if not config.password_required:
        return True
    header = request.headers.get("Authorization", "")
    candidates = [request.cookies.get(SHARE_COOKIE, "")]
    if header.lower().startswith("bearer "):
        candidates.append(header[7:].strip())
    active = {p.id for p in config.passwords}
    for candidate in candidates:
        claims = request.app[SHARE_TOKENS_KEY].verify(candidate, config.access_token)
        if claims is not None and claims.share_password_id in active:
            return True
    return False


def _scene(notebook: Notebook) -> dict[str, Any]:
    return {
        "type": "scene",
        "notebook": {
            "short_id": notebook.short_id,
            "title": notebook.title,
            "content": orjson.Fragment(notebook.content_json),
        },
    }


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", headers=HEADERS)


def _unlock_page(error: str = "", status: int = 401) -> web.Response:
    return _html(unlock_document(error), status)


async def _notebook_page(request: web.Request, config: SharingConfig, notebook: Notebook) -> str:
    """The notebook as HTML, its HogQL nodes run (or their results reused) for this link."""
    title = notebook.title or "Untitled"
    queries = hogql_queries(notebook.content)
    outcomes: dict[str, QueryOutcome] = {}
    if queries:
        project = await request.app[STORE_KEY].get_project(notebook.project_id)
        outcomes = await request.app[SHARED_QUERIES_KEY].outcomes(
            link=config.access_token,
            notebook_id=notebook.id,
            version=notebook.version,
            project_id=notebook.project_id,
            timezone=project.timezone if project is not None else "UTC",
            queries=queries,
        )
    # Pure Python over a document of up to max_body_bytes: off the event loop.
    body = await asyncio.to_thread(render_notebook, title, notebook.content, outcomes)
    return document(title, body, _scene(notebook))


@routes.get("/shared/{token}", name="view_shared")
@operation(
    Operation(
        "shared_retrieve",
        replies=(
            Reply(
                200,
                "The notebook page, or its scene object.",
                _PAGE,
                media=_HTML,
                also=(("application/json", SCENE),),
            ),
            Reply(
                401,
                "A password is needed: the unlock page, or the error in JSON.",
                _PAGE,
                media=_HTML,
                also=(("application/json", ERROR),),
            ),
        ),
        errors=(NotFound,),
    )
)
async def view_shared(request: web.Request) -> web.Response:
    """A shared notebook, as HTML or (`.json` / Accept) as a scene object."""
    config, notebook, wants_json = await _lookup(request)
    if not _unlocked(request, config):
        if wants_json:
            msg = "A password is required to view this notebook."
            raise NotAuthenticated(msg)
        return _unlock_page()
    if wants_json:
        return json_response(_scene(notebook))
    return _html(await _notebook_page(request, config, notebook))


async def _password(request: web.Request, *, is_form: bool) -> str | None:
    """The `password` field of a JSON or form body, checked against the declared schema:
    anything but a string (a number, a file upload) is a 400."""
    fields: dict[str, Any] = (
        dict(await form_fields(request)) if is_form else await json_object(request)
    )
    password = check(fields, body_schema(_UNLOCK)).get("password")
    return password if isinstance(password, str) else None


@routes.post("/shared/{token}", name="unlock_shared")
@operation(
    Operation(
        "shared_unlock_create",
        replies=(
            Reply(
                200,
                "The share token (also set as a cookie).",
                obj(("shareToken",), shareToken={"type": "string"}),
            ),
            Reply(
                303,
                "A form's password was right: back to the page, with the cookie.",
                headers={"Location": "The shared page."},
            ),
            Reply(
                401,
                "Incorrect password (a form that wants HTML gets the unlock page again).",
                obj(("error",), error={"type": "string"}),
                also=((_HTML, _PAGE),),
            ),
        ),
        errors=(NotFound, InvalidRequest, TooManyRequests),
        body=_UNLOCK,
    )
)
async def unlock_shared(request: web.Request) -> web.StreamResponse:
    """Trade a share password for a 24 h share token (JSON and a cookie)."""
    config, notebook, wants_json = await _lookup(request)
    is_form = request.content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}
    password = await _password(request, is_form=is_form)
    limiter = request.app[SHARE_LIMITER_KEY]
    client = (config.access_token, request.remote or "unknown")
    wait = limiter.retry_after(client)
    if wait is not None:
        msg = "Too many failed password attempts; try again later."
        raise TooManyRequests(
            msg,
            headers={"Retry-After": str(wait)},
        )
    matched = None
    if password:
        for candidate in config.passwords:
            if await asyncio.to_thread(check_password, password, candidate.password_hash):
                matched = candidate
                break
    if matched is None:
        limiter.record_failure(client)
        await request.app[STORE_KEY].log_activity(
            notebook.project_id,
            user=None,
            activity="share_login_failed",
            item_id=notebook.short_id,
            detail=notebook_detail(title=notebook.title, short_id=notebook.short_id, changes=None),
            now=request.app[CLOCK_KEY].now(),
        )
        if is_form and not wants_json:
            return _unlock_page("Incorrect password")
        msg = "Incorrect password"
        raise ShareLoginFailed(msg)
    token = request.app[SHARE_TOKENS_KEY].issue(
        ShareClaims(
            share_password_id=matched.id,
            project_id=notebook.project_id,
            access_token=config.access_token,
        )
    )
    response: web.StreamResponse
    if is_form and not wants_json:
        response = web.Response(status=303, headers={"Location": request.path})
    else:
        response = json_response({"shareToken": token})
    response.set_cookie(
        SHARE_COOKIE,
        token,
        max_age=int(SHARE_TOKEN_TTL.total_seconds()),
        path=request.path.rsplit(".json", 1)[0],
        httponly=True,
        samesite="Lax",
        secure=request.secure,
    )
    return response
