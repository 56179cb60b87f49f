"""`GET /_health` latency while the attacks of issue #10 run (its "done means": p99 ≤ 50 ms).

One gateway subprocess (Docker kernel backend), phases in one run:
(0) baseline, idle;
(1) HogQL flood: `--hogql-clients` clients posting the issue's attack queries to
    `scratchpad/hogql/execute` back to back (5,000-term `+` chain, 500-deep nesting in four
    shapes, a 1,500-term chain that passes the text pre-checks and is killed at the translation
    budget, the H3 `repeat('x', 20000)` result-size attack as JSON and as Arrow);
(2) kernel output floods, four kernels: cells printing 16 MB, cells displaying 30 images of
    8 MiB, a kernel thread publishing 40 MB iopub messages between (and during) executions,
    and JSON `kernel/dataframe` pages of ~6 MB from a 20,000-row frame (240 MB of strings);
(3) (1) and (2) at once.

Probes run in a separate process (so the bench's own clients cannot delay them): one
`GET /_health` every `--interval` seconds on a keep-alive connection, sequential, a fixed count
per phase (`--seconds / --interval`). Phases (2) and (3) need a Docker engine and the image
`gateway-kernel:latest` (images/kernel/build.py); without them they are skipped, and said so.
Kernels are stopped through the API and the gateway process is terminated at the end.

`--debug-loop` runs the gateway with PYTHONASYNCIODEBUG=1 and `slow_callback_duration`
= `--slow-ms`, so its stderr names every callback that held the event loop longer.
`--stall-stacks` samples the loop thread's stack (and names what the other threads are in)
while a 5 ms heartbeat is more than `--slow-ms` late, and reports by phase how late the
heartbeat ran and how much of that the loop thread spent waiting for a CPU (its run-queue
delay from /proc): the rest is the loop's own work or waiting for the GIL. `--probe-nice N`
runs the probe process at niceness N (the gateway's is -5), to tell the probe's own scheduling
delay apart; `--phases` runs a subset (phase 0 always).

    .venv/bin/python bench/health_under_attack.py [--seconds 20] [--interval 0.02]
        [--hogql-clients 4] [--debug-loop] [--stall-stacks] [--slow-ms 50] [--probe-nice N]
        [--phases 0,1,2,3,4]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import http.client
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Gateway, gateway

IMAGE = os.environ.get("GATEWAY_KERNEL_IMAGE", "gateway-kernel:latest")
ARROW = "application/vnd.apache.arrow.stream"

HOGQL_ATTACKS = {
    "5,000-term + chain": "select " + "+".join(["1"] * 5001),
    "500-deep calls": "select " + "abs(" * 500 + "1" + ")" * 500,
    "500-deep arrays": "select " + "[" * 500 + "1" + "]" * 500,
    "500-deep subqueries": "select * from " + "(select * from " * 500 + "events" + ")" * 500,
    "500 nots": "select " + "not " * 500 + "1",
    "1,500-term chain (slow)": "select " + "+".join(["1"] * 1501),
    "H3 json": "select repeat('x', 20000) from numbers(50000) limit 50000",
    "H3 arrow": "select repeat('x', 20000) from numbers(50000) limit 50000",
}

PRINT_CELL = "import sys\nfor _ in range(16):\n    sys.stdout.write('x' * (1 << 20) + '\\n')\n"
IMAGES_SETUP = "import base64, os\n_img = base64.b64encode(os.urandom(6 * 1024 * 1024)).decode()\n"
IMAGES_CELL = (
    "from IPython.display import display\n"
    "for _ in range(30):\n    display({'image/png': _img}, raw=True)\n"
)
THREAD_CELL = """
import threading, time
from IPython.display import display
def _flood(seconds, blob="A" * (40 * 1024 * 1024)):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        display({"text/plain": blob}, raw=True)
        time.sleep(0.25)
