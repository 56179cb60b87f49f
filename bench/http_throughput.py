"""GET and PATCH notebook throughput vs a bare aiohttp handler returning the same JSON.

Both servers run as subprocesses on loopback, one at a time, driven by `wrk` with the same
connection count; rounds alternate (bare, gateway, bare, gateway, ...) and the ratio of medians
is reported, so machine noise hits both sides alike. Goal (issue #2): GET ratio ≥ 0.5.

    .venv/bin/python bench/http_throughput.py [--seconds 5] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import free_port, gateway, wait_for_port

BARE_SERVER = r"""
import sys
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
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match is not None, out
    return float(match.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    wrk = _ensure_wrk()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-http-"))
    results: dict[str, dict[str, list[float]]] = {
        "GET": {"bare": [], "gateway": []},
        "PATCH": {"bare": [], "gateway": []},
    }
    with gateway({"GATEWAY_KERNEL_POOL_SIZE": "0"}) as gw:
        path = f"/api/projects/1/notebooks/{gw.short_id}"
        with urllib.request.urlopen(
            urllib.request.Request(gw.base + path, headers=gw.headers)
        ) as resp:
            (tmp / "body.json").write_bytes(resp.read())
        patch_script = tmp / "patch.lua"
        patch_script.write_text('wrk.method = "PATCH"\nwrk.body = \'{"title": "Benchmarked"}\'\n')
        (tmp / "bare.py").write_text(BARE_SERVER)
        bare_port = free_port()
        bare = subprocess.Popen(
            [sys.executable, str(tmp / "bare.py"), str(bare_port), str(tmp / "body.json")]
        )
        try:
            wait_for_port(bare_port)
            for _ in range(args.rounds):
                for method, script in (("GET", None), ("PATCH", str(patch_script))):
                    for name, port in (("bare", bare_port), ("gateway", gw.port)):
                        results[method][name].append(
                            _wrk(
                                wrk,
                                f"http://127.0.0.1:{port}{path}",
                                seconds=args.seconds,
                                connections=args.connections,
                                headers=gw.headers,
                                script=script,
                            )
                        )
        finally:
            bare.terminate()
            bare.wait()
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
