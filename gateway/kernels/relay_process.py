"""The kernel message relays' own processes: the only place a kernel's ZMQ messages are assembled.

Run by `gateway.kernels.relay` as a script (`python -I -S relay_process.py CONTROL ZMQ_HOME`),
never imported by the gateway: the *factory*, one per gateway, which imports pyzmq (from
ZMQ_HOME) and the standard library once and then forks one relay per kernel on request (a fork
costs ~2 ms; starting a fresh Python with pyzmq ~50 ms of CPU, on every kernel start). It reaps
its relays and reports their exit codes; it ends when the gateway closes its control socket or
exits. A `python -m gateway.kernels...` start would import the whole kernels package instead.

Factory control (CONTROL, SOCK_SEQPACKET, JSON datagrams):

    gateway → factory   {"memory": LIMIT}   with [relay control socket, PLACE] as SCM_RIGHTS
    factory → gateway   {"pid": N}          with the relay's pidfd as SCM_RIGHTS
                        {"exit": N, "code": C}   (C < 0: the signal)

libzmq checks `MAXMSGSIZE` per frame and assembles every frame of a multipart message before
anyone sees the first, so a kernel can make whoever holds its sockets buffer any amount. That is
this process: its data segment is capped (`RLIMIT_DATA` = LIMIT bytes), and a kernel that bombs
it kills only it (the gateway sees the exit and treats it as the kernel's death). Each message a
kernel sends is read frame by frame (one frame's Python object at a time once a message is over
its route's frame count or byte size, so the Python side never doubles what libzmq holds), and
forwarded without a copy to a gateway-private ipc socket only when it is within both limits;
otherwise it is dropped and counted. Messages from the gateway (trusted) are forwarded as they
are. Per route and direction at most `hold` bytes wait here (the kernel is not read beyond it,
so it is slowed, not buffered), plus `queue` messages in each libzmq pipe.

A relay's control (its own SOCK_SEQPACKET socket; JSON datagrams):

    gateway → relay   {"open": [route, ...]}     with the routes' descriptors as SCM_RIGHTS
    relay → gateway   {"opened": [name, ...]} | {"error": text} | {"dropped": {name: count}}

A route is {"name", "kind": "dealer"|"iopub"|"router", "url", "bind", "fd" (index of a passed
descriptor the url names as /proc/self/fd/{fd}, or null), "curve": [public, secret] or null,
"max_bytes", "max_frames", "queue", "hold"}. Its gateway side is bound at
`ipc:///proc/self/fd/PLACE/<name>` (PLACE: the gateway's private directory for it). End of
file on its control socket (the gateway closed it, or died) ends the relay at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import select
import signal
import socket
import struct
import sys
import time
import traceback
from collections import deque
from typing import Any, Final

_REPORT_S: Final = 0.5  # drop counts go to the gateway at most this often
_BATCH: Final = 64  # messages moved per socket per wake-up (fairness between routes)
_MAX_CONTROL: Final = 1 << 16
_MAX_FDS: Final = 16
_EXIT_MEMORY: Final = 75  # relay.EXIT_MEMORY: Python ran out of RLIMIT_DATA
_EXIT_BROKEN: Final = 76  # relay.EXIT_BROKEN: a jupyter connection to the kernel broke


def _limit(memory: int | None) -> None:
    """Cap this process: its data segment (a relay, before it allocates anything), no core
    files. Its priority stays the gateway's (`process_nice`): a relay does the I/O the
    gateway's own libzmq thread did, on the path of every message; at the kernels' priority,
    kernels starting beside it delayed each hop (20 first cells: p50 130 -> 420 ms)."""
    if memory is not None:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> int:
    """The factory: `relay_process.py CONTROL ZMQ_HOME`."""
    control_fd, zmq_home = int(argv[1]), argv[2]
    sys.path.insert(0, zmq_home)  # pyzmq's directory (started with -S: no site-packages)
    import zmq  # noqa: PLC0415 - once, here: every relay forked from here has it

    _limit(None)
    control = socket.socket(fileno=control_fd)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the select below
    while True:
        readable, _, _ = select.select([control.fileno(), wake_read], [], [])
        if wake_read in readable:
            os.read(wake_read, 4096)
            _reap(control)
        if control.fileno() in readable:
            data, fds, _, _ = socket.recv_fds(control, _MAX_CONTROL, _MAX_FDS)
            if not data:
                return 0  # the gateway is gone; each relay sees its own control end too
            pid = os.fork()
            if pid == 0:  # the relay
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd in (wake_read, wake_write):
                    os.close(fd)
                control.close()
                os._exit(_relay(zmq, fds[0], fds[1], json.loads(data)["memory"]))
            for fd in fds:
                os.close(fd)
            pidfd = os.pidfd_open(pid)  # not reaped before _reap: safe from pid reuse
            socket.send_fds(control, [json.dumps({"pid": pid}).encode()], [pidfd])
            os.close(pidfd)


def _reap(control: socket.socket) -> None:
    """Report the exit code of every relay that ended (negative: the signal)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):
            control.send(json.dumps({"exit": pid, "code": code}).encode())


