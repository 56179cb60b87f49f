"""Capture throughput: `/batch/` with 1,000-event batches from 4 concurrent clients, beside
`load-events` on the same events, and the cost of person processing.

Runs, each on a fresh gateway (a subprocess) and data directory:
  personless  every event `$process_person_profile: false` (events only, no person work)
  events      plain events: one person per distinct id, created on first sight
  persons     the same events plus identify/`$set` traffic: every event `$set`s a property and
              every 10th is an `$identify` that merges an anonymous id into its user
Bodies are encoded before the clock starts; the clients share the machine's cores with the
gateway, so figures are a lower bound.

    .venv/bin/python bench/capture.py [--events 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import gateway, load_events_rate
from gateway.analytics.load import demo_events

BATCH = 1000
CLIENTS = 4


def _events(count: int, mode: str) -> list[dict[str, Any]]:
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    out = []
    for i, e in enumerate(demo_events(count, now=now)):
        event = {
            "uuid": e["uuid"],
            "event": e["event"],
            "distinct_id": e["distinct_id"],
            "properties": json.loads(e["properties"]),
            "timestamp": e["timestamp"].isoformat(),
        }
        if mode == "personless":
            event["properties"]["$process_person_profile"] = False
        elif mode == "persons":
            event["properties"]["$set"] = {"last_path": event["properties"]["$pathname"]}
            if i % 10 == 0:
                event["event"] = "$identify"
                event["properties"]["$anon_distinct_id"] = f"anon-{e['distinct_id']}-{i}"
        out.append(event)
    return out


def _load_events(events: list[dict[str, Any]]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "events.jsonl"
        with source.open("w") as handle:
            for event in events:
                handle.write(json.dumps(event) + "\n")
        return load_events_rate(source, tmp, len(events))


async def _send(base: str, bodies: list[bytes]) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)

    async def client() -> None:
        async with aiohttp.ClientSession() as session:
            while not queue.empty():
                body = queue.get_nowait()
                async with session.post(
                    f"{base}/batch/", data=body, headers={"Content-Type": "application/json"}
                ) as resp:
                    assert resp.status == 200, await resp.text()

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


def _capture(events: list[dict[str, Any]]) -> float:
    with gateway() as gw:
        token = subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "project-token",
                "--data-dir",
                str(gw.data_dir),
                "--project-id",
                "1",
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        bodies = [
            json.dumps({"api_key": token, "batch": events[i : i + BATCH]}).encode()
            for i in range(0, len(events), BATCH)
        ]
        begin = time.perf_counter()
        asyncio.run(_send(gw.base, bodies))
        return len(events) / (time.perf_counter() - begin)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args()
    plain = _events(args.events, "events")
    load = _load_events(plain)
    rates = {mode: _capture(_events(args.events, mode)) for mode in ("personless", "events")}
    rates["persons"] = _capture(_events(args.events, "persons"))
    print(f"{args.events:,} events, /batch/ x{BATCH}, {CLIENTS} clients")
    print("| run | events/s | vs load-events |")
    print("|---|---|---|")
    print(f"| load-events (same events) | {load:,.0f} | 1.00 |")
    for mode, rate in rates.items():
        print(f"| capture: {mode} | {rate:,.0f} | {rate / load:.2f} |")


if __name__ == "__main__":
    main()
