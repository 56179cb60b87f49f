"""KernelRuntime: the gateway's record of one kernel, and the slot that serializes its work."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.kernels.bridge import KernelBridge
from gateway.kernels.channels import CurveKeys
from gateway.kernels.client import KernelConnection
from gateway.kernels.frames import FrameChannel
from gateway.kernels.provisioner import KernelProvisioner
from gateway.kernels.relay import KernelRelay
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
    run_dir: RunDir | None  # ipc: where its sockets are; tcp: None (nothing is shared)
    kernel_run_dir: str
    # the HMAC key of its connection, kept here and in the records (never re-read from run_dir)
    connection_key: str
    resources: Resources
    idle_timeout_s: float
    started_at: datetime
    last_used_at: datetime
    # tcp: the kernel's CurveZMQ key pair and its address on the kernel network (the engine's)
    curve: CurveKeys | None = None
    address: str | None = None
    connection: KernelConnection | None = None
    status: str = "starting"
    execution_state: str | None = None
    last_error: str | None = None
    timings: Timings = field(default_factory=Timings)
    watcher: asyncio.Task[None] | None = None
    bridge: KernelBridge | None = None
    frames: FrameChannel | None = None  # where data-frame exports arrive
    relay: KernelRelay | None = None  # holds every socket to the kernel (relay.py)
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


@dataclass(kw_only=True)
class KernelSlot:
    """Everything for one key: a FIFO lock for start/execute/restart and the current runtime."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0
    runtime: KernelRuntime | None = None