def _relay(zmq: Any, control_fd: int, place_fd: int, memory: int) -> int:
    """A relay's life, in a process forked from the factory; its exit code."""
    try:
        _limit(memory)
        control = socket.socket(fileno=control_fd)
        relay = _Relay(zmq, control, place_fd)
        relay.run()
    except MemoryError:
        return _EXIT_MEMORY  # os._exit next: no clean-up, it could need memory too
    except BaseException:
        traceback.print_exc()
        return 70
    return 0


class _Direction:
    """One direction of a route: messages read from `source`, waiting to go to `target`."""

    def __init__(self, source: Any, target: Any, *, checked: bool, hold: int) -> None:
        self.source = source
        self.target = target
        self.checked = checked
        self.hold = hold
        self.waiting: deque[tuple[list[Any], int]] = deque()  # (frames, bytes)
        self.bytes = 0


class _Route:
    def __init__(self, zmq: Any, spec: dict[str, Any], fds: list[int], place: int) -> None:
        ctx = zmq.Context.instance()
        kind = spec["kind"]
        self.name: str = spec["name"]
        self.max_bytes: int = spec["max_bytes"]
        self.max_frames: int = spec["max_frames"]
        self.dropped = 0
        queue: int = spec["queue"]
        kernel_type = {"dealer": zmq.DEALER, "iopub": zmq.SUB, "router": zmq.ROUTER}[kind]
        self.kernel = ctx.socket(kernel_type)
        self.gateway = ctx.socket(zmq.PUSH if kind == "iopub" else zmq.DEALER)
        self.monitor: Any = None
        try:
            for sock in (self.kernel, self.gateway):
                sock.setsockopt(zmq.LINGER, 0)
                sock.setsockopt(zmq.RCVHWM, queue)
                sock.setsockopt(zmq.SNDHWM, queue)
            # A jupyter connection that breaks ends the relay (and so the kernel): libzmq drops
            # a connection whose message it cannot hold (ENOMEM under RLIMIT_DATA) and would
            # reconnect, having silently lost that message and those after it (an execution's
            # `idle`, say). A kernel's own sockets never go away while it lives; before the
            # first handshake, though, a tcp connection may fail and be retried.
            self.monitor = (
                None
                if kind == "router"
                else self.kernel.get_monitor_socket(
                    zmq.EVENT_DISCONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED
                )
            )
            self.connected = False
            if kind == "router":
                # the bridge takes small messages; a peer sending a larger frame is
                # cut off before it is buffered (the kernel's helper reconnects)
                self.kernel.setsockopt(zmq.MAXMSGSIZE, self.max_bytes)
            curve = spec.get("curve")
            if curve is not None:
                self.kernel.curve_publickey = curve[0].encode("ascii")
                self.kernel.curve_secretkey = curve[1].encode("ascii")
                self.kernel.curve_serverkey = curve[0].encode("ascii")
            if kernel_type == zmq.SUB:
                self.kernel.setsockopt(zmq.SUBSCRIBE, b"")
            url: str = spec["url"]
            if spec.get("fd") is not None:
                url = url.format(fd=fds[spec["fd"]])
            (self.kernel.bind if spec["bind"] else self.kernel.connect)(url)
            self.gateway.bind(f"ipc:///proc/self/fd/{place}/{self.name}")
        except Exception:
            self.close()
            raise
        hold: int = spec["hold"]
        self.up = _Direction(self.kernel, self.gateway, checked=True, hold=hold)
        # iopub is one-way: nothing goes from the gateway to the kernel's PUB
        self.down = (
            None
            if kind == "iopub"
            else _Direction(self.gateway, self.kernel, checked=False, hold=hold)
        )

    def directions(self) -> list[_Direction]:
        return [self.up] if self.down is None else [self.up, self.down]

    def close(self) -> None:
        if self.monitor is not None:
            self.kernel.disable_monitor()
            self.monitor.close(linger=0)
        self.kernel.close(linger=0)
        self.gateway.close(linger=0)


