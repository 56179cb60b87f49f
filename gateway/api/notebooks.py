"""Notebook CRUD: list, create, retrieve, update, the refused hard delete, and markdown."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Final

import orjson
from aiohttp import web

from gateway.api._context import load_notebook, now, principal, store
from gateway.api._render import absolute_url, json_response, notebook_json
from gateway.api._request import (
    opt_bool,
    opt_int,
    opt_json_size,
    opt_str,
    query_int,
)
from gateway.api._schemas import NOTEBOOK, NOTEBOOK_PAGE, STRING_OR_NULL, obj
from gateway.auth import requires
from gateway.contract import Body, Operation, Param, Reply, declared_body, operation
from gateway.errors import Conflict, InvalidRequest, MethodNotAllowed
from gateway.filters import parse_notebook_filter
from gateway.keys import RENDER_CACHE_KEY
from gateway.markdown import to_markdown
from gateway.render_cache import Rendered
from gateway.store import UNSET, NewNotebook, NotebookPatch
from gateway.store.records import ORDERABLE_FIELDS, Maybe

routes = web.RouteTableDef()

PREFIX: Final = "/api/projects/{project_id}/notebooks"
_SHORT_ID: Final = re.compile(r"^[A-Za-z0-9]{1,12}$")
_MAX_TITLE: Final = 256
MAX_PAGE: Final = 1000
_SHORT_ID_MESSAGE: Final = "short_id must be an alphanumeric string up to 12 characters."

_WRITABLE: Final[dict[str, Any]] = {
    "title": {"type": ["string", "null"], "maxLength": _MAX_TITLE},
    "content": {"description": "ProseMirror JSON document; needs the current `version`."},
    "text_content": STRING_OR_NULL,
    "version": {"type": "integer", "minimum": 0},
    "deleted": {"type": "boolean"},
    "_create_in_folder": {"type": "string", "description": "Write-only: a project-tree folder."},
}
_UPDATE: Final = Operation(
    "",
    replies=(Reply(200, "The updated notebook.", NOTEBOOK),),
    errors=(Conflict,),
    body=Body(obj(**_WRITABLE)),
)
_ORDERS: Final = sorted(f"{sign}{name}" for name in ORDERABLE_FIELDS for sign in ("", "-"))
_TEXT: Final = {"type": "string"}
_DATE: Final = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        # naive: in the project's timezone
        {
            "type": "string",
            "pattern": r"^(?!0000)\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])[T ]"
            r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d(\.\d{1,6})?)?$",
        },
        {"type": "string", "pattern": r"^-?\d{0,4}[hdwmqysHDWMQY](Start|End)?$"},
    ],
}


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
@operation(
    Operation(
        "notebooks_list",
        replies=(Reply(200, "A page of notebooks (minimal objects).", NOTEBOOK_PAGE),),
        params=(
            Param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 100}),
            Param("offset", {"type": "integer", "minimum": 0, "maximum": 2**31, "default": 0}),
            Param("user", _TEXT, description="Any value: notebooks created by the caller."),
            Param("created_by", _TEXT, description="A user's uuid."),
            Param("last_modified_by", _TEXT, description="A user's uuid."),
            Param("date_from", _DATE, description="ISO 8601 or relative (`-7d`), exclusive."),
            Param("date_to", _DATE, description="ISO 8601 or relative (`-7d`), exclusive."),
            Param("search", _TEXT, description="Text in the title or content."),
            Param("contains", _TEXT, description="Node types, e.g. `recording:true`."),
            Param("short_id", _TEXT),
            Param("order", {"type": "string", "enum": _ORDERS, "default": "-last_modified_at"}),
        ),
    )
)
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
@operation(
    Operation(
        "notebooks_create",
        replies=(Reply(201, "The new notebook.", NOTEBOOK),),
        body=Body(
            obj(
                **_WRITABLE,
                short_id={
                    "type": "string",
                    "pattern": _SHORT_ID.pattern,
                    "x-message": _SHORT_ID_MESSAGE,
                },
            )
        ),
    )
)
async def create_notebook(request: web.Request) -> web.Response:
    """Create a notebook; 201 with the full object."""
    body = declared_body(request)
    short_id = opt_str(body, "short_id")
    if short_id is not UNSET and (short_id is None or not _SHORT_ID.match(short_id)):
        raise InvalidRequest(_SHORT_ID_MESSAGE, attr="short_id")
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
@operation(
    Operation(
        "notebooks_retrieve",
        replies=(
            Reply(200, "The notebook.", NOTEBOOK),
            Reply(304, "Not modified: `If-None-Match` names the current version."),
        ),
        params=(
            Param(
                "If-None-Match",
                {"type": "string"},
                where="header",
                description="A version; the same as the notebook's gives 304.",
            ),
        ),
    )
)
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
    patch = _patch(declared_body(request))
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
@operation(replace(_UPDATE, operation_id="notebooks_partial_update"))
async def update_notebook(request: web.Request) -> web.Response:
    """Partial update; `content` needs the current `version` (409 otherwise)."""
    return await _update(request)


@routes.put(PREFIX + "/{short_id}", name="replace_notebook")
@requires("notebook:write")
@operation(replace(_UPDATE, operation_id="notebooks_update"))
async def replace_notebook(request: web.Request) -> web.Response:
    """Update (PUT behaves as PATCH, as in PostHog where every field is optional)."""
    return await _update(request)


@routes.delete(PREFIX + "/{short_id}", name="delete_notebook")
@requires("notebook:write")
@operation(
    Operation(
        "notebooks_destroy",
        replies=(
            Reply(
                405,
                "Always: hard delete is not allowed (empty body). PATCH `deleted: true`.",
            ),
        ),
        description="PostHog soft-deletes notebooks: this route exists only to say so.",
    )
)
async def delete_notebook(request: web.Request) -> web.Response:
    """Always 405: hard delete is not allowed; PATCH `deleted: true` instead."""
    msg = 'Hard delete of this model is not allowed. Use a patch API call to set "deleted" to true'
    raise MethodNotAllowed(msg)


@routes.get(PREFIX + "/{short_id}/markdown", name="get_notebook_markdown")
@requires("notebook:read")
@operation(
    Operation(
        "notebooks_markdown_retrieve",
        replies=(Reply(200, "The notebook as Markdown.", obj(("markdown",), markdown=_TEXT)),),
    )
)
async def get_notebook_markdown(request: web.Request) -> web.Response:
    """The notebook rendered as Markdown."""
    notebook = await load_notebook(request)
    return json_response({"markdown": to_markdown(notebook.content, title=notebook.title)})
