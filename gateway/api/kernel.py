"""Kernel routes: start, stop, restart, status, config, execute and execute/stream (SSE).

`scratchpad` is a valid short_id here with no stored notebook; its config is not persisted.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Final

from aiohttp import web

from gateway.api._context import load_notebook, principal, store
from gateway.api._kernel_schemas import (
    CONFIG_RESULT,
    EXECUTE_BODY,
    EXECUTE_RESULT,
    KERNEL_RUNTIME,
    KERNEL_STATUS,
    RUN_ERRORS,
    START_ERRORS,
    choices_body,
)
from gateway.api._render import (
    execution_json,
    json_response,
    kernel_status_json,
    long_json_response,
    runtime_json,
)
from gateway.api._request import opt_bool, req_str
from gateway.api._schemas import obj, sse_events
from gateway.api.notebooks import PREFIX
from gateway.auth import requires
from gateway.contract import Body, Operation, Reply, declared_body, operation
from gateway.errors import GatewayError, InvalidRequest
from gateway.kernels import KernelConfig, KernelKey, Resources
from gateway.kernels.errors import CellTooLarge, KernelConfigOverLimit
from gateway.keys import KERNELS_KEY, SETTINGS_KEY
from gateway.settings import Settings
from gateway.sse import KEEPALIVE, frame, open_stream

routes = web.RouteTableDef()
KERNEL: Final = PREFIX + "/{short_id}/kernel"
SCRATCHPAD: Final = "scratchpad"
CPU_CHOICES: Final = (0.125, 0.25, 0.5, 1, 2, 4, 6, 8, 16, 32, 64)
MEMORY_CHOICES: Final = (0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256)
IDLE_CHOICES: Final = (600, 1800, 3600, 10800, 21600, 43200)
_KEEPALIVE_S: Final = 15.0
_STREAM_BUFFER: Final = 1000
_STREAM_BUFFER_BYTES: Final = 64 << 20  # of display data waiting for a slow stream reader


async def kernel_target(request: web.Request) -> tuple[KernelKey, KernelConfig, dict[str, Any]]:
    """The kernel key, its effective config and the stored config (404 for a missing notebook)."""
    caller = principal(request)
    short_id = request.match_info["short_id"]
    stored: dict[str, Any] = {}
    if short_id != SCRATCHPAD:
        stored = (await load_notebook(request)).kernel_config
    settings = request.app[SETTINGS_KEY]
    # A stored config above today's maxima (set before they were lowered) is clamped to them.
    config = KernelConfig(
        resources=Resources(
            cpu_cores=min(
                float(stored.get("cpu_cores") or settings.kernel_cpu_cores),
                settings.kernel_max_cpu_cores,
            ),
            memory_gb=min(
                float(stored.get("memory_gb") or settings.kernel_memory_gb),
                settings.kernel_max_memory_gb,
            ),
        ),
        idle_timeout_s=min(
            float(stored.get("idle_timeout_seconds") or settings.kernel_idle_timeout_s),
            settings.kernel_max_idle_timeout_s,
        ),
    )
    key = KernelKey(project_id=caller.project.id, short_id=short_id, user_id=caller.user.id)
    return key, config, stored


def whole_numbers(body: dict[str, Any]) -> dict[str, Any]:
    """Resource numbers as PostHog sends them: whole values as ints (`3600`, not `3600.0`)."""
    for name in ("cpu_cores", "memory_gb", "idle_timeout_seconds"):
        value = body.get(name)
        if isinstance(value, float) and value.is_integer():
            body[name] = int(value)
    return body


def _backend(request: web.Request) -> str:
    return request.app[SETTINGS_KEY].kernel_backend


_RUNTIME_REPLY: Final = Reply(200, "The kernel's runtime.", KERNEL_RUNTIME)


@routes.post(KERNEL + "/start", name="start_kernel")
@requires("notebook:write")
@operation(
    Operation("notebooks_kernel_start_create", replies=(_RUNTIME_REPLY,), errors=START_ERRORS)
)
async def start_kernel(request: web.Request) -> web.Response:
    """Start the caller's kernel for this notebook, or reuse the live one."""
    key, config, _ = await kernel_target(request)
    runtime = await request.app[KERNELS_KEY].start(key, config)
    return json_response(whole_numbers({"id": runtime.id, **runtime_json(runtime)}))


@routes.post(KERNEL + "/restart", name="restart_kernel")
@requires("notebook:write")
@operation(
    Operation("notebooks_kernel_restart_create", replies=(_RUNTIME_REPLY,), errors=START_ERRORS)
)
async def restart_kernel(request: web.Request) -> web.Response:
    """Replace the caller's kernel with a fresh one (variables are lost)."""
    key, config, _ = await kernel_target(request)
    runtime = await request.app[KERNELS_KEY].restart(key, config)
    return json_response(whole_numbers({"id": runtime.id, **runtime_json(runtime)}))


