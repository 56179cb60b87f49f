"""KernelRelay: the one process per kernel that holds the kernel's ZMQ sockets for the gateway.

libzmq checks `MAXMSGSIZE` per frame and assembles a whole multipart message before the first
frame reaches the application, so whoever holds a socket a kernel sends to can be made to
buffer any amount (one iopub message of 16 x 48 MiB frames raised the gateway's peak RSS by
1.5 GB). The gateway therefore holds no libzmq socket connected to a kernel (data frames it
reads itself, checked frame by frame: zmtp.py). Each kernel gets a relay
process (`relay_process.py`, forked by the gateway's `RelayFactory`) whose memory is capped
(`kernel_relay_memory_mb`, as `RLIMIT_DATA`): it opens the kernel-facing sockets exactly as
the gateway used to (the same urls, pinned run-directory handles passed as descriptors,
CurveZMQ keys for tcp) and forwards
each message to a gateway-private ipc socket only when its frame count and total size are
within the route's limits (others are dropped and counted in `dropped`). A kernel that bombs
its relay kills only the relay; `died` then resolves and the lifecycle treats it as the
kernel's death. The relay ends when the gateway closes it or exits (end of file on its control
socket), so none outlives its kernel or the gateway.

The private sockets live in `<data_dir>/relays/<runtime id>/` (root's, 0700: no kernel sees or
reaches it), addressed through a directory handle (`ipc:///proc/self/fd/N/<route>`) so that a
long data directory never exceeds the unix socket path limit. Towards the gateway every route
is a DEALER (iopub: PUSH) socket pair: identities pass unchanged, so the gateway reads a
kernel's ROUTER traffic (the bridge) as if it held the ROUTER, and
jupyter_client's shell and control channels (DEALER) work as they are; its iopub socket is a
PULL (no subscription).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import zmq
import zmq.asyncio

from gateway.kernels.channels import CurveKeys, Endpoint
from gateway.kernels.errors import SandboxError

_log = logging.getLogger(__name__)
PROCESS: Final = Path(__file__).with_name("relay_process.py")
RELAYS_DIR: Final = "relays"  # in the data directory: one private directory per relay
JUPYTER_CHANNELS: Final = ("shell", "iopub", "control")
# Frames of one jupyter message: identities, delimiter, signature, four dicts, buffers. Real
# messages have a handful; more would only cost Python objects per frame on the gateway side.
JUPYTER_MAX_FRAMES: Final = 256
# Messages waiting in each libzmq pipe of a jupyter route, in the relay and on the gateway's
# side: with messages up to kernel_max_message_bytes, a count is a memory bound.
JUPYTER_QUEUE: Final = 1
# Bytes a route's direction may hold in the relay beyond its pipes before the relay stops reading
# (at least one message always fits): thousands of small messages, or one large one.
HOLD: Final = 1 << 20
# The relay's exit status when Python ran out of its memory, and when a jupyter connection to
# the kernel broke: libzmq cuts a connection whose message it cannot hold (over RLIMIT_DATA).
EXIT_MEMORY: Final = 75
EXIT_BROKEN: Final = 76
_ZMQ_HOME: Final = str(Path(zmq.__file__).resolve().parents[1])  # where pyzmq is installed
_PINNED: Final = re.compile(r"ipc:///proc/self/fd/(\d+)(/.*)?")
_MAX_CONTROL: Final = 1 << 16


@dataclass(frozen=True, kw_only=True)
class Route:
    """One kernel channel the relay carries.

    `endpoint` is the kernel-facing end as the gateway itself would open it (a url through a
    pinned `/proc/self/fd/N` handle is passed to the relay as that descriptor); `kind` is
    `dealer` (shell, control), `iopub`, or `router` (the bridge). Messages
    from the kernel over `max_frames` frames or `max_bytes` bytes in total are dropped.
    """

    name: str
    kind: str
    endpoint: Endpoint
    max_bytes: int
    max_frames: int
    queue: int
    hold: int = HOLD


def jupyter_routes(
    urls: Mapping[str, str], *, max_message: int, curve: CurveKeys | None = None
) -> list[Route]:
    """Routes for the kernel's shell, iopub and control channels at `urls` (stdin and the
    heartbeat are not carried: the gateway never allows input and watches the sandbox)."""
    return [
        Route(
            name=name,
            kind="iopub" if name == "iopub" else "dealer",
            endpoint=Endpoint(url=urls[name], bind=False, curve=curve),
            max_bytes=max_message,
            max_frames=JUPYTER_MAX_FRAMES,
            queue=JUPYTER_QUEUE,
        )
        for name in JUPYTER_CHANNELS
    ]


def channel_route(name: str, endpoint: Endpoint, *, max_message: int, queue: int) -> Route:
    """A route for one of the gateway's own channels (the bridge): a ROUTER the
    kernel's DEALER sockets talk to; its messages are a few frames."""
    return Route(
        name=name,
        kind="router",
        endpoint=endpoint,
        max_bytes=max_message,
        max_frames=8,
        queue=queue,
        hold=max(HOLD, 2 * max_message),
    )


