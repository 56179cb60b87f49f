"""KernelManager: kernels by (project, notebook, user): start, stop, restart, execute, cull.

Executions on one kernel run one at a time in arrival order (a FIFO lock per key, with a
bounded number waiting); different kernels run concurrently. Each runtime has a watcher
awaiting its sandbox's exit, so a death is seen at once: the running execution fails with
KernelDied and the next start gets a fresh sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

from gateway.clock import Clock
from gateway.kernels.analysis import cell_globals
from gateway.kernels.bridge import BridgeHandler, KernelBridge
from gateway.kernels.client import KernelConnection, OnEvent, RawExecution, _noop
from gateway.kernels.errors import (
    KernelDied,
    KernelExecuteFailed,
    KernelNotRunning,
    KernelQueueFull,
    KernelQuotaExceeded,
    KernelStartFailed,
    SandboxError,
)
from gateway.kernels.frames import (
    FRAME,
    FrameExport,
    FrameRequest,
    frame_expression,
    frame_pipe,
)
from gateway.kernels.provisioner import KernelProvisioner
from gateway.kernels.results import build_result, describe_expressions
from gateway.kernels.rundir import (
    CONTAINER_RUN_DIR,
    GATEWAY_DIR,
    RunDir,
    kernel_view,
    remove_run_dir,
)
from gateway.kernels.runtime import KernelConfig, KernelKey, KernelRuntime, KernelSlot
from gateway.kernels.types import ConnectionInfo, ExecutionResult, KernelLaunchSpec, Resources
from gateway.settings import Settings
from gateway.store.records import KernelRecord

_log = logging.getLogger(__name__)
POOL_KEY: Final = KernelKey(project_id=0, short_id="", user_id=0)

type ProvisionerFactory = Callable[[], KernelProvisioner]


class KernelRecords(Protocol):
    """Where live kernels are recorded so a restarted gateway can re-attach (the store)."""

    async def save_kernel(self, record: KernelRecord) -> None: ...
    async def forget_kernel(self, runtime_id: str) -> None: ...


@dataclass(kw_only=True)
class Execution:
    result: ExecutionResult
    runtime: KernelRuntime
    started_at: datetime
    completed_at: datetime


class KernelManager:
    """The only owner of kernels; handlers reach it through `KERNELS_KEY`."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        factory: ProvisionerFactory,
        *,
        instance_id: str,
        records: KernelRecords | None = None,
        bridge: BridgeHandler | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._factory = factory
        self._records = records
        self._bridge = bridge
        self.instance_id = instance_id
        self._slots: dict[KernelKey, KernelSlot] = {}
        self._closing = False
        self._detached: set[asyncio.Task[Any]] = set()
        self._pool: list[KernelRuntime] = []
        self._pool_filling = 0
        self._fills: set[asyncio.Task[None]] = set()
        self._starting: set[KernelKey] = set()  # launching now: counted by the quotas
        self.default_config = KernelConfig(
            resources=Resources(
                cpu_cores=settings.kernel_cpu_cores, memory_gb=settings.kernel_memory_gb
            ),
            idle_timeout_s=settings.kernel_idle_timeout_s,
        )

    # -- queries ---------------------------------------------------------------------------

    def runtime(self, key: KernelKey) -> KernelRuntime | None:
        slot = self._slots.get(key)
        return None if slot is None else slot.runtime

    def live_runtimes(self) -> list[KernelRuntime]:
        """Every running kernel, pooled ones included."""
        assigned = [s.runtime for s in self._slots.values() if s.runtime and s.runtime.alive]
        return assigned + [r for r in self._pool if r.alive]

    @property
    def pool_ready(self) -> int:
        return sum(1 for r in self._pool if r.alive)

    # -- lifecycle -------------------------------------------------------------------------

    def _slot(self, key: KernelKey) -> KernelSlot:
        return self._slots.setdefault(key, KernelSlot())

    async def start(self, key: KernelKey, config: KernelConfig) -> KernelRuntime:
        """The live kernel of `key`, starting one when there is none. Raises KernelStartFailed."""
        slot = self._slot(key)
        async with slot.lock:
            return await self._ensure(slot, key, config)

    async def restart(self, key: KernelKey, config: KernelConfig) -> KernelRuntime:
        slot = self._slot(key)
        async with slot.lock:
            if slot.runtime is not None and slot.runtime.alive:
                await self._stop(slot.runtime, status="stopped")
            return await self._ensure(slot, key, config)

    async def stop(self, key: KernelKey) -> bool:
        """Stop the kernel now, even mid-execution (that execution ends with KernelDied)."""
        runtime = self.runtime(key)
        if runtime is None or not runtime.alive:
            return False
        await self._stop(runtime, status="stopped")
        return True

    async def _ensure(
        self, slot: KernelSlot, key: KernelKey, config: KernelConfig
    ) -> KernelRuntime:
        runtime = slot.runtime
        if runtime is not None and runtime.alive:
            runtime.last_used_at = self._clock.now()
            return runtime
        if self._closing:
            msg = "The gateway is shutting down."
            raise KernelStartFailed(msg)
        self._check_quota(key)
        pooled = self._take_pooled(key, config)
        if pooled is not None:
            slot.runtime = pooled
            await self._record(pooled)
            return pooled
        if len(self.live_runtimes()) >= self._settings.kernel_max_count:
            limit = self._settings.kernel_max_count
            msg = f"This gateway already runs its maximum of {limit} kernels."
            raise KernelStartFailed(msg)
        self._starting.add(key)
        try:
            slot.runtime = await self._launch(key, config)
        finally:
            self._starting.discard(key)
        await self._record(slot.runtime)
        return slot.runtime

    def _check_quota(self, key: KernelKey) -> None:
        """Raise KernelQuotaExceeded (429) when `key`'s user or project already runs, or is
        starting, its allowed number of kernels. Called by `_ensure` before a start."""
        settings = self._settings
        live = {k for k, s in self._slots.items() if s.runtime is not None and s.runtime.alive}
        others = (live | self._starting) - {key}
        users = sum(1 for k in others if k.user_id == key.user_id)
        if users >= settings.kernel_max_per_user:
            msg = (
                f"You already run {users} kernels, the most one user may run at once "
                f"(kernel_max_per_user = {settings.kernel_max_per_user}); stop one first."
            )
            raise KernelQuotaExceeded(msg)
        projects = sum(1 for k in others if k.project_id == key.project_id)
        if projects >= settings.kernel_max_per_project:
            msg = (
                f"This project already runs {projects} kernels, the most one project may run "
                f"at once (kernel_max_per_project = {settings.kernel_max_per_project})."
            )
            raise KernelQuotaExceeded(msg)

    async def _record(self, runtime: KernelRuntime) -> None:
        if self._records is None or runtime.provisioner.sandbox_id is None:
            return
        key = runtime.key
        await self._records.save_kernel(
            KernelRecord(
                id=runtime.id,
                instance=self.instance_id,
                project_id=key.project_id,
                short_id=key.short_id,
                user_id=key.user_id,
                sandbox_id=runtime.provisioner.sandbox_id,
                run_dir=str(runtime.run_dir.path),
                connection_key=runtime.connection_key,
                cpu_cores=runtime.resources.cpu_cores,
                memory_gb=runtime.resources.memory_gb,
                idle_timeout_s=runtime.idle_timeout_s,
                started_at=runtime.started_at,
            )
        )

    async def adopt(self, record: KernelRecord, provisioner: KernelProvisioner) -> KernelRuntime:
        """Re-attach a kernel a previous gateway process started (its sandbox still runs).

        Called at startup, before requests are served. Raises KernelStartFailed when the
        kernel does not answer; the caller then removes its sandbox.
        """
        key = KernelKey(
            project_id=record.project_id, short_id=record.short_id, user_id=record.user_id
        )
        now = self._clock.now()
        uid = self._settings.kernel_uid
        try:
            # The key comes from the gateway's records, never from the run directory.
            if not record.connection_key:
                msg = "no connection key recorded"
                raise ValueError(msg)
            run_dir = RunDir.reopen(Path(record.run_dir), uid=uid)
        except (OSError, ValueError) as err:
            msg = f"kernel {record.id} cannot be re-attached: {err}"
            raise KernelStartFailed(msg) from err
        runtime = KernelRuntime(
            id=record.id,
            key=key,
            provisioner=provisioner,
            run_dir=run_dir,
            kernel_run_dir=CONTAINER_RUN_DIR,
            connection_key=record.connection_key,
            resources=Resources(cpu_cores=record.cpu_cores, memory_gb=record.memory_gb),
            idle_timeout_s=record.idle_timeout_s,
            started_at=record.started_at,
            last_used_at=now,
        )
        try:
            if not run_dir.sockets_ready():
                msg = "the kernel's sockets are gone"
                raise OSError(msg)
            info = kernel_view(record.connection_key, CONTAINER_RUN_DIR)
            runtime.connection = self._connection(info, run_dir)
            runtime.watcher = asyncio.create_task(self._watch(runtime))
            runtime.uid = uid
            self._start_bridge(runtime)
            await runtime.connection.start(min(10.0, self._settings.kernel_startup_timeout_s))
        except (OSError, ValueError, TimeoutError, KernelDied) as err:
            await self._discard(runtime)
            msg = f"kernel {record.id} did not answer: {err!r}"
            raise KernelStartFailed(msg) from err
        runtime.status = "running"
        runtime.execution_state = "idle"
        self._slot(key).runtime = runtime
        _log.info("kernel %s re-attached for %s", runtime.id, key)
        return runtime

    def _start_bridge(self, runtime: KernelRuntime) -> None:
        """The channel `hogql_execute()` uses; the project is read from the runtime's key at
        each request (a pooled kernel gets one when a user takes it)."""
        if self._bridge is None:
            return
        runtime.bridge = KernelBridge(
            runtime.run_dir, project=lambda: runtime.key.project_id, handler=self._bridge
        )
        runtime.bridge.start()

    def _connection(self, info: ConnectionInfo, run_dir: RunDir) -> KernelConnection:
        settings = self._settings
        return KernelConnection(
            info,
            urls=run_dir.socket_urls,
            output_cap=settings.kernel_output_cap_chars,
            max_media_bytes=settings.kernel_max_media_bytes,
            max_message_bytes=settings.kernel_max_message_bytes,
            max_media_total_bytes=settings.kernel_max_media_total_bytes,
            idle_output_bytes=settings.kernel_idle_output_bytes,
        )

    async def _launch(self, key: KernelKey, config: KernelConfig) -> KernelRuntime:
        settings = self._settings
        runtime_id = uuid.uuid4().hex[:16]
        path = settings.kernel_run_root / runtime_id
        provisioner = self._factory()
        now = self._clock.now()
        sandboxed = provisioner.backend == "docker"
        uid = settings.kernel_uid if sandboxed else None
        kernel_run_dir = CONTAINER_RUN_DIR if sandboxed else str(path)
        key_hex = secrets.token_hex(32)
        loop = asyncio.get_running_loop()
        begin = loop.time()
        try:
            run_dir = await asyncio.to_thread(
                RunDir.create,
                path,
                uid=uid,
                # the quota is for sandboxes; a subprocess kernel can write anywhere anyway
                quota_mb=settings.kernel_run_dir_mb if sandboxed else 0,
                quota_inodes=settings.kernel_run_dir_inodes,
                key=key_hex,
                kernel_dir=kernel_run_dir,
            )
        except SandboxError as err:
            raise KernelStartFailed(err.reason) from err
        runtime = KernelRuntime(
            id=runtime_id,
            key=key,
            provisioner=provisioner,
            run_dir=run_dir,
            kernel_run_dir=kernel_run_dir,
            connection_key=key_hex,
            resources=config.resources,
            idle_timeout_s=config.idle_timeout_s,
            started_at=now,
            last_used_at=now,
            uid=uid,
        )
        info = kernel_view(key_hex, kernel_run_dir)
        try:
            spec = KernelLaunchSpec(
                runtime_id=runtime_id,
                run_dir=path,
                resources=config.resources,
                labels=self._labels(key, runtime_id),
                env={**self._environment(key), "GATEWAY_RUN_DIR": kernel_run_dir},
            )
            await provisioner.launch_kernel(spec, info)
            runtime.timings.started = round(loop.time() - begin, 4)
            if provisioner.created_after_s is not None:
                runtime.timings.created = provisioner.created_after_s
            runtime.connection = self._connection(info, run_dir)
            runtime.watcher = asyncio.create_task(self._watch(runtime))
            self._start_bridge(runtime)
            remaining = settings.kernel_startup_timeout_s - (loop.time() - begin)
            await run_dir.wait_for_sockets(remaining, runtime.connection.died)
            if runtime.connection.died.done():
                status = runtime.connection.died.result()
                raise KernelDied(exit_code=status.exit_code, oom_killed=status.oom_killed)
            remaining = settings.kernel_startup_timeout_s - (loop.time() - begin)
            await runtime.connection.start(max(remaining, 1.0))
        except SandboxError as err:
            await self._discard(runtime)
            raise KernelStartFailed(err.reason) from err
        except OSError as err:
            await self._discard(runtime)
            msg = f"The kernel's run directory was tampered with while it started ({err})."
            raise KernelStartFailed(msg) from err
        except (TimeoutError, KernelDied) as err:
            await self._discard(runtime)
            reason = (
                f"The kernel did not become ready within {settings.kernel_startup_timeout_s:g} s."
                if isinstance(err, TimeoutError)
                else "The kernel exited while starting."
            )
            raise KernelStartFailed(reason) from err
        except BaseException:
            # Cancelled mid-launch (shutdown): the half-made sandbox must not outlive us.
            await asyncio.shield(self._discard(runtime))
            raise
        runtime.timings.ready = round(loop.time() - begin, 4)
        runtime.status = "running"
        runtime.execution_state = "idle"
        _log.info(
            "kernel %s started for %s: created %ss, started %ss, ready %ss",
            runtime_id,
            key,
            runtime.timings.created,
            runtime.timings.started,
            runtime.timings.ready,
        )
        return runtime

    # -- the warm pool ---------------------------------------------------------------------

    def _take_pooled(self, key: KernelKey, config: KernelConfig) -> KernelRuntime | None:
        """A ready pooled kernel for `key` when its config is the default one; refills."""
        if config != self.default_config:
            return None
        while self._pool:
            runtime = self._pool.pop(0)
            if runtime.alive:
                runtime.key = key
                runtime.last_used_at = self._clock.now()
                self.fill_pool()
                _log.info("kernel %s taken from the pool for %s", runtime.id, key)
                return runtime
        self.fill_pool()
        return None

    def fill_pool(self) -> None:
        """Start pooled kernels in the background until the pool is full again."""
        missing = self._settings.kernel_pool_size - self.pool_ready - self._pool_filling
        for _ in range(max(0, missing)):
            if self._closing or len(self.live_runtimes()) + self._pool_filling >= (
                self._settings.kernel_max_count
            ):
                return
            self._pool_filling += 1
            task = asyncio.create_task(self._fill_one())
            self._fills.add(task)
            task.add_done_callback(self._fills.discard)

    async def _fill_one(self) -> None:
        try:
            runtime = await self._launch(POOL_KEY, self.default_config)
        except KernelStartFailed as err:
            _log.warning("warm pool: could not start a kernel: %s", err.reason)
            return
        finally:
            self._pool_filling -= 1
        if self._closing:
            await self._stop(runtime, status="stopped")
        else:
            self._pool.append(runtime)

    def _labels(self, key: KernelKey, runtime_id: str) -> dict[str, str]:
        """Pooled kernels are labelled `gateway.pool=1` with empty owner labels: labels are
        fixed at creation, before the pool knows its user. The manager records the owner."""
        pooled = key == POOL_KEY
        return {
            "gateway.instance": self.instance_id,
            "gateway.project": "" if pooled else str(key.project_id),
            "gateway.notebook": "" if pooled else key.short_id,
            "gateway.user": "" if pooled else str(key.user_id),
            "gateway.pool": "1" if pooled else "0",
            "gateway.runtime-id": runtime_id,
            "gateway.kernel-id": f"kernel-{runtime_id}",
        }

    def _environment(self, key: KernelKey) -> dict[str, str]:
        """Built from an allowlist: never a copy of the gateway's own environment. It names no
        project or user: a pooled kernel is created before it has either."""
        half = str(self._settings.kernel_output_cap_chars // 2)
        return {
            "GATEWAY_OUTPUT_HEAD_CHARS": half,
            "GATEWAY_OUTPUT_TAIL_CHARS": half,
            "LANG": "C.UTF-8",
            "TZ": "UTC",
        }

    async def _watch(self, runtime: KernelRuntime) -> None:
        """Await the sandbox's exit; then fail whoever is talking to it and mark the runtime."""
        status = await runtime.provisioner.wait()
        if runtime in self._pool:
            self._pool.remove(runtime)
        connection = runtime.connection
        if connection is not None and not connection.died.done():
            connection.died.set_result(status)
        if runtime.alive and not runtime.stopping:
            runtime.status = "error"
            oom = " (out of memory)" if status.oom_killed else ""
            runtime.last_error = f"Kernel died: exit code {status.exit_code}{oom}."
            _log.warning("kernel %s died: exit %s%s", runtime.id, status.exit_code, oom)
            await self._release(runtime)

    async def _stop(self, runtime: KernelRuntime, *, status: str) -> None:
        runtime.stopping = True
        runtime.status = status
        await runtime.provisioner.kill()
        await self._release(runtime)
        if runtime.watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(runtime.watcher), 10)

    async def _release(self, runtime: KernelRuntime) -> None:
        if runtime.bridge is not None:
            runtime.bridge.close()
        if self._records is not None:
            await self._records.forget_kernel(runtime.id)
        if runtime.connection is not None:
            runtime.connection.close()
        runtime.execution_state = None
        await runtime.provisioner.cleanup()
        runtime.run_dir.close()
        await remove_run_dir(runtime.run_dir.path)

    async def _discard(self, runtime: KernelRuntime) -> None:
        runtime.status = "error"
        runtime.stopping = True
        await runtime.provisioner.kill()
        await self._release(runtime)
        if runtime.watcher is not None:
            runtime.watcher.cancel()

    # -- execution -------------------------------------------------------------------------

    def check_queue(self, key: KernelKey) -> None:
        """Raise KernelQueueFull when `key` already has its maximum of waiting executions."""
        slot = self._slot(key)
        if slot.waiting >= self._settings.kernel_queue_size:
            msg = (
                f"{slot.waiting} executions are already waiting for this kernel; "
                "retry when they finish."
            )
            raise KernelQueueFull(msg)

    def spawn[T](self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `work` detached from its request (kept referenced until done)."""
        task = asyncio.create_task(work)
        self._detached.add(task)
        task.add_done_callback(self._detached.discard)
        return task

    async def execute(
        self,
        key: KernelKey,
        config: KernelConfig,
        code: str,
        *,
        timeout: float,
        return_variables: bool,
        on_event: OnEvent = _noop,
    ) -> Execution:
        self.check_queue(key)
        slot = self._slot(key)
        slot.waiting += 1
        try:
            await slot.lock.acquire()  # FIFO: executions run in arrival order
        finally:
            slot.waiting -= 1
        try:
            runtime = await self._ensure(slot, key, config)
            return await self._run(
                slot,
                runtime,
                config,
                code,
                timeout=timeout,
                return_variables=return_variables,
                on_event=on_event,
            )
        finally:
            slot.lock.release()

    async def _run(
        self,
        slot: KernelSlot,
        runtime: KernelRuntime,
        config: KernelConfig,
        code: str,
        *,
        timeout: float,
        return_variables: bool,
        on_event: OnEvent,
    ) -> Execution:
        connection = runtime.connection
        assert connection is not None
        # off the loop: a cell at kernel_max_cell_bytes takes ~0.1-0.5 s to parse
        names = await asyncio.to_thread(cell_globals, code) if return_variables else []
        started_at = self._clock.now()
        runtime.last_used_at = started_at
        runtime.execution_state = "busy"
        loop = asyncio.get_running_loop()
        expressions = describe_expressions(names)
        run = connection.execute(code, expressions)
        result: ExecutionResult
        try:
            await connection.collect(run, deadline=loop.time() + timeout, on_event=on_event)
            if run.status != "ok" and names:
                run.user_expressions = await connection.evaluate(expressions, timeout)
            result = build_result(run, names)
        except TimeoutError:
            survived = await self._interrupt(slot, runtime, config, run, on_event)
            if survived and names:
                run.user_expressions = await connection.evaluate(
                    expressions, self._settings.kernel_interrupt_grace_s
                )
            result = build_result(run, names if survived else [])
            result.status = "timeout"
            result.variables_survived = survived
        except KernelDied as died:
            result = build_result(run, [])
            result.status = "error"
            result.error_name = "KernelStopped" if runtime.stopping else "KernelDied"
            result.error_value = runtime.last_error or "The kernel was stopped."
            result.oom_killed = died.oom_killed
        except Exception as err:
            _log.exception("execution on kernel %s failed", runtime.id)
            raise KernelExecuteFailed(str(err)) from err
        finally:
            if runtime.alive:
                runtime.execution_state = "idle"
        completed_at = self._clock.now()
        runtime.last_used_at = completed_at
        return Execution(
            result=result,
            runtime=slot.runtime or runtime,
            started_at=started_at,
            completed_at=completed_at,
        )

    async def _interrupt(
        self,
        slot: KernelSlot,
        runtime: KernelRuntime,
        config: KernelConfig,
        run: RawExecution,
        on_event: OnEvent,
    ) -> bool:
        """Control-channel interrupt, then SIGINT, then a restart. True if state survived."""
        connection = runtime.connection
        assert connection is not None
        grace = self._settings.kernel_interrupt_grace_s
        loop = asyncio.get_running_loop()
        steps: tuple[Callable[[], Awaitable[object]], ...] = (
            lambda: connection.interrupt(grace),
            lambda: runtime.provisioner.send_signal(signal.SIGINT),
        )
        for step in steps:
            try:
                await step()
                await connection.collect(run, deadline=loop.time() + grace, on_event=on_event)
            except TimeoutError:
                continue
            except KernelDied:
                break
            return True
        _log.warning("kernel %s ignored interrupts; restarting it", runtime.id)
        if runtime.alive:
            await self._stop(runtime, status="stopped")
        slot.runtime = await self._launch(runtime.key, config)
        return False

    # -- data frames -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def export_frame(
        self, key: KernelKey, request: FrameRequest
    ) -> AsyncIterator[FrameExport]:
        """A slice of a kernel variable as Arrow IPC, read while the kernel writes it.

        Runs in the kernel's FIFO like an execution, as a silent request: the execution count
        does not move and nothing reaches the notebook. The kernel stays taken until the
        context exits (its helper is writing). Raises KernelNotRunning, and
        KernelExecuteFailed (died or timed out before the header); the caller maps the
        helper's error results and checks `complete()` after the last chunk.
        """
        slot = self._slot(key)
        runtime = slot.runtime
        if runtime is None or not runtime.alive:
            msg = "No kernel is running for this notebook: execute a cell first."
            raise KernelNotRunning(msg)
        self.check_queue(key)
        slot.waiting += 1
        try:
            await slot.lock.acquire()
        finally:
            slot.waiting -= 1
        try:
            runtime = slot.runtime
            if runtime is None or not runtime.alive or runtime.connection is None:
                msg = "The kernel stopped before the data frame could be read."
                raise KernelNotRunning(msg)
            connection = runtime.connection
            name = f"frame-{uuid.uuid4().hex}"
            expression = frame_expression(request, name, f"{runtime.kernel_run_dir}/{GATEWAY_DIR}")
            runtime.execution_state = "busy"
            try:
                async with frame_pipe(
                    runtime.run_dir,
                    name,
                    evaluate=lambda: connection.evaluate({FRAME: expression}, request.timeout),
                    timeout=request.timeout,
                ) as export:
                    yield export
            finally:
                if runtime.alive:
                    runtime.execution_state = "idle"
            runtime.last_used_at = self._clock.now()
        finally:
            slot.lock.release()

    # -- resources, culling, shutdown ------------------------------------------------------

    async def resize(self, key: KernelKey, resources: Resources) -> str:
        """Apply new limits to a live kernel when the backend can: 'live' or 'next_start'."""
        runtime = self.runtime(key)
        if runtime is None or not runtime.alive:
            return "next_start"
        if await runtime.provisioner.resize(resources):
            runtime.resources = resources
            return "live"
        return "next_start"

    def set_idle_timeout(self, key: KernelKey, idle_timeout_s: float) -> None:
        runtime = self.runtime(key)
        if runtime is not None:
            runtime.idle_timeout_s = idle_timeout_s

    async def cull_once(self) -> list[str]:
        """Stop kernels idle past their timeout or older than the lifetime cap."""
        now = self._clock.now()
        culled = []
        for pooled in list(self._pool):
            if (now - pooled.started_at).total_seconds() >= self._settings.kernel_max_lifetime_s:
                self._pool.remove(pooled)
                await self._stop(pooled, status="timed_out")
                self.fill_pool()
        for slot in list(self._slots.values()):
            runtime = slot.runtime
            if runtime is None or runtime.status != "running":
                continue
            age = (now - runtime.started_at).total_seconds()
            idle = not slot.lock.locked() and now >= runtime.idle_expires_at()
            if idle or age >= self._settings.kernel_max_lifetime_s:
                await self._stop(runtime, status="timed_out")
                culled.append(runtime.id)
                _log.info("kernel %s timed out (%s)", runtime.id, "idle" if idle else "lifetime")
        return culled

    async def cull_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.kernel_cull_interval_s)
            try:
                await self.cull_once()
            except Exception:
                _log.exception("culling failed")

    async def shutdown(self) -> None:
        """Stop every kernel (clean shutdown leaves no sandbox behind)."""
        self._closing = True
        for task in list(self._detached):
            task.cancel()
        # Pool launches are not cancelled (a half-made sandbox could be left behind); each
        # finishes within the startup timeout and stops its kernel itself, seeing _closing.
        await asyncio.gather(*self._fills, *self._detached, return_exceptions=True)
        await asyncio.gather(
            *(self._stop(r, status="stopped") for r in self.live_runtimes()), return_exceptions=True
        )
        # Kernels that died are released by their watcher (container removal included): let
        # those finish before the engine's thread pool goes away.
        watchers = [
            s.runtime.watcher
            for s in self._slots.values()
            if s.runtime is not None and s.runtime.watcher is not None
        ]
        if watchers:
            await asyncio.wait(watchers, timeout=30)


@contextlib.asynccontextmanager
async def culling(manager: KernelManager) -> AsyncIterator[None]:
    task = asyncio.create_task(manager.cull_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = ["Execution", "KernelConfig", "KernelManager", "culling"]