@routes.post(KERNEL + "/stop", name="stop_kernel")
@requires("notebook:write")
@operation(
    Operation(
        "notebooks_kernel_stop_create",
        replies=(
            Reply(
                200,
                "Whether a kernel was running.",
                obj(("stopped",), stopped={"type": "boolean"}),
            ),
        ),
    )
)
async def stop_kernel(request: web.Request) -> web.Response:
    """Stop the caller's kernel; `{"stopped": false}` when none was running."""
    key, _, _ = await kernel_target(request)
    return json_response({"stopped": await request.app[KERNELS_KEY].stop(key)})


@routes.get(KERNEL + "/status", name="get_kernel_status")
@requires("notebook:read")
@operation(
    Operation(
        "notebooks_kernel_status_retrieve",
        replies=(Reply(200, "The kernel's state and config.", KERNEL_STATUS),),
    )
)
async def get_kernel_status(request: web.Request) -> web.Response:
    """The caller's kernel state and config; never starts anything."""
    key, config, _ = await kernel_target(request)
    runtime = request.app[KERNELS_KEY].runtime(key)
    body = kernel_status_json(runtime, backend=_backend(request), config=config)
    body["sandbox"] = request.app[KERNELS_KEY].backend.describe()
    return json_response(whole_numbers(body))


def _choice(body: dict[str, Any], attr: str, choices: tuple[float, ...]) -> float | None:
    if attr not in body or body[attr] is None:
        return None
    value = body[attr]
    if isinstance(value, bool) or not isinstance(value, int | float) or value not in choices:
        msg = f"{attr} must be a supported option."
        raise InvalidRequest(msg, attr=attr)
    return float(value)


def _host_limits(cpu: float | None, memory: float | None) -> None:
    cores = os.cpu_count() or 1
    if cpu is not None and cpu > cores:
        msg = f"cpu_cores exceeds this host's maximum of {cores}."
        raise InvalidRequest(msg, attr="cpu_cores")
    total_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    if memory is not None and memory > total_gb:
        msg = f"memory_gb exceeds this host's maximum of {total_gb:.1f} GB."
        raise InvalidRequest(msg, attr="memory_gb")


def _member_limits(
    settings: Settings, cpu: float | None, memory: float | None, idle: float | None
) -> None:
    """403 for a value above what a member may set: a notebook's config applies to every
    member's kernel of it, so one member could otherwise claim the host for everyone."""
    for attr, value, setting in (
        ("cpu_cores", cpu, "kernel_max_cpu_cores"),
        ("memory_gb", memory, "kernel_max_memory_gb"),
        ("idle_timeout_seconds", idle, "kernel_max_idle_timeout_s"),
    ):
        limit = float(getattr(settings, setting))
        if value is not None and value > limit:
            msg = f"{attr} {value:g} is over this gateway's maximum of {limit:g} ({setting})."
            raise KernelConfigOverLimit(msg, attr=attr)


@routes.post(KERNEL + "/config", name="configure_kernel")
@requires("notebook:write")
@operation(
    Operation(
        "notebooks_kernel_config_create",
        replies=(Reply(200, "The stored config and how it was applied.", CONFIG_RESULT),),
        errors=(KernelConfigOverLimit,),
        body=Body(choices_body(CPU_CHOICES, MEMORY_CHOICES, IDLE_CHOICES)),
    )
)
async def configure_kernel(request: web.Request) -> web.Response:
    """Set CPU, memory and idle timeout; a live kernel is resized in place where possible."""
    body = declared_body(request)
    cpu = _choice(body, "cpu_cores", CPU_CHOICES)
    memory = _choice(body, "memory_gb", MEMORY_CHOICES)
    idle = _choice(body, "idle_timeout_seconds", IDLE_CHOICES)
    if cpu is None and memory is None and idle is None:
        msg = "Provide at least one kernel configuration option."
        raise InvalidRequest(msg)
    _member_limits(request.app[SETTINGS_KEY], cpu, memory, idle)
    _host_limits(cpu, memory)
    key, config, stored = await kernel_target(request)
    changes = {
        k: v
        for k, v in (("cpu_cores", cpu), ("memory_gb", memory), ("idle_timeout_seconds", idle))
        if v is not None
    }
    if key.short_id != SCRATCHPAD:
        stored = (
            await store(request).set_kernel_config(key.project_id, key.short_id, changes)
        ).kernel_config
    else:
        stored = {**stored, **changes}
    manager = request.app[KERNELS_KEY]
    applied = "next_start"
    if cpu is not None or memory is not None:
        applied = await manager.resize(
            key,
            Resources(
                cpu_cores=cpu or config.resources.cpu_cores,
                memory_gb=memory or config.resources.memory_gb,
            ),
        )
    if idle is not None:
        manager.set_idle_timeout(key, idle)
        if manager.runtime(key) is not None and cpu is None and memory is None:
            applied = "live"
    return json_response(
        whole_numbers(
            {
                "cpu_cores": stored.get("cpu_cores"),
                "memory_gb": stored.get("memory_gb"),
                "idle_timeout_seconds": stored.get("idle_timeout_seconds"),
                "applied": applied,
            }
        )
    )


