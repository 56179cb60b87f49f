"""GET and PATCH notebook throughput vs a bare aiohttp handler returning the same JSON.

Both servers run as subprocesses on loopback, one at a time, driven by `wrk` with the same
connection count; rounds alternate (bare, gateway, bare, gateway, ...) and the ratio of medians
is reported, so machine noise hits both sides alike. Goal (issue #2): GET ratio ≥ 0.5.

    .venv/bin/python bench/http_throughput.py [--seconds 5] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BARE_SERVER = r"""
import json, sys
from aiohttp import web
body = open(sys.argv[2]).read()
async def get(request):
    return web.Response(text=body, content_type="application/json")
async def patch(request):
    await request.json()
    return web.Response(text=body, content_type="application/json")
app = web.Application()
app.router.add_get("/api/projects/1/notebooks/{short_id}", get)
app.router.add_patch("/api/projects/1/notebooks/{short_id}", patch)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start")


def _ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        return shutil.which("wrk") or "wrk"
    raise SystemExit("wrk is needed: apt-get install wrk")


def _wrk(
    wrk: str,
    url: str,
    *,
    seconds: int,
    connections: int,
    headers: dict[str, str],
    script: str | None,
) -> float:
    cmd = [wrk, "-t1", f"-c{connections}", f"-d{seconds}s"]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    if script:
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in out:
        raise SystemExit(f"non-2xx responses from {url}:\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    wrk = _ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    data = tmp / "data"
    key = subprocess.run(
        [sys.executable, "-m", "gateway", "demo-key", "--data-dir", str(data)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    gw_port = _free_port()
    env = {**os.environ, "GATEWAY_LOG_LEVEL": "WARNING"}
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(gw_port), "--data-dir", str(data)],
        env=env,
    )
    try:
        _wait(gw_port)
        request = urllib.request.Request(
            f"http://127.0.0.1:{gw_port}/api/projects/1/notebooks/", headers=headers
        )
        with urllib.request.urlopen(request) as resp:
            short_id = json.load(resp)["results"][0]["short_id"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{gw_port}/api/projects/1/notebooks/{short_id}", headers=headers
        )
        with urllib.request.urlopen(request) as resp:
            body = resp.read().decode()
        body_file = tmp / "body.json"
        body_file.write_text(body)
        patch_script = tmp / "patch.lua"
        patch_script.write_text('wrk.method = "PATCH"\nwrk.body = \'{"title": "Benchmarked"}\'\n')
        bare_port = _free_port()
        bare_src = tmp / "bare.py"
        bare_src.write_text(BARE_SERVER)
        bare = subprocess.Popen([sys.executable, str(bare_src), str(bare_port), str(body_file)])
        try:
            _wait(bare_port)
            path = f"/api/projects/1/notebooks/{short_id}"
            results: dict[str, dict[str, list[float]]] = {
                "GET": {"bare": [], "gateway": []},
                "PATCH": {"bare": [], "gateway": []},
            }
            for _ in range(args.rounds):
                for method, script in (("GET", None), ("PATCH", str(patch_script))):
                    for name, port in (("bare", bare_port), ("gateway", gw_port)):
                        rps = _wrk(
                            wrk,
                            f"http://127.0.0.1:{port}{path}",
                            seconds=args.seconds,
                            connections=args.connections,
                            headers=headers,
                            script=script,
                        )
                        results[method][name].append(rps)
        finally:
            bare.terminate()
            bare.wait()
    finally:
        gateway.terminate()
        gateway.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; wrk -t1 -c{args.connections} -d{args.seconds}s "
        f"x {args.rounds} rounds"
    )
    print("| request | bare aiohttp req/s (median) | gateway req/s (median) | ratio |")
    print("|---|---|---|---|")
    for method, runs in results.items():
        bare_med = statistics.median(runs["bare"])
        gw_med = statistics.median(runs["gateway"])
        print(f"| {method} notebook | {bare_med:,.0f} | {gw_med:,.0f} | {gw_med / bare_med:.2f} |")


if __name__ == "__main__":
    main()
