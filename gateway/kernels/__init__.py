"""Sandboxed kernels: provisioners, the ZMQ client, and the manager that owns them."""

from __future__ import annotations

from gateway.kernels.frames import FrameExport, FrameRequest
from gateway.kernels.manager import KernelManager
from gateway.kernels.provisioner import KernelProvisioner
from gateway.kernels.runtime import KernelConfig, KernelKey, KernelRuntime
from gateway.kernels.types import ExecutionResult, Resources

__all__ = [
    "ExecutionResult",
    "FrameExport",
    "FrameRequest",
    "KernelConfig",
    "KernelKey",
    "KernelManager",
    "KernelProvisioner",
    "KernelRuntime",
    "Resources",
]