def _execute_args(body: dict[str, Any], max_cell_bytes: int) -> tuple[str, bool, float]:
    if "code" not in body:
        msg = "code is required."
        raise InvalidRequest(msg, attr="code")
    code = req_str(body, "code") if body["code"] != "" else ""
    # checked before anything parses the cell (variable analysis) or sends it to a kernel
    if len(code) > max_cell_bytes or len(code.encode("utf-8", "surrogatepass")) > max_cell_bytes:
        msg = f"The cell is larger than the {max_cell_bytes} byte limit (kernel_max_cell_bytes)."
        raise CellTooLarge(msg, attr="code")
    flag = opt_bool(body, "return_variables")
    timeout = body.get("timeout", 30)
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not (0.1 <= timeout <= 120)
    ):
        msg = "timeout must be a number of seconds from 0.1 to 120."
        raise InvalidRequest(msg, attr="timeout")
    return code, flag if isinstance(flag, bool) else True, float(timeout)


@routes.post(KERNEL + "/execute", name="execute_code")
@requires("notebook:write")
@operation(
    Operation(
        "notebooks_kernel_execute_create",
        replies=(
            Reply(200, "The execution's result (a Python error is 200 too).", EXECUTE_RESULT),
        ),
        errors=(CellTooLarge, *RUN_ERRORS),
        body=Body(EXECUTE_BODY, required=True),
    )
)
async def execute_code(request: web.Request) -> web.Response:
    """Run code in the caller's kernel (started if needed); the full result as JSON."""
    code, return_variables, timeout = _execute_args(
        declared_body(request), request.app[SETTINGS_KEY].kernel_max_cell_bytes
    )
    key, config, _ = await kernel_target(request)
    execution = await request.app[KERNELS_KEY].execute(
        key, config, code, timeout=timeout, return_variables=return_variables
    )
    return await long_json_response(execution_json(execution))


@routes.post(KERNEL + "/execute/stream", name="execute_code_stream")
@requires("notebook:write")
@operation(
    Operation(
        "notebooks_kernel_execute_stream_create",
        replies=(
            Reply(
                200,
                "Server-sent events: `stdout`/`stderr` (`{text}`), `display` (`{data}`, for "
                "`display()` output), then one `result` (the execute result) or `error`.",
                sse_events("stdout", "stderr", "display", "result", "error"),
                media="text/event-stream",
            ),
        ),
        errors=(CellTooLarge, *RUN_ERRORS),
        body=Body(EXECUTE_BODY, required=True),
    )
)
async def execute_code_stream(request: web.Request) -> web.StreamResponse:
    """Run code; SSE of stdout/stderr/display as they come, then `result` (or `error`)."""
    code, return_variables, timeout = _execute_args(
        declared_body(request), request.app[SETTINGS_KEY].kernel_max_cell_bytes
    )
    key, config, _ = await kernel_target(request)
    manager = request.app[KERNELS_KEY]
    manager.check_queue(key)
    events: asyncio.Queue[tuple[str, dict[str, Any], int]] = asyncio.Queue()
    queued = 0

    async def on_event(kind: str, data: dict[str, Any]) -> None:
        # Intermediate output past the buffer (count or bytes) is dropped: the final result
        # still has it.
        nonlocal queued
        size = sum(len(v) for v in (data.get("data") or {}).values() if isinstance(v, str))
        if events.qsize() < _STREAM_BUFFER and queued + size <= _STREAM_BUFFER_BYTES:
            queued += size
            events.put_nowait((kind, data, size))

    # The execution is its own task: a client that disconnects does not interrupt the kernel.
    task = manager.spawn(
        manager.execute(
            key, config, code, timeout=timeout, return_variables=return_variables, on_event=on_event
        )
    )
    response = await open_stream(request)
    try:
        while not (task.done() and events.empty()):
            getter = asyncio.ensure_future(events.get())
            done, _ = await asyncio.wait(
                {getter, task}, timeout=_KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
            )
            if getter in done:
                kind, data, size = getter.result()
                queued -= size
                await response.write(frame(kind, data))
                continue
            getter.cancel()
            if not done:
                await response.write(KEEPALIVE)
        error = task.exception()
        if error is None:
            await response.write(frame("result", execution_json(task.result())))
        else:
            detail = (
                error.detail
                if isinstance(error, GatewayError)
                else "Failed to execute notebook code."
            )
            await response.write(frame("error", {"error": detail}))
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client left; the execution finishes on its own
    return response
