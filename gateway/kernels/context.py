"""`running_kernels`: the kernel manager's lifetime (the app layer enters it in a cleanup_ctx).

At startup a restarted gateway re-attaches to the kernels it recorded whose containers still
run, removes every other container labelled with its instance, and forgets stale records; at
shutdown it stops every kernel, so a clean shutdown leaves nothing behind. Whatever goes wrong
with one kernel during recovery means "remove that kernel", never "do not start".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from gateway.clock import Clock
from gateway.kernels.backend import KernelBackend, Leftover
from gateway.kernels.bridge import BridgeHandler
from gateway.kernels.errors import KernelStartFailed, SandboxError
from gateway.kernels.manager import KernelManager, culling
from gateway.kernels.relay import RELAYS_DIR, remove_stale_relays
from gateway.kernels.rundir import remove_run_dir
from gateway.settings import Settings
from gateway.store import KernelRecord, Store

_log = logging.getLogger(__name__)
_RECOVERY_TIMEOUT_S = 60.0


def instance_id(data_dir: Path) -> str:
    """This gateway's label value, stable across restarts of the same data directory."""
    path = data_dir / "instance-id"
    if not path.exists():
        path.write_text(f"gw-{secrets.token_hex(6)}\n")
    return path.read_text().strip()


def backend_for(settings: Settings) -> KernelBackend:
    """The backend `settings.kernel_backend` names, chosen once per gateway process."""
    if settings.kernel_backend == "subprocess":
        from gateway.kernels.subprocess import SubprocessBackend  # noqa: PLC0415

        _log.warning("kernel backend 'subprocess': kernels are NOT sandboxed")
        return SubprocessBackend()
    # imported here: only this backend needs the docker SDK
    from gateway.kernels.docker import DockerBackend  # noqa: PLC0415

    return DockerBackend(settings)


async def recover(manager: KernelManager, backend: KernelBackend, store: Store) -> set[str]:
    """Re-attach recorded kernels that still run; remove the rest. Returns adopted ids.

    Whatever fails for one kernel (its sandbox, its run directory, its records) removes that
    kernel; only an engine that does not answer at all keeps the records for next time.
    """
    records: dict[str, KernelRecord | None] = {
        r.sandbox_id: r for r in await store.kernels_of(manager.instance_id)
    }
    adopted: set[str] = set()
    try:
        leftovers = await backend.leftovers(manager.instance_id)
    except SandboxError as err:
        _log.warning("kernels not recovered (records kept for next time): %s", err.reason)
        return adopted
    if leftovers is None:
        for orphan in filter(None, records.values()):
            # Such kernels cannot be re-attached (no handle); their pids may be reused, so
            # they are not killed either. Development backend only.
            _log.warning("forgetting kernel %s (%s)", orphan.id, orphan.sandbox_id)
            await store.forget_kernel(orphan.id)
        return adopted
    for leftover in leftovers:
        record = records.pop(leftover.sandbox_id, None)
        if record is not None and await _adopt(manager, record, leftover):
            adopted.add(record.id)
            continue
        _log.info("removing leftover kernel sandbox %s", leftover.name)
        try:
            await leftover.remove()
        except Exception:
            _log.exception("could not remove leftover sandbox %s", leftover.name)
        if record is not None:
            await store.forget_kernel(record.id)
    for stale in filter(None, records.values()):
        await store.forget_kernel(stale.id)
    return adopted


async def _adopt(manager: KernelManager, record: KernelRecord, leftover: Leftover) -> bool:
    """Re-attach `leftover` as `record` says; False (logged why) when it cannot be."""
    if leftover.stale is not None:
        _log.warning("not re-attaching kernel %s: %s", record.id, leftover.stale)
        return False
    if not leftover.running:
        return False
    try:
        await manager.adopt(record, leftover.attach())
    except KernelStartFailed as err:
        _log.warning("could not re-attach: %s", err.reason)
    except Exception:
        _log.exception("could not re-attach kernel %s", record.id)
    else:
        return True
    return False


@contextlib.asynccontextmanager
async def running_kernels(
    settings: Settings, clock: Clock, store: Store, *, bridge: BridgeHandler | None
) -> AsyncIterator[KernelManager]:
    """The kernel manager from recovery to shutdown (the app layer enters it at startup).

    Yields once recorded kernels are re-attached or removed and leftover run directories are
    gone; on exit every kernel is stopped, so a clean shutdown leaves nothing behind.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.kernel_run_root.mkdir(parents=True, exist_ok=True)
    backend = backend_for(settings)
    await backend.check()
    if backend.problem is not None:
        _log.error("kernels cannot start: %s", backend.problem)
    manager = KernelManager(
        settings,
        clock,
        backend,
        instance_id=instance_id(settings.data_dir),
        records=store,
        bridge=bridge,
    )
    try:
        adopted = await asyncio.wait_for(recover(manager, backend, store), _RECOVERY_TIMEOUT_S)
    except TimeoutError:
        _log.warning("kernel recovery took over %.0f s; continuing", _RECOVERY_TIMEOUT_S)
        adopted = set()
    settings.kernel_run_root.chmod(0o700)
    leftovers = [p for p in settings.kernel_run_root.iterdir() if p.name not in adopted]
    await asyncio.gather(*(remove_run_dir(path) for path in leftovers))
    await asyncio.to_thread(remove_stale_relays, settings.data_dir / RELAYS_DIR, keep=adopted)
    manager.fill_pool()
    try:
        async with culling(manager):
            yield manager
    finally:
        await manager.shutdown()
        try:
            await backend.shutdown()
        finally:
            backend.close()
