"""HogQL errors: exposed ones carry a stable code and the span of the offending text.

InvalidRequest (400)
└── HogQLError  — rendered {"error": message, "code", "start", "end"} (PostHog's body + spans)
    ├── HogQLSyntaxError   hogql_syntax_error   the parser refused the text
    ├── HogQLQueryError    hogql_query_error    unknown table/field/function, bad arity, …
    ├── HogQLUnsupported   hogql_unsupported    valid HogQL this gateway does not run yet
    ├── HogQLTooComplex    hogql_too_complex    over a text limit, or not translated in time
    └── HogQLResultTooLarge hogql_result_too_large  the result is over `hogql_max_result_bytes`
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest


class HogQLError(InvalidRequest):
    """Base of HogQL errors: a 400 whose body is PostHog's `{error, code, start, end}` (the span
    of the offending text)."""

    code = "hogql_error"

    def __init__(self, message: str, *, start: int | None = None, end: int | None = None) -> None:
        super().__init__(message)
        self.start = start
        self.end = end

    def body(self) -> dict[str, Any] | None:
        """PostHog's HogQL error body: the message, this class's code and the span (None when
        unknown)."""
        return {"error": self.detail, "code": self.code, "start": self.start, "end": self.end}


class HogQLSyntaxError(HogQLError):
    """The parser refused the text (PostHog's own parser, so the same texts are refused)."""

    code = "hogql_syntax_error"


class HogQLQueryError(HogQLError):
    """The query parsed but cannot run: an unknown table, field or function, a wrong argument
    count or type, a DuckDB refusal."""

    code = "hogql_query_error"


class HogQLUnsupported(HogQLError):
    """Valid HogQL this gateway does not run (yet): the message names the construct."""

    code = "hogql_unsupported"


class HogQLTooComplex(HogQLError):
    """Over a raw-text limit (length, tokens, nesting) or not translated within the time budget;
    the message names the limit and its setting."""

    code = "hogql_too_complex"


class HogQLResultTooLarge(HogQLError):
    """The result passed `hogql_max_result_bytes`: reading stopped there (400, not 413: the
    request was fine, the query asked for too much)."""

    code = "hogql_result_too_large"
