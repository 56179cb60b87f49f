"""What only a real Docker sandbox can show: its flags, escapes that fail, limits that hold."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import resource
import secrets
import time
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.kernels import docker as docker_module
from gateway.kernels.context import instance_id
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import (
    Accounts,
    assert_no_containers,
    assert_no_relays,
    create_notebook,
    end_relays_as_a_crash_would,
)

pytestmark = pytest.mark.docker
GVISOR = os.environ.get("KERNEL_TEST_RUNTIME") == "runsc"  # the suite's gVisor pass (make test)
TCP = os.environ.get("KERNEL_TEST_TRANSPORT") == "tcp"  # the suite's tcp pass (make test)


@pytest.fixture
def gateway(docker_gateway):
    return docker_gateway


async def _execute(client, owner, code, short_id="scratchpad", **extra):
    resp = await client.post(
        owner.url(f"{short_id}/kernel/execute"), json={"code": code, **extra}, headers=owner.headers
    )
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _container(client, owner, docker_engine, short_id="scratchpad"):
    resp = await client.post(owner.url(f"{short_id}/kernel/start"), headers=owner.headers)
    body = await resp.json()
    assert resp.status == 200, body
    return docker_engine.containers.get(body["container_id"]), body


async def test_container_is_hardened_and_labelled(gateway, docker_engine, docker_settings):
    client, owner = gateway
    container, body = await _container(client, owner, docker_engine)
    timings = body["timings"]
    assert 0 < timings["sandbox_created_s"] <= timings["sandbox_started_s"]
    assert timings["sandbox_started_s"] < timings["kernel_ready_s"]
    host = container.attrs["HostConfig"]
    assert host["NetworkMode"] == (docker_settings.kernel_network if TCP else "none")
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    tasks = docker_settings.kernel_pids_limit
    if GVISOR:  # tasks limited inside gVisor; the host's pids cgroup also holds its own threads
        assert host["Ulimits"] == [{"Name": "nproc", "Soft": tasks, "Hard": tasks}]
        assert host["PidsLimit"] == tasks * 8 + 256
    else:
        assert host["PidsLimit"] == tasks
    assert host["Memory"] == host["MemorySwap"] == 1024**3, "memory limit, no swap"
    assert host["CpuQuota"] == 100_000 and host["CpuPeriod"] == 100_000
    assert host["CpuShares"] == docker_settings.kernel_cpu_shares, "tenants yield to the gateway"
    assert host["Privileged"] is False
    assert set(host["Tmpfs"]) == {"/tmp", "/home/kernel"}
    if TCP:
        assert not host["Binds"] and not container.attrs["Mounts"], "nothing shared with the host"
    else:
        binds = host["Binds"]
        assert len(binds) == 1 and binds[0].endswith(":/run/kernel:rw"), "only its own run dir"
    assert container.attrs["Config"]["User"] == "1000:1000"
    labels = container.labels
    assert labels["gateway.project"] == "1"
    assert labels["gateway.notebook"] == "scratchpad"
    assert labels["gateway.user"] == str(owner.user.id)
    assert labels["gateway.runtime-id"] == body["id"]
    assert labels["gateway.pool"] == "0"
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    # An allowlist (plus what the image itself sets), never the gateway's own environment.
    image_env = {e.split("=", 1)[0] for e in container.image.attrs["Config"]["Env"]}
    wiring = (
        {"GATEWAY_TRANSPORT", "GATEWAY_CONNECTION", "GATEWAY_CHANNEL_PORTS"}
        if TCP
        else {"GATEWAY_RUN_DIR"}
    )
    assert set(env) - image_env == {
        "GATEWAY_OUTPUT_HEAD_CHARS",
        "GATEWAY_OUTPUT_TAIL_CHARS",
        "LANG",
        "TZ",
        *wiring,
    }


ESCAPES = r"""
import os, socket
results = {}
try:
    socket.create_connection(("127.0.0.1", 8000), timeout=2); results["tcp"] = "open"
except OSError as e:
    results["tcp"] = type(e).__name__
try:
    open("/usr/evil", "w"); results["write_usr"] = "written"
except OSError as e:
    results["write_usr"] = type(e).__name__
results["docker_sock"] = os.path.exists("/var/run/docker.sock")
try:
    os.setuid(0); results["setuid"] = "root"
except OSError as e:
    results["setuid"] = type(e).__name__
