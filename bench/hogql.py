"""HogQL benchmarks (issue #4), in one process on one machine.

(a) translation time per query (parse → resolve → print) for 20 typical product-analytics
    queries (trends, breakdowns, funnels via window functions, retention, paths, persons,
    sessions, LIMIT BY, quantiles); median per query;
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
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._server import load_events_rate
from gateway.analytics.load import demo_events
from gateway.analytics.store import AnalyticsStore
from gateway.hogql import translate

P = "json_extract_string(properties, '$.\"{}\"')"
SUNDAY = "cast(cast({0} as date) - cast(dayofweek({0}) as integer) as date)"  # week start
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
    "funnel: pageview then signup within a day (window functions)": (
        "select countIf(step >= 1) as viewed, countIf(step >= 2) as converted from ("
        " select distinct_id, max(if(event = 'signed_up' and prev_view is not null and"
        " dateDiff('second', prev_view, timestamp) <= 86400, 2, if(prev_view is not null, 1, 0)))"
        " as step from (select distinct_id, event, timestamp, max(if(event = '$pageview',"
        " timestamp, null)) over (partition by distinct_id order by timestamp rows between"
        " unbounded preceding and current row) as prev_view from events"
        " where event in ('$pageview', 'signed_up')) group by distinct_id)",
        "select count(*) filter (where step >= 1), count(*) filter (where step >= 2) from ("
        " select distinct_id, max(case when event = 'signed_up' and prev_view is not null and"
        " date_diff('second', prev_view, timestamp) <= 86400 then 2 when prev_view is not null"
        " then 1 else 0 end) as step from (select distinct_id, event, timestamp,"
        " max(case when event = '$pageview' then timestamp end) over (partition by distinct_id"
        " order by timestamp rows between unbounded preceding and current row) as prev_view"
        " from events where project_id = 1 and event in ('$pageview', 'signed_up'))"
        " group by distinct_id)",
    ),
    "funnel: three ordered steps (first times)": (
        "select countIf(isNotNull(t1)), countIf(t2 > t1), countIf(t3 > t2 and t2 > t1) from ("
        " select distinct_id, minIf(timestamp, event = '$pageview') as t1,"
        " minIf(timestamp, event = '$autocapture') as t2, minIf(timestamp, event = 'signed_up')"
        " as t3 from events group by distinct_id)",
        "select count(t1), count(*) filter (where t2 > t1),"
        " count(*) filter (where t3 > t2 and t2 > t1) from (select distinct_id,"
        " min(timestamp) filter (where event = '$pageview') as t1,"
        " min(timestamp) filter (where event = '$autocapture') as t2,"
        " min(timestamp) filter (where event = 'signed_up') as t3"
        " from events where project_id = 1 group by distinct_id)",
    ),
    "retention: weekly cohorts": (
        "select toStartOfWeek(f.first_seen) as cohort, dateDiff('week',"
        " toStartOfWeek(f.first_seen), toStartOfWeek(e.timestamp)) as week_n,"
        " uniq(e.distinct_id) from events e join (select distinct_id, min(timestamp) as"
        " first_seen from events group by distinct_id) f on f.distinct_id = e.distinct_id"
        " group by cohort, week_n order by cohort, week_n",
        f"select {SUNDAY.format('f.first_seen')} as cohort,"
        f" date_diff('week', {SUNDAY.format('f.first_seen')},"
        f" {SUNDAY.format('e.timestamp')}) as week_n,"
        " count(distinct e.distinct_id) from events e join (select distinct_id,"
        " min(timestamp) as first_seen from events where project_id = 1 group by distinct_id)"
        " f on f.distinct_id = e.distinct_id where e.project_id = 1"
        " group by cohort, week_n order by cohort, week_n",
    ),
    "paths: next page after each page": (
        "select path, next_path, count() as c from (select properties.$pathname as path,"
        " lead(properties.$pathname) over (partition by properties.$session_id"
        " order by timestamp, uuid) as next_path from events where event = '$pageview')"
        " where next_path is not null group by path, next_path"
        " order by c desc, path, next_path limit 10",
        f"select path, next_path, count(*) as c from (select {P.format('$pathname')} as path,"
        f" lead({P.format('$pathname')}) over (partition by {P.format('$session_id')}"
        " order by timestamp, uuid) as next_path from events where project_id = 1"
        " and event = '$pageview') where next_path is not null group by path, next_path"
        " order by c desc, path, next_path limit 10",
    ),
    "breakdown by person property": (
        "select person.properties.plan as plan, count() as c from events"
        " group by plan order by c desc",
        "select json_extract_string(p.properties, '$.\"plan\"') as plan, count(*) as c"
        " from events e left join person_distinct_ids d on d.project_id = 1"
        " and d.distinct_id = e.distinct_id left join persons p on p.project_id = 1"
        " and p.id = d.person_id where e.project_id = 1 group by plan order by c desc",
    ),
    "unique persons per day": (
        "select toStartOfDay(timestamp) as d, uniq(person_id) from events group by d order by d",
        "select date_trunc('day', e.timestamp) as d, count(distinct d.person_id) from events e"
        " left join person_distinct_ids d on d.project_id = 1 and d.distinct_id = e.distinct_id"
        " where e.project_id = 1 group by 1 order by 1",
    ),
    "session duration by day (sessions)": (
        "select toStartOfDay($start_timestamp) as d, round(avg($session_duration), 3),"
        " count() from sessions group by d order by d",
        "select date_trunc('day', s) as d, round(avg(date_diff('second', s, e)), 3), count(*)"
        f" from (select min(timestamp) as s, max(timestamp) as e from events where project_id = 1"
        f" and {P.format('$session_id')} is not null group by {P.format('$session_id')})"
        " group by d order by d",
    ),
    "weekly active users": (
        "select toStartOfWeek(timestamp) as w, uniq(distinct_id) from events group by w order by w",
        f"select {SUNDAY.format('timestamp')} as w,"
        " count(distinct distinct_id) from events where project_id = 1 group by w order by w",
    ),
    "top 3 paths per browser (LIMIT BY)": (
        "select properties.$browser as b, properties.$pathname as p, count() as c from events"
        " group by b, p order by b, c desc, p limit 3 by b",
        f"select {P.format('$browser')} as b, {P.format('$pathname')} as p, count(*) as c"
        " from events where project_id = 1 group by b, p"
        " qualify row_number() over (partition by b order by c desc, p) <= 3 order by b, c desc, p",
    ),
    "stickiness: users by active days": (
        "select days, count() from (select distinct_id, uniq(toStartOfDay(timestamp)) as days"
        " from events group by distinct_id) group by days order by days",
        "select days, count(*) from (select distinct_id, count(distinct date_trunc('day',"
        " timestamp)) as days from events where project_id = 1 group by distinct_id)"
        " group by days order by days",
    ),
    "p90 and median events per user": (
        "select quantile(0.9)(c), median(c) from (select distinct_id, count() as c from events"
        " group by distinct_id)",
        "select quantile_cont(c, 0.9), median(c) from (select distinct_id, count(*) as c"
        " from events where project_id = 1 group by distinct_id)",
    ),
    "hourly pageviews, last week": (
        "select toStartOfHour(timestamp) as h, count() from events where event = '$pageview'"
        " and timestamp >= '2026-10-24' group by h order by h limit 1000",
        "select date_trunc('hour', timestamp) as h, count(*) from events where project_id = 1"
        " and event = '$pageview' and timestamp >= TIMESTAMPTZ '2026-10-24 00:00:00+00'"
        " group by h order by h",
    ),
}

PERSONS = """
INSERT INTO persons SELECT 1, uuid(), TIMESTAMPTZ '2026-09-01 00:00:00+00',
    json_object('j', j, 'plan', ['free','pro','enterprise'][1 + (j % 3)],
                'email', 'user' || j::VARCHAR || '@' || ['example.com','acme.io'][1 + (j % 2)]),
    true
