"""Red-team (second pass, after issue #10): a hostile kernel speaks raw ZMQ to the gateway.

libzmq checks `MAXMSGSIZE` per *frame* and assembles a whole multipart message before anyone
sees it, so whoever holds a kernel's sockets can be made to buffer any amount. Since the fix,
that is the kernel's relay process (gateway/kernels/relay.py), with its memory capped: messages
over `kernel_max_message_bytes` (iopub/shell/control) or the bridge's 1 MiB never reach the
gateway, and a message the relay cannot hold at all ends the relay and the kernel. Each test
runs the attack in a real (Docker) kernel and measures this process, where the gateway runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest

from gateway.app import create_app
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers, assert_no_relays
from tests.security.test_gateway_memory import peak_growth

pytestmark = pytest.mark.docker


@pytest.fixture
async def gw(aiohttp_client, docker_settings, docker_engine, clock):
    app = create_app(docker_settings.with_changes(kernel_pool_size=0), clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make()
    yield client, owner
    instance = app[KERNELS_KEY].instance_id
    await client.close()
    assert_no_containers(docker_engine, instance)
    assert_no_relays(docker_settings)


async def _run(client, owner, code, timeout=90):  # noqa: ASYNC109 - the kernel's timeout
    resp = await client.post(
        owner.url("scratchpad/kernel/execute"),
        json={"code": code, "timeout": timeout},
        headers=owner.headers,
    )
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _execute(client, owner, code, timeout=90):  # noqa: ASYNC109 - the kernel's timeout
    body = await _run(client, owner, code, timeout)
    assert body["status"] == "ok", body.get("traceback") or body
    return body


@contextlib.asynccontextmanager
async def loop_lag() -> AsyncIterator[dict[str, float]]:
    """Yields a dict that gets `max`: the longest the event loop was late for a 10 ms tick."""
    found = {"max": 0.0}

    async def tick() -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            found["max"] = max(found["max"], time.perf_counter() - before - 0.01)

    task = asyncio.create_task(tick())
    try:
        yield found
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# Runs `frames` through the kernel's own iopub PUB socket, from its IO thread.
_IOPUB_SEND = """
import threading
_thread = get_ipython().kernel.iopub_thread
_sent = threading.Event()
def _send():
    try:
        _thread.socket.send_multipart(frames, copy=False)
    finally:
        _sent.set()
_thread.schedule(_send)
assert _sent.wait(60)
"""


def _multipart_iopub(count: int) -> str:
    return (
        f"""
blob = memoryview(b"A" * (48 * 1024 * 1024))  # under kernel_max_message_bytes (64 MiB)
frames = [blob] * {count} + [b"end"]           # {count} x 48 MiB in one multipart message
"""
        + _IOPUB_SEND
    )


async def test_a_multipart_iopub_message_cannot_grow_gateway_memory(gw):
    """768 MiB in one message: more than the relay may hold (kernel_relay_memory_mb, 512).
    The relay ends, and the kernel with it; the gateway never sees a byte of it."""
    client, owner = gw
    first = await _execute(client, owner, "1")
    with peak_growth() as growth:
        died = await _run(client, owner, _multipart_iopub(16))
    assert growth["mb"] < 300, f"peak RSS rose {growth['mb']:.0f} MB from one kernel message"
    assert died["status"] == "error", died
    assert died["error_name"] == "KernelDied", died
    assert "relay could not hold" in died["error_value"], died["error_value"]
    status = await (
        await client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
    ).json()
    assert status["status"] == "error"
    assert status["last_error"].startswith("Kernel died: it sent a message its relay"), status
    fresh = await _execute(client, owner, "1 + 1")
    assert fresh["result"] == {"text/plain": "2"}
    assert fresh["kernel_runtime"]["id"] != first["kernel_runtime"]["id"]


async def test_a_multipart_iopub_message_the_relay_can_hold_is_dropped_and_counted(gw):
    """192 MiB in one message of 48 MiB frames: the relay holds it, drops it (over 64 MiB in
    total) and counts it; the kernel keeps running and the gateway never sees it."""
    client, owner = gw
    await _execute(client, owner, "1")
    relay = client.server.app[KERNELS_KEY].live_runtimes()[0].relay
    assert relay is not None
    with peak_growth() as growth:
        await _execute(client, owner, _multipart_iopub(4) + "\nprint('still here')")
    assert growth["mb"] < 150, f"peak RSS rose {growth['mb']:.0f} MB from one kernel message"
    async with asyncio.timeout(10):
        while relay.dropped.get("iopub", 0) < 1:  # noqa: ASYNC110 - a counter, no event
            await asyncio.sleep(0.05)
    assert (await _execute(client, owner, "1 + 1"))["result"] == {"text/plain": "2"}


HUGE_PARENT = (
    """
