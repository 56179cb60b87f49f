"""`kernels_ctx`: the kernel manager's lifetime inside the app (cleanup_ctx)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.kernels.errors import SandboxError
from gateway.kernels.manager import KernelManager, ProvisionerFactory, culling
from gateway.kernels.provisioner import KernelProvisioner
from gateway.keys import CLOCK_KEY, KERNELS_KEY, SETTINGS_KEY
from gateway.settings import Settings

_log = logging.getLogger(__name__)


def instance_id(data_dir: Path) -> str:
    """This gateway's label value, stable across restarts of the same data directory."""
    path = data_dir / "instance-id"
    if not path.exists():
        path.write_text(f"gw-{secrets.token_hex(6)}\n")
    return path.read_text().strip()


async def _remove_leftovers(engine: object, instance: str) -> None:
    from gateway.kernels.docker import DockerEngine  # noqa: PLC0415 - docker is optional here

    assert isinstance(engine, DockerEngine)
    try:
        leftovers = await engine.labelled(instance)
    except SandboxError as err:
        _log.warning("kernel leftovers not checked: %s", err.reason)
        return
    for container in leftovers:
        _log.info("removing leftover kernel container %s", container.name)
        await engine.remove(container)


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


async def kernels_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS_KEY]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    instance = instance_id(settings.data_dir)
    # Run directories of an earlier process are stale: their kernels are gone or removed below.
    shutil.rmtree(settings.kernel_run_root, ignore_errors=True)
    settings.kernel_run_root.mkdir(parents=True, exist_ok=True)
    factory, engine = _factory(settings)
    manager = KernelManager(settings, app[CLOCK_KEY], factory, instance_id=instance)
    app[KERNELS_KEY] = manager
    cleanup = asyncio.create_task(_remove_leftovers(engine, instance)) if engine else None
    manager.fill_pool()
    async with culling(manager):
        yield
    if cleanup is not None:
        cleanup.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cleanup
    await manager.shutdown()
    if engine is not None:
        engine.close()  # type: ignore[attr-defined]
