"""The kernel lifecycle through the HTTP API, on every backend (Docker in CI)."""

from __future__ import annotations

import asyncio

from gateway.kernels import KernelKey
from gateway.kernels.runtime import KernelRuntime, KernelSlot
from gateway.keys import KERNELS_KEY, SETTINGS_KEY, STORE_KEY
from tests.conftest import Accounts, create_notebook
from tests.sse import read_frame


async def _execute(client, account, code, short_id="scratchpad", **extra):
    resp = await client.post(
        account.url(f"{short_id}/kernel/execute"),
        json={"code": code, **extra},
        headers=account.headers,
    )
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def test_start_reuse_status_stop(kernel_client, owner):
    url = owner.url("scratchpad/kernel")
    status = await (await kernel_client.get(url + "/status", headers=owner.headers)).json()
    assert status["status"] == "stopped" and status["runtime_id"] is None, "status never starts"
    first = await (await kernel_client.post(url + "/start", headers=owner.headers)).json()
    assert first["status"] == "running"
    assert first["execution_state"] == "idle"
    assert first["container_id"]
    assert first["timings"]["kernel_ready_s"] > 0
    again = await (await kernel_client.post(url + "/start", headers=owner.headers)).json()
    assert again["id"] == first["id"], "a live kernel is reused"
    status = await (await kernel_client.get(url + "/status", headers=owner.headers)).json()
    assert status["runtime_id"] == first["id"]
    assert status["idle_expires_at"] is not None
    stop = await (await kernel_client.post(url + "/stop", headers=owner.headers)).json()
    assert stop == {"stopped": True}
    stop = await (await kernel_client.post(url + "/stop", headers=owner.headers)).json()
    assert stop == {"stopped": False}
    status = await (await kernel_client.get(url + "/status", headers=owner.headers)).json()
    assert status["status"] == "stopped"


async def test_variables_survive_and_are_reported(kernel_client, owner):
    first = await _execute(kernel_client, owner, "import math\nx = 40\ndef f():\n    return 2")
    assert first["status"] == "ok"
    assert first["variables"] == {
        "f": {"status": "ok", "type": "function"},
        "math": {"status": "ok", "type": "module"},
        "x": {"status": "ok", "type": "int"},
    }
    second = await _execute(kernel_client, owner, "y = x + f()\nprint(y)\ny")
    assert second["stdout"] == "42\n"
    assert second["result"] == {"text/plain": "42"}
    assert second["execution_count"] == first["execution_count"] + 1
    quiet = await _execute(kernel_client, owner, "z = 1", return_variables=False)
    assert quiet["variables"] == {}


async def test_errors_are_200_with_status_error(kernel_client, owner):
    body = await _execute(kernel_client, owner, "a = 1\n1/0")
    assert body["status"] == "error"
    assert body["error_name"] == "ZeroDivisionError"
    assert body["traceback"]
    assert body["variables"]["a"] == {"status": "ok", "type": "int"}


async def test_users_of_one_notebook_get_separate_kernels(kernel_client, owner, clock):
    other = await Accounts(kernel_client.server.app[STORE_KEY], clock).make("other@example.com")
    await create_notebook(kernel_client, owner, short_id="shared")
    await _execute(kernel_client, owner, "secret = 1", short_id="shared")
    body = await _execute(kernel_client, other, "secret", short_id="shared")
    assert body["error_name"] == "NameError"


async def _queued(slot: KernelSlot, count: int) -> None:
    """Until `count` requests wait for `slot`'s turn (bounded: a hang is a failure)."""
    async with asyncio.timeout(30):
        while slot.waiting != count:  # noqa: ASYNC110 - the queue's length has no event
            await asyncio.sleep(0.005)


