"""What a handler declares about itself: parameters, body, replies and errors. The OpenAPI
document is built from these declarations, and `operation()` checks requests against the same
declarations, so the document and the behaviour cannot drift apart."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.contract.body import json_object
from gateway.contract.validate import check, parse_query_value
from gateway.errors import GatewayError, InvalidRequest
from gateway.keys import BODY_KEY


@dataclass(frozen=True)
class Component:
    """A named schema: the document holds it once, under `components/schemas`, and refers to
    it. A schema may contain Component objects anywhere a schema may appear."""

    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class Param:
    """A query (or header) parameter; `operation()` checks declared query parameters."""

    name: str
    schema: Mapping[str, Any]
    where: Literal["query", "header"] = "query"
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Reply:
    """One documented answer. `schema` None: no body."""

    status: int
    description: str
    schema: Mapping[str, Any] | Component | None = None
    media: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    # other media types this status may answer with, each with its schema
    also: tuple[tuple[str, Mapping[str, Any] | Component], ...] = ()


@dataclass(frozen=True)
class Body:
    """The request body: an object schema.

    `checked` bodies are read (JSON, an empty body is `{}` unless `required`) and checked by
    `operation()` before the handler runs; the handler finds them with `declared_body()`.
    Unchecked bodies (capture's many encodings, the share-login form) are read by the handler.
    """

    schema: Mapping[str, Any] | Component
    required: bool = False
    checked: bool = True
    media: tuple[str, ...] = ("application/json",)


@dataclass(frozen=True)
class Operation:
    """Everything the document says about one route beyond its path, method and scope.

    `operation_id` is PostHog's where PostHog has the route; `errors` are the error classes
    (gateway/errors.py) the handler raises on purpose, documented with their status and body.
    """

    operation_id: str
    replies: tuple[Reply, ...]
    errors: tuple[type[GatewayError], ...] = ()
    params: tuple[Param, ...] = ()
    body: Body | None = None
    description: str = ""


# Path parameters of every route, by name.
PATH_PARAMS: Final[Mapping[str, Mapping[str, Any]]] = {
    "project_id": {"type": "integer", "minimum": 1, "description": "The project's id."},
    "short_id": {
        "type": "string",
        "description": "The notebook's short id (`scratchpad` on kernel and HogQL routes).",
    },
    "notebook_id": {"type": "string", "description": "The notebook's short id."},
    "password_id": {"type": "integer", "minimum": 1},
    "token": {
        "type": "string",
        "description": "A sharing access token, optionally followed by `.json`.",
    },
}


def _check_query(op: Operation, request: web.Request) -> None:
    for param in op.params:
        if param.where != "query":
            continue
        raw = request.query.get(param.name)
        if raw is None:
            if param.required:
                msg = "This field is required."
                raise InvalidRequest(msg, attr=param.name)
            continue
        parse_query_value(raw, param.schema, param.name)


def body_schema(body: Body) -> Mapping[str, Any]:
    """The JSON Schema of a declared request body (a named component's schema, or the inline
    one)."""
    return body.schema.schema if isinstance(body.schema, Component) else body.schema


def operation(op: Operation) -> Callable[[Handler], Handler]:
    """Declare `op` for a handler and check its query parameters and (checked) body before it
    runs. Put it below `@requires(...)`, so authentication comes first (401/403 before 400)."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            _check_query(op, request)
            if op.body is not None and op.body.checked:
                raw = await json_object(request, allow_empty=not op.body.required)
                request[BODY_KEY] = check(raw, body_schema(op.body))
            return await handler(request)

        checked.operation = op  # type: ignore[attr-defined]
        return checked

    return decorate


def declared_body(request: web.Request) -> dict[str, Any]:
    """The body `operation()` read and checked for this request."""
    return request[BODY_KEY]


def declared_operation(handler: Any) -> Operation | None:
    """The Operation declared on a (possibly wrapped) handler."""
    op = getattr(handler, "operation", None)
    return op if isinstance(op, Operation) else None
