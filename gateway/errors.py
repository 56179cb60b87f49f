"""The gateway's error tree. The middleware renders every one of these; handlers only raise.

    GatewayError (500 server_error)
    ├── InvalidRequest (400 validation_error / invalid_input)
    │   └── SharingError (400, rendered {"error": detail})
    ├── NotAuthenticated (401 authentication_error / not_authenticated)
    │   └── AuthenticationFailed (401 / authentication_failed)
    ├── PermissionDenied (403 authentication_error / permission_denied)
    ├── NotFound (404 invalid_request / not_found)
    ├── MethodNotAllowed (405, empty body)
    ├── RequestTimeout (408 invalid_request / request_timeout)
    ├── Conflict (409 server_error / conflict)
    │   └── CollabConflict (409, rendered {"code": "conflict", steps, client_ids, version})
    ├── CollabStale (410, rendered {"code": "conflict_stale"})
    ├── PayloadTooLarge (413 invalid_request / payload_too_large)
    ├── ShareLoginFailed (401, rendered {"error": detail})
    ├── TooManyRequests (429 throttled_error / throttled, Retry-After)
    └── ServiceUnavailable (503 server_error / service_unavailable)

The body is PostHog's (drf-exceptions-hog) `{"type", "code", "detail", "attr"}`, except where
PostHog itself answers `{"error": ...}` (sharing password errors) or a bare `{"code", ...}`
(collab save rejections); see `body_style`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal


class GatewayError(Exception):
    """Base of every error the gateway answers with on purpose."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    code: ClassVar[str] = "error"
    body_style: ClassVar[Literal["posthog", "error", "code", "empty"]] = "posthog"

    def __init__(
        self,
        detail: str,
        *,
        attr: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.attr = attr
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any] | None:
        """The JSON body for this error, or None for an empty body."""
        if self.body_style == "empty":
            return None
        if self.body_style == "error":
            return {"error": self.detail, **self.extra}
        if self.body_style == "code":
            return {"code": self.code, **self.extra}
        return {
            "type": self.error_type,
            "code": self.code,
            "detail": self.detail,
            "attr": self.attr,
            **self.extra,
        }


class InvalidRequest(GatewayError):
    """A malformed or invalid request (body, query, path); `attr` names the field."""

    status = 400
    error_type = "validation_error"
    code = "invalid_input"


class SharingError(InvalidRequest):
    """A sharing rule PostHog answers with a bare `{"error": ...}` body."""

    body_style = "error"


class NotAuthenticated(GatewayError):
    """No credentials where a route needs a personal API key."""

    status = 401
    error_type = "authentication_error"
    code = "not_authenticated"


class AuthenticationFailed(NotAuthenticated):
    """Credentials were given but match no live key."""

    code = "authentication_failed"


class PermissionDenied(GatewayError):
    """The key lacks the scope the route requires."""

    status = 403
    error_type = "authentication_error"
    code = "permission_denied"


class NotFound(GatewayError):
    """No such route, notebook, kernel or shared link; also a project the key's user is not a
    member of, so other projects' ids do not leak."""

    status = 404
    error_type = "invalid_request"
    code = "not_found"


class MethodNotAllowed(GatewayError):
    """The path exists but not with this method: 405 with an empty body."""

    status = 405
    error_type = "invalid_request"
    code = "method_not_allowed"
    body_style = "empty"


class RequestTimeout(GatewayError):
    """The client did not send its request body in time (`body_read_timeout_s`)."""

    status = 408
    error_type = "invalid_request"
    code = "request_timeout"


class Conflict(GatewayError):
    """A notebook write against a stale `version` (the compare-and-swap failed)."""

    status = 409
    error_type = "server_error"
    code = "conflict"


class CollabConflict(Conflict):
    """A collab save behind the log: `extra` carries the missed steps to rebase over."""

    body_style = "code"


class CollabStale(GatewayError):
    """A collab save whose missed range is gone: the client must reload the notebook."""

    status = 410
    error_type = "invalid_request"
    code = "conflict_stale"
    body_style = "code"


class PayloadTooLarge(GatewayError):
    """A body, cell or result over its byte cap; the detail names the setting."""

    status = 413
    error_type = "invalid_request"
    code = "payload_too_large"


class ShareLoginFailed(GatewayError):
    """A wrong password for a protected shared link (PostHog's `{"error": ...}` body)."""

    status = 401
    error_type = "authentication_error"
    code = "incorrect_password"
    body_style = "error"


class TooManyRequests(GatewayError):
    """A limit on concurrent work was hit (kernel quotas, a full execution queue)."""

    status = 429
    error_type = "throttled_error"
    code = "throttled"


class ServiceUnavailable(GatewayError):
    """A dependency cannot serve now (no Docker engine, a busy translator)."""

    status = 503
    error_type = "server_error"
    code = "service_unavailable"


ALL_ERRORS: tuple[type[GatewayError], ...] = (
    GatewayError,
    InvalidRequest,
    SharingError,
    NotAuthenticated,
    AuthenticationFailed,
    PermissionDenied,
    NotFound,
    MethodNotAllowed,
    RequestTimeout,
    Conflict,
    CollabConflict,
    CollabStale,
    PayloadTooLarge,
    ShareLoginFailed,
    TooManyRequests,
    ServiceUnavailable,
)