threading.Thread(target=_flood, args=(%d,), daemon=True).start()
"""
FRAME_SETUP = (
    "import numpy as np, pandas as pd\n"
    "df = pd.DataFrame({'s': ['x' * 12000] * 20000,"
    " **{f'c{i}': np.arange(20000, dtype='float64') for i in range(10)}})\n"
)
KERNEL_NOTEBOOKS = ("atkprint", "atkimages", "atkthread", "atkframe")


def _probe(port: int, count: int, interval: float, nice: int | None) -> list[float | None]:
    """Runs in its own process: `count` sequential GET /_health, one every `interval` seconds
    (or right after the previous answer when that came late). Latency in seconds; None for a
    failed probe (connection error, non-200, or no answer within 10 s). With `nice` the
    process first takes that niceness (the gateway's is `process_nice`, -5)."""
    if nice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    out: list[float | None] = []
    start = time.perf_counter()
    for i in range(count):
        delay = start + i * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        began = time.perf_counter()
        try:
            conn.request("GET", "/_health")
            resp = conn.getresponse()
            resp.read()
            out.append(time.perf_counter() - began if resp.status == 200 else None)
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            out.append(None)
    conn.close()
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass
class PhaseResult:
    name: str
    latencies: list[float | None]
    attacks: dict[str, collections.Counter[str]] = field(default_factory=dict)
    note: str = ""

    @property
    def ok(self) -> list[float]:
        return [v for v in self.latencies if v is not None]

    def p(self, q: float) -> float:
        return _pct(self.ok, q) if self.ok else float("nan")


Attack = Callable[[aiohttp.ClientSession, asyncio.Event, dict], Awaitable[None]]


async def _count(
    counts: dict, kind: str, request: contextlib.AbstractAsyncContextManager[aiohttp.ClientResponse]
) -> None:
    try:
        async with request as resp:
            body = await resp.read()
            status = str(resp.status)
            if kind.startswith("kernel cell") and resp.status == 200:
                # an execute is a 200 even when the kernel died: say how it ended
                outcome = json.loads(body)
                status += f" {outcome.get('error_name') or outcome.get('status')}"
            counts.setdefault(kind, collections.Counter())[status] += 1
    except (aiohttp.ClientError, TimeoutError) as err:
        counts.setdefault(kind, collections.Counter())[type(err).__name__] += 1


def hogql_client(gw: Gateway, offset: int) -> Attack:
    url = f"{gw.base}/api/projects/1/notebooks/scratchpad/hogql/execute"
    names = list(HOGQL_ATTACKS)

    async def run(session: aiohttp.ClientSession, stop: asyncio.Event, counts: dict) -> None:
        i = offset
        while not stop.is_set():
            name = names[i % len(names)]
            i += 1
            headers = {"Accept": ARROW} if name == "H3 arrow" else {}
            await _count(
                counts,
                f"hogql {name}",
                session.post(url, json={"query": HOGQL_ATTACKS[name]}, headers=headers),
            )

    return run


def _kernel_url(gw: Gateway, short_id: str, tail: str) -> str:
    return f"{gw.base}/api/projects/1/notebooks/{short_id}/kernel/{tail}"


def cell_loop(gw: Gateway, short_id: str, kind: str, code: str, pause: float = 0.0) -> Attack:
    async def run(session: aiohttp.ClientSession, stop: asyncio.Event, counts: dict) -> None:
        while not stop.is_set():
            await _count(
                counts,
                kind,
                session.post(
                    _kernel_url(gw, short_id, "execute"), json={"code": code, "timeout": 120}
                ),
            )
            if pause:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), pause)

    return run


def frame_loop(gw: Gateway) -> Attack:
    async def run(session: aiohttp.ClientSession, stop: asyncio.Event, counts: dict) -> None:
        page = 0
        while not stop.is_set():
            query = f"?variable_name=df&offset={(page * 500) % 19_500}&limit=500&timeout=60"
            page += 1
            await _count(
                counts,
                "kernel dataframe JSON page (500 x 12 KB)",
                session.get(_kernel_url(gw, "atkframe", "dataframe") + query),
            )

    return run


