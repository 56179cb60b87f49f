"""The kernels' own parent cgroup, and its CPU weight.

Docker puts each container's cgroup under one parent (`/docker` with the cgroupfs driver), and
under contention the CPU is shared between that parent and the host's own tasks first; a
container's `cpu_shares` only orders it among its siblings. So every tenant's kernel *together*
weighed as much as one ordinary host thread, however low each kernel's shares: four kernels
flooding output kept the gateway's event loop waiting for a CPU (docs/benchmarks.md, round 9).
Kernels therefore go under a parent of their own (`kernel_cgroup_parent`) whose weight the
gateway sets (`kernel_cgroup_cpu_shares`, 512 by default: all kernels together half a default
task, a sixth of one of the gateway's threads at niceness -5). A weight is work-conserving:
kernels still use every idle cycle, within their own CPU quotas; they only yield when the
gateway or the host needs the CPU.

`placement()` decides from the engine's `docker info` what is passed to Docker and what the
gateway writes; `set_weight()` writes it (blocking file writes in /sys/fs/cgroup: callers run
it in a thread). Only on the engine's own host, with Docker's cgroupfs driver: with systemd's,
the parent is a slice whose CPUWeight systemd owns.
"""

from __future__ import annotations

import errno
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gateway.kernels.errors import SandboxError

_log = logging.getLogger(__name__)
ROOT: Final = Path("/sys/fs/cgroup")
_DEFAULT_SHARES: Final = 1024  # cgroup v1's default, which cgroup v2's weight 100 stands for
# a systemd slice of the gateway's: a name without '/', never the root slice `-.slice`
SLICE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.slice")


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where kernels' cgroups go and who sets the parent's weight."""

    #: passed to Docker as each kernel's `cgroup_parent` (None: the engine's default parent)
    parent: str | None
    #: the weight the gateway is to write (None: not the gateway's to write)
    shares: int | None
    #: cgroup v1 or v2 (from `docker info`)
    version: str
    #: why the weight is not what the settings ask for, else None
    problem: str | None = None


def placement(parent: str, shares: int, info: dict[str, Any], *, local: bool) -> Placement:
    """What to do with `kernel_cgroup_parent` = `parent` and `kernel_cgroup_cpu_shares` =
    `shares` on an engine whose `docker info` is `info` (`local`: it runs on this host)."""
    driver = str(info.get("CgroupDriver") or "")
    version = str(info.get("CgroupVersion") or "1")
    if not parent:
        return Placement(parent=None, shares=None, version=version)
    if driver == "systemd":
        return _under_systemd(parent, shares, version)
    if driver == "cgroupfs" and not parent.startswith("/"):
        problem = (
            f"With the engine's cgroupfs driver the parent is an absolute cgroup path, not"
            f" {parent!r} (runc would put it under its own cgroup): set"
            " GATEWAY_KERNEL_CGROUP_PARENT to one, e.g. /notebook-kernels. Kernels go under"
            " Docker's own parent."
        )
        return Placement(parent=None, shares=None, version=version, problem=problem)
    if driver != "cgroupfs":
        problem = (
            f"The engine's cgroup driver is {driver or 'unknown'}: kernels go under its own parent."
        )
        return Placement(parent=None, shares=None, version=version, problem=problem)
    if not shares:
        return Placement(parent=parent, shares=None, version=version)  # the operator's
    if not local:
        problem = (
            f"The weight of {parent} can only be set where the engine runs, and DOCKER_HOST"
            " names another host: set it there (docs/kernels.md) and"
            " GATEWAY_KERNEL_CGROUP_CPU_SHARES=0."
        )
        return Placement(parent=parent, shares=None, version=version, problem=problem)
    return Placement(parent=parent, shares=shares, version=version)


def apply(
    parent: str, shares: int, info: dict[str, Any], *, local: bool, root: Path = ROOT
) -> tuple[str | None, dict[str, Any]]:
    """Decide (placement()) and write (set_weight()) the kernels' parent and its weight:
    returns the `cgroup_parent` for Docker and the report for `kernel/status`. What could not
    be done is logged and reported, never raised. Blocking: run it in a thread."""
    placed = placement(parent, shares, info, local=local)
    written, problem = placed.shares, placed.problem
    if placed.parent is not None and written is not None:
        try:
            set_weight(placed.parent, written, placed.version, root=root)
        except SandboxError as err:
            written, problem = None, err.reason
    if problem is not None:
        _log.warning("kernels' CPU weight: %s", problem)
    return placed.parent, {"parent": placed.parent, "cpu_shares": written, "problem": problem}


def _under_systemd(parent: str, shares: int, version: str) -> Placement:
    """systemd's cgroup driver: a parent is a slice, whose weight systemd owns."""
    if not SLICE.fullmatch(parent):
        problem = (
            "The engine uses systemd's cgroup driver, whose parents are slices: set"
            " GATEWAY_KERNEL_CGROUP_PARENT to one (e.g. notebook-kernels.slice) and its"
            " CPUWeight with systemctl set-property. Kernels go under Docker's own parent."
        )
        return Placement(parent=None, shares=None, version=version, problem=problem)
    owned = (
        f"systemd owns the weight of {parent}: set it with `systemctl set-property {parent}"
        " CPUWeight=...` and GATEWAY_KERNEL_CGROUP_CPU_SHARES=0 (docs/kernels.md)."
    )
    return Placement(parent=parent, shares=None, version=version, problem=owned if shares else None)


def v2_weight(shares: int) -> int:
    """cgroup v2's `cpu.weight` for v1 `shares`, keeping the ratio to the default (1024 ->
    100)."""
    return max(1, min(10_000, round(shares * 100 / _DEFAULT_SHARES)))


def set_weight(parent: str, shares: int, version: str, *, root: Path = ROOT) -> None:
    """Make the cgroup `parent` (made now if missing) weigh `shares` in the CPU controller.
    Raises SandboxError with the reason."""
    relative = parent.strip("/")
    try:
        if version == "2":
            _enable_cpu(root, relative)
            path = root / relative
            path.mkdir(parents=True, exist_ok=True)
            (path / "cpu.weight").write_text(str(v2_weight(shares)))
        else:
            controller = root / "cpu"
            if not controller.is_dir():
                controller = root / "cpu,cpuacct"
            path = controller / relative
            path.mkdir(parents=True, exist_ok=True)
            (path / "cpu.shares").write_text(str(shares))
    except OSError as err:
        why: object = err
        if err.errno in {errno.EACCES, errno.EPERM}:
            why = "not root?"
        elif err.errno == errno.EROFS:
            why = "/sys/fs/cgroup is read-only here: a gateway in a container?"
        msg = (
            f"Could not set the CPU weight of the kernels' cgroup {parent} ({why}): kernels"
            " compete with the gateway at the engine's default weight."
        )
        raise SandboxError(msg) from err


def _enable_cpu(root: Path, relative: str) -> None:
    """cgroup v2: the cpu controller enabled for the children of every cgroup from the root
    down to `relative`'s parent (so `relative` has a cpu.weight)."""
    here = root
    for part in ["", *relative.split("/")[:-1]]:
        here = here / part if part else here
        here.mkdir(exist_ok=True)
        control = here / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            control.write_text("+cpu")
