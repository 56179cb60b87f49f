"""HogQL errors: exposed ones carry a stable code and the span of the offending text.

InvalidRequest (400)
└── HogQLError  — rendered {"error": message, "code", "start", "end"} (PostHog's body + spans)
    ├── HogQLSyntaxError   hogql_syntax_error   the parser refused the text
    ├── HogQLQueryError    hogql_query_error    unknown table/field/function, bad arity, …
    └── HogQLUnsupported   hogql_unsupported    valid HogQL this gateway does not run yet
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest


class HogQLError(InvalidRequest):
    code = "hogql_error"

    def __init__(self, message: str, *, start: int | None = None, end: int | None = None) -> None:
        super().__init__(message)
        self.start = start
        self.end = end

    def body(self) -> dict[str, Any] | None:
        return {"error": self.detail, "code": self.code, "start": self.start, "end": self.end}


class HogQLSyntaxError(HogQLError):
    code = "hogql_syntax_error"


class HogQLQueryError(HogQLError):
    code = "hogql_query_error"


class HogQLUnsupported(HogQLError):
    code = "hogql_unsupported"
