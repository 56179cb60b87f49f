"""Schemas of the error bodies the error tree (gateway/errors.py) renders."""

from __future__ import annotations

from typing import Final

from gateway.contract.declare import Component

ERROR: Final = Component(
    "Error",
    {
        "type": "object",
        "description": "PostHog's error body (drf-exceptions-hog); `attr` names the field.",
        "properties": {
            "type": {
                "type": "string",
                "enum": [
                    "validation_error",
                    "authentication_error",
                    "invalid_request",
                    "server_error",
                    "throttled_error",
                ],
            },
            "code": {"type": "string"},
            "detail": {"type": "string"},
            "attr": {"type": ["string", "null"]},
        },
        "required": ["type", "code", "detail", "attr"],
    },
)
ERROR_MESSAGE: Final = Component(
    "ErrorMessage",
    {
        "type": "object",
        "description": 'The bare `{"error": …}` body PostHog answers for sharing rules.',
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
    },
)
ERROR_DETAIL: Final = Component(
    "ErrorDetail",
    {
        "type": "object",
        "description": 'The bare `{"detail": …}` body PostHog answers kernel failures with.',
        "properties": {"detail": {"type": "string"}, "reason": {"type": "string"}},
        "required": ["detail"],
    },
)
