"""The kernel → gateway channel behind `hogql_execute()` in a kernel.

A ZMQ ROUTER socket held by the kernel's relay (relay.py; at most 8 frames and 1 MiB a request
reach the gateway): with the ipc transport it is bound in the gateway's own part of the kernel's
run directory (`gateway/bridge`, which the kernel cannot replace); with tcp the kernel binds the
port and the relay connects as a CurveZMQ client (the kernel reaches nothing; channels.py). A
request carries only a query and placeholder values; the project a query runs for always comes
from the gateway's record of who owns the kernel, never from the kernel. The reply is a JSON
frame, followed by the result as an Arrow IPC stream frame when the query succeeded: nothing is
written to a file the kernel could tamper with.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

import zmq
import zmq.asyncio

from gateway.kernels.channels import Endpoint
from gateway.kernels.relay import KernelRelay, Route, channel_route

_log = logging.getLogger(__name__)
SOCKET: Final = "bridge"
MAX_REQUEST_BYTES: Final = 1024 * 1024
_QUEUE: Final = 4  # requests waiting in each pipe (the gateway serves one at a time)
_PARSE_ON_LOOP: Final = 64 * 1024  # larger requests are parsed in a worker thread

# (project_id, request) → (reply, Arrow IPC bytes or None)
type BridgeHandler = Callable[[int, dict[str, Any]], Awaitable[tuple[dict[str, Any], bytes | None]]]


def bridge_route(endpoint: Endpoint) -> Route:
    """The kernel's bridge socket at `endpoint` (bound or connected by its relay)."""
    return channel_route(SOCKET, endpoint, max_message=MAX_REQUEST_BYTES, queue=_QUEUE)


class KernelBridge:
    """Serves one kernel's bridge requests, one at a time, until closed."""

    def __init__(
        self,
        relay: KernelRelay,
        *,
        project: Callable[[], int],
        handler: BridgeHandler,
    ) -> None:
        self._relay = relay
        self._project = project
        self._handler = handler
        self._socket: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Serve requests arriving through the relay (once `bridge_route` is open there)."""
        self._socket = self._relay.socket(SOCKET, queue=_QUEUE, max_message=MAX_REQUEST_BYTES)
        self._task = asyncio.create_task(self._serve())
        self._task.add_done_callback(_report_end)

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._socket is not None:
            self._socket.close(linger=0)

    async def _serve(self) -> None:
        """One request at a time, the loop's other callbacks run between any two: a receive
        or send that is ready at once does not yield, and a kernel sending requests faster
        than they are refused (not JSON, say) would otherwise keep the loop to itself."""
        assert self._socket is not None
        while True:
            await asyncio.sleep(0)
            frames = await self._socket.recv_multipart()
            identity, payload = frames[0], frames[-1]
            data: bytes | None = None
            try:
                if len(payload) > _PARSE_ON_LOOP:
                    request = await asyncio.to_thread(json.loads, payload)
                else:
                    request = json.loads(payload)
                if not isinstance(request, dict):
                    raise TypeError(type(request).__name__)
            # RecursionError: deeply nested JSON; anything a hostile kernel sends must end
            # in an error reply, never in the end of this loop.
            except (ValueError, TypeError, RecursionError):
                reply: dict[str, Any] = {"ok": False, "error": "Malformed bridge request."}
            else:
                try:
                    reply, data = await self._handler(self._project(), request)
                except Exception:
                    _log.exception("bridge request failed")
                    reply = {"ok": False, "error": "The gateway could not run the query."}
                ident = request.get("id")
                if isinstance(ident, str) and len(ident) <= 64:
                    # a kernel with one long-lived socket (tcp) matches replies to requests
                    reply = {**reply, "id": ident}
            parts = [identity, b"", json.dumps(reply).encode()]
            if data is not None:
                parts.append(data)
            await self._socket.send_multipart(parts, copy=False)


def _report_end(task: asyncio.Task[None]) -> None:
    """A bridge loop ends only when closed; anything else is a bug to log, not to lose."""
    if not task.cancelled() and task.exception() is not None:
        _log.error("kernel bridge stopped serving", exc_info=task.exception())