async def _execute(session: aiohttp.ClientSession, gw: Gateway, short_id: str, code: str) -> None:
    async with session.post(
        _kernel_url(gw, short_id, "execute"), json={"code": code, "timeout": 120}
    ) as resp:
        body = await resp.json()
        if resp.status != 200 or body.get("status") != "ok":
            raise SystemExit(f"setup cell failed in {short_id}: {resp.status} {str(body)[:500]}")


async def setup_kernels(session: aiohttp.ClientSession, gw: Gateway) -> None:
    for short_id in KERNEL_NOTEBOOKS:
        async with session.post(
            f"{gw.base}/api/projects/1/notebooks/", json={"short_id": short_id}
        ) as resp:
            if resp.status != 201:
                raise SystemExit(f"creating notebook {short_id}: {resp.status} {await resp.text()}")
    for short_id in KERNEL_NOTEBOOKS:
        await _execute(session, gw, short_id, "1")  # cold start, one at a time
    await _execute(session, gw, "atkimages", IMAGES_SETUP)
    await _execute(session, gw, "atkframe", FRAME_SETUP)


async def stop_kernels(session: aiohttp.ClientSession, gw: Gateway) -> list[str]:
    stopped = []
    for short_id in KERNEL_NOTEBOOKS:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.post(_kernel_url(gw, short_id, "stop")) as resp:
                if resp.status == 200 and (await resp.json()).get("stopped"):
                    stopped.append(short_id)
    return stopped


def kernel_attacks(gw: Gateway) -> list[Attack]:
    return [
        cell_loop(gw, "atkprint", "kernel cell printing 16 MB", PRINT_CELL),
        cell_loop(gw, "atkimages", "kernel cell displaying 30 x 8 MiB images", IMAGES_CELL),
        cell_loop(
            gw, "atkthread", "kernel cell `1+1` beside a 40 MB/0.25 s iopub thread", "1+1", 1
        ),
        frame_loop(gw),
    ]


async def run_phase(
    name: str,
    gw: Gateway,
    session: aiohttp.ClientSession,
    pool: concurrent.futures.ProcessPoolExecutor,
    attacks: list[Attack],
    args: argparse.Namespace,
) -> PhaseResult:
    stop = asyncio.Event()
    counts: dict[str, collections.Counter[str]] = {}
    tasks = [asyncio.create_task(attack(session, stop, counts)) for attack in attacks]
    count = round(args.seconds / args.interval)
    loop = asyncio.get_running_loop()
    print(f"phase {name}: {count} probes, {len(attacks)} attack clients", flush=True)
    if args.stall_stacks:
        with (args.tmp / "stalls.txt").open("a") as out:
            out.write(f"PHASE {name}\n")
    latencies = await loop.run_in_executor(
        pool, _probe, gw.port, count, args.interval, args.probe_nice
    )
    stop.set()
    note = ""
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=args.grace)
        for task in pending:
            task.cancel()
        if pending:
            note = f"{len(pending)} attack clients cancelled {args.grace:.0f} s after the phase"
        await asyncio.gather(*tasks, return_exceptions=True)
    return PhaseResult(name, latencies, counts, note)


def _docker_ready() -> str:
    """Empty when kernels can run; else the reason they cannot."""
    if shutil.which("docker") is None:
        return "no docker CLI"
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode:
        return "no Docker engine answers `docker info`"
    if subprocess.run(
        ["docker", "image", "inspect", IMAGE], capture_output=True, check=False
    ).returncode:
        return f"image {IMAGE} absent (build it with images/kernel/build.py)"
    return ""