class _Relay:
    def __init__(self, zmq: Any, control: socket.socket, place: int) -> None:
        self.zmq = zmq
        self.control = control
        self.place = place
        self.routes: list[_Route] = []
        self.fds: list[int] = []
        self.dropping = False  # drop counts changed since the last report
        self.next_report = 0.0
        base = zmq.Socket.__mro__[1]  # the Cython socket: no Python layer per frame
        self.recv, self.send, self.get = base.recv, base.send, base.get
        self.NOBLOCK, self.SNDMORE = int(zmq.NOBLOCK), int(zmq.SNDMORE)
        self.POLLIN, self.POLLOUT, self.EVENTS = int(zmq.POLLIN), int(zmq.POLLOUT), int(zmq.EVENTS)

    def close(self) -> None:
        for route in self.routes:
            route.close()
        self.control.close()

    # -- control ---------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        self.control.send(json.dumps(message).encode())

    def _command(self) -> bool:
        """Handle one control datagram; False at end of file (the gateway is gone)."""
        data, fds, _, _ = socket.recv_fds(self.control, _MAX_CONTROL, _MAX_FDS)
        if not data:
            return False
        opened: list[_Route] = []
        try:
            for spec in json.loads(data)["open"]:
                opened.append(_Route(self.zmq, spec, fds, self.place))
        except Exception as err:
            for route in opened:
                route.close()
            for fd in fds:
                os.close(fd)
            self._send({"error": f"{type(err).__name__}: {err}"})
        else:
            self.routes.extend(opened)
            # kept open while the relay runs: libzmq connects (and reconnects) through
            # /proc/self/fd/N in its own thread, later
            self.fds.extend(fds)
            self._send({"opened": [route.name for route in opened]})
        return True

    def _report(self) -> int:
        """Send changed drop counts (at most every _REPORT_S); the poll timeout (ms) until the
        next report is due, -1 when none is."""
        if not self.dropping:
            return -1
        now = time.monotonic()
        if now < self.next_report:
            return max(1, int((self.next_report - now) * 1000))
        self._send({"dropped": {r.name: r.dropped for r in self.routes if r.dropped}})
        self.dropping = False
        self.next_report = now + _REPORT_S
        return -1

    # -- messages: the hot path, on pyzmq's Cython socket methods and plain int flags ------

    def _receive(self, route: _Route, direction: _Direction) -> tuple[list[Any], int]:
        """The next message of `direction`'s source (one is waiting), and its size. A message
        over the route's limits (a checked direction only) is read to its end, frame by frame,
        keeping nothing, and returned as ([], 0)."""
        recv = self.recv
        source = direction.source
        frames: list[Any] = []
        size = 0
        within = True
        while True:
            frame = recv(source, self.NOBLOCK, copy=False)  # the rest of a message is always there
            if within:
                size += len(frame)
                frames.append(frame)
                if direction.checked and (len(frames) > route.max_frames or size > route.max_bytes):
                    within = False
                    frames = []
            if not frame.more:
                break
        if within:
            return frames, size
        route.dropped += 1
        self.dropping = True
        return [], 0

    def _pull(self, route: _Route, direction: _Direction) -> None:
        source = direction.source
        for _ in range(_BATCH):
            # not read further past `hold`: the sender waits (or, a PUB, drops) instead
            if direction.bytes >= direction.hold or not self.get(source, self.EVENTS) & self.POLLIN:
                return
            frames, size = self._receive(route, direction)
            if frames:
                direction.waiting.append((frames, size))
                direction.bytes += size

    def _push(self, direction: _Direction) -> None:
        send = self.send
        target = direction.target
        more = self.NOBLOCK | self.SNDMORE
        waiting = direction.waiting
        for _ in range(_BATCH):
            if not waiting:
                return
            frames, size = waiting[0]
            last = len(frames) - 1
            try:
                # once the first frame is queued, libzmq takes the rest of the message
                for frame in frames[:last]:
                    send(target, frame, more, copy=False)
                send(target, frames[last], self.NOBLOCK, copy=False)
            except self.zmq.Again:
                return
            waiting.popleft()
            direction.bytes -= size

    def _items(self) -> list[tuple[Any, int]]:
        """What to poll: control, the connection monitors, and each direction's source while
        it may hold more and its target while something waits for it."""
        flags: dict[Any, int] = {}
        for route in self.routes:
            for direction in route.directions():
                if direction.bytes < direction.hold:
                    flags[direction.source] = flags.get(direction.source, 0) | self.POLLIN
                if direction.waiting:
                    flags[direction.target] = flags.get(direction.target, 0) | self.POLLOUT
        monitors = [(r.monitor, self.POLLIN) for r in self.routes if r.monitor is not None]
        return [(self.control.fileno(), self.POLLIN), *monitors, *flags.items()]

    def _state(self) -> tuple[bool, ...]:
        return tuple(
            flag
            for route in self.routes
            for direction in route.directions()
            for flag in (direction.bytes < direction.hold, bool(direction.waiting))
        )

    def _watch(self, route: _Route) -> None:
        """A monitor event of a jupyter route: a handshake, or a connection that broke (which
        ends the relay once the route had been connected)."""
        while self.get(route.monitor, self.EVENTS) & self.POLLIN:
            head = self.recv(route.monitor, self.NOBLOCK, copy=True)
            self.recv(route.monitor, self.NOBLOCK, copy=True)  # the endpoint
            (event,) = struct.unpack_from("=H", head)
            if event == self.zmq.EVENT_HANDSHAKE_SUCCEEDED:
                route.connected = True
            elif route.connected:
                self._send({"error": f"the kernel's {route.name} connection broke"})
                os._exit(_EXIT_BROKEN)

    def run(self) -> None:
        poll = self.zmq.zmq_poll
        control = self.control.fileno()
        timeout = -1
        state: tuple[bool, ...] | None = None
        items: list[tuple[Any, int]] = []
        while True:
            now = self._state()  # new routes change its length too
            if now != state:
                state, items = now, self._items()
            events = dict(poll(items, timeout))
            if events.pop(control, 0) and not self._command():
                return
            for route in self.routes:
                if route.monitor is not None and events.get(route.monitor, 0):
                    self._watch(route)
                for direction in route.directions():
                    if events.get(direction.source, 0) & self.POLLIN:
                        self._pull(route, direction)
                    if direction.waiting:
                        self._push(direction)
            timeout = self._report()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
