"""Schemas of the kernel routes' bodies and answers (PostHog's, plus the gateway's extras)."""

from __future__ import annotations

from typing import Any, Final

from gateway.api._schemas import DATETIME, DATETIME_OR_NULL, STRING_OR_NULL, obj
from gateway.contract import Component
from gateway.errors import GatewayError
from gateway.kernels.errors import (
    KernelExecuteFailed,
    KernelQueueFull,
    KernelQuotaExceeded,
    KernelStartFailed,
)

_SECONDS_OR_NULL: Final = {"type": ["number", "null"], "minimum": 0}
_RESOURCES: Final[dict[str, Any]] = {
    "cpu_cores": {"type": "number"},
    "memory_gb": {"type": "number"},
    "idle_timeout_seconds": {"type": "integer"},
}
_STATE: Final[dict[str, Any]] = {
    "backend": {"type": "string", "enum": ["docker", "subprocess"]},
    "status": {"type": "string"},
    "execution_state": STRING_OR_NULL,
    "last_used_at": DATETIME_OR_NULL,
    "last_error": STRING_OR_NULL,
    "runtime_id": STRING_OR_NULL,
    "kernel_id": STRING_OR_NULL,
    "container_id": STRING_OR_NULL,
    **_RESOURCES,
    "started_at": DATETIME_OR_NULL,
    "idle_expires_at": DATETIME_OR_NULL,
    "timings": {
        "type": ["object", "null"],
        "properties": {
            "sandbox_created_s": _SECONDS_OR_NULL,
            "sandbox_started_s": _SECONDS_OR_NULL,
            "kernel_ready_s": _SECONDS_OR_NULL,
        },
    },
}
_CGROUP: Final = obj(
    ("parent", "cpu_shares", "problem"),
    parent=STRING_OR_NULL,
    cpu_shares={"type": ["integer", "null"]},
    problem=STRING_OR_NULL,
)
_SANDBOX: Final = obj(
    ("runtime", "transport", "firewall", "cgroup", "problem"),
    runtime=STRING_OR_NULL,
    transport={"type": "string", "enum": ["ipc", "tcp"]},
    firewall={"type": ["string", "null"], "enum": ["iptables", "external", None]},
    cgroup={**_CGROUP, "type": ["object", "null"]},
    problem=STRING_OR_NULL,
)
KERNEL_STATUS: Final = Component(
    "KernelStatus", obj((*_STATE, "sandbox"), **_STATE, sandbox=_SANDBOX)
)
KERNEL_RUNTIME: Final = Component(
    "KernelRuntime", obj(("id", *_STATE), id={"type": "string"}, **_STATE)
)
CONFIG_RESULT: Final = Component(
    "KernelConfig",
    obj(
        ("cpu_cores", "memory_gb", "idle_timeout_seconds", "applied"),
        cpu_cores={"type": ["number", "null"]},
        memory_gb={"type": ["number", "null"]},
        idle_timeout_seconds={"type": ["integer", "null"]},
        applied={"type": "string", "enum": ["live", "next_start"]},
    ),
)
EXECUTE_BODY: Final = Component(
    "KernelExecute",
    obj(
        ("code",),
        code={"type": "string", "description": "The cell (may be blank)."},
        return_variables={"type": "boolean", "default": True},
        timeout={"type": "number", "minimum": 0.1, "maximum": 120, "default": 30},
    ),
)
EXECUTE_RESULT: Final = Component(
    "KernelExecutionResult",
    obj(
        (
            "status",
            "stdout",
            "stderr",
            "result",
            "media",
            "execution_count",
            "error_name",
            "traceback",
            "variables",
            "started_at",
            "completed_at",
            "kernel_runtime",
        ),
        status={"type": "string"},
        stdout={"type": "string"},
        stderr={"type": "string"},
        result={"type": ["object", "null"], "description": "MIME bundle of the last result."},
        media={
            "type": "array",
            "items": obj(mime_type={"type": "string"}, data={"type": "string"}),
        },
        execution_count={"type": ["integer", "null"]},
        error_name=STRING_OR_NULL,
        error_value=STRING_OR_NULL,
        traceback={"type": "array", "items": {"type": "string"}},
        variables={"type": ["object", "null"]},
        truncated={"type": "boolean"},
        started_at=DATETIME,
        completed_at=DATETIME,
        kernel_runtime=obj(
            ("id", "status"),
            id={"type": "string"},
            status={"type": "string"},
            last_used_at=DATETIME_OR_NULL,
        ),
        variables_survived={"type": "boolean"},
        oom_killed={"type": "boolean"},
        media_dropped={"type": "integer", "minimum": 1},
        messages_dropped={"type": "integer", "minimum": 1},
    ),
)
DATAFRAME_PAGE: Final = Component(
    "KernelDataframePage",
    obj(
        ("columns", "rows", "row_count"),
        columns={"type": "array", "items": {"type": "string"}},
        rows={"type": "array", "items": {"type": "object"}},
        row_count={"type": "integer", "minimum": 0},
    ),
)
START_ERRORS: Final[tuple[type[GatewayError], ...]] = (KernelQuotaExceeded, KernelStartFailed)
RUN_ERRORS: Final[tuple[type[GatewayError], ...]] = (
    KernelQueueFull,
    *START_ERRORS,
    KernelExecuteFailed,
)


def _choice(values: tuple[float, ...], kind: str, attr: str) -> dict[str, Any]:
    return {"type": kind, "enum": list(values), "x-message": f"{attr} must be a supported option."}


def choices_body(
    cpu: tuple[float, ...], memory: tuple[float, ...], idle: tuple[float, ...]
) -> dict[str, Any]:
    """`kernel/config`'s body: one or more fields, each one of PostHog's options."""
    names = ("cpu_cores", "memory_gb", "idle_timeout_seconds")
    return {
        **obj(
            cpu_cores=_choice(cpu, "number", "cpu_cores"),
            memory_gb=_choice(memory, "number", "memory_gb"),
            idle_timeout_seconds=_choice(idle, "integer", "idle_timeout_seconds"),
        ),
        "anyOf": [{"required": [name]} for name in names],
        "x-message": "Provide at least one kernel configuration option.",
    }
