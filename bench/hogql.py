"""HogQL benchmarks (issue #4), in one process on one machine.

(a) translation time per query (parse → resolve → print) for typical product-analytics queries
    that the current slice supports; median per query;
(b) each query end to end through the analytics store vs the same query hand-written in DuckDB
    SQL on the same data (alternating, medians);
(c) `load-events` throughput from a JSON Lines file, events/s.

    .venv/bin/python bench/hogql.py [--events 2000000] [--rounds 5] [--load-events 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gateway.hogql import translate
from gateway.hogql.execute import AnalyticsStore
from gateway.hogql.load import demo_events

P = "json_extract_string(properties, '$.\"{}\"')"
QUERIES = {
    "trend by day": (
        "select toStartOfDay(timestamp) as day, count() from events"
        " where event = '$pageview' group by day order by day",
        "select date_trunc('day', timestamp) as day, count(*) from events"
        " where project_id = 1 and event = '$pageview' group by day order by day",
    ),
    "breakdown by browser": (
        "select properties.$browser as b, count() as c from events group by b order by c desc",
        f"select {P.format('$browser')} as b, count(*) as c from events where project_id = 1"
        " group by b order by c desc",
    ),
    "unique users by os": (
        "select properties.$os, uniq(distinct_id) from events group by properties.$os",
        f"select {P.format('$os')}, count(distinct distinct_id) from events where project_id = 1"
        f" group by {P.format('$os')}",
    ),
    "top paths": (
        "select properties.$pathname as path, count() as c from events"
        " where event = '$pageview' group by path order by c desc limit 10",
        f"select {P.format('$pathname')} as path, count(*) as c from events"
        " where project_id = 1 and event = '$pageview' group by path order by c desc limit 10",
    ),
    "signups by plan": (
        "select properties.plan, countIf(event = 'signed_up') from events group by properties.plan",
        f"select {P.format('plan')}, count(*) filter (where event = 'signed_up') from events"
        f" where project_id = 1 group by {P.format('plan')}",
    ),
    "events per user (subquery)": (
        "select avg(c) from (select distinct_id, count() as c from events group by distinct_id) t",
        "select avg(c) from (select distinct_id, count(*) as c from events where project_id = 1"
        " group by distinct_id) t",
    ),
    "sessions per day": (
        "select toStartOfDay(timestamp) as d, uniq(properties.$session_id) from events"
        " group by d order by d",
        f"select date_trunc('day', timestamp) as d, count(distinct {P.format('$session_id')})"
        " from events where project_id = 1 group by d order by d",
    ),
    "filtered count": (
        "select count() from events where properties.$browser = 'Chrome' and"
        " properties.$os in ('Mac OS X', 'Windows')",
        f"select count(*) from events where project_id = 1 and {P.format('$browser')} = 'Chrome'"
        f" and {P.format('$os')} in ('Mac OS X', 'Windows')",
    ),
}

GENERATE = """
INSERT INTO events SELECT
    1, uuid(),
    ['$pageview','$pageview','$pageview','$autocapture','$pageleave','signed_up'][1 + (i % 6)],
    json_object('$browser', ['Chrome','Firefox','Safari','Edge'][1 + (i // 7 % 4)],
                '$os', ['Mac OS X','Windows','Linux','iOS','Android'][1 + (i // 11 % 5)],
                '$pathname', ['/','/pricing','/docs','/blog','/signup'][1 + (i // 3 % 5)],
                '$session_id', 's' || (i // 20)::VARCHAR,
                'plan', ['free','pro','enterprise'][1 + (i // 13 % 3)]),
    TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_seconds((i * 2592000 // {n})::BIGINT),
    'user-' || (i % {users})::VARCHAR, NULL,
    TIMESTAMPTZ '2026-10-01 00:00:00+00', NULL
FROM range({n}) t(i)
"""


def _plain(value: object) -> object:
    if hasattr(value, "isoformat"):
        return value.isoformat().replace("+00:00", "Z")  # type: ignore[union-attr]
    return value


def _translation_ms(rounds: int) -> dict[str, float]:
    out = {}
    for name, (hogql, _) in QUERIES.items():
        times = []
        for _ in range(max(rounds, 200)):
            begin = time.perf_counter()
            translate(hogql, project_id=1)
            times.append(time.perf_counter() - begin)
        out[name] = statistics.median(times) * 1000
    return out


async def _end_to_end(store: AnalyticsStore, rounds: int) -> dict[str, tuple[float, float]]:
    out = {}
    for name, (hogql, sql) in QUERIES.items():
        ours, direct = [], []
        for _ in range(rounds):
            begin = time.perf_counter()
            result = await store.run(translate(hogql, project_id=1))
            ours.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            cursor = store._conn.cursor()
            rows = cursor.execute(sql).fetchall()
            cursor.close()
            direct.append(time.perf_counter() - begin)
            expected = sorted(map(repr, ([_plain(v) for v in row] for row in rows)))
            actual = sorted(map(repr, result.rows))
            assert expected == actual, f"{name}: HogQL and hand-written SQL disagree"
        out[name] = (statistics.median(direct) * 1000, statistics.median(ours) * 1000)
    return out


def _load_rate(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "events.jsonl"
        with source.open("w") as handle:
            for e in demo_events(count):
                handle.write(
                    json.dumps(
                        {
                            **e,
                            "properties": json.loads(e["properties"]),
                            "timestamp": e["timestamp"].isoformat(),
                            "created_at": None,
                        }
                    )
                    + "\n"
                )
        begin = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway",
                "load-events",
                "--data-dir",
                tmp,
                "--project-id",
                "1",
                str(source),
            ],
            check=True,
            capture_output=True,
        )
        return count / (time.perf_counter() - begin)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load-events", type=int, default=200_000)
    args = parser.parse_args()
    translation = _translation_ms(args.rounds)
    store = AnalyticsStore(None, timeout_s=600)
    store._conn.execute(GENERATE.format(n=args.events, users=max(1, args.events // 50)))
    end_to_end = await _end_to_end(store, args.rounds)
    store.close()
    load = _load_rate(args.load_events)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.events:,} events, {args.rounds} rounds"
    )
    print("| query | translate ms (median) | DuckDB direct ms | via HogQL ms | ratio |")
    print("|---|---|---|---|---|")
    for name in QUERIES:
        direct, ours = end_to_end[name]
        print(
            f"| {name} | {translation[name]:.3f} | {direct:.1f} | {ours:.1f} | "
            f"{ours / direct:.2f} |"
        )
    print(
        f"\nmedian translation over all queries: {statistics.median(translation.values()):.3f} ms;"
        f" load-events: {load:,.0f} events/s ({args.load_events:,} events)"
    )


if __name__ == "__main__":
    asyncio.run(main())
