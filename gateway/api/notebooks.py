"""Notebook CRUD: list, create, retrieve, update, the refused hard delete, and markdown."""

from __future__ import annotations

import re
from typing import Any, Final

import orjson
from aiohttp import web

from gateway.api._context import load_notebook, now, principal, store
from gateway.api._render import absolute_url, json_response, notebook_json
from gateway.api._request import (
    json_object,
    opt_bool,
    opt_int,
    opt_json_size,
    opt_str,
    query_int,
)
from gateway.auth import requires
from gateway.errors import InvalidRequest, MethodNotAllowed
from gateway.filters import parse_notebook_filter
from gateway.keys import RENDER_CACHE_KEY
from gateway.markdown import to_markdown
from gateway.render_cache import Rendered
from gateway.store import UNSET, NewNotebook, NotebookPatch
from gateway.store.records import Maybe

routes = web.RouteTableDef()

PREFIX: Final = "/api/projects/{project_id}/notebooks"
_SHORT_ID: Final = re.compile(r"^[A-Za-z0-9]{1,12}$")
_MAX_TITLE: Final = 256
MAX_PAGE: Final = 1000


def _content(body: dict[str, Any]) -> Any:
    if "content" not in body:
        return UNSET
    return opt_json_size(body["content"], "content")


def _folder(body: dict[str, Any]) -> Maybe[str]:
    value = opt_str(body, "_create_in_folder")
    return "" if value is None else value


def _patch(body: dict[str, Any]) -> NotebookPatch:
    return NotebookPatch(
        title=opt_str(body, "title", nullable=True, max_length=_MAX_TITLE),
        content=_content(body),
        text_content=opt_str(body, "text_content", nullable=True),
        version=opt_int(body, "version", minimum=0),
        deleted=opt_bool(body, "deleted"),
        create_in_folder=_folder(body),
    )


@routes.get(PREFIX, name="list_notebooks")
@requires("notebook:read")
async def list_notebooks(request: web.Request) -> web.Response:
    """List notebooks (minimal objects), filtered and paginated."""
    caller = principal(request)
    query = request.query
    limit = query_int(query, "limit", default=100, minimum=1, maximum=MAX_PAGE)
    offset = query_int(query, "offset", default=0, minimum=0, maximum=2**31)
    flt = parse_notebook_filter(
        query, user=caller.user, now=now(request), timezone=caller.project.timezone
    )
    page = await store(request).list_notebooks(caller.project.id, flt, limit=limit, offset=offset)
    nxt = absolute_url(request, limit=limit, offset=offset + limit)
    prev = absolute_url(request, limit=limit, offset=max(0, offset - limit))
    return json_response(
        {
            "count": page.total,
            "next": nxt if offset + limit < page.total else None,
            "previous": prev if offset > 0 else None,
            "results": [notebook_json(n, minimal=True) for n in page.items],
        }
    )


@routes.post(PREFIX, name="create_notebook")
@requires("notebook:write")
async def create_notebook(request: web.Request) -> web.Response:
    """Create a notebook; 201 with the full object."""
    body = await json_object(request)
    short_id = opt_str(body, "short_id")
    if short_id is not UNSET and (short_id is None or not _SHORT_ID.match(short_id)):
        msg = "short_id must be an alphanumeric string up to 12 characters."
        raise InvalidRequest(msg, attr="short_id")
    patch = _patch(body)
    new = NewNotebook(
        short_id=None if short_id is UNSET else short_id,
        title=None if patch.title is UNSET else patch.title,
        content=None if patch.content is UNSET else patch.content,
        text_content=None if patch.text_content is UNSET else patch.text_content,
        deleted=False if patch.deleted is UNSET else patch.deleted,
        create_in_folder=None if patch.create_in_folder is UNSET else patch.create_in_folder,
    )
    caller = principal(request)
    notebook = await store(request).create_notebook(
        caller.project.id, new, user=caller.user, now=now(request)
    )
    return json_response(notebook_json(notebook), status=201)


@routes.get(PREFIX + "/{short_id}", name="get_notebook")
@requires("notebook:read")
async def get_notebook(request: web.Request) -> web.Response:
    """Retrieve one notebook; `If-None-Match: <version>` → 304."""
    cache = request.app[RENDER_CACHE_KEY]
    key = (principal(request).project.id, request.match_info["short_id"])
    rendered = cache.get(key)
    if rendered is None:
        generation = cache.generation(key)
        notebook = await load_notebook(request)
        rendered = Rendered(version=notebook.version, body=orjson.dumps(notebook_json(notebook)))
        cache.put(key, rendered, generation=generation)
    etag = request.headers.get("If-None-Match", "").strip().strip('"')
    if etag and etag == str(rendered.version):
        return web.Response(status=304)
    return web.Response(body=rendered.body, content_type="application/json")


async def _update(request: web.Request) -> web.Response:
    body = await json_object(request)
    patch = _patch(body)
    caller = principal(request)
    notebook = await store(request).update_notebook(
        caller.project.id,
        request.match_info["short_id"],
        patch,
        user=caller.user,
        now=now(request),
    )
    return json_response(notebook_json(notebook))


@routes.patch(PREFIX + "/{short_id}", name="update_notebook")
@requires("notebook:write")
async def update_notebook(request: web.Request) -> web.Response:
    """Partial update; `content` needs the current `version` (409 otherwise)."""
    return await _update(request)


@routes.put(PREFIX + "/{short_id}", name="replace_notebook")
@requires("notebook:write")
async def replace_notebook(request: web.Request) -> web.Response:
    """Update (PUT behaves as PATCH, as in PostHog where every field is optional)."""
    return await _update(request)


@routes.delete(PREFIX + "/{short_id}", name="delete_notebook")
@requires("notebook:write")
async def delete_notebook(request: web.Request) -> web.Response:
    """Always 405: hard delete is not allowed; PATCH `deleted: true` instead."""
    msg = 'Hard delete of this model is not allowed. Use a patch API call to set "deleted" to true'
    raise MethodNotAllowed(msg)


@routes.get(PREFIX + "/{short_id}/markdown", name="get_notebook_markdown")
@requires("notebook:read")
async def get_notebook_markdown(request: web.Request) -> web.Response:
    """The notebook rendered as Markdown."""
    notebook = await load_notebook(request)
    return json_response({"markdown": to_markdown(notebook.content, title=notebook.title)})