results["uid"] = os.getuid()
results["interfaces"] = sorted(name for _, name in socket.if_nameindex())
results
"""


CGROUPS = Path("/sys/fs/cgroup")


def _cgroup_of(pid: int, *, v2: bool) -> str:
    """The CPU controller's cgroup of process `pid`."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    wanted = {""} if v2 else {"cpu", "cpu,cpuacct", "cpuacct,cpu"}
    (path,) = [line.split(":", 2)[2] for line in lines if line.split(":")[1] in wanted]
    return path


@pytest.fixture
def cgroup_parent():
    """A parent cgroup of the test's own, removed (in every hierarchy) after its kernels."""
    parent = f"/notebook-kernels-test-{secrets.token_hex(3)}"
    yield parent
    # the engine removes a container's own cgroups just after the container itself
    left = [hierarchy / parent.lstrip("/") for hierarchy in [CGROUPS, *CGROUPS.iterdir()]]
    deadline = time.monotonic() + 10
    while (left := [path for path in left if path.exists()]) and time.monotonic() < deadline:
        for path in left:
            with contextlib.suppress(OSError):
                path.rmdir()
        time.sleep(0.05)
    assert not left, f"cgroups left behind: {left}"


async def test_kernels_go_under_their_own_parent_cgroup_whose_weight_the_gateway_set(
    cgroup_parent, aiohttp_client, docker_settings, docker_engine, clock
):
    """Against the gateway and the host, all kernels together weigh the parent's shares (a
    container's own shares only order it among its siblings): the kernel's cgroup is under
    the configured parent, and the gateway wrote the parent's weight where the engine runs."""
    parent = cgroup_parent
    settings = docker_settings.with_changes(
        kernel_cgroup_parent=parent, kernel_cgroup_cpu_shares=96, kernel_pool_size=0
    )
    v2 = str(docker_engine.info().get("CgroupVersion")) == "2"
    app = create_app(settings, clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make("owner@example.com")
    container, _ = await _container(client, owner, docker_engine)
    container.reload()
    assert container.attrs["HostConfig"]["CgroupParent"] == parent
    assert _cgroup_of(container.attrs["State"]["Pid"], v2=v2).startswith(f"{parent}/")
    if v2:
        weight = CGROUPS / parent.lstrip("/") / "cpu.weight"
        assert weight.read_text().strip() == "9"
    else:
        shares = CGROUPS / "cpu" / parent.lstrip("/") / "cpu.shares"
        assert shares.read_text().strip() == "96"
    status = await (
        await client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
    ).json()
    assert status["sandbox"]["cgroup"] == {"parent": parent, "cpu_shares": 96, "problem": None}
    instance = app[KERNELS_KEY].instance_id
    await client.close()
    assert_no_containers(docker_engine, instance)


async def test_escape_attempts_fail_inside(gateway, docker_engine):
    client, owner = gateway
    body = await _execute(client, owner, ESCAPES)
    assert body["status"] == "ok", body
    results = eval(body["result"]["text/plain"])  # noqa: S307 - a repr of str/bool/int only
    assert results["tcp"] != "open"
    # runc: EROFS (OSError); gVisor checks the directory's owner first: EACCES (PermissionError)
    assert results["write_usr"] in ({"OSError", "PermissionError"} if GVISOR else {"OSError"})
    assert results["docker_sock"] is False
    assert results["setuid"] == "PermissionError"
    assert results["uid"] == 1000
    # tcp: one interface on the kernel network (what it can reach there: tests/security)
    assert results["interfaces"] == (["eth0", "lo"] if TCP else ["lo"]), "no other network"


async def test_fork_bomb_is_bounded_by_the_pids_limit(gateway, docker_settings):
    client, owner = gateway
    code = """
import os, signal, time
children = []
try:
    for _ in range(5000):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        children.append(pid)
except OSError as e:
    failure = type(e).__name__
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
(len(children), failure)
"""
    body = await _execute(client, owner, code, timeout=60)
    if GVISOR and body["status"] == "error":
        # gVisor charges each forked ipykernel more memory than runc does: with the default
        # 1 GB the memory limit can end the bomb before RLIMIT_NPROC does, as a reported OOM
        # death of this kernel only (the host's pids cgroup was never reached)
        assert (body["error_name"], body["oom_killed"]) == ("KernelDied", True), body
    else:
        assert body["status"] == "ok", body
        spawned, failure = eval(body["result"]["text/plain"])  # noqa: S307
        assert spawned < docker_settings.kernel_pids_limit
        assert failure in {"BlockingIOError", "OSError"}
    assert (await _execute(client, owner, "1 + 1"))["result"] == {"text/plain": "2"}


async def test_memory_bomb_is_an_oom_kernel_death(gateway):
    client, owner = gateway
    await create_notebook(client, owner, short_id="small")
    resp = await client.post(
        owner.url("small/kernel/config"), json={"memory_gb": 0.25}, headers=owner.headers
    )
    assert resp.status == 200
    body = await _execute(
        client, owner, "blob = b'x' * (600 * 1024 * 1024)", short_id="small", timeout=60
    )
    assert body["status"] == "error"
    assert body["error_name"] == "KernelDied"
    assert body["oom_killed"] is True
    status = await (
        await client.get(owner.url("small/kernel/status"), headers=owner.headers)
    ).json()
    assert status["status"] == "error"
    assert "out of memory" in status["last_error"]
    again = await _execute(client, owner, "2 + 2", short_id="small")
    assert again["result"] == {"text/plain": "4"}, "the next execute gets a fresh container"


async def test_huge_print_is_capped_and_gateway_memory_stays_bounded(gateway):
    client, owner = gateway
    await _execute(client, owner, "1")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB, peak so far
    body = await _execute(client, owner, "print('x' * 50_000_000)", timeout=120)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert body["status"] == "ok"
    assert body["truncated"] is True
    assert len(body["stdout"]) < 1_100_000
    assert "truncated" in body["stdout"]
    assert (after - before) < 100 * 1024, f"gateway peak RSS grew by {(after - before) // 1024} MiB"


async def test_live_resize_keeps_variables(gateway, docker_engine):
    client, owner = gateway
    await create_notebook(client, owner, short_id="resize")
    await _execute(client, owner, "kept = 7", short_id="resize")
    container, _ = await _container(client, owner, docker_engine, "resize")
    resp = await client.post(
        owner.url("resize/kernel/config"),
        json={"cpu_cores": 0.5, "memory_gb": 2},
        headers=owner.headers,
    )
    body = await resp.json()
    if GVISOR:
        # runsc refuses `docker update`: the limits apply at the next start, as documented
        assert body["applied"] == "next_start"
        assert (await _execute(client, owner, "kept", short_id="resize"))["result"] == {
            "text/plain": "7"
        }
        return
    assert body["applied"] == "live"
    container.reload()
    assert container.attrs["HostConfig"]["CpuQuota"] == 50_000
    assert container.attrs["HostConfig"]["Memory"] == 2 * 1024**3
    assert (await _execute(client, owner, "kept", short_id="resize"))["result"] == {
        "text/plain": "7"
    }


async def test_missing_image_is_503_naming_the_fix(aiohttp_client, docker_settings, clock):
    app = create_app(
        docker_settings.with_changes(kernel_image="gateway-kernel:does-not-exist"), clock=clock
    )
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make()
    resp = await client.post(owner.url("scratchpad/kernel/start"), headers=owner.headers)
    assert resp.status == 503
    body = await resp.json()
    assert body["detail"] == "Failed to start notebook kernel."
    assert "make image" in body["reason"]


async def test_startup_removes_leftovers_of_this_instance(
    aiohttp_client, docker_settings, docker_engine, kernel_image, clock
):
    docker_settings.data_dir.mkdir(parents=True, exist_ok=True)
    instance = instance_id(docker_settings.data_dir)
    stray = docker_engine.containers.run(
        kernel_image,
        entrypoint=["sleep", "300"],
        detach=True,
        network_mode="none",
        labels={"gateway.instance": instance, "gateway.runtime-id": "stray"},
    )
    try:
        client = await aiohttp_client(create_app(docker_settings, clock=clock))
        for _ in range(200):
            if not docker_engine.containers.list(all=True, filters={"id": stray.id}):
                break
            await asyncio.sleep(0.05)
        assert not docker_engine.containers.list(all=True, filters={"id": stray.id})
        await client.close()
    finally:
        assert_no_containers(docker_engine, instance)


async def _crash_with_a_kernel(
    aiohttp_client, docker_settings, docker_engine, clock, monkeypatch, code
):
    """A gateway runs `code` in notebook "keep" and dies without its shutdown: its kernel keeps
    running. Returns (owner, the kernel's runtime id, the instance)."""
    first_app = create_app(docker_settings, clock=clock)
    first = await aiohttp_client(first_app)
    owner = await Accounts(first_app[STORE_KEY], clock).make()
    await create_notebook(first, owner, short_id="keep")
    body = await _execute(first, owner, code, short_id="keep")
    runtime_id = body["kernel_runtime"]["id"]

    async def crashed() -> None:
        return None

    monkeypatch.setattr(first_app[KERNELS_KEY], "shutdown", crashed)
    await first.close()
    assert docker_engine.containers.list(filters={"label": f"gateway.runtime-id={runtime_id}"})
    await end_relays_as_a_crash_would(first_app)
    return owner, runtime_id, first_app[KERNELS_KEY].instance_id


async def test_restarted_gateway_reattaches_live_kernels(
    aiohttp_client, docker_settings, docker_engine, clock, monkeypatch
):
    code = "import pandas as pd\nanswer = 42\ndf = pd.DataFrame({'a': [1]})"
    owner, runtime_id, instance = await _crash_with_a_kernel(
        aiohttp_client, docker_settings, docker_engine, clock, monkeypatch, code
    )

    second_app = create_app(docker_settings, clock=clock)
    second = await aiohttp_client(second_app)
    try:
        again = await _execute(second, owner, "answer", short_id="keep")
        assert again["result"] == {"text/plain": "42"}, "same kernel, same variables"
        assert again["kernel_runtime"]["id"] == runtime_id
        # its data-frame channel is the new gateway's (the old one's socket file was replaced)
        url = owner.url("keep/kernel/dataframe") + "?variable_name=df"
        resp = await second.get(url, headers=owner.headers)
        assert resp.status == 200, await resp.text()
    finally:
        await second.close()
    assert_no_containers(docker_engine, instance)
    assert_no_relays(docker_settings)


async def test_a_kernel_of_another_kernel_protocol_is_stopped_not_reattached(
    aiohttp_client, docker_settings, docker_engine, clock, monkeypatch
):
    """An upgraded gateway (another KERNEL_PROTOCOL) does not adopt the kernels the old one
    left running: they could not talk to it. They are removed, with their records."""
    owner, runtime_id, instance = await _crash_with_a_kernel(
        aiohttp_client, docker_settings, docker_engine, clock, monkeypatch, "answer = 42"
    )
    label = {"label": f"gateway.runtime-id={runtime_id}"}

    monkeypatch.setattr(docker_module, "KERNEL_PROTOCOL", "999")  # the upgraded gateway's
    second_app = create_app(docker_settings, clock=clock)
    second = await aiohttp_client(second_app)
    try:
        assert not docker_engine.containers.list(all=True, filters=label), "removed at start-up"
        assert await second_app[STORE_KEY].kernels_of(instance) == []
        resp = await second.get(owner.url("keep/kernel/status"), headers=owner.headers)
        assert (await resp.json())["status"] != "running"
    finally:
        await second.close()
    assert_no_containers(docker_engine, instance)
    assert_no_relays(docker_settings)


async def test_an_image_of_another_kernel_protocol_is_refused_with_how_to_rebuild(
    aiohttp_client, docker_settings, docker_engine, clock
):
    """A kernel image from another gateway version (here: the same image, another protocol
    label) starts no kernel: a 503 that says to rebuild, and no container left behind."""
    tag = f"gateway-kernel-test:protocol-0-{os.getpid()}"
    dockerfile = f"FROM {docker_settings.kernel_image}\nLABEL gateway.kernel-protocol=0\n"
    docker_engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    try:
        app = create_app(docker_settings.with_changes(kernel_image=tag), clock=clock)
        client = await aiohttp_client(app)
        owner = await Accounts(app[STORE_KEY], clock).make()
        resp = await client.post(owner.url("scratchpad/kernel/start"), headers=owner.headers)
        body = await resp.json()
        assert resp.status == 503, body
        assert "kernel protocol is 0" in body["reason"]
        assert "make image" in body["reason"]
        instance = app[KERNELS_KEY].instance_id
        await client.close()
        assert_no_containers(docker_engine, instance)
    finally:
        docker_engine.images.remove(tag, force=True)


async def test_matplotlib_figures_arrive_as_media(gateway):
    client, owner = gateway
    body = await _execute(
        client,
        owner,
        "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()",
        timeout=60,
    )
    assert body["status"] == "ok", body
    assert [m["mime_type"] for m in body["media"]] == ["image/png"]
    assert body["media"][0]["data"].startswith("iVBOR"), "base64 PNG"
