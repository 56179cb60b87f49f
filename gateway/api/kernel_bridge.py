"""What the gateway does with a kernel's `hogql_execute()` request (the kernel bridge's handler).

Same translation, project isolation, timezone, limits and errors as `hogql/execute` (both go
through `api/_hogql.py`); the project is the kernel owner's, passed in by the bridge from the
gateway's own records, never taken from the kernel. Built by the app layer and handed to the
kernel manager, so `gateway.kernels` knows nothing of HogQL.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api._hogql import checked_values, translate_for
from gateway.errors import GatewayError
from gateway.kernels.bridge import BridgeHandler
from gateway.keys import ANALYTICS_KEY, STORE_KEY


def kernel_query_handler(app: web.Application) -> BridgeHandler:
    """The bridge handler: (project id, request) → (reply, Arrow IPC bytes or None)."""

    async def handle(
        project_id: int, request: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes | None]:
        if project_id <= 0:
            return {"ok": False, "error": "This kernel is not assigned to a project yet."}, None
        query = request.get("query")
        if not isinstance(query, str):
            return {"ok": False, "error": "query must be a string."}, None
        try:
            values = checked_values(request.get("placeholders"), attr="placeholders")
            project = await app[STORE_KEY].get_project(project_id)
            translation = await translate_for(
                app,
                query=query,
                values=values,
                project_id=project_id,
                timezone=project.timezone if project is not None else "UTC",
            )
            data, rows = await app[ANALYTICS_KEY].run_arrow(translation, project_id=project_id)
        except GatewayError as err:
            reply: dict[str, Any] = {"ok": False, "error": err.detail, "code": err.code}
            reply["start"] = getattr(err, "start", None)
            reply["end"] = getattr(err, "end", None)
            return reply, None
        return {"ok": True, "rows": rows}, data

    return handle
