"""Activity log: one notebook's, and the whole project's."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.api._context import load_notebook, principal, store
from gateway.api._render import absolute_url, activity_json, json_response
from gateway.api._request import query_int
from gateway.api._schemas import ACTIVITY_PAGE
from gateway.api.notebooks import PREFIX
from gateway.auth import requires
from gateway.contract import Operation, Param, Reply, operation

routes = web.RouteTableDef()

_PARAMS: Final = (
    Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 10}),
    Param("page", {"type": "integer", "minimum": 1, "maximum": 2**31, "default": 1}),
)
_REPLY: Final = Reply(200, "A page of activity, newest first.", ACTIVITY_PAGE)


async def _page(request: web.Request, item_id: str | None) -> web.Response:
    limit = query_int(request.query, "limit", default=10, minimum=1, maximum=1000)
    page_no = query_int(request.query, "page", default=1, minimum=1, maximum=2**31)
    result = await store(request).list_activity(
        principal(request).project.id, item_id=item_id, limit=limit, offset=(page_no - 1) * limit
    )
    has_next = page_no * limit < result.total
    return json_response(
        {
            "results": [activity_json(e) for e in result.items],
            "next": absolute_url(request, page=page_no + 1, limit=limit) if has_next else None,
            "previous": absolute_url(request, page=page_no - 1, limit=limit)
            if page_no > 1
            else None,
            "total_count": result.total,
        }
    )


@routes.get(PREFIX + "/activity", name="list_project_activity")
@requires("activity_log:read")
@operation(Operation("notebooks_all_activity_retrieve", replies=(_REPLY,), params=_PARAMS))
async def list_project_activity(request: web.Request) -> web.Response:
    """Activity of every notebook in the project, newest first."""
    return await _page(request, None)


@routes.get(PREFIX + "/{short_id}/activity", name="list_notebook_activity")
@requires("activity_log:read")
@operation(Operation("notebooks_activity_retrieve", replies=(_REPLY,), params=_PARAMS))
async def list_notebook_activity(request: web.Request) -> web.Response:
    """Activity of one notebook, newest first."""
    notebook = await load_notebook(request)
    return await _page(request, notebook.short_id)
