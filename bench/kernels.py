"""Kernel benchmarks (issue #3), against a gateway subprocess with the Docker backend.

(a) cold start to ready through the API vs a bare `docker run` of the same image (same
    hardening) plus kernel_info from jupyter_client, alternating, medians;
(b) start served from the warm pool, p50/p95;
(c) `1+1` round trip through HTTP vs jupyter_client talking to the same kernel directly;
(d) 20 kernels started and each executing at once: per-request p50/p95 and wall time;
(e) time to first result: 20 new notebooks at once, each `POST start` then `1+1`, with a warm
    pool of 20 (`GATEWAY_KERNEL_POOL_SIZE`), p50/p95 from start to result.

`--transport tcp` runs all of it over the tcp transport (CurveZMQ on the internal kernel
network); its bare baseline is `docker run` on the same network with the same Curve set-up.
`--runtime runsc` runs the gateway's kernels and the bare baseline under gVisor (ipc only: runsc
runs without a network here; `scripts/ensure-gvisor` registers it).

    .venv/bin/python bench/kernels.py [--transport ipc|tcp] [--runtime runc|runsc]
        [--rounds 5] [--executes 200] [--parallel 20] [--first 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import docker
from jupyter_client.asynchronous.client import AsyncKernelClient

from gateway.kernels.channels import TCP_PORTS, CurveKeys, tcp_view

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Gateway, gateway

IMAGE = os.environ.get("GATEWAY_KERNEL_IMAGE", "gateway-kernel:latest")
NETWORK = "gateway-kernels"  # the gateway's default kernel network (tcp)
_HARDENING = {
    "detach": True,
    "read_only": True,
    "user": "1000:1000",
    "tmpfs": {"/tmp": "size=256m,mode=1777", "/home/kernel": "size=256m,uid=1000,gid=1000"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "pids_limit": 256,
    "mem_limit": "1024m",
    "memswap_limit": "1024m",
    "cpu_period": 100000,
    "cpu_quota": 100000,
}


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def _ready(info: dict) -> AsyncKernelClient:
    """Ready as the gateway defines it, with the same tight loop (jupyter_client's own
    wait_for_ready polls more coarsely and would flatter the gateway): a kernel_info_reply,
    then any iopub message. Callers bound it with asyncio.timeout()."""
    client = AsyncKernelClient()
    client.load_connection_info(info)
    client.start_channels()
    while True:
        msg_id = client.kernel_info()
        try:
            while True:
                reply = await client.get_shell_msg(timeout=1)
                if reply["parent_header"].get("msg_id") == msg_id:
                    break
            await client.get_iopub_msg(timeout=0.5)
            return client
        except Exception:  # queue.Empty: not yet
            continue


def _bare_run_dir(info: dict) -> Path:
    """A run dir owned by the kernel's uid holding `info` as connection.json."""
    run = Path(tempfile.mkdtemp(prefix="bare-", dir="/var/tmp"))
    os.chown(run, 1000, 1000)
    run.chmod(0o700)
    (run / "connection.json").write_text(json.dumps(info))
    os.chown(run / "connection.json", 1000, 1000)
    return run


def _tcp_info(key: str, curve: CurveKeys, ip: str) -> dict:
    """The gateway's own tcp connection info (ports, Curve pair), reached at `ip`."""
    return {**tcp_view(key, curve), "ip": ip}