FROM range({users}) t(j);
INSERT INTO person_distinct_ids
    SELECT 1, 'user-' || json_extract_string(properties, '$.j'), id FROM persons;
"""

GENERATE = """
INSERT INTO {table} SELECT
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
        return value.isoformat().replace("+00:00", "Z")
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


def _direct(store: AnalyticsStore, sql: str) -> list[tuple[object, ...]]:
    cursor = store._conn.cursor()
    try:
        return cursor.execute(sql).fetchall()
    finally:
        cursor.close()


async def _end_to_end(
    store: AnalyticsStore, rounds: int, names: list[str]
) -> dict[str, tuple[float, float]]:
    out = {}
    loop = asyncio.get_running_loop()
    for name in names:
        hogql, sql = QUERIES[name]
        ours, direct = [], []
        for _ in range(rounds):
            begin = time.perf_counter()
            result = await store.run(translate(hogql, project_id=1))
            ours.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            # on one of the store's threads, as HogQL's query ran: the same priority (they run
            # QUERY_NICENESS nicer than the caller, gateway/analytics/priority.py)
            rows = await loop.run_in_executor(store._executor, _direct, store, sql)
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
        return load_events_rate(source, tmp, count)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--load-events", type=int, default=200_000)
    parser.add_argument(
        "--file", action="store_true", help="a file-backed store (as the gateway runs)"
    )
    parser.add_argument("--only", nargs="*", help="query names (default: all)")
    args = parser.parse_args()
    names = args.only or list(QUERIES)
    unknown = set(names) - set(QUERIES)
    if unknown:
        parser.error(f"unknown queries: {sorted(unknown)}")
    translation = _translation_ms(args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "analytics.duckdb" if args.file else None
        # no materialized columns: HogQL and the hand-written SQL both parse the JSON
        store = AnalyticsStore(path, timeout_s=600, materialized=())
        users = max(1, args.events // 50)
        # a bulk load: into the write buffer, then clustered (gateway/analytics/layout.py)
        store._conn.execute(GENERATE.format(table="events_buffer", n=args.events, users=users))
        store._conn.execute(PERSONS.format(users=users))
        store.layout.flush()
        end_to_end = await _end_to_end(store, args.rounds, names)
        store.close(flush=False)
    load = _load_rate(args.load_events)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {args.events:,} events, {args.rounds} rounds"
    )
    print("| query | translate ms (median) | DuckDB direct ms | via HogQL ms | ratio |")
    print("|---|---|---|---|---|")
    for name in names:
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