async def test_executions_run_in_arrival_order(kernel_client, owner):
    app = kernel_client.server.app
    await _execute(kernel_client, owner, "order = []")
    slot = app[KERNELS_KEY]._slots[
        KernelKey(project_id=1, short_id="scratchpad", user_id=owner.user.id)
    ]
    queued = []
    async with slot.lock:  # the kernel's turn is taken (as by a long cell) while they arrive
        for i in range(4):
            queued.append(
                asyncio.ensure_future(_execute(kernel_client, owner, f"order.append({i})"))
            )
            await _queued(slot, i + 1)  # each is queued before the next is sent
    await asyncio.gather(*queued)
    body = await _execute(kernel_client, owner, "order")
    assert body["result"]["text/plain"] == "[0, 1, 2, 3]"


async def test_queue_full_is_429(kernel_client, owner):
    app = kernel_client.server.app
    size = app[SETTINGS_KEY].kernel_queue_size
    key = KernelKey(project_id=1, short_id="scratchpad", user_id=owner.user.id)
    await _execute(kernel_client, owner, "1")
    slot = app[KERNELS_KEY]._slots[key]
    async with slot.lock:  # taken, as by a long cell, until the queue is full and refused
        waiting = [asyncio.ensure_future(_execute(kernel_client, owner, "1")) for _ in range(size)]
        await _queued(slot, size)
        async with asyncio.timeout(30):  # queued instead (the turn is held): a failure
            resp = await kernel_client.post(
                owner.url("scratchpad/kernel/execute"), json={"code": "1"}, headers=owner.headers
            )
        assert resp.status == 429
        assert (await resp.json())["code"] == "kernel_queue_full"
    assert all(r["status"] == "ok" for r in await asyncio.gather(*waiting))


async def test_timeout_interrupts_and_the_kernel_stays_usable(kernel_client, owner):
    assert (await _execute(kernel_client, owner, "kept = 'yes'"))["status"] == "ok"
    body = await _execute(kernel_client, owner, "while True:\n    pass", timeout=1)
    assert body["status"] == "timeout"
    assert body["variables_survived"] is True
    after = await _execute(kernel_client, owner, "kept")
    assert after["result"] == {"text/plain": "'yes'"}


async def test_kernel_death_is_reported_and_replaced(kernel_client, owner):
    first = await _execute(kernel_client, owner, "x = 1")
    assert first["status"] == "ok"
    died = await _execute(kernel_client, owner, "import os\nos._exit(3)", timeout=60)
    assert died["status"] == "error"
    assert died["error_name"] == "KernelDied"
    status = await (
        await kernel_client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
    ).json()
    assert status["status"] == "error"
    assert "exit code 3" in status["last_error"]
    fresh = await _execute(kernel_client, owner, "x")
    assert fresh["error_name"] == "NameError", "a fresh kernel: old variables are gone"
    assert fresh["kernel_runtime"]["id"] != first["kernel_runtime"]["id"]


async def test_shutdown_waits_for_a_replaced_kernels_release(kernel_client, owner, monkeypatch):
    """A kernel that died is released by its watcher (its sandbox removed) while its slot may
    already hold a new kernel: shutdown waits for that release too."""
    manager = kernel_client.server.app[KERNELS_KEY]
    lifecycle = manager._lifecycle
    release, shutdown = lifecycle.release, manager.shutdown
    shutting_down = asyncio.Event()
    released: list[str] = []
    first = await _execute(kernel_client, owner, "x = 1")
    dead = first["kernel_runtime"]["id"]

    async def held_release(runtime: KernelRuntime) -> None:
        if runtime.id == dead:  # still releasing when shutdown begins, and a while after
            await shutting_down.wait()
            await asyncio.sleep(2)
        await release(runtime)
        released.append(runtime.id)

    async def marked_shutdown() -> None:
        shutting_down.set()
        await shutdown()

    monkeypatch.setattr(lifecycle, "release", held_release)
    monkeypatch.setattr(manager, "shutdown", marked_shutdown)
    died = await _execute(kernel_client, owner, "import os\nos._exit(3)", timeout=60)
    assert died["error_name"] == "KernelDied"
    fresh = await _execute(kernel_client, owner, "1")
    assert fresh["kernel_runtime"]["id"] != dead
    assert dead not in released
    await kernel_client.close()
    assert dead in released