async def bare_start_tcp(engine: docker.DockerClient) -> float:
    info = _tcp_info(secrets.token_hex(32), CurveKeys.new(), "0.0.0.0")
    env = {
        "GATEWAY_TRANSPORT": "tcp",
        "GATEWAY_CONNECTION": json.dumps(info),
        "GATEWAY_CHANNEL_PORTS": json.dumps({n: TCP_PORTS[n] for n in ("bridge", "frames")}),
        "LANG": "C.UTF-8",
        "TZ": "UTC",
    }
    begin = time.perf_counter()
    container = await asyncio.to_thread(
        engine.containers.run,
        IMAGE,
        entrypoint=["/opt/kernel/bin/python", "-m", "gateway_kernel"],
        command=[],
        environment=env,
        network=NETWORK,
        **_HARDENING,
    )
    await asyncio.to_thread(container.reload)
    ip = container.attrs["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
    async with asyncio.timeout(60):
        client = await _ready({**info, "ip": ip})
    elapsed = time.perf_counter() - begin
    client.stop_channels()
    await asyncio.to_thread(container.remove, force=True)
    return elapsed


async def bare_start(engine: docker.DockerClient, transport: str, runtime: str) -> float:
    if transport == "tcp":
        return await bare_start_tcp(engine)
    info = {
        "transport": "ipc",
        "ip": "/run/kernel/k",
        "shell_port": 1,
        "iopub_port": 2,
        "stdin_port": 3,
        "control_port": 4,
        "hb_port": 5,
        "key": secrets.token_hex(32),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "python3",
    }
    run = await asyncio.to_thread(_bare_run_dir, info)
    begin = time.perf_counter()
    container = await asyncio.to_thread(
        engine.containers.run,
        IMAGE,
        command=["-f", "/run/kernel/connection.json"],
        network_mode="none",
        volumes={str(run): {"bind": "/run/kernel", "mode": "rw"}},
        runtime=runtime,
        **_HARDENING,
    )
    async with asyncio.timeout(60):
        client = await _ready({**info, "ip": str(run / "k")})
    elapsed = time.perf_counter() - begin
    client.stop_channels()
    await asyncio.to_thread(container.remove, force=True)
    await asyncio.to_thread(shutil.rmtree, run, ignore_errors=True)
    return elapsed


async def api_start(
    session: aiohttp.ClientSession, gw: Gateway, short_id: str
) -> tuple[float, dict]:
    url = f"{gw.base}/api/projects/1/notebooks/{short_id}/kernel"
    begin = time.perf_counter()
    async with session.post(url + "/start") as resp:
        body = await resp.json()
        assert resp.status == 200, body
    return time.perf_counter() - begin, body


async def cold_starts(
    gw: Gateway, engine: docker.DockerClient, rounds: int, transport: str, runtime: str
) -> tuple[list, list]:
    bare, api = [], []
    async with aiohttp.ClientSession(headers=gw.headers) as session:
        for _ in range(rounds):
            bare.append(await bare_start(engine, transport, runtime))
            elapsed, _ = await api_start(session, gw, "scratchpad")
            api.append(elapsed)
            async with session.post(f"{gw.base}/api/projects/1/notebooks/scratchpad/kernel/stop"):
                pass
    return bare, api


async def _notebooks(session, gw: Gateway, count: int, prefix: str) -> list[str]:
    ids = []
    for i in range(count):
        async with session.post(
            f"{gw.base}/api/projects/1/notebooks/", json={"short_id": f"{prefix}{i}"}
        ) as resp:
            assert resp.status == 201, await resp.text()
            ids.append(f"{prefix}{i}")
    return ids


async def pooled_starts(gw: Gateway, rounds: int) -> list[float]:
    times = []
    async with aiohttp.ClientSession(headers=gw.headers) as session:
        for short_id in await _notebooks(session, gw, rounds, "pool"):
            while True:
                async with session.get(f"{gw.base}/_health") as resp:
                    if (await resp.json())["kernels"]["pool_ready"] >= 1:
                        break
                await asyncio.sleep(0.05)
            elapsed, _ = await api_start(session, gw, short_id)
            times.append(elapsed)
    return times


def _direct_info(gw: Gateway, engine: docker.DockerClient, body: dict) -> dict:
    """How to talk to the gateway's kernel directly: ipc from its connection file, tcp from the
    gateway's records (keys) and the engine (address)."""
    run_dir = gw.data_dir / "kernels" / body["runtime_id"]
    if run_dir.exists():
        info = json.loads((run_dir / "connection.json").read_text())
        return {**info, "ip": str(run_dir / "sockets" / "k")}
    with sqlite3.connect(gw.data_dir / "gateway.sqlite3") as db:
        key, secret = db.execute(
            "SELECT connection_key, curve_secret FROM kernel_runtimes WHERE id = ?",
            (body["runtime_id"],),
        ).fetchone()
    container = engine.containers.get(body["container_id"])
    ip = container.attrs["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]
    return _tcp_info(key, CurveKeys.from_secret(secret), ip)


async def round_trips(gw: Gateway, engine: docker.DockerClient, count: int) -> tuple[list, list]:
    http, direct = [], []
    url = f"{gw.base}/api/projects/1/notebooks/scratchpad/kernel"
    async with aiohttp.ClientSession(headers=gw.headers) as session:
        _, body = await api_start(session, gw, "scratchpad")
        info = await asyncio.to_thread(_direct_info, gw, engine, body)
        async with asyncio.timeout(60):
            client = await _ready(info)
        for block in range(count // 20):
            for _ in range(10):
                begin = time.perf_counter()
                async with session.post(
                    url + "/execute", json={"code": "1+1", "return_variables": False}
                ) as resp:
                    assert (await resp.json())["result"] == {"text/plain": "2"}
                http.append(time.perf_counter() - begin)
            for _ in range(10):
                begin = time.perf_counter()
                reply = await client.execute("1+1", reply=True)
                assert reply["content"]["status"] == "ok"
                # Like the gateway, wait for the iopub result and idle, not just the reply.
                while True:
                    msg = await client.get_iopub_msg(timeout=10)
                    if (
                        msg["parent_header"].get("msg_id") == reply["parent_header"]["msg_id"]
                        and msg["msg_type"] == "status"
                        and msg["content"]["execution_state"] == "idle"
                    ):
                        break
                direct.append(time.perf_counter() - begin)
            _ = block
        client.stop_channels()
    return http, direct


async def parallel(gw: Gateway, count: int) -> tuple[list[float], float]:
    async with aiohttp.ClientSession(headers=gw.headers) as session:
        ids = await _notebooks(session, gw, count, "par")

        async def one(short_id: str) -> float:
            begin = time.perf_counter()
            async with session.post(
                f"{gw.base}/api/projects/1/notebooks/{short_id}/kernel/execute",
                json={"code": "sum(range(1000))", "timeout": 120},
            ) as resp:
                body = await resp.json()
                assert body.get("status") == "ok", body
            return time.perf_counter() - begin

        begin = time.perf_counter()
        times = await asyncio.gather(*(one(i) for i in ids))
        return list(times), time.perf_counter() - begin


async def first_results(gw: Gateway, count: int) -> list[float]:
    """`count` new notebooks at once: POST start, then `1+1`; seconds from start to result."""
    async with aiohttp.ClientSession(headers=gw.headers) as session:
        ids = await _notebooks(session, gw, count, "first")
        while True:
            async with session.get(f"{gw.base}/_health") as resp:
                if (await resp.json())["kernels"]["pool_ready"] >= count:
                    break
            await asyncio.sleep(0.1)

        async def one(short_id: str) -> float:
            begin = time.perf_counter()
            await api_start(session, gw, short_id)
            async with session.post(
                f"{gw.base}/api/projects/1/notebooks/{short_id}/kernel/execute",
                json={"code": "1+1", "return_variables": False},
            ) as resp:
                body = await resp.json()
                assert body["result"] == {"text/plain": "2"}, body
            return time.perf_counter() - begin

        return list(await asyncio.gather(*(one(i) for i in ids)))


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--executes", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--first", type=int, default=20)
    parser.add_argument("--transport", choices=["ipc", "tcp"], default="ipc")
    parser.add_argument("--runtime", choices=["runc", "runsc"], default="runc")
    args = parser.parse_args()
    if args.runtime == "runsc" and args.transport == "tcp":
        parser.error("runsc runs kernels without a network here: use --transport ipc")
    engine = docker.from_env()
    # one benchmark user starts every kernel: lift the per-user and per-project quotas
    env = {
        "GATEWAY_KERNEL_IMAGE": IMAGE,
        "GATEWAY_KERNEL_MAX_COUNT": "64",
        "GATEWAY_KERNEL_MAX_PER_USER": "64",
        "GATEWAY_KERNEL_MAX_PER_PROJECT": "64",
        "GATEWAY_KERNEL_TRANSPORT": args.transport,
        "GATEWAY_KERNEL_RUNTIME": args.runtime,
    }
    with gateway({**env, "GATEWAY_KERNEL_POOL_SIZE": "0"}) as gw:
        bare, api = await cold_starts(gw, engine, args.rounds, args.transport, args.runtime)
        http, direct = await round_trips(gw, engine, args.executes)
        par, wall = await parallel(gw, args.parallel)
    with gateway({**env, "GATEWAY_KERNEL_POOL_SIZE": "1"}) as gw:
        pooled = await pooled_starts(gw, args.rounds * 2)
    first: list[float] = []
    if args.first:
        with gateway({**env, "GATEWAY_KERNEL_POOL_SIZE": str(args.first)}) as gw:
            first = await first_results(gw, args.first)
    engine.close()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, Docker {docker.from_env().version()['Version']}, "
        f"transport {args.transport}, runtime {args.runtime}"
    )
    print("| measure | baseline | gateway | ratio / figure |")
    print("|---|---|---|---|")
    print(
        f"| (a) cold start to ready, median ms (bare docker run + kernel_info vs POST start) | "
        f"{statistics.median(bare) * 1000:.0f} | {statistics.median(api) * 1000:.0f} | "
        f"{statistics.median(api) / statistics.median(bare):.2f} |"
    )
    print(
        f"| (b) start from the warm pool, ms | | p50 {_pct(pooled, 0.5):.1f}, "
        f"p95 {_pct(pooled, 0.95):.1f} | goal p50 ≤ 50 |"
    )
    print(
        f"| (c) `1+1` round trip p50 ms (jupyter_client direct vs HTTP execute) | "
        f"{_pct(direct, 0.5):.2f} | {_pct(http, 0.5):.2f} | "
        f"{_pct(http, 0.5) / _pct(direct, 0.5):.2f} |"
    )
    print(
        f"| (d) {args.parallel} kernels started + executing at once, ms per request | | "
        f"p50 {_pct(par, 0.5):.0f}, p95 {_pct(par, 0.95):.0f} | wall {wall:.1f} s |"
    )
    if first:
        print(
            f"| (e) time to first result, {args.first} new notebooks at once, pool of "
            f"{args.first}, ms | | p50 {_pct(first, 0.5):.0f}, p95 {_pct(first, 0.95):.0f} | "
            f"goal p50 ≤ 300 |"
        )


if __name__ == "__main__":
    asyncio.run(main())
