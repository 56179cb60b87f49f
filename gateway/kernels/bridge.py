"""The kernel → gateway channel behind `hogql_execute()` in a kernel.

A ZMQ ROUTER socket bound in the kernel's own run directory (`ipc://…/bridge`): no TCP, so the
sandbox keeps no network. A request carries only a query and placeholder values; the project a
query runs for always comes from the gateway's record of who owns the kernel, never from the
kernel. Results travel back as Arrow IPC files in the same directory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import zmq
import zmq.asyncio

_log = logging.getLogger(__name__)
SOCKET: Final = "bridge"
MAX_REQUEST_BYTES: Final = 1024 * 1024

# (project_id, request, frames directory, kernel uid) → reply dict
type BridgeHandler = Callable[[int, dict[str, Any], Path, int | None], Awaitable[dict[str, Any]]]


class KernelBridge:
    """Serves one kernel's bridge requests, one at a time, until closed."""

    def __init__(
        self, run_dir: Path, *, uid: int | None, project: Callable[[], int], handler: BridgeHandler
    ) -> None:
        self._run_dir = run_dir
        self._uid = uid
        self._project = project
        self._handler = handler
        self._socket: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        path = self._run_dir / SOCKET
        socket = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
        socket.setsockopt(zmq.MAXMSGSIZE, MAX_REQUEST_BYTES)
        socket.setsockopt(zmq.LINGER, 0)
        socket.bind(f"ipc://{path}")
        if self._uid is not None and os.geteuid() == 0:
            os.chown(path, self._uid, self._uid)  # the run dir (0700) is the access control
        self._socket = socket
        self._task = asyncio.create_task(self._serve())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._socket is not None:
            self._socket.close(linger=0)

    async def _serve(self) -> None:
        assert self._socket is not None
        while True:
            frames = await self._socket.recv_multipart()
            identity, payload = frames[0], frames[-1]
            try:
                request = json.loads(payload)
                if not isinstance(request, dict):
                    raise TypeError(type(request).__name__)
            except (ValueError, TypeError):
                reply: dict[str, Any] = {"ok": False, "error": "Malformed bridge request."}
            else:
                try:
                    reply = await self._handler(
                        self._project(), request, self._run_dir / "frames", self._uid
                    )
                except Exception:
                    _log.exception("bridge request failed")
                    reply = {"ok": False, "error": "The gateway could not run the query."}
            await self._socket.send_multipart([identity, b"", json.dumps(reply).encode()])
