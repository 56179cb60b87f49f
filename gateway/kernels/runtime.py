"""KernelRuntime: the gateway's record of one kernel, and the slot that serializes its work."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.clock import isoformat
from gateway.kernels.bridge import KernelBridge
from gateway.kernels.client import KernelConnection
from gateway.kernels.frames import FrameChannel
from gateway.kernels.provisioner import KernelProvisioner
from gateway.kernels.rundir import RunDir
from gateway.kernels.types import Resources, Timings


@dataclass(frozen=True, kw_only=True)
class KernelConfig:
    """Resources and idle timeout for a kernel (the notebook's stored config or defaults)."""

    resources: Resources
    idle_timeout_s: float


@dataclass(frozen=True, kw_only=True)
class KernelKey:
    """One kernel per (project, notebook, user): two users never share variables."""

    project_id: int
    short_id: str
    user_id: int


@dataclass(kw_only=True)
class KernelRuntime:
    id: str
    key: KernelKey
    provisioner: KernelProvisioner
    run_dir: RunDir
    kernel_run_dir: str
    # the HMAC key of its connection, kept here and in the records (never re-read from run_dir)
    connection_key: str
    resources: Resources
    idle_timeout_s: float
    started_at: datetime
    last_used_at: datetime
    connection: KernelConnection | None = None
    status: str = "starting"
    execution_state: str | None = None
    last_error: str | None = None
    timings: Timings = field(default_factory=Timings)
    watcher: asyncio.Task[None] | None = None
    bridge: KernelBridge | None = None
    frames: FrameChannel | None = None  # where data-frame exports arrive
    # the kernel's uid, for files the gateway makes in its run dir (None: the gateway's own)
    uid: int | None = None
    stopping: bool = False

    @property
    def kernel_id(self) -> str:
        return f"kernel-{self.id}"

    @property
    def alive(self) -> bool:
        return self.status in {"starting", "running"}

    def idle_expires_at(self) -> datetime:
        return self.last_used_at + timedelta(seconds=self.idle_timeout_s)

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.provisioner.backend,
            "status": self.status,
            "execution_state": self.execution_state if self.alive else None,
            "last_used_at": isoformat(self.last_used_at),
            "last_error": self.last_error,
            "runtime_id": self.id,
            "kernel_id": self.kernel_id,
            "container_id": self.provisioner.sandbox_id,
            "cpu_cores": self.resources.cpu_cores,
            "memory_gb": self.resources.memory_gb,
            "idle_timeout_seconds": self.idle_timeout_s,
            "started_at": isoformat(self.started_at),
            "idle_expires_at": isoformat(self.idle_expires_at()) if self.alive else None,
            "timings": {
                "sandbox_created_s": self.timings.created,
                "sandbox_started_s": self.timings.started,
                "kernel_ready_s": self.timings.ready,
            },
        }


@dataclass(kw_only=True)
class KernelSlot:
    """Everything for one key: a FIFO lock for start/execute/restart and the current runtime."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0
    runtime: KernelRuntime | None = None


def status_json(
    runtime: KernelRuntime | None, *, backend: str, config: KernelConfig
) -> dict[str, Any]:
    if runtime is None:
        return {
            "backend": backend,
            "status": "stopped",
            "execution_state": None,
            "last_used_at": None,
            "last_error": None,
            "runtime_id": None,
            "kernel_id": None,
            "container_id": None,
            "cpu_cores": config.resources.cpu_cores,
            "memory_gb": config.resources.memory_gb,
            "idle_timeout_seconds": config.idle_timeout_s,
            "started_at": None,
            "idle_expires_at": None,
            "timings": None,
        }
    return runtime.to_json()
