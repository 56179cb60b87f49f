"""RunDir: the host directory one kernel shares with the gateway, treated as hostile ground.

The kernel sees it at `CONTAINER_RUN_DIR` (/run/kernel):

    connection.json   gateway-owned, 0644   the kernel reads it and cannot change it
    gateway/          gateway-owned, 0755   what the gateway makes: the HogQL bridge socket and
                                            the data-frame FIFOs
    sockets/          kernel-owned, 0700    the kernel's ZMQ ipc sockets: the one place it writes

Guarantees, whatever the kernel does inside `sockets/`:
- The top directory and `gateway/` belong to the gateway, so the kernel can neither rename nor
  replace anything there. The gateway still opens `gateway/` once (`O_DIRECTORY|O_NOFOLLOW`)
  and makes, opens, re-owns and removes its FIFOs relative to that handle, with `O_NOFOLLOW`,
  checking each file's type on the open descriptor (`fchown`, never `chown(path)`).
- The gateway reaches the kernel's sockets only through `O_PATH|O_NOFOLLOW` handles checked
  to be sockets owned by the kernel's uid, and connects to `/proc/self/fd/N`: a socket the
  kernel swaps for a symlink is never followed, not even when ZMQ reconnects.
- With a quota (`kernel_run_dir_mb` > 0, the default; needs root) the run directory is a tmpfs
  of its own (size and inode limits; nosuid, nodev, noexec, nosymfollow), so the kernel cannot
  fill the host disk and removal is one unmount, whatever it left inside. Without one (no
  root, or the quota switched off) the layout and checks are the same but the kernel's
  `sockets/` is on the host disk; removal then runs `rm -rf --one-file-system` in a thread.
- The connection file is written once, for the kernel; the gateway never reads it back (a
  restarted gateway takes the key from its own records).
Removal never raises and never runs on the event loop.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import errno
import json
import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any, Final

from gateway.kernels.errors import SandboxError
from gateway.kernels.types import ConnectionInfo, connection_info

_log = logging.getLogger(__name__)

CONTAINER_RUN_DIR: Final = "/run/kernel"
CONNECTION_FILE: Final = "connection.json"
GATEWAY_DIR: Final = "gateway"
SOCKETS_DIR: Final = "sockets"
SOCKET_PREFIX: Final = "k"
CHANNELS: Final = ("shell", "iopub", "stdin", "control", "hb")
PORTS: Final = {"shell": 1, "iopub": 2, "stdin": 3, "control": 4, "hb": 5}

_MS_NOSUID: Final = 2
_MS_NODEV: Final = 4
_MS_NOEXEC: Final = 8
_MS_NOSYMFOLLOW: Final = 256
_MNT_DETACH: Final = 2
_OPEN_DIR: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def kernel_view(info_key: str, kernel_dir: str) -> ConnectionInfo:
    """The connection info a kernel that sees its run directory at `kernel_dir` binds to."""
    return connection_info(
        transport="ipc", ip=f"{kernel_dir}/{SOCKETS_DIR}/{SOCKET_PREFIX}", ports=PORTS, key=info_key
    )


def _mount_tmpfs(path: Path, *, size_mb: int, inodes: int) -> None:
    options = f"size={size_mb}m,nr_inodes={inodes},mode=0755,uid=0,gid=0".encode()
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    for extra in (_MS_NOSYMFOLLOW, 0):  # nosymfollow needs Linux 5.10
        if _libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", flags | extra, options) == 0:
            return
        code = ctypes.get_errno()
        if code != errno.EINVAL:
            break
    msg = (
        f"Could not mount the kernel's run directory as a tmpfs ({os.strerror(code)}): the gateway"
        " needs root (CAP_SYS_ADMIN) for the per-kernel quota. Set GATEWAY_KERNEL_RUN_DIR_MB=0 to"
        " run without it (the kernel can then fill the disk that holds the data directory)."
    )
    raise SandboxError(msg)


def _is_mount(path: Path) -> bool:
    try:
        return path.lstat().st_dev != path.parent.lstat().st_dev
    except OSError:
        return False


def _remove_now(path: Path) -> None:
    """Unmount (detached) and delete `path`; log, never raise. Blocking: call in a thread."""
    try:
        if _is_mount(path) and _libc.umount2(os.fsencode(path), _MNT_DETACH) != 0:
            _log.warning("could not unmount %s: %s", path, os.strerror(ctypes.get_errno()))
        if not path.exists() and not path.is_symlink():
            return
        try:
            path.rmdir()
        except OSError:
            # Not empty (no quota, or the unmount failed): coreutils walks any depth without
            # recursion in Python and never crosses into another file system.
            rm = shutil.which("rm") or "/bin/rm"
            subprocess.run(  # noqa: S603 - fixed argv, path from the gateway's own records
                [rm, "-rf", "--one-file-system", "--", str(path)],
                check=False,
                capture_output=True,
                timeout=600,
            )
        if path.exists():
            _log.warning("kernel run directory %s could not be removed", path)
    except Exception:
        _log.exception("removing kernel run directory %s failed", path)


async def remove_run_dir(path: Path) -> None:
    """Remove a run directory (unmounting its tmpfs first) off the event loop; never raises."""
    await asyncio.to_thread(_remove_now, path)


class RunDir:
    """One kernel's run directory, and the gateway's handle on its `gateway/` subdirectory.

    Made by `create()` before the kernel starts, or re-opened by `reopen()` for a kernel a
    previous gateway process started. `close()` drops the handles; `remove_run_dir()` deletes.
    """

    def __init__(self, path: Path, *, uid: int | None, gateway_fd: int) -> None:
        self.path = path
        self.uid = uid
        self._gateway_fd = gateway_fd
        self._socket_fds: dict[str, int] = {}

    def gateway_url(self, name: str) -> str:
        """The ipc url to bind `gateway/<name>` at, through the directory handle: the path is
        short whatever the data directory's length (unix socket paths stop at 107 bytes), and
        no component of it is looked up again."""
        return f"ipc:///proc/self/fd/{self._gateway_fd}/{name}"

    @property
    def gateway_dir(self) -> Path:
        """The host path of `gateway/` (the gateway's own part; the bridge socket lives there)."""
        return self.path / GATEWAY_DIR

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        uid: int | None,
        quota_mb: int,
        quota_inodes: int,
        key: str,
        kernel_dir: str,
    ) -> RunDir:
        """Make the layout (on its own tmpfs when `quota_mb` > 0) and write the connection file
        for a kernel that sees it at `kernel_dir`. Blocking (a few syscalls). Raises SandboxError.
        """
        path.mkdir(mode=0o700)
        try:
            if quota_mb > 0:
                _mount_tmpfs(path, size_mb=quota_mb, inodes=quota_inodes)
            top = os.open(path, _OPEN_DIR)
            try:
                os.fchmod(top, 0o755)
                os.mkdir(GATEWAY_DIR, 0o755, dir_fd=top)
                os.mkdir(SOCKETS_DIR, 0o700, dir_fd=top)
                sockets = os.open(SOCKETS_DIR, _OPEN_DIR, dir_fd=top)
                try:
                    if uid is not None:
                        os.fchown(sockets, uid, uid)
                finally:
                    os.close(sockets)
                fd = os.open(
                    CONNECTION_FILE,
                    os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                    0o644,
                    dir_fd=top,
                )
                with os.fdopen(fd, "w") as handle:
                    json.dump(kernel_view(key, kernel_dir), handle)
                gateway_fd = os.open(GATEWAY_DIR, _OPEN_DIR, dir_fd=top)
            finally:
                os.close(top)
        except OSError as err:
            _remove_now(path)
            msg = f"Could not prepare the kernel's run directory: {err}"
            raise SandboxError(msg) from err
        except SandboxError:
            _remove_now(path)
            raise
        return cls(path, uid=uid, gateway_fd=gateway_fd)

    @classmethod
    def reopen(cls, path: Path, *, uid: int | None) -> RunDir:
        """The handle for a run directory made by an earlier gateway process. Raises OSError
        when its `gateway/` is missing or not a directory the gateway owns."""
        fd = os.open(path / GATEWAY_DIR, _OPEN_DIR)
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or info.st_mode & 0o022:
            os.close(fd)
            msg = f"{path / GATEWAY_DIR} is not the gateway's own directory"
            raise OSError(errno.EPERM, msg)
        return cls(path, uid=uid, gateway_fd=fd)

    # -- the kernel's sockets ------------------------------------------------------------

    def sockets_ready(self) -> bool:
        """Whether the kernel has bound all its sockets (each checked and pinned as it appears).
        Raises OSError when one is not a socket of the kernel's (a planted symlink, a file)."""
        for channel in CHANNELS:
            if channel in self._socket_fds:
                continue
            name = f"{SOCKET_PREFIX}-{PORTS[channel]}"
            try:
                fd = os.open(
                    self.path / SOCKETS_DIR / name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
                )
            except FileNotFoundError:
                return False
            info = os.fstat(fd)
            if not stat.S_ISSOCK(info.st_mode):
                os.close(fd)
                msg = f"the kernel's {name} is not a socket it owns (mode {info.st_mode:o})"
                raise OSError(errno.EPERM, msg)
            if self.uid is not None and info.st_uid != self.uid:
                # gVisor's file proxy binds a host socket and then gives it to the kernel's
                # uid: seen in between, it is not ready yet. Never pinned with another owner;
                # one that stays so runs into the start's deadline.
                os.close(fd)
                return False
            self._socket_fds[channel] = fd
        return True

    async def wait_for_sockets(
        self,
        # What is left of the start deadline; the caller (kernels.lifecycle, being split by
        # its owner) passes it, and asyncio.timeout() at the call site would do the same.
        timeout: float,  # noqa: ASYNC109 - TODO(#11): caller moves to asyncio.timeout()
        died: asyncio.Future[Any],
    ) -> None:
        """Wait until the kernel has bound its sockets, polling the run dir (the kernel binds
        them in another process: there is no event to wait on), or until `died` resolves.

        Called while a kernel starts. Raises TimeoutError (also when `died` resolves first) or
        OSError (a socket the kernel does not own)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = 0.002
        while not self.sockets_ready():
            if died.done() or loop.time() >= deadline:
                raise TimeoutError
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    def socket_urls(self) -> dict[str, str]:
        """ZMQ urls for each channel, pinned to the checked sockets (call after they are ready)."""
        return {channel: f"ipc:///proc/self/fd/{fd}" for channel, fd in self._socket_fds.items()}

    # -- what the gateway makes ------------------------------------------------------------

    def make_fifo(self, name: str) -> int:
        """A FIFO `gateway/<name>` for the kernel to write, its read end opened non-blocking.
        Returns the descriptor (the caller owns it). Raises OSError."""
        os.mkfifo(name, 0o600, dir_fd=self._gateway_fd)
        try:
            fd = os.open(
                name,
                os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC,
                dir_fd=self._gateway_fd,
            )
        except OSError:
            self.unlink(name)
            raise
        try:
            if not stat.S_ISFIFO(os.fstat(fd).st_mode):
                raise OSError(errno.EPERM, f"{name} is not the gateway's FIFO")
            if self.uid is not None and os.geteuid() == 0:
                os.fchown(fd, self.uid, self.uid)
        except OSError:
            os.close(fd)
            self.unlink(name)
            raise
        return fd

    def give_to_kernel(self, name: str) -> None:
        """Let the kernel use `gateway/<name>` (the bridge socket, which ZMQ made by path).
        `gateway/` is the gateway's, so the name cannot have been swapped; no symlink is
        followed regardless."""
        if self.uid is not None and os.geteuid() == 0:
            os.chown(name, self.uid, self.uid, dir_fd=self._gateway_fd, follow_symlinks=False)

    def unlink(self, name: str) -> None:
        """Remove `gateway/<name>` through the directory handle; a missing name is fine, other
        failures are logged, never raised."""
        try:
            os.unlink(name, dir_fd=self._gateway_fd)
        except FileNotFoundError:
            pass
        except OSError as err:
            _log.warning("could not remove %s from %s: %s", name, self.gateway_dir, err)

    def close(self) -> None:
        """Close the directory and pinned socket handles (after the kernel's connection is
        closed); idempotent."""
        for fd in [self._gateway_fd, *self._socket_fds.values()]:
            if fd >= 0:
                os.close(fd)
        self._gateway_fd = -1
        self._socket_fds.clear()
