"""Connection files: a fresh HMAC key per kernel, ipc sockets in the kernel's run directory.

The kernel sees its run directory at `CONTAINER_RUN_DIR`; the gateway at the host path. Both
views share ports (ipc suffixes) and key; only `ip` (the socket path prefix) differs.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Final

from gateway.kernels.types import ConnectionInfo

CONTAINER_RUN_DIR: Final = "/run/kernel"
CONNECTION_FILE: Final = "connection.json"
_SOCKET_PREFIX: Final = "k"


def new_connection(kernel_dir: str) -> ConnectionInfo:
    """Connection info for a kernel that sees its run directory at `kernel_dir`."""
    return ConnectionInfo(
        transport="ipc",
        ip=f"{kernel_dir}/{_SOCKET_PREFIX}",
        shell_port=1,
        iopub_port=2,
        stdin_port=3,
        control_port=4,
        hb_port=5,
        key=secrets.token_hex(32),
        signature_scheme="hmac-sha256",
        kernel_name="python3",
    )


def host_view(info: ConnectionInfo, run_dir: Path) -> ConnectionInfo:
    view = info.copy()
    view["ip"] = str(run_dir / _SOCKET_PREFIX)
    return view


def prepare_run_dir(run_dir: Path, *, uid: int | None) -> None:
    """Create the run directory, mode 0700, owned by the kernel's uid (when we may chown)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run_dir.chmod(0o700)
    if uid is not None and os.geteuid() == 0:
        os.chown(run_dir, uid, uid)


def write_connection_file(run_dir: Path, info: ConnectionInfo, *, uid: int | None) -> Path:
    path = run_dir / CONNECTION_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(info, handle)
    if uid is not None and os.geteuid() == 0:
        os.chown(path, uid, uid)
    return path


def read_connection_file(run_dir: Path) -> ConnectionInfo:
    info: ConnectionInfo = json.loads((run_dir / CONNECTION_FILE).read_text())
    return info
