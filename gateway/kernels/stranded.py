"""Sockets an SDK opened and then lost track of when a connect failed.

The Docker SDK's unix-socket connection (docker.transport.unixconn, docker 7.1) creates its socket,
connects it and only then keeps it; when the connect fails (no engine, or a `DOCKER_HOST` socket
that is not there yet) the socket is referenced only by the failed call's frame, which the
exception's traceback keeps alive. It is closed whenever the garbage collector gets to it, with a
ResourceWarning, an open file descriptor in between. `close_stranded()` closes such sockets as
soon as the error is caught.
"""

from __future__ import annotations

import socket
import sys
from types import FrameType


def close_stranded(err: BaseException) -> int:
    """Close every socket held by a local variable of a finished frame in `err`'s tracebacks (its
    causes and contexts too); return how many were open. Frames still running (the caller's and
    its callers') are left alone: their sockets are in use. Call it on a caught error whose
    sockets belong to no one else: not for calls that hand a socket on (attach, ssh)."""
    running = set()
    frame: FrameType | None = sys._getframe()
    while frame is not None:
        running.add(id(frame))
        frame = frame.f_back
    closed = 0
    seen: set[int] = set()
    pending: list[BaseException] = [err]
    while pending:
        exc = pending.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            if id(tb.tb_frame) in running:
                tb = tb.tb_next
                continue
            for value in list(tb.tb_frame.f_locals.values()):
                if isinstance(value, socket.socket) and value.fileno() != -1:
                    value.close()
                    closed += 1
            tb = tb.tb_next
        pending.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
        pending.extend(arg for arg in exc.args if isinstance(arg, BaseException))
    return closed
