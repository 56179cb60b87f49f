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
import uuid
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from gateway.clock import Clock
from gateway.kernels.backend import KernelBackend
from gateway.kernels.bridge import BridgeHandler
from gateway.kernels.client import OnEvent, _noop
from gateway.kernels.errors import (
    KernelNotRunning,
    KernelQueueFull,
    KernelQuotaExceeded,
    KernelStartFailed,
)
from gateway.kernels.execution import CellRunner
from gateway.kernels.frames import (
    FRAME,
    FrameExport,
    FrameRequest,
    frame_expression,
    frame_stream,
)
from gateway.kernels.lifecycle import KernelLifecycle, KernelRecords
from gateway.kernels.pool import WarmPool
from gateway.kernels.provisioner import KernelProvisioner
from gateway.kernels.runtime import KernelConfig, KernelKey, KernelRuntime, KernelSlot
from gateway.kernels.types import ExecutionResult, Resources
from gateway.settings import Settings
from gateway.store.records import KernelRecord

_log = logging.getLogger(__name__)


class KernelManager:
    """The only owner of kernels; handlers reach it through `KERNELS_KEY`."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        backend: KernelBackend,
        *,
        instance_id: str,
        records: KernelRecords | None = None,
        bridge: BridgeHandler | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self.backend = backend
        self.instance_id = instance_id
        self._slots: dict[KernelKey, KernelSlot] = {}
        self._closing = False
        self._detached: set[asyncio.Task[Any]] = set()
        self._starting: set[KernelKey] = set()  # launching now: counted by the quotas
        self.default_config = KernelConfig(
            resources=Resources(
                cpu_cores=settings.kernel_cpu_cores, memory_gb=settings.kernel_memory_gb
            ),
            idle_timeout_s=settings.kernel_idle_timeout_s,
        )
        self._lifecycle = KernelLifecycle(
            settings,
            clock,
            backend,
            instance_id=instance_id,
            records=records,
            bridge=bridge,
            on_exit=lambda runtime: self._pool.drop(runtime),  # noqa: PLW0108 - _pool is made below
        )
        self._pool = WarmPool(
            settings,
            clock,
            self._lifecycle,
            config=self.default_config,
            capacity=lambda: (  # users' launches in flight count: the pool gives way to them
                settings.kernel_max_count
                - len(self.live_runtimes())
                - len(self._starting)
                - self._pool.filling
            ),
        )
        self._cells = CellRunner(settings, clock, self._lifecycle)

    # -- queries ---------------------------------------------------------------------------

    def runtime(self, key: KernelKey) -> KernelRuntime | None:
        slot = self._slots.get(key)
        return None if slot is None else slot.runtime

    def live_runtimes(self) -> list[KernelRuntime]:
        """Every running kernel, pooled ones included."""
        assigned = [s.runtime for s in self._slots.values() if s.runtime and s.runtime.alive]
        return assigned + self._pool.runtimes()

    @property
    def pool_ready(self) -> int:
        return self._pool.ready

    def fill_pool(self) -> None:
        """Start pooled kernels in the background until the pool is full (at startup)."""
        self._pool.fill()

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
                await self._lifecycle.stop(slot.runtime, status="stopped")
            return await self._ensure(slot, key, config)

    async def stop(self, key: KernelKey) -> bool:
        """Stop the kernel now, even mid-execution (that execution ends with KernelDied)."""
        runtime = self.runtime(key)
        if runtime is None or not runtime.alive:
            return False
        await self._lifecycle.stop(runtime, status="stopped")
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
        pooled = self._pool.take(key, config)
        if pooled is not None:
            slot.runtime = pooled
            await self._lifecycle.record(pooled)
            return pooled
        # launches in flight count (users' and the pool's, not refills waiting out a delay)
        launching = len(self._starting) + self._pool.starting
        if len(self.live_runtimes()) + launching >= self._settings.kernel_max_count:
            limit = self._settings.kernel_max_count
            msg = f"This gateway already runs its maximum of {limit} kernels."
            raise KernelStartFailed(msg)
        self._starting.add(key)
        try:
            slot.runtime = await self._lifecycle.launch(key, config)
        finally:
            self._starting.discard(key)
        await self._lifecycle.record(slot.runtime)
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

    async def adopt(self, record: KernelRecord, provisioner: KernelProvisioner) -> KernelRuntime:
        """Re-attach a kernel a previous gateway process started (its sandbox still runs).

        Called at startup, before requests are served. Raises KernelStartFailed when the
        kernel does not answer; the caller then removes its sandbox.
        """
        runtime = await self._lifecycle.adopt(record, provisioner)
        self._slot(runtime.key).runtime = runtime
        return runtime

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
        timeout: float,  # noqa: ASYNC109 - the cell's own timeout, passed to the cell runner that escalates it
        return_variables: bool,
        on_event: OnEvent = _noop,
    ) -> ExecutionResult:
        self.check_queue(key)
        slot = self._slot(key)
        slot.waiting += 1
        try:
            await slot.lock.acquire()  # FIFO: executions run in arrival order
        finally:
            slot.waiting -= 1
        try:
            runtime = await self._ensure(slot, key, config)
            return await self._cells.run(
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
            if runtime.frames is None:
                msg = "This kernel has no data-frame channel."
                raise KernelNotRunning(msg)
            connection = runtime.connection
            name = f"frame-{uuid.uuid4().hex}"
            expression = frame_expression(request, name)
            runtime.execution_state = "busy"
            try:
                async with frame_stream(
                    runtime.frames,
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
        await self._pool.cull(now)
        for slot in list(self._slots.values()):
            runtime = slot.runtime
            if runtime is None or runtime.status != "running":
                continue
            age = (now - runtime.started_at).total_seconds()
            idle = not slot.lock.locked() and now >= runtime.idle_expires_at()
            if idle or age >= self._settings.kernel_max_lifetime_s:
                await self._lifecycle.stop(runtime, status="timed_out")
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
        self._pool.close()
        for task in list(self._detached):
            task.cancel()
        # Pool launches are not cancelled (a half-made sandbox could be left behind); each
        # finishes within the startup timeout and stops its kernel itself, seeing `closing`.
        await asyncio.gather(*self._pool.fills, *self._detached, return_exceptions=True)
        await asyncio.gather(
            *(self._lifecycle.stop(r, status="stopped") for r in self.live_runtimes()),
            return_exceptions=True,
        )
        # Kernels that died are released by their watcher (container removal included), also
        # those whose slot already has a new kernel: let them finish before the engine's thread
        # pool goes away.
        if self._lifecycle.watchers:
            await asyncio.wait(list(self._lifecycle.watchers), timeout=30)
        await self._lifecycle.close()  # the relays' factory, once no kernel needs it


@contextlib.asynccontextmanager
async def culling(manager: KernelManager) -> AsyncIterator[None]:
    task = asyncio.create_task(manager.cull_forever())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


__all__ = ["KernelConfig", "KernelManager", "culling"]
