"""WarmPool: ready kernels with the default config, started ahead of demand.

`start` takes one when the notebook's config is the default (a pooled kernel is never reused:
it is assigned once, then refilled in the background). Pooled kernels carry no owner until
taken; their labels say `gateway.pool=1`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from gateway.clock import Clock
from gateway.kernels.errors import KernelStartFailed
from gateway.kernels.lifecycle import POOL_KEY, KernelLifecycle
from gateway.kernels.runtime import KernelConfig, KernelKey, KernelRuntime
from gateway.settings import Settings

_log = logging.getLogger(__name__)


class WarmPool:
    """Owned by the manager. `capacity()` says how many more kernels the gateway may start
    (its global cap); the pool never starts past it, nor while `closing`."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        lifecycle: KernelLifecycle,
        *,
        config: KernelConfig,
        capacity: Callable[[], int],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._lifecycle = lifecycle
        self._config = config
        self._capacity = capacity
        self._ready: list[KernelRuntime] = []
        self._filling = 0
        self.starting = 0  # pool kernels being launched right now (≤ kernel_pool_fill_parallel)
        # refills start at most this many kernels at once (a burst of takes is no start storm)
        self._starts = asyncio.Semaphore(settings.kernel_pool_fill_parallel)
        self.fills: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()  # set by close(); wakes refills waiting out their delay

    @property
    def closing(self) -> bool:
        """Shutdown began: the pool starts nothing more."""
        return self._closed.is_set()

    @property
    def ready(self) -> int:
        """How many pooled kernels are alive and ready to be taken."""
        return sum(1 for r in self._ready if r.alive)

    @property
    def filling(self) -> int:
        """Pool kernels being started now or waiting out the refill delay (counted against the
        global cap)."""
        return self._filling

    def runtimes(self) -> list[KernelRuntime]:
        """The pooled kernels that are alive (counted among the gateway's live kernels)."""
        return [r for r in self._ready if r.alive]

    def drop(self, runtime: KernelRuntime) -> None:
        """Forget a pooled runtime whose sandbox exited (the lifecycle's `on_exit`)."""
        if runtime in self._ready:
            self._ready.remove(runtime)

    def take(self, key: KernelKey, config: KernelConfig) -> KernelRuntime | None:
        """A ready pooled kernel for `key` when `config` is the default one; refills."""
        if config != self._config:
            return None
        while self._ready:
            runtime = self._ready.pop(0)
            if runtime.alive:
                runtime.key = key
                runtime.last_used_at = self._clock.now()
                # later: the taker's first cells (and a burst of other takers') run first
                self.fill(delay=self._settings.kernel_pool_refill_delay_s)
                _log.info("kernel %s taken from the pool for %s", runtime.id, key)
                return runtime
        self.fill()
        return None

    def close(self) -> None:
        """Start nothing more (shutdown): refills waiting out their delay end at once."""
        self._closed.set()

    def fill(self, *, delay: float = 0.0) -> None:
        """Start pooled kernels in the background until the pool is full again, after `delay`
        seconds (counted as filling meanwhile, so a burst of takes schedules each refill once)."""
        missing = self._settings.kernel_pool_size - self.ready - self._filling
        for _ in range(max(0, missing)):
            if self.closing or self._capacity() <= 0:
                return
            self._filling += 1
            task = asyncio.create_task(self._fill_one(delay))
            self.fills.add(task)
            task.add_done_callback(self.fills.discard)

    async def _fill_one(self, delay: float) -> None:
        try:
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closed.wait(), delay)
            async with self._starts:
                # re-checked after the delay and the queue: starts meanwhile may have reached
                # the cap (this refill is counted in `filling` already, hence < 0)
                if self.closing or self._capacity() < 0:
                    return
                self.starting += 1
                try:
                    runtime = await self._lifecycle.launch(POOL_KEY, self._config)
                finally:
                    self.starting -= 1
        except KernelStartFailed as err:
            _log.warning("warm pool: could not start a kernel: %s", err.reason)
            return
        finally:
            self._filling -= 1
        if self.closing:
            await self._lifecycle.stop(runtime, status="stopped")
        else:
            self._ready.append(runtime)

    async def cull(self, now: datetime) -> None:
        """Stop pooled kernels older than the lifetime cap, and refill."""
        for pooled in list(self._ready):
            if (now - pooled.started_at).total_seconds() >= self._settings.kernel_max_lifetime_s:
                self._ready.remove(pooled)
                await self._lifecycle.stop(pooled, status="timed_out")
                self.fill()