# Loaded in the gateway process as sitecustomize (never imported by the bench itself). In the
# main thread's first event loop: a 5 ms heartbeat callback, and a watchdog thread that, while
# the heartbeat is more than SLOW late, samples the main thread's stack every 5 ms and appends
# it to STALLS (one sample = 5 ms of a stalled loop), so the culprit is named by file/function.
_SITECUSTOMIZE = """
import asyncio.base_events as _b, os, sys, threading, time, traceback
_SLOW = {slow!r}
_init = _b.BaseEventLoop.__init__
_watched = []
def _patched(self, *a, **k):
    _init(self, *a, **k)
    self.slow_callback_duration = _SLOW
    if {stacks!r} and not _watched and threading.current_thread() is threading.main_thread():
        _watched.append(self)
        _watch(self, threading.main_thread().ident)
_b.BaseEventLoop.__init__ = _patched
def _watch(loop, ident):
    beat = [time.monotonic()]
    lates = []
    # the loop thread's time waiting for a CPU (run queue), ns: /proc/.../schedstat field 2
    stat = f"/proc/self/task/{{threading.get_native_id()}}/schedstat"
    waited = [0]
    def tick():
        now = time.monotonic()
        with open(stat) as f:
            queued = int(f.read().split()[1])
        late = now - beat[0] - 0.005
        # a late beat also says how much of it the loop thread spent waiting for a CPU
        lates.append(f"{{late * 1000:.1f}}:{{(queued - waited[0]) / 1e6:.1f}}")
        waited[0] = queued
        beat[0] = now
        loop.call_later(0.005, tick)
    loop.call_soon(tick)
    def sample():
        names = {{t.ident: t.name for t in threading.enumerate()}}
        with open({path!r}, "a") as out:
            while True:
                time.sleep(0.005)
                if lates:
                    batch = lates[:]
                    del lates[: len(batch)]
                    out.write("LATE " + " ".join(batch) + "\\n")
                late = time.monotonic() - beat[0]
                frames = sys._current_frames()
                frame = frames.get(ident)
                if late > _SLOW and frame is not None:
                    stack = traceback.extract_stack(frame)[-25:]
                    out.write(f"STALL {{late * 1000:.0f}}\\n")
                    out.write("".join(f"{{f.filename}}:{{f.lineno}} {{f.name}}\\n" for f in stack))
                    for other, oframe in frames.items():
                        if other in (ident, threading.get_ident()):
                            continue
                        if other not in names:
                            names = {{t.ident: t.name for t in threading.enumerate()}}
                        top = traceback.extract_stack(oframe)[-1]
                        name = names.get(other, other)
                        where = f"{{top.filename}}:{{top.lineno}} {{top.name}}"
                        out.write(f"THREAD {{name}} {{where}}\\n")
                    out.flush()
    threading.Thread(target=sample, daemon=True, name="bench-stall-sampler").start()
"""


def _debug_env(tmp: Path, args: argparse.Namespace) -> dict[str, str]:
    """sitecustomize for the gateway process: `--debug-loop` turns asyncio debug mode on with
    `slow_callback_duration` = `--slow-ms` (BaseEventLoop sets 0.1 s in __init__, so it is set
    after it); `--stall-stacks` samples the loop thread's stack while the loop is late."""
    (tmp / "sitecustomize.py").write_text(
        _SITECUSTOMIZE.format(
            slow=args.slow_ms / 1000, stacks=args.stall_stacks, path=str(tmp / "stalls.txt")
        )
    )
    path = os.environ.get("PYTHONPATH", "")
    env = {"PYTHONPATH": f"{tmp}{os.pathsep}{path}".rstrip(os.pathsep)}
    if args.debug_loop:
        env["PYTHONASYNCIODEBUG"] = "1"
    return env


