"""The OpenAPI 3.1 document, generated from the live router and the handlers' own declarations
(`gateway.contract.operation`), so it cannot drift: the same declarations check requests.

Paths and methods come from the routes; operation ids, parameters, bodies, replies and errors
from each handler's `Operation`; summaries from handler docstrings; the required scope from
`@requires`. Statuses every route of a kind can answer are added here: 401/403 where a scope is
required, 404 for a project the key cannot see, 400 where parameters or a body are checked,
408/413 where a body is read.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, Final

from aiohttp import web

from gateway import __version__
from gateway.contract import (
    ERROR,
    ERROR_DETAIL,
    ERROR_MESSAGE,
    PATH_PARAMS,
    Component,
    Operation,
    Reply,
    declared_operation,
)
from gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RequestTimeout,
)

_CODE_ONLY: Final = {
    "type": "object",
    "properties": {"code": {"type": "string"}},
    "required": ["code"],
}
_STATUS_TEXT: Final = {
    200: "OK",
    201: "Created",
    204: "No content",
    303: "See other",
    304: "Not modified",
    400: "Invalid request",
    401: "Not authenticated",
    403: "Permission denied",
    404: "Not found",
    405: "Method not allowed",
    408: "Request body timeout",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    429: "Too many requests",
    503: "Service unavailable",
}
_SCOPES: Final = (
    "notebook:read",
    "notebook:write",
    "activity_log:read",
    "sharing_configuration:read",
    "sharing_configuration:write",
    "query:read",
)


def api_routes(app: web.Application) -> list[tuple[str, str, str, web.AbstractRoute]]:
    """(handler name, method, documented path, route) for every route of the app."""
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


def _emit(value: Any, components: dict[str, Any]) -> Any:
    """A schema as JSON: Component objects become `$ref`s and are collected once."""
    if isinstance(value, Component):
        if value.name not in components:
            components[value.name] = {}  # placeholder: a schema may refer to itself
            components[value.name] = _emit(value.schema, components)
        return {"$ref": f"#/components/schemas/{value.name}"}
    if isinstance(value, Mapping):
        return {k: _emit(v, components) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_emit(v, components) for v in value]
    return value


def _error_schema(error: type[GatewayError]) -> Any:
    if error.body is not GatewayError.body:
        return ERROR_DETAIL  # kernel errors answer PostHog's bare `{"detail"}`
    if error.body_style == "posthog":
        return ERROR
    if error.body_style == "error":
        return ERROR_MESSAGE
    if error.body_style == "code":
        return _CODE_ONLY
    return None


def _implied_errors(op: Operation, path: str, scope: str | None) -> list[type[GatewayError]]:
    errors: list[type[GatewayError]] = []
    if scope is not None:
        errors += [NotAuthenticated, AuthenticationFailed, PermissionDenied]
    if "{project_id}" in path:
        errors.append(NotFound)
    if op.params or op.body is not None:
        errors.append(InvalidRequest)
    if op.body is not None:
        errors += [PayloadTooLarge, RequestTimeout]
    return errors + list(op.errors)


def _replies(
    replies: Iterable[Reply], errors: Iterable[type[GatewayError]], components: dict[str, Any]
) -> dict[str, Any]:
    by_status: dict[int, list[Any]] = {}
    described: dict[int, Reply] = {reply.status: reply for reply in replies}
    for error in errors:
        if error.status in described:
            continue  # the operation describes this status itself
        schemas = by_status.setdefault(error.status, [])
        schema = _error_schema(error)
        if schema is not None and schema not in schemas:
            schemas.append(schema)
    out: dict[str, Any] = {}
    for status, reply in described.items():
        doc: dict[str, Any] = {"description": reply.description}
        if reply.schema is not None:
            media = ((reply.media, reply.schema), *reply.also)
            doc["content"] = {m: {"schema": _emit(schema, components)} for m, schema in media}
        if reply.headers:
            doc["headers"] = {
                name: {"description": text, "schema": {"type": "string"}}
                for name, text in reply.headers.items()
            }
        out[str(status)] = doc
    for status, schemas in by_status.items():
        doc = {"description": _STATUS_TEXT.get(status, "Error")}
        if schemas:
            schema = schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
            doc["content"] = {"application/json": {"schema": _emit(schema, components)}}
        if status == 429:
            doc["headers"] = {"Retry-After": {"schema": {"type": "string"}}}
        out[str(status)] = doc
    return dict(sorted(out.items()))


def _security(scope: str | None, op: Operation) -> list[dict[str, list[str]]]:
    if scope is not None:
        return [{"PersonalAPIKey": [scope]}]
    if op.operation_id.startswith("shared_"):
        # a password-protected link takes a share token (or its cookie); others need nothing
        return [{}, {"ShareToken": []}]
    return []


def _operation(name: str, path: str, handler: Any, components: dict[str, Any]) -> dict[str, Any]:
    op = declared_operation(handler)
    if op is None:
        msg = f"{name} declares no Operation (gateway.contract.operation)"
        raise TypeError(msg)
    doc = (inspect.getdoc(handler) or name).strip()
    summary, _, rest = doc.partition("\n")
    scope: str | None = getattr(handler, "required_scope", None)
    out: dict[str, Any] = {"operationId": op.operation_id, "summary": summary, "x-handler": name}
    description = "\n\n".join(part for part in (rest.strip(), op.description) if part)
    if description:
        out["description"] = description
    out["security"] = _security(scope, op)
    if scope is not None:
        out["x-required-scope"] = scope
    if op.params:
        out["parameters"] = [
            {
                "name": p.name,
                "in": p.where,
                "required": p.required,
                "schema": _emit(p.schema, components),
                **({"description": p.description} if p.description else {}),
            }
            for p in op.params
        ]
    if op.body is not None:
        schema = _emit(op.body.schema, components)
        out["requestBody"] = {
            "required": op.body.required,
            "content": {media: {"schema": schema} for media in op.body.media},
        }
    out["responses"] = _replies(op.replies, _implied_errors(op, path, scope), components)
    return out


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [
        {
            "name": n,
            "in": "path",
            "required": True,
            "schema": dict(PATH_PARAMS.get(n, {"type": "string"})),
        }
        for n in names
    ]


def build_openapi(app: web.Application) -> dict[str, Any]:
    """Every route of `app` (the slash-less form), as an OpenAPI 3.1 document."""
    paths: dict[str, dict[str, Any]] = {}
    components: dict[str, Any] = {}
    for name, method, path, route in api_routes(app):
        item = paths.setdefault(path, {})
        if _path_parameters(path):
            item["parameters"] = _path_parameters(path)
        item[method.lower()] = _operation(name, path, route.handler, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Notebook Gateway",
            "version": __version__,
            "description": "PostHog's Notebooks API, self-hosted. Every path also answers "
            "with a trailing slash.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "PersonalAPIKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal API key (`phx_…`). Its scopes: "
                    + ", ".join(f"`{s}`" for s in _SCOPES)
                    + ", or `*`; `X:write` also grants `X:read`.",
                },
                "ShareToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The `shareToken` a shared link's password buys "
                    "(or its `posthog_sharing_token` cookie).",
                },
            },
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
