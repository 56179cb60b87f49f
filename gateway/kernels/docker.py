"""DockerProvisioner: each kernel in its own hardened container. The only module that imports
`docker`. The SDK is synchronous: every call runs on the engine's own thread pool, sized so the
blocking `wait()` of every live kernel plus a few control calls fit, and never on the loop.

Decisions, per jupyter_client's provisioner habit of writing them down:
- terminate() is kill(): a kernel holds no state worth a graceful stop once we stop it.
- CPU limits use CpuPeriod/CpuQuota rather than NanoCpus so `docker update` can resize live.
- The container is not auto-removed: after a death we read `OOMKilled` and the exit code, then
  remove it ourselves in cleanup().
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import docker
import docker.errors
import docker.types
import requests.exceptions
from docker.models.containers import Container

from gateway.kernels import cgroups, firewall
from gateway.kernels.backend import KernelBackend, Leftover
from gateway.kernels.channels import TCP_PORTS
from gateway.kernels.errors import SandboxError
from gateway.kernels.provisioner import ExitStatus, KernelProvisioner
from gateway.kernels.rundir import CONNECTION_FILE, CONTAINER_RUN_DIR
from gateway.kernels.runtimes import engine_is_local, is_gvisor, runtime_problem
from gateway.kernels.stranded import close_stranded
from gateway.kernels.types import ConnectionInfo, KernelLaunchSpec, Resources
from gateway.settings import Settings

LABEL_INSTANCE: Final = "gateway.instance"
# What the kernel image's helper (images/kernel/gateway_kernel.py) speaks to this gateway: its
# connection wiring and its data-frame and HogQL channels. The image carries the same number
# as a label (images/kernel/Dockerfile); raise both when either side changes. A kernel from an
# image of another number is never started, nor re-attached after an upgrade.
LABEL_PROTOCOL: Final = "gateway.kernel-protocol"
KERNEL_PROTOCOL: Final = "3"
# what an engine call raises when the engine refuses or cannot be reached (the SDK lets the
# transport's own connection errors through)
_ENGINE_ERRORS: Final = (docker.errors.DockerException, requests.exceptions.RequestException)
_CPU_PERIOD: Final = 100_000
# tcp kernels: the image's launcher writes GATEWAY_CONNECTION into the kernel's own tmpfs
TCP_ENTRYPOINT: Final = ["/opt/kernel/bin/python", "-m", "gateway_kernel"]
_ICC: Final = "com.docker.network.bridge.enable_icc"
_BRIDGE_NAME: Final = "com.docker.network.bridge.name"
# The kernel network carries only the host's own traffic with its kernels: loopback-sized
# packets cost less per byte than Ethernet's 1500 (data frames: ~4 ms of ~90 per 80 MB).
_MTU: Final = "com.docker.network.driver.mtu"


class DockerEngine:
    """The gateway's one Docker client and the thread pool its blocking calls run on."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(
            max_workers=settings.kernel_max_count + 8, thread_name_prefix="docker"
        )
        self._client: docker.DockerClient | None = None
        self.problem: str | None = None  # set by DockerBackend.check(): starts refuse with it
        self.gvisor = False  # set by DockerBackend.check(): the runtime is runsc
        self.firewall: str | None = None  # tcp, set by DockerBackend.check(): who keeps the rules
        # True once DockerBackend.check() ran against an engine that answered; until then every
        # launch runs it first (an engine that was down when the gateway started must not get
        # kernels without the check's runtime arguments, network and host rules)
        self.checked = False
        self.unchecked: str | None = None  # why the last check could not finish
        self.cgroup_parent: str | None = None  # set by DockerBackend.check(): kernels' parent
        self.check: Callable[[], Awaitable[None]] | None = None  # DockerBackend.check

    async def run[T](self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking SDK call on the engine's thread pool, never on the loop; every Docker call
        in the gateway goes through here."""
        call = functools.partial(fn, *args, **kwargs)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except _ENGINE_ERRORS as err:
            close_stranded(err)  # the SDK's socket from a failed connect
            raise

    async def client(self) -> docker.DockerClient:
        """The Docker client, connected and pinged on first use (then reused). Raises SandboxError
        naming how to start the engine when it does not answer."""
        if self._client is None:
            try:
                client = await self.run(docker.from_env, timeout=30)
                await self.run(client.ping)
            except _ENGINE_ERRORS as err:
                msg = f"Docker engine unreachable ({err}). Start it, e.g. scripts/ensure-docker."
                raise SandboxError(msg) from err
            self._client = client
        return self._client

    async def labelled(self, instance: str) -> list[Container]:
        """Every container (running or not) labelled with gateway instance `instance`."""
        client = await self.client()
        containers: list[Container] = await self.run(
            client.containers.list, all=True, filters={"label": f"{LABEL_INSTANCE}={instance}"}
        )
        return containers

    async def remove(self, container: Container) -> None:
        """Force-remove `container`; one already gone is not an error."""
        with contextlib.suppress(docker.errors.NotFound):
            await self.run(container.remove, force=True)

    @contextlib.asynccontextmanager
    async def network_lock(self) -> AsyncIterator[None]:
        """One gateway process at a time changes the kernel network and its host rules (a
        host-wide file lock), so `network exists ⇒ its rules are installed` always holds."""
        path = Path(tempfile.gettempdir()) / f"notebook-gateway-{self.settings.kernel_network}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def prepare_network(self) -> None:
        """tcp, before each launch (under the lock): the network is there, and when it had to
        be made again (another gateway on this host removed it at its shutdown), so are the
        host rules. Raises SandboxError."""
        async with self.network_lock():
            problem, created = await self.ensure_network()
            if problem is not None:
                raise SandboxError(problem)
            if created and self.firewall == "iptables":
                await asyncio.to_thread(firewall.install, self.settings.kernel_network_bridge)

    async def ensure_network(self) -> tuple[str | None, bool]:
        """tcp: make the kernel network (internal, no inter-container traffic, IPv4 only, its
        bridge named by the settings) unless it exists; returns why it cannot be used (or None)
        and whether it was made now. Call under network_lock()."""
        settings = self.settings
        client = await self.client()
        name, bridge = settings.kernel_network, settings.kernel_network_bridge
        created = False
        try:
            network = await self.run(client.networks.get, name)
        except docker.errors.NotFound:
            created = True
            try:
                network = await self.run(
                    client.networks.create,
                    name,
                    driver="bridge",
                    internal=True,
                    enable_ipv6=False,
                    options={_ICC: "false", _BRIDGE_NAME: bridge, _MTU: "65520"},
                    labels={"gateway.network": "kernels"},
                )
            except docker.errors.APIError as err:
                reason = f"Could not create the kernel network {name!r}: {err.explanation or err}"
                return reason, created
            await self.run(network.reload)
        attrs = network.attrs
        options = attrs.get("Options") or {}
        if (
            attrs.get("Driver") != "bridge"
            or not attrs.get("Internal")
            or attrs.get("EnableIPv6")
            or options.get(_ICC) != "false"
            or options.get(_BRIDGE_NAME) != bridge
        ):
            return (
                f"Docker network {name!r} exists but is not an internal IPv4 bridge named"
                f" {bridge!r} without inter-container traffic; remove it (`docker network rm"
                f" {name}`) and the gateway makes it."
            ), created
        return None, created

    async def remove_network(self) -> bool:
        """tcp, at shutdown (under the lock): remove the kernel network unless a container
        still uses it; True when it is gone."""
        client = await self.client()
        try:
            network = await self.run(client.networks.get, self.settings.kernel_network)
            if not network.attrs.get("Containers"):
                await self.run(network.remove)
                return True
        except docker.errors.NotFound:
            return True
        except _ENGINE_ERRORS:
            return False
        return False

    async def version(self) -> str:
        """The engine's version string (`?` when it does not say)."""
        client = await self.client()
        info = await self.run(client.version)
        return str(info.get("Version", "?"))

    def close(self) -> None:
        """Close the client and stop the thread pool without waiting (via DockerBackend.close())."""
        if self._client is not None:
            self._client.close()
        self._executor.shutdown(wait=False, cancel_futures=True)


def _limits(resources: Resources, shares: int) -> dict[str, Any]:
    memory = f"{int(resources.memory_gb * 1024)}m"
    return {
        # a weight under contention (the gateway outranks tenants' code), beside the hard quota
        "cpu_shares": shares,
        "cpu_period": _CPU_PERIOD,
        "cpu_quota": int(resources.cpu_cores * _CPU_PERIOD),
        "mem_limit": memory,
        # Swap equal to memory: no swap at all.
        "memswap_limit": memory,
    }


class DockerProvisioner(KernelProvisioner):
    """One kernel in one container: no way out (ipc: no network, the run dir as its only mount;
    tcp: the internal kernel network and no mount), read-only root, all capabilities dropped,
    no-new-privileges, the kernel uid, pid/CPU/memory limits.

    Made by DockerBackend.provisioner() for a launch, or attach() for a container an earlier
    gateway process left running.
    """

    backend = "docker"

    def __init__(self, engine: DockerEngine) -> None:
        self._engine = engine
        self._settings = engine.settings
        self._container: Container | None = None

    @classmethod
    def attach(cls, engine: DockerEngine, container: Container) -> DockerProvisioner:
        """A provisioner for a container started by an earlier gateway process."""
        provisioner = cls(engine)
        provisioner._container = container
        return provisioner

    @property
    def sandbox_id(self) -> str | None:
        """The container id once created, else None."""
        return None if self._container is None else str(self._container.id)

    async def launch_kernel(self, spec: KernelLaunchSpec, info: ConnectionInfo) -> None:
        """Create, then start, the container (create + start: a missing image is reported
        with how to build it, never pulled). Sets `created_after_s`. Raises SandboxError."""
        settings = self._settings
        if not self._engine.checked and self._engine.check is not None:
            await self._engine.check()
        if self._engine.problem is not None:
            raise SandboxError(self._engine.problem)
        if not self._engine.checked:
            msg = self._engine.unchecked or "Docker engine unreachable: the sandbox is unchecked."
            raise SandboxError(msg)
        client = await self._engine.client()
        loop = asyncio.get_running_loop()
        begin = loop.time()
        try:
            # create + start, not run(): run() pulls a missing image, which must instead be
            # reported with how to build it.
            self._container = await self._create(client, spec, info)
            self.created_after_s = round(loop.time() - begin, 4)
            mismatch = protocol_mismatch(self._container.labels)
            if mismatch is not None:
                await self._engine.remove(self._container)
                self._container = None
                msg = (
                    f"Kernel image {settings.kernel_image} is not this gateway's: {mismatch}."
                    " Rebuild it with `make image` (images/kernel/build.py)."
                )
                raise SandboxError(msg)
            await self._engine.run(self._container.start)
        except docker.errors.ImageNotFound as err:
            msg = (
                f"Kernel image {settings.kernel_image} not found: build it with `make image`"
                " (images/kernel/build.py)."
            )
            raise SandboxError(msg) from err
        except docker.errors.APIError as err:
            msg = f"Docker engine refused to start the kernel: {err.explanation or err}"
            raise SandboxError(msg) from err
        except _ENGINE_ERRORS as err:
            msg = f"Docker engine unreachable ({err})."
            raise SandboxError(msg) from err

    async def _create(
        self, client: docker.DockerClient, spec: KernelLaunchSpec, info: ConnectionInfo
    ) -> Container:
        """Create the hardened container (not started). tcp: the kernel network is made sure of
        first, and once more if another gateway on this host removed it in between."""
        settings = self._settings
        uid = settings.kernel_uid
        tcp = settings.kernel_transport == "tcp"
        for attempt in (1, 2):
            if tcp:
                await self._engine.prepare_network()
            try:
                container: Container = await self._engine.run(
                    client.containers.create,
                    settings.kernel_image,
                    detach=True,
                    name=f"gateway-kernel-{spec.runtime_id}",
                    labels=spec.labels,
                    user=f"{uid}:{uid}",
                    read_only=True,
                    tmpfs={
                        "/tmp": f"size={settings.kernel_tmpfs_mb}m,mode=1777",  # noqa: S108 - in the container
                        "/home/kernel": (
                            f"size={settings.kernel_tmpfs_mb}m,uid={uid},gid={uid},mode=700"
                        ),
                    },
                    cap_drop=["ALL"],
                    security_opt=["no-new-privileges:true"],
                    **_process_limits(settings.kernel_pids_limit, gvisor=self._engine.gvisor),
                    runtime=settings.kernel_runtime,
                    cgroup_parent=self._engine.cgroup_parent,
                    **_limits(spec.resources, settings.kernel_cpu_shares),
                    **self._wiring(spec, info),
                )
            except docker.errors.ImageNotFound:
                raise
            except docker.errors.NotFound:
                if not tcp or attempt == 2:
                    raise
                continue  # the network went between prepare_network() and create
            return container
        raise AssertionError  # unreachable: the second attempt returns or raises

    def _wiring(self, spec: KernelLaunchSpec, info: ConnectionInfo) -> dict[str, Any]:
        """ipc: no network, the run directory as the only mount. tcp: the kernel network and
        no mount at all; the connection info (keys included) travels in the environment and
        the kernel writes it into its own tmpfs."""
        if self._settings.kernel_transport != "tcp":
            return {
                "command": ["-f", f"{CONTAINER_RUN_DIR}/{CONNECTION_FILE}"],
                "environment": spec.env,
                "network_mode": "none",
                "volumes": {str(spec.run_dir): {"bind": CONTAINER_RUN_DIR, "mode": "rw"}},
            }
        ports = {name: TCP_PORTS[name] for name in ("bridge", "frames")}
        return {
            "entrypoint": TCP_ENTRYPOINT,
            "command": [],
            "environment": {
                **spec.env,
                "GATEWAY_TRANSPORT": "tcp",
                "GATEWAY_CONNECTION": json.dumps({**info, "ip": "0.0.0.0"}),  # noqa: S104 - its own namespace
                "GATEWAY_CHANNEL_PORTS": json.dumps(ports),
            },
            "network": self._settings.kernel_network,
        }

    async def address(self) -> str | None:
        """tcp: the kernel's address on the kernel network, as the engine reports it."""
        if self._container is None:
            return None
        try:
            await self._engine.run(self._container.reload)
        except _ENGINE_ERRORS:
            return None
        networks = self._container.attrs.get("NetworkSettings", {}).get("Networks") or {}
        found = networks.get(self._settings.kernel_network) or {}
        return str(found.get("IPAddress") or "") or None

    async def _inspect(self) -> dict[str, Any] | None:
        if self._container is None:
            return None
        try:
            await self._engine.run(self._container.reload)
        except docker.errors.NotFound:
            return None
        state: dict[str, Any] = self._container.attrs["State"]
        return state

    async def poll(self) -> ExitStatus | None:
        """Inspect the container: None while it runs, else its exit code and `OOMKilled`; a
        container that is gone is an unknown exit."""
        state = await self._inspect()
        if state is None:
            return ExitStatus(exit_code=None, oom_killed=False)
        if state.get("Running"):
            return None
        return ExitStatus(exit_code=state.get("ExitCode"), oom_killed=bool(state.get("OOMKilled")))

    async def wait(self) -> ExitStatus:
        """Block (on the engine's pool) until the container exits, then poll() for how; a
        missing container or an engine that went away is an unknown exit, never an error."""
        if self._container is None:
            return ExitStatus(exit_code=None, oom_killed=False)
        try:
            await self._engine.run(self._container.wait)
        except docker.errors.NotFound:
            return ExitStatus(exit_code=None, oom_killed=False)
        except _ENGINE_ERRORS:
            # The engine went away; treat the kernel as gone.
            return ExitStatus(exit_code=None, oom_killed=False)
        return await self.poll() or ExitStatus(exit_code=None, oom_killed=False)

    async def send_signal(self, signum: int) -> None:
        """`docker kill --signal`; the engine refusing (container stopped) is ignored."""
        if self._container is not None:
            with contextlib.suppress(docker.errors.APIError):
                await self._engine.run(self._container.kill, signal=signum)

    async def kill(self) -> None:
        """SIGKILL the container (also stands for terminate()); idempotent."""
        if self._container is not None:
            with contextlib.suppress(docker.errors.APIError):
                await self._engine.run(self._container.kill)

    async def cleanup(self) -> None:
        """Remove the container (it is not auto-removed, so its death could be inspected)."""
        if self._container is not None:
            await self._engine.remove(self._container)

    async def resize(self, resources: Resources) -> bool:
        """`docker update` the CPU and memory limits in place; False when the engine refuses
        (KernelManager.resize() then applies them at the next start)."""
        if self._container is None:
            return False
        try:
            await self._engine.run(
                self._container.update, **_limits(resources, self._settings.kernel_cpu_shares)
            )
        except docker.errors.APIError:
            return False
        return True


class DockerBackend(KernelBackend):
    """Kernels in hardened containers on the engine `DOCKER_HOST` names (the product)."""

    name = "docker"

    def __init__(self, settings: Settings) -> None:
        self._engine = DockerEngine(settings)
        self.uid = settings.kernel_uid
        self.run_dir_quota_mb = settings.kernel_run_dir_mb
        self.runtime = settings.kernel_runtime
        self.transport = settings.kernel_transport
        self._settings = settings
        self._network_ready = False
        self._check_lock = asyncio.Lock()
        self._engine.check = self.check

    def provisioner(self) -> KernelProvisioner:
        """A new DockerProvisioner on the backend's shared engine (called per launch)."""
        return DockerProvisioner(self._engine)

    async def check(self) -> None:
        """The configured runtime must be registered with the engine, and runsc with the
        arguments it needs here (RUNSC_ARGS); tcp: the kernel network and the host rules must
        be in place. Otherwise every start fails with the reason. An engine that does not
        answer is not a problem of the runtime: `problem` says so for `kernel/status`, and the
        next launch checks again before it creates anything."""
        async with self._check_lock:
            if self._engine.checked:
                return
            try:
                client = await self._engine.client()
                info = await self._engine.run(client.info)
                registered = info.get("Runtimes") or {}
                problem = runtime_problem(self.runtime or "runc", registered)
                self._engine.gvisor = is_gvisor(self.runtime or "runc", registered)
                if problem is None and self.transport == "tcp":
                    problem = await self._check_network(registered)
                await self._place(info)
            except SandboxError as err:  # the engine does not answer (yet): checked again
                self.problem = self._engine.unchecked = err.reason
                return
            except _ENGINE_ERRORS as err:  # it failed mid-check (e.g. still starting)
                reason = (
                    f"Docker engine unreachable or failing ({err}); checked again at the next"
                    " start."
                )
                self.problem = self._engine.unchecked = reason
                return
            self.problem = self._engine.problem = problem
            self._engine.checked = True

    async def _place(self, info: dict[str, Any]) -> None:
        """Where kernels' cgroups go, and the weight of their parent (cgroups.py): what could
        not be done is reported, not a reason to refuse kernels."""
        settings = self._settings
        parent, self.cgroup = await asyncio.to_thread(
            cgroups.apply,
            settings.kernel_cgroup_parent,
            settings.kernel_cgroup_cpu_shares,
            info,
            local=engine_is_local(),
        )
        self._engine.cgroup_parent = parent

    async def _check_network(self, registered: dict[str, Any]) -> str | None:
        """tcp: the runtime must network, the kernel network must exist as it should, and the
        host rules must be in place (installed here unless the operator installed them)."""
        runtime = self.runtime or "runc"
        if "--network=none" in (registered.get(runtime, {}).get("runtimeArgs") or []):
            return (
                f"The tcp transport cannot run under {runtime!r}: it is registered with"
                " --network=none (gVisor's network stack does not start on hosts like this"
                " one); use GATEWAY_KERNEL_TRANSPORT=ipc with it."
            )
        settings = self._settings
        if settings.kernel_firewall == "external":
            async with self._engine.network_lock():
                problem, _ = await self._engine.ensure_network()
            if problem is None:
                self._network_ready = True
                self.firewall = self._engine.firewall = "external"
            return problem
        if not engine_is_local():
            return (
                "The tcp transport's host firewall rules can only be installed where the engine"
                " runs, and DOCKER_HOST names another host: install them there (docs/kernels.md)"
                " and set GATEWAY_KERNEL_FIREWALL=external."
            )
        async with self._engine.network_lock():
            problem, _ = await self._engine.ensure_network()
            if problem is not None:
                return problem
            self._network_ready = True  # ours to remove at shutdown (never someone else's)
            try:
                await asyncio.to_thread(firewall.install, settings.kernel_network_bridge)
            except SandboxError as err:
                return err.reason
        self.firewall = self._engine.firewall = "iptables"
        return None

    async def shutdown(self) -> None:
        """tcp, after every kernel was stopped: remove the kernel network and the host rules
        this gateway installed, unless another container still uses the network."""
        if not self._network_ready:
            return
        async with self._engine.network_lock():
            gone = await self._engine.remove_network()
            if gone and self.firewall == "iptables":  # still there (in use): its rules stay
                await asyncio.to_thread(firewall.remove, self._settings.kernel_network_bridge)

    async def leftovers(self, instance: str) -> list[Leftover] | None:
        """Containers labelled with `instance`, each able to attach or remove itself. Only
        once the sandbox check has passed (re-attached kernels are then this check's: the
        runtime known, the network and host rules this gateway's to remove)."""
        await self.check()
        if not self._engine.checked:
            raise SandboxError(self._engine.unchecked or "The sandbox could not be checked.")
        containers = await self._engine.labelled(instance)
        return [self._leftover(container) for container in containers]

    def _leftover(self, container: Container) -> Leftover:
        async def remove() -> None:
            await self._engine.remove(container)

        return Leftover(
            sandbox_id=str(container.id),
            running=container.status == "running",
            stale=protocol_mismatch(container.labels),
            name=str(container.name),
            attach=lambda: DockerProvisioner.attach(self._engine, container),
            remove=remove,
        )

    def close(self) -> None:
        """Close the engine's client and thread pool (after every kernel was stopped)."""
        self._engine.close()


def protocol_mismatch(labels: dict[str, str] | None) -> str | None:
    """Why the kernel of a container with `labels` (its image's among them) cannot talk to
    this gateway (the protocol label is another, or missing: an image from before it), or
    None."""
    found = (labels or {}).get(LABEL_PROTOCOL)
    if found == KERNEL_PROTOCOL:
        return None
    return f"its kernel protocol is {found or 'older'}, this gateway's {KERNEL_PROTOCOL}"


def _process_limits(tasks: int, *, gvisor: bool) -> dict[str, Any]:
    """At most `tasks` processes and threads in the kernel. Under runc the host's pids cgroup
    counts exactly those. Under gVisor (ptrace platform) it also counts the sandbox's own
    threads and a stub per guest process, and the sandbox dies when it runs out, so the limit
    is RLIMIT_NPROC inside gVisor (a clean EAGAIN to the kernel; gVisor counts only its own
    tasks) and the pids cgroup is the host's outer bound (8 per task, measured, plus the
    sandbox's own)."""
    if not gvisor:
        return {"pids_limit": tasks}
    return {
        "pids_limit": tasks * 8 + 256,
        "ulimits": [docker.types.Ulimit(name="nproc", soft=tasks, hard=tasks)],
    }
