"""Collab benchmarks (issue #5), against a gateway subprocess on loopback.

(a) Accepted saves per second on one notebook with 10 competing clients (each rebases on 409
    and retries), beside one uncontended client in the same run.
(b) Fan-out latency: time from sending an accepted save until the 100th open collab stream has
    received its step, p50/p99, beside the save's own round trip in the same run.

    .venv/bin/python bench/collab.py [--seconds 5] [--streams 100] [--saves 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Gateway, gateway


async def _saver(session, gw: Gateway, name: str, until: float, counts: dict) -> None:
    url = f"{gw.base}/api/projects/1/notebooks/{gw.short_id}/collab/save"
    async with session.get(f"{gw.base}/api/projects/1/notebooks/{gw.short_id}") as resp:
        version = (await resp.json())["version"]
    while time.perf_counter() < until:
        body = {
            "client_id": name,
            "version": version,
            "steps": [{"by": name}],
            "content": {"type": "doc", "content": []},
        }
        async with session.post(url, json=body) as resp:
            data = await resp.json()
            if resp.status == 200:
                counts["accepted"] += 1
            elif resp.status == 409:
                counts["conflicts"] += 1
            else:
                raise SystemExit(f"unexpected {resp.status}: {data}")
            version = data["version"]


async def saves_per_second(gw: Gateway, clients: int, seconds: float) -> dict:
    counts = {"accepted": 0, "conflicts": 0}
    async with aiohttp.ClientSession(headers=gw.headers) as session:
        until = time.perf_counter() + seconds
        await asyncio.gather(*(_saver(session, gw, f"c{i}", until, counts) for i in range(clients)))
    return {k: v / seconds for k, v in counts.items()}


async def _reader(
    resp, arrivals: dict[int, list[float]], ready: asyncio.Event, arrived: asyncio.Event
) -> None:
    ready.set()
    async for line in resp.content:
        if line.startswith(b"id: "):
            version = int(line[4:].split(b"-")[0])
            arrivals.setdefault(version, []).append(time.perf_counter())
            arrived.set()


async def fanout(gw: Gateway, streams: int, saves: int) -> tuple[list[float], list[float]]:
    arrivals: dict[int, list[float]] = {}
    arrived = asyncio.Event()  # set by a reader after each arrival it records
    sent: dict[int, float] = {}
    round_trips = []
    url = f"{gw.base}/api/projects/1/notebooks/{gw.short_id}"
    async with aiohttp.ClientSession(
        headers=gw.headers, connector=aiohttp.TCPConnector(limit=0)
    ) as session:
        responses, readers = [], []
        for _ in range(streams):
            resp = await session.get(url + "/collab/stream")
            assert resp.status == 200, await resp.text()
            ready = asyncio.Event()
            readers.append(asyncio.create_task(_reader(resp, arrivals, ready, arrived)))
            responses.append(resp)
            await ready.wait()
        async with session.get(url) as resp:
            version = (await resp.json())["version"]
        for _ in range(saves):
            body = {
                "client_id": "bench",
                "version": version,
                "steps": [{"n": version}],
                "content": {"type": "doc", "content": []},
            }
            start = time.perf_counter()
            sent[version + 1] = start
            async with session.post(url + "/collab/save", json=body) as resp:
                assert resp.status == 200, await resp.text()
                version = (await resp.json())["version"]
            round_trips.append(time.perf_counter() - start)
            # Next save only once everyone has this one: each sample is one save's fan-out.
            while len(arrivals.get(version, ())) < streams:
                arrived.clear()
                await arrived.wait()
        for task in readers:
            task.cancel()
        for resp in responses:
            resp.close()
    latencies = [max(arrivals[v]) - sent[v] for v in sent]
    return latencies, round_trips


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--saves", type=int, default=200)
    args = parser.parse_args()
    # One benchmark user holds every stream, so both stream caps are raised above --streams.
    limit = str(args.streams + 10)
    env = {"GATEWAY_COLLAB_MAX_STREAMS": limit, "GATEWAY_COLLAB_MAX_STREAMS_PER_USER": limit}
    with gateway(env) as gw:
        single = await saves_per_second(gw, 1, args.seconds)
        ten = await saves_per_second(gw, 10, args.seconds)
        latencies, round_trips = await fanout(gw, args.streams, args.saves)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; client and server share the machine"
    )
    print("| clients | accepted saves/s | 409s/s | ratio to 1 client |")
    print("|---|---|---|---|")
    print(f"| 1 | {single['accepted']:,.0f} | {single['conflicts']:,.0f} | 1.00 |")
    print(
        f"| 10 | {ten['accepted']:,.0f} | {ten['conflicts']:,.0f} | "
        f"{ten['accepted'] / single['accepted']:.2f} |"
    )
    print()
    print(f"| {args.saves} saves, {args.streams} streams | p50 ms | p99 ms |")
    print("|---|---|---|")
    print(f"| save round trip | {_pct(round_trips, 0.5):.2f} | {_pct(round_trips, 0.99):.2f} |")
    print(
        f"| send → {args.streams}th stream has it | {_pct(latencies, 0.5):.2f} | "
        f"{_pct(latencies, 0.99):.2f} |"
    )
    ratio = statistics.median(latencies) / statistics.median(round_trips)
    print(f"| ratio fan-out / round trip | {ratio:.2f} | |")


if __name__ == "__main__":
    asyncio.run(main())
