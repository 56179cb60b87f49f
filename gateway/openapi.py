"""The OpenAPI 3.1 document, generated from the live router so it cannot drift.

Paths, methods, operation ids (route names), summaries (handler docstrings) and the required
scope come from the routes themselves; request body schemas are listed here by operation id.
"""

from __future__ import annotations

import inspect
from typing import Any, Final

from aiohttp import web

from gateway import __version__

_STRING_OR_NULL: Final = {"type": ["string", "null"]}
_NOTEBOOK_PROPERTIES: Final[dict[str, Any]] = {
    "title": {"type": ["string", "null"], "maxLength": 256},
    "content": {},
    "text_content": _STRING_OR_NULL,
    "version": {"type": "integer", "minimum": 0},
    "deleted": {"type": "boolean"},
    "_create_in_folder": {"type": "string"},
}
_NOTEBOOK_WRITE: Final[dict[str, Any]] = {"type": "object", "properties": _NOTEBOOK_PROPERTIES}
_SHARING_WRITE: Final = {
    "type": "object",
    "properties": {
        "enabled": {"type": "boolean"},
        "settings": {"type": ["object", "null"]},
        "password_required": {"type": "boolean"},
    },
}
REQUEST_BODIES: Final[dict[str, dict[str, Any]]] = {
    "create_notebook": {
        "type": "object",
        "properties": {
            **_NOTEBOOK_PROPERTIES,
            "short_id": {"type": "string", "pattern": "^[A-Za-z0-9]{1,12}$"},
        },
    },
    "update_notebook": _NOTEBOOK_WRITE,
    "replace_notebook": _NOTEBOOK_WRITE,
    "update_sharing": _SHARING_WRITE,
    "refresh_sharing": _SHARING_WRITE,
    "create_share_password": {
        "type": "object",
        "properties": {
            "raw_password": {"type": "string", "minLength": 8},
            "note": {"type": ["string", "null"], "maxLength": 100},
        },
    },
    "save_collab": {
        "type": "object",
        "properties": {
            "client_id": {"type": "string", "maxLength": 200},
            "version": {"type": "integer", "minimum": 0},
            "steps": {"type": "array"},
            "content": {},
            "text_content": _STRING_OR_NULL,
            "title": {"type": "string", "maxLength": 256},
            "cursor_head": {"type": ["integer", "null"]},
        },
        "required": ["client_id", "version", "steps", "content"],
    },
    "post_collab_presence": {
        "type": "object",
        "properties": {
            "client_id": {"type": "string", "maxLength": 200},
            "version": {"type": "integer", "minimum": 0},
            "cursor": {},
        },
        "required": ["client_id", "version"],
    },
    "execute_hogql": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "values": {"type": "object"}},
        "required": ["query"],
    },
    "unlock_shared": {
        "type": "object",
        "properties": {"password": {"type": "string"}},
        "required": ["password"],
    },
}
_ERROR: Final = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "attr": _STRING_OR_NULL,
    },
}


def api_routes(app: web.Application) -> list[tuple[str, str, str, web.AbstractRoute]]:
    """(operation id, method, documented path, route) for every route of the app."""
    return [
        (
            route.handler.__name__,
            route.method,
            route.resource.canonical.replace("{slash}", ""),
            route,
        )
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    ]


def _unwrap(handler: Any) -> Any:
    while hasattr(handler, "__wrapped__"):
        if hasattr(handler, "required_scope"):
            return handler
        handler = handler.__wrapped__
    return handler


def _operation(name: str, method: str, handler: Any) -> dict[str, Any]:
    doc = inspect.getdoc(handler) or name
    op: dict[str, Any] = {
        "operationId": name,
        "summary": doc.splitlines()[0],
        "responses": {
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": _ERROR}},
            }
        },
    }
    scope = getattr(_unwrap(handler), "required_scope", None)
    if scope is not None:
        op["security"] = [{"PersonalAPIKey": [scope]}]
        op["x-required-scope"] = scope
    success = {"POST": "201" if name == "create_notebook" else "200"}.get(method, "200")
    if name in {"delete_share_password", "post_collab_presence"}:
        success = "204"
    op["responses"][success] = {"description": "Success"}
    if method in {"POST", "PATCH", "PUT"}:
        schema = REQUEST_BODIES.get(name, {"type": "object"})
        op["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": schema}},
        }
    return op


def _parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}} for n in names
    ]


def build_openapi(app: web.Application) -> dict[str, Any]:
    """Every route of `app` (the slash-less form), as an OpenAPI 3.1 document."""
    paths: dict[str, dict[str, Any]] = {}
    for name, method, path, route in api_routes(app):
        item = paths.setdefault(path, {})
        if _parameters(path):
            item["parameters"] = _parameters(path)
        item[method.lower()] = _operation(name, method, route.handler)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Notebook Gateway", "version": __version__},
        "paths": paths,
        "components": {
            "securitySchemes": {
                "PersonalAPIKey": {"type": "http", "scheme": "bearer"},
            }
        },
    }


def route_table(app: web.Application) -> str:
    """The routes as a Markdown table (method, path, scope, summary), for docs/api.md."""
    doc = build_openapi(app)
    lines = ["| method | path | scope | what it does |", "|---|---|---|---|"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method == "parameters":
                continue
            scope = op.get("x-required-scope", "public")
            lines.append(f"| {method.upper()} | `{path}` | {scope} | {op['summary']} |")
    return "\n".join(lines) + "\n"
