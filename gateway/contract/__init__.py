"""The API contract: what each handler declares (parameters, body, replies, errors), the checks
those declarations drive, and the JSON body reader they use. `gateway.openapi` builds the
document from the same declarations."""

from __future__ import annotations

from gateway.contract.body import json_object
from gateway.contract.declare import (
    PATH_PARAMS,
    Body,
    Component,
    Operation,
    Param,
    Reply,
    body_schema,
    declared_body,
    declared_operation,
    operation,
)
from gateway.contract.errors import ERROR, ERROR_DETAIL, ERROR_MESSAGE
from gateway.contract.validate import check

__all__ = [
    "ERROR",
    "ERROR_DETAIL",
    "ERROR_MESSAGE",
    "PATH_PARAMS",
    "Body",
    "Component",
    "Operation",
    "Param",
    "Reply",
    "body_schema",
    "check",
    "declared_body",
    "declared_operation",
    "json_object",
    "operation",
]
