"""H2: a hostile kernel must not grow the gateway's memory without bound.

Each test runs the attack in a real (Docker) kernel and measures this process's memory, where
the gateway runs: peak RSS (VmHWM, reset through /proc/self/clear_refs) before and after.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers

pytestmark = pytest.mark.docker
MB = 1024 * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


@contextlib.contextmanager
def peak_growth():
    """Yields a dict that gets `mb`: how far peak RSS rose above the RSS at entry."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    before = _status_kb("VmRSS")
    found: dict[str, float] = {}
    yield found
    found["mb"] = (_status_kb("VmHWM") - before) / 1024
    print(f"peak RSS growth: {found['mb']:.0f} MB")  # noqa: T201 - shown with -s


@pytest.fixture
async def gw(aiohttp_client, docker_settings, docker_engine, clock):
    clients = []

    async def make(**changes):
        app = create_app(docker_settings.with_changes(**changes), clock=clock)
        client = await aiohttp_client(app)
        owner = await Accounts(app[STORE_KEY], clock).make()
        clients.append(client)
        return client, owner

    yield make
    for client in clients:
        instance = client.server.app[KERNELS_KEY].instance_id
        await client.close()
        assert_no_containers(docker_engine, instance)


async def _execute(client, owner, code, timeout=90):  # noqa: ASYNC109 - the request's kernel timeout
    resp = await client.post(
        owner.url("scratchpad/kernel/execute"),
        json={"code": code, "timeout": timeout},
        headers=owner.headers,
    )
    assert resp.status == 200, await resp.text()
    return resp, await resp.json()


IMAGES = """
import base64, os
from IPython.display import display
image = base64.b64encode(os.urandom(6 * 1024 * 1024)).decode()  # 8 MiB of base64
for _ in range(60):
    display({"image/png": image}, raw=True)
"""


async def test_sixty_large_images_make_a_bounded_response(gw):
    client, owner = await gw(kernel_max_media_total_bytes=32 * MB)
    await _execute(client, owner, "1")  # the kernel is up before measuring
    with peak_growth() as growth:
        resp, body = await _execute(client, owner, IMAGES)
    assert body["status"] == "ok", body["traceback"][-3:]
    assert len(body["media"]) == 4  # 4 x 8 MiB fit in 32 MiB; the 56 others are dropped
    assert body["media_dropped"] == 56
    assert sum(len(m["data"]) for m in body["media"]) <= 32 * MB
    assert resp.content_length is None or resp.content_length < 40 * MB
    # the last display's image was over the budget: not in `result` either
    assert "image/png" not in (body["result"] or {})
    assert growth["mb"] < 400, f"peak RSS rose {growth['mb']:.0f} MB"


FLOOD = """
import threading, time
from IPython.display import display
flood_done = threading.Event()
def flood():
    time.sleep(1)  # after this cell has finished
    blob = "A" * (40 * 1024 * 1024)
    for _ in range(25):
        display({"text/plain": blob}, raw=True)
    flood_done.set()
threading.Thread(target=flood, daemon=True).start()
"""


async def test_output_published_between_executions_is_not_held(gw):
    client, owner = await gw()
    _, body = await _execute(client, owner, "1")
    manager = client.server.app[KERNELS_KEY]
    runtime = manager.live_runtimes()[0]
    connection = runtime.connection
    with peak_growth() as growth:
        _, body = await _execute(client, owner, FLOOD)
        assert body["status"] == "ok"
        # the kernel's thread publishes 25 x 40 MB while no execution runs: all dropped
        async with asyncio.timeout(120):
            while connection.idle_dropped < 25:  # noqa: ASYNC110 - a counter the reader bumps, no event
                await asyncio.sleep(0.2)
        assert connection._iopub_bytes <= 1 * MB
    assert growth["mb"] < 400, f"peak RSS rose {growth['mb']:.0f} MB"
    # the next execution runs normally and carries none of it
    resp, body = await _execute(client, owner, "print('next')")
    assert body["stdout"] == "next\n"
    assert body["result"] is None
    assert resp.content_length is None or resp.content_length < 1 * MB


DOCTORED = """
import gateway_kernel, json
def export_frame(value, *, offset, limit, columns, max_bytes, name, timeout=30.0):
    # the header announces 10 bytes; then 256 MiB of chunks, sent without waiting for credit
    header = {"status": "ok", "total": 1, "rows": 1, "columns": ["a"], "bytes": 10}
    with gateway_kernel._frames_link(name.encode(), timeout) as socket:
        socket.send_multipart([name.encode(), b"H", json.dumps(header).encode()])
        chunk = b"\\0" * (1 << 20)
        for _ in range(256):
            try:
                socket.send_multipart([name.encode(), b"D", chunk], flags=1)  # NOBLOCK
            except Exception:
                break
        try:
            socket.send_multipart([name.encode(), b"E"], flags=1)
        except Exception:
            pass
    return gateway_kernel._Description(header)
gateway_kernel.export_frame = export_frame
import pandas as pd
df = pd.DataFrame({"a": [1]})
"""


async def test_a_doctored_data_frame_is_cut_off_at_the_json_cap(gw):
    client, owner = await gw(kernel_max_frame_json_bytes=4 * MB)
    _, body = await _execute(client, owner, DOCTORED)
    assert body["status"] == "ok", body["traceback"][-3:]
    with peak_growth() as growth:
        resp = await client.get(
            owner.url("scratchpad/kernel/dataframe") + "?variable_name=df&timeout=60",
            headers=owner.headers,
        )
    assert resp.status == 413, await resp.text()
    error = await resp.json()
    assert error["code"] == "frame_too_large"
    assert "kernel_max_frame_json_bytes" in error["detail"]
    assert growth["mb"] < 100, f"peak RSS rose {growth['mb']:.0f} MB"
    # the kernel is free again
    _, body = await _execute(client, owner, "1 + 1")
    assert body["result"] == {"text/plain": "2"}
