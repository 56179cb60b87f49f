"""SubprocessProvisioner: ipykernel as a local child process. NOT a sandbox.

A fast test double for the lifecycle contract (as httpx ships MockTransport beside its real
transports), and a development backend on machines without Docker. The kernel gets the
allowlisted environment only and the kernel-side helper from `images/kernel/`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Final

from gateway.kernels.backend import KernelBackend
from gateway.kernels.errors import SandboxError
from gateway.kernels.provisioner import ExitStatus, KernelProvisioner
from gateway.kernels.rundir import CONNECTION_FILE, SOCKETS_DIR
from gateway.kernels.types import ConnectionInfo, KernelLaunchSpec

HELPER_DIR: Final = Path(__file__).resolve().parents[2] / "images" / "kernel"


class SubprocessProvisioner(KernelProvisioner):
    """Runs `ipykernel_launcher` as a child process in its own session, no limits, no sandbox.

    Made by SubprocessBackend.provisioner(); the same lifecycle tests run against it and the
    DockerProvisioner. The process handle is its only state, so nothing survives a restart.
    """

    backend = "subprocess"

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def sandbox_id(self) -> str | None:
        """`pid-<pid>` once launched, else None."""
        return None if self._proc is None else f"pid-{self._proc.pid}"

    async def launch_kernel(self, spec: KernelLaunchSpec, info: ConnectionInfo) -> None:
        """Start ipykernel on `spec.run_dir`'s connection file with the allowlisted environment
        and the helper from images/kernel on PYTHONPATH. Raises SandboxError without the source
        tree or when the process cannot start."""
        if not (HELPER_DIR / "gateway_kernel.py").exists():
            msg = f"The subprocess backend needs the source tree ({HELPER_DIR} is missing)."
            raise SandboxError(msg)
        env = {
            **spec.env,
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(spec.run_dir / SOCKETS_DIR),
            "PYTHONPATH": str(HELPER_DIR),
            "IPYTHONDIR": str(spec.run_dir / SOCKETS_DIR / "ipython"),
            "MPLCONFIGDIR": str(spec.run_dir / SOCKETS_DIR / "matplotlib"),
        }
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ipykernel_launcher",
                "--IPKernelApp.exec_lines=import gateway_kernel",
                "--HistoryManager.enabled=False",
                "-f",
                str(spec.run_dir / CONNECTION_FILE),
                env=env,
                cwd=spec.run_dir / SOCKETS_DIR,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as err:
            msg = f"Could not start ipykernel: {err}"
            raise SandboxError(msg) from err

    async def poll(self) -> ExitStatus | None:
        """The return code once the process has exited (never OOM-killed: no limits)."""
        if self._proc is None or self._proc.returncode is None:
            return None
        return ExitStatus(exit_code=self._proc.returncode, oom_killed=False)

    async def wait(self) -> ExitStatus:
        """Await the process's exit; an unknown exit code when it was never launched."""
        if self._proc is None:
            return ExitStatus(exit_code=None, oom_killed=False)
        code = await self._proc.wait()
        return ExitStatus(exit_code=code, oom_killed=False)

    async def send_signal(self, signum: int) -> None:
        """Signal the process while it runs; a no-op before launch or after exit."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signum)

    async def kill(self) -> None:
        """SIGKILL the process and reap it. Idempotent."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()

    async def cleanup(self) -> None:
        """Defers to kill(): a process leaves nothing else behind (the run dir is the manager's)."""
        await self.kill()


class SubprocessBackend(KernelBackend):
    """ipykernel as a child process of the gateway: NOT sandboxed (development and tests).
    Its kernels cannot be re-attached after a restart (no handle), so `leftovers` is None."""

    name = "subprocess"

    def provisioner(self) -> KernelProvisioner:
        """A new SubprocessProvisioner for one kernel (called per launch)."""
        return SubprocessProvisioner()
