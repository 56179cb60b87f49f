"""Values shared by the kernel modules: connection info, launch specs, execution results."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict


class ConnectionInfo(TypedDict):
    """jupyter_client's connection-file dict (ipc transport): `load_connection_info` takes it."""

    transport: str
    ip: str
    shell_port: int
    iopub_port: int
    stdin_port: int
    control_port: int
    hb_port: int
    key: str
    signature_scheme: str
    kernel_name: str


@dataclass(frozen=True, kw_only=True)
class Resources:
    """CPU cores and memory (GB) of one kernel's sandbox, from the notebook's config or the
    defaults."""

    cpu_cores: float
    memory_gb: float


@dataclass(frozen=True, kw_only=True)
class KernelLaunchSpec:
    """What a provisioner needs to start one kernel."""

    runtime_id: str
    run_dir: Path
    resources: Resources
    labels: dict[str, str]
    env: dict[str, str]


@dataclass(kw_only=True)
class Timings:
    """Seconds since the start request, per phase."""

    created: float | None = None
    started: float | None = None
    ready: float | None = None


@dataclass(kw_only=True)
class ExecutionResult:
    """What one execution produced, as the execute route renders it: status, capped output, the
    last result, media, the error, variables, and what the gateway dropped or truncated."""

    status: str
    stdout: str = ""
    stderr: str = ""
    result: dict[str, Any] | None = None
    media: list[dict[str, str]] = field(default_factory=list)
    execution_count: int | None = None
    error_name: str | None = None
    error_value: str | None = None
    traceback: list[str] = field(default_factory=list)
    variables: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False
    variables_survived: bool | None = None
    oom_killed: bool | None = None
    media_dropped: int = 0  # images left out: over kernel_max_media_(total_)bytes
    messages_dropped: int = 0  # output messages the gateway could not queue (byte bound)
