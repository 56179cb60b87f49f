"""What the engine offers kernels and where it is: its registered container runtimes (runc,
gVisor's runsc and the arguments runsc needs on hosts like ours), and whether `DOCKER_HOST`
names this host (only then may the gateway change the host itself: firewall rules, cgroups)."""

from __future__ import annotations

import os
from typing import Any, Final

# gVisor on hosts like ours: its own network stack cannot start in the root network namespace,
# and the kernel's ipc sockets only cross its file proxy with host unix sockets allowed.
RUNSC_ARGS: Final = ("--network=none", "--host-uds=all")


def is_gvisor(runtime: str, registered: dict[str, Any]) -> bool:
    """Whether `runtime` is gVisor (by name, or a registered path ending in runsc)."""
    path = str((registered.get(runtime) or {}).get("path", ""))
    return runtime == "runsc" or path.endswith("runsc")


def engine_is_local() -> bool:
    """Whether DOCKER_HOST names this host's engine (unset, or a unix socket)."""
    host = os.environ.get("DOCKER_HOST", "")
    return not host or host.startswith("unix://")


def runtime_problem(runtime: str, registered: dict[str, Any]) -> str | None:
    """Why `runtime` cannot run kernels on an engine with `registered` runtimes (its
    `docker info` Runtimes), or None."""
    if runtime not in registered:
        names = ", ".join(sorted(registered)) or "none"
        return (
            f"Container runtime {runtime!r} is not registered with the Docker engine (it has:"
            f" {names}). For gVisor run scripts/ensure-gvisor; kernels do not start until then."
        )
    if is_gvisor(runtime, registered):
        args = registered[runtime].get("runtimeArgs") or []
        missing = [arg for arg in RUNSC_ARGS if arg not in args]
        if missing:
            return (
                f"Container runtime {runtime!r} lacks the runtime arguments {' '.join(missing)}"
                " in the engine's daemon.json (gVisor's own network stack does not start here,"
                " and ipc sockets need host unix sockets): run scripts/ensure-gvisor."
            )
    return None
