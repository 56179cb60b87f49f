"""Red-team (second pass, after issue #10): malformed requests on the kernel bridge, with the
real `KernelBridge` behind a real relay bound in a temporary run directory (no Docker, no
kernel: the test speaks ZMQ to the bridge the way code in a kernel would)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from gateway.kernels.bridge import SOCKET, KernelBridge, bridge_route
from gateway.kernels.channels import Endpoint
from gateway.kernels.relay import KernelRelay, RelayFactory
from gateway.kernels.rundir import RunDir, remove_run_dir


async def _echo(project_id: int, request: dict[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    return {"ok": True, "project": project_id, "query": request.get("query")}, None


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[zmq.asyncio.Socket]:
    run_dir = RunDir.create(
        tmp_path / "run", uid=None, quota_mb=0, quota_inodes=0, key="k", kernel_dir="/run/kernel"
    )
    factory = await RelayFactory.start()
    relay = await KernelRelay.start(tmp_path / "relays" / "r", memory_mb=256, factory=factory)
    await relay.open([bridge_route(Endpoint(url=run_dir.gateway_url(SOCKET), bind=True))], 30)
    served = KernelBridge(relay, project=lambda: 7, handler=_echo)
    served.start()
    kernel = zmq.asyncio.Context.instance().socket(zmq.DEALER)
    kernel.setsockopt(zmq.LINGER, 0)
    kernel.connect(f"ipc://{run_dir.gateway_dir / SOCKET}")
    yield kernel
    kernel.close()
    served.close()
    await relay.close()
    await factory.close()
    run_dir.close()
    await remove_run_dir(run_dir.path)


async def _ask(kernel: zmq.asyncio.Socket, payload: bytes) -> dict[str, Any]:
    await kernel.send_multipart([b"", payload])
    if not await kernel.poll(5000):
        raise AssertionError("the bridge did not answer within 5 s")
    frames = await kernel.recv_multipart()
    reply: dict[str, Any] = json.loads(frames[-1])
    return reply


async def test_malformed_requests_get_an_error_reply(bridge):
    for payload in (b"not json", b"[1]", b"\xff\xfe", b'"x"', b"{"):
        reply = await _ask(bridge, payload)
        assert reply == {"ok": False, "error": "Malformed bridge request."}, payload
    assert (await _ask(bridge, b'{"query": "select 1"}'))["project"] == 7


async def test_deeply_nested_json_does_not_kill_the_bridge(bridge):
    reply = await _ask(bridge, b"[" * 200_000)  # 200 KB, under the 1 MiB cap
    assert reply["ok"] is False
    assert (await _ask(bridge, b'{"query": "select 1"}'))["project"] == 7


async def test_a_flood_of_requests_does_not_hold_the_event_loop(bridge):
    """Requests refused at once (here: `query` not a string, in 600 KB of padding) are ready
    to receive and their replies ready to send, so nothing in serving them has to wait: the
    bridge still hands the loop back between any two, and parses large ones off the loop."""
    endpoint = bridge.getsockopt_string(zmq.LAST_ENDPOINT)
    payload = json.dumps({"query": 0, "pad": [0] * 200_000}).encode()
    stop = threading.Event()

    def flood() -> None:  # a kernel that sends as fast as it can and never reads a reply
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        deadline = time.monotonic() + 3  # ends by itself: a held loop could not stop it
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                sock.send_multipart([b"", payload], flags=zmq.NOBLOCK)
            except zmq.Again:
                time.sleep(0.001)
        sock.close()
        context.term()

    sender = threading.Thread(target=flood)
    sender.start()
    loop = asyncio.get_running_loop()
    worst = 0.0
    begin = loop.time()
    try:
        while loop.time() - begin < 3:
            tick = loop.time()
            await asyncio.sleep(0.01)
            worst = max(worst, loop.time() - tick)
    finally:
        stop.set()
        sender.join()
    assert worst < 0.25, f"the loop was held for {worst:.2f} s"
    assert (await _ask(bridge, b'{"query": "select 1"}'))["project"] == 7
