"""Running one cell on a kernel: collect its output, and escalate at the timeout.

The manager holds the kernel's FIFO turn; `run_cell` does the rest. At the timeout the kernel
gets a control-channel interrupt, then SIGINT, each with a grace period, and is restarted when
it ignores both (its variables are then lost, which the result says).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from gateway.clock import Clock
from gateway.kernels.analysis import cell_globals
from gateway.kernels.client import OnEvent
from gateway.kernels.errors import KernelDied, KernelExecuteFailed
from gateway.kernels.lifecycle import KernelLifecycle
from gateway.kernels.results import describe_expressions, describe_variables
from gateway.kernels.runtime import KernelConfig, KernelRuntime, KernelSlot
from gateway.kernels.types import ExecutionResult
from gateway.settings import Settings

_log = logging.getLogger(__name__)


class CellRunner:
    """Runs cells for the manager, which holds the kernel's turn while it does."""

    def __init__(self, settings: Settings, clock: Clock, lifecycle: KernelLifecycle) -> None:
        self._settings = settings
        self._clock = clock
        self._lifecycle = lifecycle

    async def run(
        self,
        slot: KernelSlot,
        runtime: KernelRuntime,
        config: KernelConfig,
        code: str,
        *,
        timeout: float,  # noqa: ASYNC109 - the cell's own timeout, escalated inside (interrupt, SIGINT, restart)
        return_variables: bool,
        on_event: OnEvent,
    ) -> ExecutionResult:
        """Run `code` on `runtime` while the caller holds the kernel's turn: collect its output
        until idle or the timeout, then escalate (interrupt, SIGINT, restart, updating `slot`);
        describe `variables` when asked. Raises KernelExecuteFailed only for the gateway's own
        failures."""
        connection = runtime.connection
        assert connection is not None
        # in a thread: up to ~0.5 s of Python for a cell at kernel_max_cell_bytes (analysis.py)
        names = await asyncio.to_thread(cell_globals, code) if return_variables else []
        started_at = self._clock.now()
        runtime.last_used_at = started_at
        runtime.execution_state = "busy"
        loop = asyncio.get_running_loop()
        expressions = describe_expressions(names)
        run = connection.execute(code, expressions)
        try:
            await connection.collect(run, deadline=loop.time() + timeout, on_event=on_event)
            if run.status != "ok" and names:
                run.user_expressions = await connection.evaluate(expressions, timeout)
            describe_variables(run, names)
        except TimeoutError:
            survived = await self._interrupt(slot, runtime, config, run, on_event)
            if survived and names:
                run.user_expressions = await connection.evaluate(
                    expressions, self._settings.kernel_interrupt_grace_s
                )
            describe_variables(run, names if survived else [])
            run.status = "timeout"
            run.variables_survived = survived
        except KernelDied as died:
            describe_variables(run, [])
            run.status = "error"
            run.error_name = "KernelStopped" if runtime.stopping else "KernelDied"
            run.error_value = runtime.last_error or "The kernel was stopped."
            run.oom_killed = died.oom_killed
        except Exception as err:
            _log.exception("execution on kernel %s failed", runtime.id)
            raise KernelExecuteFailed(str(err)) from err
        finally:
            if runtime.alive:
                runtime.execution_state = "idle"
        run.completed_at = self._clock.now()
        run.started_at = started_at
        run.runtime = slot.runtime or runtime
        runtime.last_used_at = run.completed_at
        return run

    async def _interrupt(
        self,
        slot: KernelSlot,
        runtime: KernelRuntime,
        config: KernelConfig,
        run: ExecutionResult,
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
            await self._lifecycle.stop(runtime, status="stopped")
        slot.runtime = await self._lifecycle.launch(runtime.key, config)
        return False
