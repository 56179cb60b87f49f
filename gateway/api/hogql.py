"""`POST hogql/execute`: a HogQL query over the project's analytics data, PostHog's response."""

from __future__ import annotations

import uuid
from typing import Any, Final

from aiohttp import web

from gateway.api._arrow import ARROW, send_arrow_file
from gateway.api._context import load_notebook, principal
from gateway.api._hogql import checked_values, translate_for
from gateway.api._render import json_response
from gateway.api._request import req_str
from gateway.api._schemas import obj
from gateway.api.kernel import SCRATCHPAD
from gateway.api.notebooks import PREFIX
from gateway.auth import requires
from gateway.contract import ERROR, Body, Component, Operation, Reply, declared_body, operation
from gateway.errors import ServiceUnavailable
from gateway.hogql import Translation
from gateway.hogql.duckdb import DEFAULT_LIMIT
from gateway.keys import ANALYTICS_KEY, SETTINGS_KEY

routes = web.RouteTableDef()

_RESULT: Final = Component(
    "HogQLQueryResponse",
    obj(
        ("query", "results", "columns", "types"),
        query={"type": "string"},
        results={"type": "array", "items": {"type": "array"}},
        columns={"type": "array", "items": {"type": "string"}},
        types={
            "type": "array",
            "items": {
                "type": "array",
                "items": {"type": "string"},
                "minItems": 2,
                "maxItems": 2,
            },
        },
        hasMore={"type": "boolean"},
        limit={"type": "integer"},
        offset={"type": "integer"},
    ),
)
_ERROR: Final = Component(
    "HogQLError",
    obj(
        ("error", "code", "start", "end"),
        error={"type": "string"},
        code={"type": "string"},
        start={"type": ["integer", "null"]},
        end={"type": ["integer", "null"]},
    ),
)
_BODY: Final = Body(
    obj(
        ("query",),
        query={"type": "string", "maxLength": 100_000},
        values={
            "type": ["object", "null"],
            "description": "Values for `{name}` placeholders: scalars or lists of scalars.",
            "additionalProperties": {
                "type": ["string", "number", "boolean", "null", "array"],
                "items": {"type": ["string", "number", "boolean", "null"]},
                "maxItems": 10_000,
            },
        },
    ),
    required=True,
)


async def _arrow(
    request: web.Request, translation: Translation, project_id: int
) -> web.StreamResponse:
    """The result as an Arrow IPC stream (types kept), via a temporary file sent zero-copy."""
    directory = request.app[SETTINGS_KEY].data_dir / "hogql-results"
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / f"{uuid.uuid4().hex}.arrow"
    try:
        rows = await request.app[ANALYTICS_KEY].run_to_file(
            translation, path, uid=None, project_id=project_id
        )
        return await send_arrow_file(request, path, total=rows)
    finally:
        path.unlink(missing_ok=True)


@routes.post(PREFIX + "/{short_id}/hogql/execute", name="execute_hogql")
@requires("query:read")
@operation(
    Operation(
        "notebooks_hogql_execute_create",
        replies=(
            Reply(
                200,
                "Rows, columns and types; with `Accept: " + ARROW + "` an Arrow IPC stream.",
                _RESULT,
            ),
            Reply(400, "An invalid body, or a query HogQL refuses.", {"anyOf": [ERROR, _ERROR]}),
        ),
        errors=(ServiceUnavailable,),
        body=_BODY,
        description="A query HogQL cannot parse or resolve is 400 with "
        '`{"error", "code", "start", "end"}` (the span in the query).',
    )
)
async def execute_hogql(request: web.Request) -> web.StreamResponse:
    """Run a HogQL SELECT over this project's events and persons."""
    body = declared_body(request)
    query = req_str(body, "query", max_length=100_000)
    values = checked_values(body.get("values"), attr="values")
    if request.match_info["short_id"] != SCRATCHPAD:
        await load_notebook(request)
    project = principal(request).project
    translation = await translate_for(
        request.app, query=query, values=values, project_id=project.id, timezone=project.timezone
    )
    if ARROW in request.headers.get("Accept", ""):
        return await _arrow(request, translation, project.id)
    result = await request.app[ANALYTICS_KEY].run(translation, project_id=project.id)
    response: dict[str, Any] = {
        "query": query,
        "results": result.rows,
        "columns": result.columns,
        "types": [[c, t] for c, t in zip(result.columns, result.types, strict=True)],
    }
    if translation.paged:
        response |= {"hasMore": result.has_more, "limit": DEFAULT_LIMIT, "offset": 0}
    return json_response(response)