def gateway_side(sock: zmq.Socket[Any], *, queue: int, max_message: int) -> None:
    """Options of a gateway socket connecting to a relay (set before connecting: libzmq copies
    them into the connection). It never reconnects: its url names the relay's directory by the
    gateway's descriptor number, which a later relay may get once this one is closed, and a
    socket left open somewhere would otherwise join that relay and take half its messages."""
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RECONNECT_IVL, -1)
    sock.setsockopt(zmq.RCVHWM, queue)
    sock.setsockopt(zmq.SNDHWM, queue)
    sock.setsockopt(zmq.MAXMSGSIZE, max_message)


def _describe(route: Route, fds: list[int]) -> dict[str, Any]:
    """The route as the relay process reads it; a pinned handle is added to `fds`."""
    url = route.endpoint.url
    fd: int | None = None
    pinned = _PINNED.fullmatch(url)
    if pinned is not None:
        fd = len(fds)
        fds.append(int(pinned.group(1)))
        url = "ipc:///proc/self/fd/{fd}" + (pinned.group(2) or "")
    curve = route.endpoint.curve
    return {
        "name": route.name,
        "kind": route.kind,
        "url": url,
        "fd": fd,
        "bind": route.endpoint.bind,
        "curve": None if curve is None else [curve.public.decode(), curve.secret.decode()],
        "max_bytes": route.max_bytes,
        "max_frames": route.max_frames,
        "queue": route.queue,
        "hold": route.hold,
    }


def _make_place(place: Path) -> int:
    """Make the relay's private directory (a few syscalls) and return a handle on it."""
    place.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    place.parent.chmod(0o700)
    shutil.rmtree(place, ignore_errors=True)  # a crashed gateway's, for this runtime id
    place.mkdir(mode=0o700)
    return os.open(place, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)


def remove_stale_relays(root: Path, *, keep: set[str]) -> None:
    """Remove the private directories of relays an earlier gateway process left (it died
    without closing them; its relays ended with it), except those of `keep`. Blocking: a few
    unlinks in a root-only directory; call it in a thread."""
    if root.is_dir():
        for place in root.iterdir():
            if place.name not in keep:
                shutil.rmtree(place, ignore_errors=True)


def _exit_reason(code: int | None, memory_mb: int) -> str:
    if code is None:
        return "its message relay stopped"
    if code in (EXIT_MEMORY, EXIT_BROKEN, -signal.SIGABRT):
        return (
            "it sent a message its relay could not hold (kernel_relay_memory_mb ="
            f" {memory_mb}), or broke its connection to it"
        )
    how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
    return f"its message relay stopped ({how})"


