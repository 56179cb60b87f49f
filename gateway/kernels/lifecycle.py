"""KernelLifecycle: launching, re-attaching, watching and stopping one kernel.

The manager decides *which* kernel runs for whom; this collaborator does the work for one
runtime: the run directory (rundir.py), the sandbox (the backend's provisioner), the ZMQ
connection, the HogQL bridge, the gateway's records, and the release of all of them. A watcher
per runtime awaits the sandbox's exit, so a death is seen at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Protocol

import zmq

from gateway.clock import Clock
from gateway.kernels import frames_seal
from gateway.kernels.backend import KernelBackend
from gateway.kernels.bridge import SOCKET as BRIDGE
from gateway.kernels.bridge import BridgeHandler, KernelBridge, bridge_route
from gateway.kernels.channels import TCP_PORTS, CurveKeys, Endpoint, tcp_urls, tcp_view
from gateway.kernels.client import KernelConnection
from gateway.kernels.errors import KernelDied, KernelStartFailed, SandboxError
from gateway.kernels.frames import SOCKET as FRAMES
from gateway.kernels.frames import FrameChannel
from gateway.kernels.provisioner import ExitStatus, KernelProvisioner
from gateway.kernels.relay import RELAYS_DIR, KernelRelay, RelayFactory
from gateway.kernels.rundir import CONTAINER_RUN_DIR, RunDir, kernel_view, remove_run_dir
from gateway.kernels.runtime import KernelConfig, KernelKey, KernelRuntime
from gateway.kernels.types import ConnectionInfo, KernelLaunchSpec, Resources
from gateway.settings import Settings
from gateway.store.records import KernelRecord

_log = logging.getLogger(__name__)
POOL_KEY: Final = KernelKey(project_id=0, short_id="", user_id=0)
_RELAY_GRACE_S: Final = 2.0


class KernelRecords(Protocol):
    """Where live kernels are recorded so a restarted gateway can re-attach (the store)."""

    async def save_kernel(self, record: KernelRecord) -> None: ...
    async def forget_kernel(self, runtime_id: str) -> None: ...


class KernelLifecycle:
    """Starts, re-attaches and stops single kernels for the manager (its only caller).

    Guarantees: a launch that fails or is cancelled leaves no sandbox, run directory or record
    behind; `stop()` and a death both release everything once; `on_exit` is told of every
    sandbox exit (the warm pool drops the runtime).
    """

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        backend: KernelBackend,
        *,
        instance_id: str,
        records: KernelRecords | None,
        bridge: BridgeHandler | None,
        on_exit: Callable[[KernelRuntime], None],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._backend = backend
        self._records = records
        self._bridge = bridge
        self._on_exit = on_exit
        self.instance_id = instance_id
        self._factory: RelayFactory | None = None  # forks the kernels' relays (relay.py)
        self._factory_lock = asyncio.Lock()
        # every kernel's watcher until it is done, its runtime replaced in its slot or not:
        # shutdown waits for them all (a dead kernel's release removes its sandbox)
        self.watchers: set[asyncio.Task[None]] = set()

    def _watch(self, runtime: KernelRuntime) -> asyncio.Task[None]:
        task = asyncio.create_task(self.watch(runtime))
        self.watchers.add(task)
        task.add_done_callback(self.watchers.discard)
        return task

    async def record(self, runtime: KernelRuntime) -> None:
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
                run_dir="" if runtime.run_dir is None else str(runtime.run_dir.path),
                connection_key=runtime.connection_key,
                transport="ipc" if runtime.curve is None else "tcp",
                curve_secret="" if runtime.curve is None else runtime.curve.secret.decode(),
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
        uid = self._backend.uid
        tcp = record.transport == "tcp"
        run_dir: RunDir | None = None
        curve: CurveKeys | None = None
        try:
            # The keys come from the gateway's records, never from the run directory.
            if not record.connection_key:
                msg = "no connection key recorded"
                raise ValueError(msg)
            if record.transport != self._backend.transport:
                msg = f"it uses the {record.transport} transport, this gateway another"
                raise ValueError(msg)
            if tcp:
                curve = CurveKeys.from_secret(record.curve_secret)
            else:
                run_dir = RunDir.reopen(Path(record.run_dir), uid=uid)
        except (OSError, ValueError, zmq.ZMQError) as err:
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
            curve=curve,
        )
        try:
            if curve is not None:
                info = tcp_view(record.connection_key, curve)
                await self._locate(runtime)
            elif run_dir is None or not run_dir.sockets_ready():
                msg = "the kernel's sockets are gone"
                raise OSError(msg)
            else:
                info = kernel_view(record.connection_key, CONTAINER_RUN_DIR)
            runtime.relay = await self._start_relay(runtime)
            runtime.connection = self._connection(info, runtime)
            runtime.watcher = self._watch(runtime)
            runtime.uid = uid
            await self._start_bridge(runtime)
            await runtime.connection.start(min(10.0, self._settings.kernel_startup_timeout_s))
        except (OSError, ValueError, TimeoutError, KernelDied, SandboxError) as err:
            await self.discard(runtime)
            msg = f"kernel {record.id} did not answer: {err!r}"
            raise KernelStartFailed(msg) from err
        runtime.status = "running"
        runtime.execution_state = "idle"
        _log.info("kernel %s re-attached for %s", runtime.id, key)
        return runtime

    async def _start_relay(self, runtime: KernelRuntime) -> KernelRelay:
        """The kernel's message relay (relay.py): every socket to the kernel is its. Started
        before the sandbox, so the process is up by the time the kernel's sockets are; forked
        by this lifecycle's relay factory (started on first use). Raises SandboxError."""
        async with self._factory_lock:
            if self._factory is None or self._factory.closed:
                self._factory = await RelayFactory.start()
        place = self._settings.data_dir / RELAYS_DIR / runtime.id
        return await KernelRelay.start(
            place, memory_mb=self._settings.kernel_relay_memory_mb, factory=self._factory
        )

    async def close(self) -> None:
        """End the relay factory (the manager's shutdown, after every kernel was stopped)."""
        if self._factory is not None:
            await self._factory.close()

    async def _start_bridge(self, runtime: KernelRuntime) -> None:
        """The gateway's own channels: data-frame exports (read by the gateway itself, zmtp.py:
        ipc its own listener, tcp dialing the kernel, sealed), and the one `hogql_execute()`
        uses (through the relay; the project is read from the runtime's key at each request: a
        pooled kernel gets one when a user takes it). Raises SandboxError when a socket cannot
        be opened."""
        relay = runtime.relay
        assert relay is not None
        run_dir = runtime.run_dir
        routes = [] if self._bridge is None else [bridge_route(self._endpoint(runtime, BRIDGE))]
        if routes:
            await relay.open(routes, self._settings.kernel_startup_timeout_s)
        if run_dir is not None:
            try:
                runtime.frames = await FrameChannel.listen(run_dir)
                for route in routes:  # bound by the relay (root), for the kernel's uid
                    run_dir.give_to_kernel(route.name)
            except OSError as err:
                msg = f"Could not open the gateway's channels in the run directory ({err})."
                raise SandboxError(msg) from err
        else:
            assert runtime.address is not None
            assert runtime.curve is not None
            runtime.frames = FrameChannel.dial(
                (runtime.address, TCP_PORTS[FRAMES]), frames_seal.frames_key(runtime.curve.secret)
            )
        if self._bridge is not None:
            runtime.bridge = KernelBridge(
                relay, project=lambda: runtime.key.project_id, handler=self._bridge
            )
            runtime.bridge.start()

    @staticmethod
    def _endpoint(runtime: KernelRuntime, name: str) -> Endpoint:
        """ipc: bind `gateway/<name>` in the run directory; tcp: connect to the kernel's port
        as a CurveZMQ client of its key."""
        if runtime.run_dir is not None:
            return Endpoint(url=runtime.run_dir.gateway_url(name), bind=True)
        assert runtime.address is not None
        return Endpoint(url=tcp_urls(runtime.address)[name], bind=False, curve=runtime.curve)

    async def _locate(self, runtime: KernelRuntime) -> None:
        """tcp: where the kernel is, from the engine (never from anything the kernel says)."""
        address = await runtime.provisioner.address()
        if address is None:
            msg = "The engine reports no address for the kernel on its network."
            raise SandboxError(msg)
        runtime.address = address

    def _connection(self, info: ConnectionInfo, runtime: KernelRuntime) -> KernelConnection:
        settings = self._settings
        run_dir = runtime.run_dir
        address = runtime.address
        if run_dir is not None:
            urls = run_dir.socket_urls
        else:
            assert address is not None
            urls = functools.partial(tcp_urls, address)
        assert runtime.relay is not None  # started first: every socket to the kernel is its
        return KernelConnection(
            info,
            urls=urls,
            relay=runtime.relay,
            output_cap=settings.kernel_output_cap_chars,
            max_media_bytes=settings.kernel_max_media_bytes,
            max_message_bytes=settings.kernel_max_message_bytes,
            max_media_total_bytes=settings.kernel_max_media_total_bytes,
            idle_output_bytes=settings.kernel_idle_output_bytes,
        )

    async def launch(self, key: KernelKey, config: KernelConfig) -> KernelRuntime:
        settings = self._settings
        runtime_id = uuid.uuid4().hex[:16]
        path = settings.kernel_run_root / runtime_id
        provisioner = self._backend.provisioner()
        now = self._clock.now()
        uid = self._backend.uid
        kernel_run_dir = self._backend.kernel_run_dir(path)
        key_hex = secrets.token_hex(32)
        loop = asyncio.get_running_loop()
        begin = loop.time()
        tcp = self._backend.transport == "tcp"
        curve = CurveKeys.new() if tcp else None
        run_dir: RunDir | None = None
        if not tcp:
            try:
                run_dir = await asyncio.to_thread(
                    RunDir.create,
                    path,
                    uid=uid,
                    quota_mb=self._backend.run_dir_quota_mb,
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
            curve=curve,
        )
        info = tcp_view(key_hex, curve) if curve else kernel_view(key_hex, kernel_run_dir)
        try:
            spec = KernelLaunchSpec(
                runtime_id=runtime_id,
                run_dir=path,
                resources=config.resources,
                labels=self.labels(key, runtime_id),
                env=self.environment(key, run_dir=None if tcp else kernel_run_dir),
            )
            runtime.relay = await self._start_relay(runtime)
            await provisioner.launch_kernel(spec, info)
            runtime.timings.started = round(loop.time() - begin, 4)
            if provisioner.created_after_s is not None:
                runtime.timings.created = provisioner.created_after_s
            if tcp:
                await self._locate(runtime)
            runtime.connection = self._connection(info, runtime)
            runtime.watcher = self._watch(runtime)
            await self._start_bridge(runtime)
            remaining = settings.kernel_startup_timeout_s - (loop.time() - begin)
            if run_dir is not None:
                await run_dir.wait_for_sockets(remaining, runtime.connection.died)
            if runtime.connection.died.done():
                status = runtime.connection.died.result()
                raise KernelDied(exit_code=status.exit_code, oom_killed=status.oom_killed)
            remaining = settings.kernel_startup_timeout_s - (loop.time() - begin)
            await runtime.connection.start(max(remaining, 1.0))
        except SandboxError as err:
            await self.discard(runtime)
            raise KernelStartFailed(err.reason) from err
        except OSError as err:
            await self.discard(runtime)
            msg = f"The kernel's run directory was tampered with while it started ({err})."
            raise KernelStartFailed(msg) from err
        except (TimeoutError, KernelDied) as err:
            await self.discard(runtime)
            reason = (
                f"The kernel did not become ready within {settings.kernel_startup_timeout_s:g} s."
                if isinstance(err, TimeoutError)
                else "The kernel exited while starting."
            )
            raise KernelStartFailed(reason) from err
        except BaseException:
            # Cancelled mid-launch (shutdown): the half-made sandbox must not outlive us.
            await asyncio.shield(self.discard(runtime))
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

    def labels(self, key: KernelKey, runtime_id: str) -> dict[str, str]:
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

    def environment(self, key: KernelKey, *, run_dir: str | None = None) -> dict[str, str]:
        """Built from an allowlist: never a copy of the gateway's own environment. It names no
        project or user: a pooled kernel is created before it has either. `run_dir`: where an
        ipc kernel sees its run directory."""
        half = str(self._settings.kernel_output_cap_chars // 2)
        env = {
            "GATEWAY_OUTPUT_HEAD_CHARS": half,
            "GATEWAY_OUTPUT_TAIL_CHARS": half,
            "LANG": "C.UTF-8",
            "TZ": "UTC",
        }
        if run_dir is not None:
            env["GATEWAY_RUN_DIR"] = run_dir
        return env

    async def watch(self, runtime: KernelRuntime) -> None:
        """Await the sandbox's exit (or its relay's, which ends the sandbox: see `_exit`); then
        fail whoever is talking to it and mark the runtime."""
        status, reason = await self._exit(runtime)
        self._on_exit(runtime)
        connection = runtime.connection
        if connection is not None and not connection.died.done():
            connection.died.set_result(status)
        if runtime.alive and not runtime.stopping:
            runtime.status = "error"
            oom = " (out of memory)" if status.oom_killed else ""
            runtime.last_error = f"Kernel died: {reason or f'exit code {status.exit_code}{oom}'}."
            _log.warning("kernel %s died: %s", runtime.id, runtime.last_error)
            await self.release(runtime)

    async def _exit(self, runtime: KernelRuntime) -> tuple[ExitStatus, str | None]:
        """How the kernel ended: its sandbox's exit, or its relay's. The gateway cannot talk
        to a kernel without its relay (a kernel can kill it with a message over its memory
        limit), so that ends the sandbox too; the reason says why."""
        sandbox = asyncio.ensure_future(runtime.provisioner.wait())
        relay = runtime.relay
        try:
            if relay is not None:
                either: list[asyncio.Future[Any]] = [sandbox, relay.died]
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if relay is not None and not sandbox.done():
                # a kernel that exits breaks its relay's connections too: the engine reports
                # that exit (and an OOM kill) within the grace, before the relay is blamed
                await asyncio.wait([sandbox], timeout=_RELAY_GRACE_S)
            if sandbox.done() or relay is None:
                return await sandbox, None
            await runtime.provisioner.kill()
            return await sandbox, relay.died.result()
        finally:
            sandbox.cancel()

    async def stop(self, runtime: KernelRuntime, *, status: str) -> None:
        runtime.stopping = True
        runtime.status = status
        await runtime.provisioner.kill()
        await self.release(runtime)
        if runtime.watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(runtime.watcher), 10)

    async def release(self, runtime: KernelRuntime) -> None:
        if runtime.bridge is not None:
            runtime.bridge.close()
        if runtime.frames is not None:
            runtime.frames.close()
        if self._records is not None:
            await self._records.forget_kernel(runtime.id)
        if runtime.connection is not None:
            runtime.connection.close()
        if runtime.relay is not None:
            await runtime.relay.close()
        runtime.execution_state = None
        await runtime.provisioner.cleanup()
        if runtime.run_dir is not None:
            runtime.run_dir.close()
            await remove_run_dir(runtime.run_dir.path)

    async def discard(self, runtime: KernelRuntime) -> None:
        runtime.status = "error"
        runtime.stopping = True
        await runtime.provisioner.kill()
        await self.release(runtime)
        if runtime.watcher is not None:
            runtime.watcher.cancel()