def lateness_table(
    lates: dict[str, list[float]], cpu_waits: dict[str, list[tuple[float, float]]]
) -> None:
    """How late the 5 ms heartbeat callback ran (ms), by phase: the event loop's own delay,
    without the probe's; and, of the beats more than 20 ms late, how much of their lateness
    the loop thread spent runnable but waiting for a CPU (the rest: holding the loop, or
    waiting for the GIL)."""
    print("\nevent loop lateness (a 5 ms heartbeat callback: how late each ran)")
    print(
        "| phase | beats | p50 ms | p99 ms | p99.9 ms | max ms | > 20 ms | > 50 ms |"
        " of > 20 ms beats: lateness ms, CPU wait ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for ph, values in lates.items():
        if values:
            slow = [(late, queued) for late, queued in cpu_waits[ph] if late > 20]
            print(
                f"| {ph} | {len(values)} | {_pct(values, 0.5) / 1000:.1f} |"
                f" {_pct(values, 0.99) / 1000:.1f} | {_pct(values, 0.999) / 1000:.1f} |"
                f" {max(values):.1f} | {sum(v > 20 for v in values)} |"
                f" {sum(v > 50 for v in values)} |"
                f" {sum(v for v, _ in slow):.0f}, {sum(q for _, q in slow):.0f} |"
            )


def stall_report(path: Path, top: int = 12) -> None:
    """The sampled stacks, summed by the innermost frame of our own code (gateway/) and by
    the innermost frame of all."""
    if not path.exists():
        print("\nstall stacks: none sampled (the loop was never late by --slow-ms)")
        return
    ours: collections.Counter[tuple[str, str]] = collections.Counter()
    inner: collections.Counter[tuple[str, str]] = collections.Counter()
    others: collections.Counter[tuple[str, str]] = collections.Counter()
    lates: dict[str, list[float]] = collections.defaultdict(list)
    cpu_waits: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    phase = "(start-up)"
    frames: list[str] | None = None

    def count() -> None:
        if frames:
            inner[phase, frames[-1]] += 1
            mine = [f for f in frames if "/gateway/" in f and "/site-packages/" not in f]
            ours[phase, mine[-1] if mine else "(no gateway/ frame)"] += 1

    for line in path.read_text().splitlines():
        if line.startswith("LATE "):
            for pair in line.split()[1:]:
                late, queued = pair.split(":")
                lates[phase].append(float(late))
                cpu_waits[phase].append((float(late), float(queued)))
            continue
        if line.startswith("THREAD "):
            _, name, where = line.split(" ", 2)
            others[phase, f"{name.split('_')[0]} {where.split('/main/')[-1]}"] += 1
            continue
        if line.startswith(("PHASE ", "STALL ")):
            count()
            frames = None if line.startswith("PHASE ") else []
            phase = line[len("PHASE ") :] if line.startswith("PHASE ") else phase
        elif frames is not None:
            frames.append(line)
    count()
    lateness_table(lates, cpu_waits)
    print(f"\nstall stacks: {sum(ours.values())} samples of 5 ms while the loop was late")
    for title, counter in (
        ("innermost gateway/ frame", ours),
        ("innermost frame", inner),
        ("other threads meanwhile (name, innermost frame)", others),
    ):
        print(f"| samples | phase | {title} |\n|---|---|---|")
        for (ph, where), n in counter.most_common(top):
            print(f"| {n} | {ph} | `{where.split('/main/')[-1]}` |")


def table(results: list[PhaseResult]) -> None:
    print(
        "| phase | probes (failed) | p50 ms | p95 ms | p99 ms | max ms | p99 / baseline p99 |"
        " attack requests done (status x count) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    base = results[0].p(0.99)
    for r in results:
        failed = len(r.latencies) - len(r.ok)
        attacks = "; ".join(
            f"{kind}: " + ", ".join(f"{status} x{n}" for status, n in sorted(c.items()))
            for kind, c in sorted(r.attacks.items())
        )
        if r.note:
            attacks = f"{attacks} ({r.note})" if attacks else r.note
        print(
            f"| {r.name} | {len(r.latencies)} ({failed}) | {r.p(0.5):.1f} | {r.p(0.95):.1f} |"
            f" {r.p(0.99):.1f} | {max(r.ok, default=float('nan')) * 1000:.1f} |"
            f" {r.p(0.99) / base:.1f} | {attacks or '-'} |"
        )
    worst = max((r for r in results), key=lambda r: r.p(0.99))
    verdict = "holds" if worst.p(0.99) <= 50 else "FAILS"
    print(
        f"\ngoal p99 ≤ 50 ms in every phase: {verdict}"
        f" (worst: {worst.name}, p99 {worst.p(0.99):.1f} ms)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between probes")
    parser.add_argument("--hogql-clients", type=int, default=4)
    parser.add_argument("--grace", type=float, default=60.0, help="wait for in-flight attacks")
    parser.add_argument("--debug-loop", action="store_true")
    parser.add_argument("--stall-stacks", action="store_true")
    parser.add_argument("--slow-ms", type=float, default=50.0)
    parser.add_argument(
        "--probe-nice",
        type=int,
        default=None,
        help="niceness of the probe process (default: the bench's own, 0; the gateway's is -5)",
    )
    parser.add_argument(
        "--phases", default="0,1,2,3,4", help="which phases to run (0 always runs: the baseline)"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    skip = _docker_ready()
    tmp = args.tmp = Path(tempfile.mkdtemp(prefix="gw-bench-health-"))
    env = {"GATEWAY_KERNEL_POOL_SIZE": "0", "GATEWAY_KERNEL_IMAGE": IMAGE}
    if args.debug_loop or args.stall_stacks:
        env |= _debug_env(tmp, args)
    results: list[PhaseResult] = []
    spawn = multiprocessing.get_context("spawn")
    timeout = aiohttp.ClientTimeout(total=180)
    try:
        with (
            concurrent.futures.ProcessPoolExecutor(1, mp_context=spawn) as pool,
            gateway(env) as gw,
        ):
            pool.submit(time.sleep, 0).result()  # the prober process exists before phase 0
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(
                headers=gw.headers, timeout=timeout, connector=connector
            ) as session:
                hogql = [hogql_client(gw, i * 3) for i in range(args.hogql_clients)]
                results.append(await run_phase("0 baseline (idle)", gw, session, pool, [], args))
                if "1" in args.phases:
                    results.append(await run_phase("1 HogQL flood", gw, session, pool, hogql, args))
                if skip:
                    print(f"phases 2 and 3 skipped: {skip}")
                else:
                    try:
                        print("starting 4 kernels", flush=True)
                        await setup_kernels(session, gw)
                        for name, attacks in (
                            ("2 kernel output floods", kernel_attacks(gw)),
                            ("3 HogQL + kernel floods", [*hogql, *kernel_attacks(gw)]),
                        ):
                            if name[0] not in args.phases:
                                continue
                            seconds = int(args.seconds) + 5  # over before the next phase
                            await _execute(session, gw, "atkthread", THREAD_CELL % seconds)
                            results.append(await run_phase(name, gw, session, pool, attacks, args))
                    finally:
                        stopped = await stop_kernels(session, gw)
                        print(f"kernels stopped through the API: {', '.join(stopped) or 'none'}")
                if "4" in args.phases:
                    results.append(await run_phase("4 idle again", gw, session, pool, [], args))
    finally:
        load_after = os.getloadavg()
        report(results, args, skip, load_before, load_after)
        if args.stall_stacks:
            stall_report(tmp / "stalls.txt")
        shutil.rmtree(tmp, ignore_errors=True)


def report(
    results: list[PhaseResult],
    args: argparse.Namespace,
    skip: str,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    docker_version = ""
    if not skip:
        docker_version = subprocess.run(
            ["docker", "version", "-f", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    header = (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {mem:.0f} GiB, Python "
        f"{platform.python_version()}{f', Docker {docker_version}' if docker_version else ''};"
        f" load avg (1/5/15 min) before {'/'.join(f'{v:.2f}' for v in load_before)},"
        f" after {'/'.join(f'{v:.2f}' for v in load_after)}; {args.seconds:g} s per phase,"
        f" one probe every {args.interval * 1000:g} ms, {args.hogql_clients} HogQL clients"
        f"{'; asyncio debug mode' if args.debug_loop else ''}"
        f"{f'; probe at nice {args.probe_nice}' if args.probe_nice is not None else ''}"
        f"{f'; kernel phases skipped: {skip}' if skip else ''}"
    )
    print()
    print(header)
    table(results)


if __name__ == "__main__":
    asyncio.run(main())