async def test_restart_gives_a_fresh_kernel(kernel_client, owner):
    first = await _execute(kernel_client, owner, "x = 1")
    assert first["status"] == "ok"
    resp = await kernel_client.post(owner.url("scratchpad/kernel/restart"), headers=owner.headers)
    restarted = await resp.json()
    assert restarted["id"] != first["kernel_runtime"]["id"]
    assert (await _execute(kernel_client, owner, "x"))["error_name"] == "NameError"


async def test_output_is_capped_head_and_tail(kernel_client, owner):
    body = await _execute(kernel_client, owner, "print('A' * 3_000_000)\nprint('END')", timeout=60)
    assert body["truncated"] is True or "truncated" in body["stdout"]
    assert len(body["stdout"]) < 1_200_000
    assert body["stdout"].startswith("AAAA")
    assert body["stdout"].rstrip().endswith("END")


async def _stream(client, account, code, **extra):
    resp = await client.post(
        account.url("scratchpad/kernel/execute/stream"),
        json={"code": code, **extra},
        headers=account.headers,
    )
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/event-stream"
    return resp


async def test_stream_sends_chunks_then_result(kernel_client, owner):
    resp = await _stream(
        kernel_client,
        owner,
        "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.05)\n7 * 6",
    )
    frames = []
    while (frame := await read_frame(resp)) is not None:
        if frame.event is not None:
            frames.append(frame)
    kinds = [f.event for f in frames]
    assert kinds[-1] == "result", "every stream ends with result"
    assert kinds.count("stdout") >= 1
    assert "".join(f.data["text"] for f in frames if f.event == "stdout") == "0\n1\n2\n"
    # the cell's value (7 * 6) comes once, in the result, not also as a `display` event
    assert "display" not in kinds
    assert frames[-1].data["result"] == {"text/plain": "42"}


async def test_stream_client_leaving_does_not_break_the_kernel(kernel_client, owner):
    await _execute(kernel_client, owner, "done = False")
    resp = await _stream(kernel_client, owner, "import time\ntime.sleep(0.5)\ndone = True")
    resp.close()
    # The next execution queues behind the abandoned one and sees its effect.
    body = await _execute(kernel_client, owner, "done")
    assert body["result"] == {"text/plain": "True"}


async def test_stream_validation_is_400_before_streaming(kernel_client, owner):
    resp = await kernel_client.post(
        owner.url("scratchpad/kernel/execute/stream"), json={"timeout": 5}, headers=owner.headers
    )
    assert resp.status == 400


async def test_idle_kernels_are_culled(kernel_client, owner, clock):
    app = kernel_client.server.app
    await _execute(kernel_client, owner, "1")
    clock.advance(app[SETTINGS_KEY].kernel_idle_timeout_s + 1)
    culled = await app[KERNELS_KEY].cull_once()
    assert len(culled) == 1
    status = await (
        await kernel_client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
    ).json()
    assert status["status"] == "timed_out"
    body = await _execute(kernel_client, owner, "2")
    assert body["status"] == "ok", "the next execution starts a fresh kernel"


async def test_lifetime_cap_stops_even_a_busy_kernel(kernel_client, owner, clock):
    app = kernel_client.server.app
    await _execute(kernel_client, owner, "1")
    clock.advance(app[SETTINGS_KEY].kernel_max_lifetime_s + 1)
    key = KernelKey(project_id=1, short_id="scratchpad", user_id=owner.user.id)
    app[KERNELS_KEY].runtime(key).last_used_at = clock.now()  # not idle, just old
    assert len(await app[KERNELS_KEY].cull_once()) == 1
    status = await (
        await kernel_client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
    ).json()
    assert status["status"] == "timed_out"


async def test_segfault_is_a_kernel_death(kernel_client, owner):
    body = await _execute(kernel_client, owner, "import ctypes\nctypes.string_at(0)", timeout=60)
    assert body["status"] == "error"
    assert body["error_name"] == "KernelDied"
