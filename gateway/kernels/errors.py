"""Kernel errors, placed in the gateway's error tree (`gateway/errors.py`).

ServiceUnavailable
├── KernelStartFailed (503 {"detail": "Failed to start notebook kernel.", "reason": ...})
└── KernelExecuteFailed (503 {"detail": "Failed to execute notebook code."})
TooManyRequests
├── KernelQueueFull (429)
└── KernelQuotaExceeded (429: kernel_max_per_user / kernel_max_per_project)
PermissionDenied
└── KernelConfigOverLimit (403: kernel_max_cpu_cores / _memory_gb / _idle_timeout_s)
PayloadTooLarge
├── FrameTooLarge (413)
└── CellTooLarge (413: kernel_max_cell_bytes)
KernelDied (internal: raised by the client when the sandbox exits mid-execution)
"""

from __future__ import annotations

from typing import Any

from gateway.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ServiceUnavailable,
    TooManyRequests,
)


class _DetailOnly(ServiceUnavailable):
    """PostHog answers kernel 503s with `{"detail": ...}` (+ our `reason`)."""

    def body(self) -> dict[str, Any] | None:
        return {"detail": self.detail, **self.extra}


class KernelStartFailed(_DetailOnly):
    """No kernel could be started (engine unreachable, image missing, limits, startup timeout):
    a 503 with the reason."""

    code = "kernel_start_failed"

    def __init__(self, reason: str) -> None:
        super().__init__("Failed to start notebook kernel.", extra={"reason": reason})
        self.reason = reason


class KernelExecuteFailed(_DetailOnly):
    """An execution or data-frame export failed in the gateway's dealings with the kernel (not
    the user's code): a 503."""

    code = "kernel_execute_failed"

    def __init__(self, reason: str) -> None:
        super().__init__("Failed to execute notebook code.", extra={"reason": reason})


class KernelNotRunning(NotFound):
    """The request needs a running kernel and there is none (execute a cell first): a 404."""

    code = "kernel_not_running"

    def body(self) -> dict[str, Any] | None:
        """PostHog's bare `{"detail": …}` body for kernel routes."""
        return {"detail": self.detail}


class InvalidDataframeRequest(InvalidRequest):
    """PostHog's body for a variable that is not a data frame."""

    code = "invalid_dataframe_request"

    def body(self) -> dict[str, Any] | None:
        """PostHog's bare `{"detail": …}` body for kernel routes."""
        return {"detail": self.detail, **self.extra}


class FrameTooLarge(PayloadTooLarge):
    """The requested data-frame slice is over its byte cap: a 413 naming the cap."""

    code = "frame_too_large"


class KernelQueueFull(TooManyRequests):
    """Too many executions already wait for this kernel (kernel_queue_size): a 429."""

    code = "kernel_queue_full"


class KernelQuotaExceeded(TooManyRequests):
    """The user or project already runs its allowed number of kernels."""

    code = "kernel_quota_exceeded"


class KernelConfigOverLimit(PermissionDenied):
    """A `kernel/config` value above what this gateway lets a member set."""

    code = "kernel_config_over_limit"


class CellTooLarge(PayloadTooLarge):
    """A cell over kernel_max_cell_bytes: a 413, refused before anything parses it."""

    code = "cell_too_large"


class KernelDied(Exception):
    """The sandbox exited while the gateway was talking to it."""

    def __init__(self, *, exit_code: int | None, oom_killed: bool) -> None:
        super().__init__(f"kernel exited ({exit_code})")
        self.exit_code = exit_code
        self.oom_killed = oom_killed


class SandboxError(Exception):
    """The provisioner could not create or control a sandbox; `reason` is for the user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