# a well-formed frame layout; the parent header is 57 MiB of JSON (20 M empty lists)
parent = b'{"x":[' + b'[],' * 20_000_000 + b'[]]}'
frames = [b"<IDS|MSG>", b"sig", b"{}", parent, b"{}", b"{}"]
"""
    + _IOPUB_SEND
)


async def test_a_huge_parent_header_does_not_stall_the_event_loop(gw):
    client, owner = gw
    await _execute(client, owner, "1")
    connection = client.server.app[KERNELS_KEY].live_runtimes()[0].connection
    dropped = connection.idle_dropped
    async with loop_lag() as lag:
        await _execute(client, owner, HUGE_PARENT)
        async with asyncio.timeout(60):
            while connection.idle_dropped <= dropped:  # noqa: ASYNC110 - a counter, no event
                await asyncio.sleep(0.05)
    # the message was dropped as idle output, as it should be; but parsing it held the loop
    assert lag["max"] < 0.5, f"the event loop stalled {lag['max']:.2f} s on one kernel message"


MULTIPART_BRIDGE = """
import zmq
sock = zmq.Context.instance().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect("ipc:///run/kernel/gateway/bridge")
frame = memoryview(b"B" * (1024 * 1024 - 64))  # under the bridge's 1 MiB MAXMSGSIZE
for _ in range(3):
    sock.send_multipart([frame] * 256 + [b'{"query": "select 1"}'], copy=False)  # 256 MiB each
replies = 0
poller = zmq.Poller()
poller.register(sock, zmq.POLLIN)
while replies < 3 and poller.poll(5_000):
    sock.recv_multipart()
    replies += 1
sock.close()
replies
"""


async def test_a_multipart_bridge_request_cannot_grow_gateway_memory(gw):
    client, owner = gw
    await _execute(client, owner, "1")
    with peak_growth() as growth:
        body = await _execute(client, owner, MULTIPART_BRIDGE)
    assert growth["mb"] < 300, f"peak RSS rose {growth['mb']:.0f} MB from bridge requests"
    assert body["result"] == {"text/plain": "0"}, "oversized requests are dropped, not answered"
    body = await _execute(client, owner, "hogql_execute('select 1 as x')['x'].tolist()")
    assert body["result"] == {"text/plain": "[1]"}, "the bridge still serves the kernel"


MULTIPART_FRAMES = """
import time
import zmq
sock = zmq.Context.instance().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect("ipc:///run/kernel/gateway/frames")
frame = memoryview(b"F" * (1024 * 1024))
sock.send_multipart([b"x", b"D"] + [frame] * 256, copy=False)  # 256 MiB in one message
time.sleep(3)
sock.close()
import pandas as pd
df = pd.DataFrame({"a": [1, 2]})
"""


async def test_a_multipart_data_frame_message_cannot_grow_gateway_memory(gw):
    """The frames channel is read by the gateway itself (ipc; zmtp.py), frame by frame: the
    connection is cut at the first frame over the limits, before the message is held."""
    client, owner = gw
    await _execute(client, owner, "1")
    with peak_growth() as growth:
        await _execute(client, owner, MULTIPART_FRAMES)
    assert growth["mb"] < 100, f"peak RSS rose {growth['mb']:.0f} MB from one frames message"
    url = owner.url("scratchpad/kernel/dataframe") + "?variable_name=df"
    resp = await client.get(url, headers=owner.headers)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["row_count"] == 2, "data frames still arrive"


HOLD_PIPE = """
import gateway_kernel, json, os, struct, threading
held = []
def export_frame(value, *, offset, limit, columns, max_bytes, name, frames_dir):
    header = json.dumps({"status": "ok", "total": 1, "rows": 1, "columns": ["a"]}).encode()
    fd = os.open(os.path.join(frames_dir, name), os.O_WRONLY)
    os.write(fd, struct.pack("<I", len(header)) + header)
    held.append(fd)  # kept open, never written again: the gateway never sees EOF
    return gateway_kernel._Description({"status": "ok"})
gateway_kernel.export_frame = export_frame
import pandas as pd
df = pd.DataFrame({"a": [1]})
"""


async def test_a_silent_data_frame_pipe_is_cut_off_at_the_timeout(gw):
    client, owner = gw
    await _execute(client, owner, HOLD_PIPE)
    url = owner.url("scratchpad/kernel/dataframe") + "?variable_name=df&timeout=2"
    try:
        async with asyncio.timeout(20):
            resp = await client.get(url, headers=owner.headers)
            status = resp.status
    except TimeoutError:
        status = None
    assert status is not None, "GET kernel/dataframe?timeout=2 had no answer after 20 s"
    assert status >= 400 and status != 500, status  # e.g. kernel_execute_failed, timed out


FILL_INODES = """
import os
n = 0
try:
    while True:
        open(f"/run/kernel/sockets/f{n}", "w").close()
        n += 1
except OSError as err:
    full = err.errno
import pandas as pd
df = pd.DataFrame({"a": [1]})
(full, n)
"""


async def test_a_full_run_dir_does_not_stop_data_frames(gw):
    """Holds: the kernel uses up its tmpfs's inodes; data frames still arrive (their socket was
    made when the kernel started: nothing is created per export since issue #15) and the
    kernel still runs cells."""
    client, owner = gw
    body = await _execute(client, owner, FILL_INODES)
    assert body["result"]["text/plain"].startswith("(28,"), body["result"]  # ENOSPC
    url = owner.url("scratchpad/kernel/dataframe") + "?variable_name=df&timeout=5"
    async with asyncio.timeout(20):
        resp = await client.get(url, headers=owner.headers)
    assert resp.status == 200, (resp.status, await resp.text())
    body = await _execute(client, owner, "1 + 1")
    assert body["result"] == {"text/plain": "2"}
