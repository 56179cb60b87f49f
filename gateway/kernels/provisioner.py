"""KernelProvisioner: the lifecycle interface of one sandboxed kernel (jupyter_client's words).

Methods model `subprocess.Popen`. `KernelManager` is the only caller. Implementations:
`DockerProvisioner` (the product) and `SubprocessProvisioner` (a fast, unsandboxed test double).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from gateway.kernels.types import ConnectionInfo, KernelLaunchSpec, Resources


@dataclass(frozen=True, kw_only=True)
class ExitStatus:
    """How a sandbox ended, from poll() or wait(): the exit code (None when unknown) and
    whether the memory limit killed it (reported with the kernel's death)."""

    exit_code: int | None
    oom_killed: bool


class KernelProvisioner(abc.ABC):
    """Owns the runtime of one kernel: launch, poll, wait, signal, stop, clean up."""

    backend: str = "abstract"
    #: Seconds from launch_kernel()'s start until the sandbox was created (None: one step).
    created_after_s: float | None = None

    @property
    @abc.abstractmethod
    def sandbox_id(self) -> str | None:
        """The container (or process) id once launched."""

    @abc.abstractmethod
    async def launch_kernel(self, spec: KernelLaunchSpec, info: ConnectionInfo) -> None:
        """Start the sandbox with the connection file already written in `spec.run_dir`.

        Called from KernelManager.start(). Returns once the sandbox runs; readiness (a
        kernel_info_reply) is the manager's job. Raises SandboxError with a user-facing reason.
        """

    @abc.abstractmethod
    async def poll(self) -> ExitStatus | None:
        """None while running, else how it ended."""

    @abc.abstractmethod
    async def wait(self) -> ExitStatus:
        """Block until the sandbox exits. The manager's death watcher awaits this."""

    @abc.abstractmethod
    async def send_signal(self, signum: int) -> None:
        """Deliver a signal to the kernel process (SIGINT is the interrupt of last resort)."""

    @abc.abstractmethod
    async def kill(self) -> None:
        """Stop the sandbox now. Idempotent."""

    @abc.abstractmethod
    async def cleanup(self) -> None:
        """Remove what launch created (container, process). Idempotent; after kill()."""

    async def address(self) -> str | None:
        """tcp: the kernel's network address, as the engine reports it (None: no network)."""
        return None

    async def resize(self, resources: Resources) -> bool:
        """Apply new limits to the running sandbox; False when that needs a restart."""
        return False
