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
from gateway.kernels.bridge import BridgeHandler
from gateway.kernels.errors import KernelStartFailed, SandboxError
from gateway.kernels.manager import KernelManager, ProvisionerFactory, culling
from gateway.kernels.provisioner import KernelProvisioner
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


def _factory(settings: Settings) -> tuple[ProvisionerFactory, object | None]:
    if settings.kernel_backend == "subprocess":
        from gateway.kernels.subprocess import SubprocessProvisioner  # noqa: PLC0415

        _log.warning("kernel backend 'subprocess': kernels are NOT sandboxed")
        return SubprocessProvisioner, None
    from gateway.kernels.docker import DockerEngine, DockerProvisioner  # noqa: PLC0415

    engine = DockerEngine(settings)

    def make() -> KernelProvisioner:
        return DockerProvisioner(engine)

    return make, engine


async def recover(manager: KernelManager, engine: object | None, store: Store) -> set[str]:
    """Re-attach recorded kernels that still run; remove the rest. Returns adopted ids."""
    records: dict[str, KernelRecord | None] = {
        r.sandbox_id: r for r in await store.kernels_of(manager.instance_id)
    }
    adopted: set[str] = set()
    if engine is None:
        for orphan in filter(None, records.values()):
            # Subprocess kernels cannot be re-attached (no handle); their pids may be reused,
            # so they are not killed either. Development backend only.
            _log.warning("forgetting subprocess kernel %s (%s)", orphan.id, orphan.sandbox_id)
            await store.forget_kernel(orphan.id)
        return adopted
    from gateway.kernels.docker import DockerEngine, DockerProvisioner  # noqa: PLC0415

    assert isinstance(engine, DockerEngine)
    try:
        containers = await engine.labelled(manager.instance_id)
    except SandboxError as err:
        _log.warning("kernels not recovered (records kept for next time): %s", err.reason)
        return adopted
    for container in containers:
        record = records.pop(str(container.id), None)
        if record is not None and container.status == "running":
            try:
                await manager.adopt(record, DockerProvisioner.attach(engine, container))
            except KernelStartFailed as err:
                _log.warning("could not re-attach: %s", err.reason)
            except Exception:
                _log.exception("could not re-attach kernel %s", record.id)
            else:
                adopted.add(record.id)
                continue
        _log.info("removing leftover kernel container %s", container.name)
        try:
            await engine.remove(container)
        except Exception:
            _log.exception("could not remove leftover container %s", container.name)
        if record is not None:
            await store.forget_kernel(record.id)
    for stale in filter(None, records.values()):
        await store.forget_kernel(stale.id)
    return adopted


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
    factory, engine = _factory(settings)
    manager = KernelManager(
        settings,
        clock,
        factory,
        instance_id=instance_id(settings.data_dir),
        records=store,
        bridge=bridge,
    )
    try:
        adopted = await asyncio.wait_for(recover(manager, engine, store), _RECOVERY_TIMEOUT_S)
    except TimeoutError:
        _log.warning("kernel recovery took over %.0f s; continuing", _RECOVERY_TIMEOUT_S)
        adopted = set()
    settings.kernel_run_root.chmod(0o700)
    leftovers = [p for p in settings.kernel_run_root.iterdir() if p.name not in adopted]
    await asyncio.gather(*(remove_run_dir(path) for path in leftovers))
    manager.fill_pool()
    try:
        async with culling(manager):
            yield manager
    finally:
        await manager.shutdown()
        if engine is not None:
            engine.close()  # type: ignore[attr-defined]
