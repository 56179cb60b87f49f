"""KernelBackend: chosen once at startup, it decides how this gateway's kernels are made.

jupyter_client pairs a provisioner (one kernel's lifecycle) with a factory that picks it; here
the backend is that factory plus the decisions that follow from the sandbox: the uid the
kernel runs as (so the gateway hands files to it), where the kernel sees its run directory,
whether the run directory gets its own tmpfs quota, and which of its sandboxes survived an
earlier gateway process. `gateway.kernels.context` builds it from Settings; the manager and its
collaborators only ask it.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.kernels.provisioner import KernelProvisioner
from gateway.kernels.rundir import CONTAINER_RUN_DIR


@dataclass(frozen=True, kw_only=True)
class Leftover:
    """A sandbox an earlier gateway process started (found by its instance label)."""

    sandbox_id: str
    running: bool
    #: why it cannot be re-attached whatever the records say (its image speaks another
    #: kernel protocol), else None
    stale: str | None
    name: str
    attach: Callable[[], KernelProvisioner]
    remove: Callable[[], Awaitable[None]]


class KernelBackend(abc.ABC):
    """How kernels are provisioned. Implementations: `DockerBackend` (the product, sandboxed)
    and `SubprocessBackend` (a fast, unsandboxed development and test double)."""

    name: str = "abstract"
    #: the kernel's uid for files the gateway hands it (None: the gateway's own user)
    uid: int | None = None
    #: MB of the run directory's own tmpfs (0: a plain directory)
    run_dir_quota_mb: int = 0
    #: the container runtime kernels run in (None: not a container)
    runtime: str | None = None
    #: why kernels cannot start as configured (found by check() at start-up), else None
    problem: str | None = None
    #: how the gateway reaches a kernel: `ipc` (its run directory) or `tcp` (its address)
    transport: str = "ipc"
    #: tcp: who keeps kernels off the host's own addresses (`iptables`: this gateway's rules,
    #: `external`: the operator's), else None
    firewall: str | None = None
    #: where kernels' cgroups go and the CPU weight of that parent, as `kernel/status` reports
    #: it (`{"parent", "cpu_shares", "problem"}`; None: not a container backend)
    cgroup: dict[str, Any] | None = None

    async def check(self) -> None:
        """Find out at start-up whether the configured sandbox can run here; set `problem`
        when not (starts then fail with it: never a silent fallback to a weaker sandbox)."""
        return None

    def describe(self) -> dict[str, Any]:
        """The sandbox as `kernel/status` reports it."""
        return {
            "runtime": self.runtime,
            "transport": self.transport,
            "firewall": self.firewall,
            "cgroup": self.cgroup,
            "problem": self.problem,
        }

    @abc.abstractmethod
    def provisioner(self) -> KernelProvisioner:
        """A fresh provisioner for one kernel (not launched yet)."""

    def kernel_run_dir(self, host_path: Path) -> str:
        """Where the kernel sees its run directory (a sandbox mounts it at a fixed path)."""
        return CONTAINER_RUN_DIR if self.uid is not None else str(host_path)

    async def leftovers(self, instance: str) -> list[Leftover] | None:
        """Sandboxes of `instance` that exist now, or None when this backend cannot find or
        re-attach them (records of its kernels are then forgotten). Raises SandboxError when
        the engine does not answer (records are then kept for next time)."""
        return None

    async def shutdown(self) -> None:
        """Remove what check() set up for kernels (after every kernel was stopped)."""
        return None

    def close(self) -> None:
        """Release the engine connection (after every kernel was stopped)."""
        return None
