"""HogQL for kernels: what the gateway does with a `hogql_execute()` request from a kernel.

Same translator, same project isolation, same timezone, same errors as `hogql/execute`; the
project is the kernel owner's, passed in by the kernel bridge from the gateway's own records.
"""

from __future__ import annotations

from typing import Any

from gateway.hogql import placeholder_values
from gateway.hogql.errors import HogQLError
from gateway.hogql.execute import AnalyticsStore
from gateway.kernels.bridge import BridgeHandler
from gateway.store import Store


def kernel_query_handler(store: AnalyticsStore, records: Store) -> BridgeHandler:
    async def handle(
        project_id: int, request: dict[str, Any]
    ) -> tuple[dict[str, Any], bytes | None]:
        if project_id <= 0:
            return {"ok": False, "error": "This kernel is not assigned to a project yet."}, None
        query = request.get("query")
        values = placeholder_values(request.get("placeholders"))
        if not isinstance(query, str):
            return {"ok": False, "error": "query must be a string."}, None
        if values is None:
            return {
                "ok": False,
                "error": "placeholders must be strings, numbers, booleans or lists of them.",
            }, None
        project = await records.get_project(project_id)
        timezone = project.timezone if project is not None else "UTC"
        try:
            translation = await store.translator.translate(
                query, project_id=project_id, values=values, timezone=timezone
            )
            data, rows = await store.run_arrow(translation)
        except HogQLError as err:
            return {
                "ok": False,
                "error": err.detail,
                "code": err.code,
                "start": err.start,
                "end": err.end,
            }, None
        return {"ok": True, "rows": rows}, data

    return handle