class RelayFactory:
    """The process kernel relays are forked from (relay_process.py), one per kernel lifecycle.

    pyzmq is imported there once, so a relay costs a fork (~2 ms) instead of a Python start-up
    (~50 ms of CPU) on every kernel start. It reaps its relays and reports their exit codes;
    it ends when `close()`d or when the gateway exits (end of file on its control socket),
    and each relay ends with its own control socket too.
    """

    def __init__(self, process: asyncio.subprocess.Process, control: socket.socket) -> None:
        self._process = process
        self._control = control
        self._loop = asyncio.get_running_loop()
        self._spawns: deque[asyncio.Future[tuple[int, int]]] = deque()
        self._exits: dict[int, asyncio.Future[int | None]] = {}
        self.closed = False
        self._loop.add_reader(control.fileno(), self._readable)

    @classmethod
    async def start(cls) -> RelayFactory:
        """Start the factory process. Raises SandboxError."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",  # isolated: no environment, no user site, not the script's directory
                "-S",  # and no site: it needs pyzmq's directory only
                str(PROCESS),
                str(theirs.fileno()),
                _ZMQ_HOME,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env={},
                start_new_session=True,  # a terminal's ^C stops the gateway, which ends it
            )
        except OSError as err:
            ours.close()
            msg = f"Could not start the kernels' message relays: {err}"
            raise SandboxError(msg) from err
        finally:
            theirs.close()
        ours.settimeout(0)  # non-blocking: the loop reads it
        return cls(process, ours)

    async def spawn(
        self,
        control: int,
        place: int,
        *,
        memory_mb: int,
        timeout: float,  # noqa: ASYNC109 - bounds the factory's answer, not the caller
    ) -> tuple[int, int, asyncio.Future[int | None]]:
        """Fork a relay that speaks on `control` and binds in the directory `place` (both
        descriptors are passed). Returns its pid, a pidfd for it, and its exit code to come
        (None when unknown). Raises SandboxError."""
        if self.closed:
            msg = "The kernels' message relays are shutting down."
            raise SandboxError(msg)
        reply: asyncio.Future[tuple[int, int]] = self._loop.create_future()
        self._spawns.append(reply)
        try:
            request = json.dumps({"memory": memory_mb << 20}).encode()
            socket.send_fds(self._control, [request], [control, place])
            async with asyncio.timeout(timeout):
                pid, pidfd = await asyncio.shield(reply)
        except (OSError, TimeoutError) as err:
            msg = f"Could not start the kernel's message relay ({err!r})."
            raise SandboxError(msg) from err
        return pid, pidfd, self._exits.setdefault(pid, self._loop.create_future())

    def forget(self, pid: int) -> None:
        """Drop the exit record of a relay its owner has closed."""
        self._exits.pop(pid, None)

    def _readable(self) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self._control, _MAX_CONTROL, 4)
        except BlockingIOError:
            return
        except OSError:
            data, fds = b"", []
        if not data:
            self._gone()
            return
        message = json.loads(data)
        if "pid" in message:
            reply = self._spawns.popleft()
            if reply.done():  # its caller gave up: the relay ends with its control socket
                for fd in fds:
                    os.close(fd)
            else:
                reply.set_result((message["pid"], fds[0]))
        elif "exit" in message:
            ended = self._exits.setdefault(message["exit"], self._loop.create_future())
            if not ended.done():
                ended.set_result(message["code"])

    def _gone(self) -> None:
        """The factory ended: nothing more can be spawned, and no exit code will come."""
        if self.closed:
            return
        self.closed = True
        self._loop.remove_reader(self._control.fileno())
        for reply in self._spawns:
            if not reply.done():
                reply.set_exception(OSError("the relay factory ended"))
        for ended in self._exits.values():
            if not ended.done():
                ended.set_result(None)

    async def close(self) -> None:
        """End the factory (after its relays were closed); idempotent."""
        self._gone()
        self._control.close()
        with contextlib.suppress(ProcessLookupError):
            if self._process.returncode is None:
                async with asyncio.timeout(5):
                    await self._process.wait()
        if self._process.returncode is None:
            os.kill(self._process.pid, signal.SIGKILL)
            await self._process.wait()


class KernelRelay:
    """One kernel's relay process, from `start()` to `close()` (the kernel lifecycle owns it).

    Guarantees: `open()` returns once the routes' sockets are connected or bound (or raises
    SandboxError); `died` resolves with a reason when the process ends by itself; `close()`
    ends it and removes its private directory, and the process also ends when the gateway
    does (its control socket closes).
    """

    def __init__(
        self,
        factory: RelayFactory,
        pid: int,
        pidfd: int,
        exit_code: asyncio.Future[int | None],
        control: socket.socket,
        place: Path,
        place_fd: int,
        memory_mb: int,
    ) -> None:
        self._factory = factory
        self.pid = pid
        self._pidfd = pidfd
        self._exit_code = exit_code
        self._control = control
        self._place = place
        self._place_fd = place_fd
        self._memory_mb = memory_mb
        self._closing = False
        self._replies: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._opened: set[str] = set()
        self.dropped: dict[str, int] = {}
        loop = asyncio.get_running_loop()
        self.died: asyncio.Future[str] = loop.create_future()
        self._ended: asyncio.Future[None] = loop.create_future()
        loop.add_reader(pidfd, self._on_end)  # a pidfd is readable once its process ended
        self._tasks = [asyncio.create_task(self._read_control())]

    @classmethod
    async def start(cls, place: Path, *, memory_mb: int, factory: RelayFactory) -> KernelRelay:
        """Start a relay (forked by `factory`) with its private sockets in `place` (made here,
        0700, in a root-only parent). Its routes come with `open()`. Raises SandboxError."""
        try:
            place_fd = _make_place(place)
        except OSError as err:
            msg = f"Could not prepare the kernel's message relay: {err}"
            raise SandboxError(msg) from err
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid, pidfd, exit_code = await factory.spawn(
                theirs.fileno(), place_fd, memory_mb=memory_mb, timeout=30
            )
        except BaseException:
            ours.close()
            os.close(place_fd)
            shutil.rmtree(place, ignore_errors=True)
            raise
        finally:
            theirs.close()
        ours.settimeout(0)  # non-blocking: the loop reads it
        return cls(factory, pid, pidfd, exit_code, ours, place, place_fd, memory_mb)

    async def open(self, routes: Sequence[Route], timeout: float) -> None:  # noqa: ASYNC109 - bounds the relay's answer, not the caller
        """Have the relay open `routes` (connect or bind towards the kernel, bind its private
        ends). Raises SandboxError when it cannot, or does not answer within `timeout`."""
        fds: list[int] = []
        message = json.dumps({"open": [_describe(route, fds) for route in routes]}).encode()
        try:
            socket.send_fds(self._control, [message], fds)
            async with asyncio.timeout(timeout):
                reply = await self._replies.get()
        except (OSError, TimeoutError) as err:
            msg = f"The kernel's message relay did not open its channels ({err!r})."
            raise SandboxError(msg) from err
        if "error" in reply:
            msg = f"The kernel's message relay could not open its channels: {reply['error']}"
            raise SandboxError(msg)
        self._opened.update(reply.get("opened", []))

    def url(self, name: str) -> str:
        """Where the gateway connects for route `name` (after `open()`)."""
        return f"ipc:///proc/self/fd/{self._place_fd}/{name}"

    def urls(self) -> dict[str, str]:
        """The gateway-side urls of every opened route, by name."""
        return {name: self.url(name) for name in self._opened}

    def socket(self, name: str, *, queue: int, max_message: int) -> zmq.asyncio.Socket:
        """The gateway's end of route `name`: a DEALER that sees the kernel's ROUTER traffic
        (identity first) and sends replies the same way; at most `queue` messages wait."""
        sock = zmq.asyncio.Context.instance().socket(zmq.DEALER)
        gateway_side(sock, queue=queue, max_message=max_message)
        sock.connect(self.url(name))
        return sock

    async def close(self) -> None:
        """End the relay (it holds no state worth a graceful stop) and remove its directory.
        Idempotent."""
        if self._closing:
            return
        self._closing = True
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(OSError):  # a pidfd: never another process with a reused pid
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        self._control.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.shield(self._ended)
        if not self._ended.done():
            asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._factory.forget(self.pid)
        os.close(self._place_fd)
        shutil.rmtree(self._place, ignore_errors=True)

    def _on_end(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        self._ended.set_result(None)
        if not self._closing:
            self._tasks.append(asyncio.create_task(self._report()))

    async def _report(self) -> None:
        """The relay ended by itself: say why (its exit code comes from the factory)."""
        try:
            async with asyncio.timeout(2):
                code = await asyncio.shield(self._exit_code)
        except TimeoutError:
            code = None
        if self._closing:
            return
        reason = _exit_reason(code, self._memory_mb)
        # also how a relay ends when its kernel exits: the lifecycle says which it was
        _log.info("kernel relay %s: %s", self._place.name, reason)
        if not self.died.done():
            self.died.set_result(reason)
        self._replies.put_nowait({"error": reason})

    async def _read_control(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.sock_recv(self._control, _MAX_CONTROL)
            if not data:
                return  # the process is gone: _on_end() reports it
            try:
                message = json.loads(data)
            except ValueError:
                _log.warning("unreadable message from a kernel relay: %r", data[:100])
                continue
            if "dropped" in message:
                self.dropped = dict(message["dropped"])
                _log.info("kernel relay %s dropped messages: %s", self._place.name, self.dropped)
            else:
                self._replies.put_nowait(message)
