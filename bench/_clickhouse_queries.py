"""The queries of bench/hogql_vs_clickhouse.py: each HogQL query with the ClickHouse SQL PostHog
prints for it, written out against PostHog's tables (`events` with materialized columns,
`person_distinct_id2`, `person`).

PostHog's printer forms used: properties as `nullIf(nullIf(events.`mat_$x`, ''), 'null')` when
materialized, else `replaceRegexpAll(nullIf(nullIf(JSONExtractRaw(…), ''), 'null'), '^"|"$', '')`;
`equals(events.team_id, 1)` first in WHERE; timestamps through `toTimeZone(…, 'UTC')`; comparisons
wrapped in `ifNull(…, 0)`; `LIMIT 101` on a paged query (no LIMIT of its own); lazy person joins
through the `argMax(…, version)` subqueries of `person_distinct_id2` and `person`.

Where the SQL departs from PostHog's print so that both engines return the same rows (each one
marked `# differs:`): `minIf` over `toNullable(…)` (ClickHouse returns 1970-01-01, not NULL, for
an empty `minIf`); next-page order ties broken on `toString(uuid)` (ClickHouse orders UUIDs by
their two 64-bit halves, DuckDB by their text); `sessions` derived from `events` as the gateway
does (PostHog reads its pre-aggregated `raw_sessions` table, which this benchmark does not
build). `uniq`, `quantile` and `median` are ClickHouse's approximate ones, as PostHog prints
them; their columns are compared within `APPROX_TOLERANCE`.
"""

from __future__ import annotations

from typing import Final

from bench.hogql import QUERIES as DUCKDB_QUERIES

HOT: Final = ("$browser", "$os", "$pathname", "$session_id")
APPROX_TOLERANCE: Final = 0.02
TEAM: Final = "equals(events.team_id, 1)"
TS: Final = "toTimeZone(events.timestamp, 'UTC')"


def prop(key: str, alias: str = "events") -> str:
    """PostHog's print of `properties.<key>` (materialized when in HOT)."""
    if key in HOT:
        return f"nullIf(nullIf({alias}.`mat_{key}`, ''), 'null')"
    return (
        f"replaceRegexpAll(nullIf(nullIf(JSONExtractRaw({alias}.properties, '{key}'), ''),"
        " 'null'), '^\"|\"$', '')"
    )


def _at(day: str) -> str:
    return f"toDateTime64('{day} 00:00:00.000000', 6, 'UTC')"


PDI: Final = (
    "LEFT OUTER JOIN (SELECT argMax(person_distinct_id2.person_id, person_distinct_id2.version)"
    " AS events__pdi___person_id, person_distinct_id2.distinct_id AS distinct_id"
    " FROM person_distinct_id2 WHERE equals(person_distinct_id2.team_id, 1)"
    " GROUP BY person_distinct_id2.distinct_id HAVING ifNull(equals(argMax("
    "person_distinct_id2.is_deleted, person_distinct_id2.version), 0), 0)) AS events__pdi"
    " ON equals(events.distinct_id, events__pdi.distinct_id)"
)
PERSON: Final = (
    "LEFT JOIN (SELECT person.id AS id, replaceRegexpAll(nullIf(nullIf(JSONExtractRaw("
    "person.properties, 'plan'), ''), 'null'), '^\"|\"$', '') AS properties___plan FROM person"
    " WHERE and(equals(person.team_id, 1), in(tuple(person.id, person.version), (SELECT"
    " person.id AS id, max(person.version) AS version FROM person WHERE equals(person.team_id, 1)"
    " GROUP BY person.id HAVING ifNull(equals(argMax(person.is_deleted, person.version), 0), 0))))"
    " SETTINGS optimize_aggregation_in_order=1) AS events__pdi__person"
    " ON equals(events__pdi.events__pdi___person_id, events__pdi__person.id)"
)


def _funnel(window_s: int, where: str) -> str:
    return (
        "SELECT countIf(ifNull(greaterOrEquals(step, 1), 0)) AS viewed,"
        " countIf(ifNull(greaterOrEquals(step, 2), 0)) AS converted FROM (SELECT distinct_id,"
        " max(if(and(equals(event, 'signed_up'), isNotNull(prev_view),"
        f" ifNull(lessOrEquals(dateDiff('second', prev_view, timestamp), {window_s}), 0)), 2,"
        " if(isNotNull(prev_view), 1, 0))) AS step FROM (SELECT events.distinct_id AS distinct_id,"
        f" events.event AS event, {TS} AS timestamp, max(if(equals(events.event, '$pageview'),"
        f" {TS}, NULL)) OVER (PARTITION BY events.distinct_id ORDER BY {TS} ASC ROWS BETWEEN"
        f" UNBOUNDED PRECEDING AND CURRENT ROW) AS prev_view FROM events WHERE and({TEAM},"
        f" in(events.event, tuple('$pageview', 'signed_up')){where})) GROUP BY distinct_id)"
        " LIMIT 101"
    )


def _funnel_hogql(window_s: int, where: str) -> str:
    return (
        "select countIf(step >= 1) as viewed, countIf(step >= 2) as converted from ("
        " select distinct_id, max(if(event = 'signed_up' and prev_view is not null and"
        f" dateDiff('second', prev_view, timestamp) <= {window_s}, 2,"
        " if(prev_view is not null, 1, 0))) as step from (select distinct_id, event, timestamp,"
        " max(if(event = '$pageview', timestamp, null)) over (partition by distinct_id order by"
        " timestamp rows between unbounded preceding and current row) as prev_view from events"
        f" where event in ('$pageview', 'signed_up'){where}) group by distinct_id)"
    )


CLICKHOUSE: Final = {
    "trend by day": f"SELECT toStartOfDay({TS}) AS day, count() FROM events WHERE and({TEAM},"
    " equals(events.event, '$pageview')) GROUP BY day ORDER BY day ASC LIMIT 101",
    "breakdown by browser": f"SELECT {prop('$browser')} AS b, count() AS c FROM events"
    f" WHERE {TEAM} GROUP BY b ORDER BY c DESC LIMIT 101",
    "unique users by os": f"SELECT {prop('$os')}, uniq(events.distinct_id) FROM events"
    f" WHERE {TEAM} GROUP BY {prop('$os')} LIMIT 101",
    "top paths": f"SELECT {prop('$pathname')} AS path, count() AS c FROM events WHERE and({TEAM},"
    " equals(events.event, '$pageview')) GROUP BY path ORDER BY c DESC LIMIT 10",
    "signups by plan": f"SELECT {prop('plan')}, countIf(equals(events.event, 'signed_up'))"
    f" FROM events WHERE {TEAM} GROUP BY {prop('plan')} LIMIT 101",
    "events per user (subquery)": "SELECT avg(t.c) FROM (SELECT events.distinct_id AS"
    f" distinct_id, count() AS c FROM events WHERE {TEAM} GROUP BY events.distinct_id) AS t"
    " LIMIT 101",
    "sessions per day": f"SELECT toStartOfDay({TS}) AS d, uniq({prop('$session_id')})"
    f" FROM events WHERE {TEAM} GROUP BY d ORDER BY d ASC LIMIT 101",
    "filtered count": f"SELECT count() FROM events WHERE and({TEAM},"
    f" ifNull(equals({prop('$browser')}, 'Chrome'), 0),"
    f" ifNull(in({prop('$os')}, tuple('Mac OS X', 'Windows')), 0)) LIMIT 101",
    "funnel: pageview then signup within a day (window functions)": _funnel(86400, ""),
    "funnel: three ordered steps (first times)": "SELECT countIf(isNotNull(t1)),"
    " countIf(ifNull(greater(t2, t1), 0)), countIf(and(ifNull(greater(t3, t2), 0),"
    " ifNull(greater(t2, t1), 0))) FROM (SELECT events.distinct_id AS distinct_id,"
    # differs: toNullable, so that a step never reached is NULL as in HogQL
    f" minIf(toNullable({TS}), equals(events.event, '$pageview')) AS t1,"
    f" minIf(toNullable({TS}), equals(events.event, '$autocapture')) AS t2,"
    f" minIf(toNullable({TS}), equals(events.event, 'signed_up')) AS t3"
    f" FROM events WHERE {TEAM} GROUP BY events.distinct_id) LIMIT 101",
    "retention: weekly cohorts": "SELECT toStartOfWeek(f.first_seen) AS cohort, dateDiff('week',"
    " toStartOfWeek(f.first_seen), toStartOfWeek(toTimeZone(e.timestamp, 'UTC'))) AS week_n,"
    " uniq(e.distinct_id) FROM events AS e INNER JOIN (SELECT events.distinct_id AS distinct_id,"
    f" min({TS}) AS first_seen FROM events WHERE {TEAM} GROUP BY events.distinct_id) AS f"
    " ON equals(f.distinct_id, e.distinct_id) WHERE equals(e.team_id, 1)"
    " GROUP BY cohort, week_n ORDER BY cohort ASC, week_n ASC LIMIT 101",
    "paths: next page after each page": "SELECT path, next_path, count() AS c FROM (SELECT"
    f" {prop('$pathname')} AS path, leadInFrame({prop('$pathname')}) OVER (PARTITION BY"
    # differs: ties broken on the UUID's text, as DuckDB orders UUIDs
    f" {prop('$session_id')} ORDER BY {TS} ASC, toString(events.uuid) ASC ROWS BETWEEN"
    " UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS next_path FROM events"
    f" WHERE and({TEAM}, equals(events.event, '$pageview'))) WHERE isNotNull(next_path)"
    " GROUP BY path, next_path ORDER BY c DESC, path ASC, next_path ASC LIMIT 10",
    "breakdown by person property": "SELECT events__pdi__person.properties___plan AS plan,"
    f" count() AS c FROM events {PDI} {PERSON} WHERE {TEAM} GROUP BY plan ORDER BY c DESC"
    " LIMIT 101",
    "unique persons per day": f"SELECT toStartOfDay({TS}) AS d,"
    f" uniq(events__pdi.events__pdi___person_id) FROM events {PDI} WHERE {TEAM}"
    " GROUP BY d ORDER BY d ASC LIMIT 101",
    # differs: PostHog reads sessions from raw_sessions; derived from events here, as ours
    "session duration by day (sessions)": "SELECT toStartOfDay(s) AS d,"
    " round(avg(dateDiff('second', s, e)), 3), count() FROM (SELECT"
    f" {prop('$session_id')} AS sid, min({TS}) AS s, max({TS}) AS e FROM events"
    f" WHERE and({TEAM}, notEmpty(ifNull(sid, ''))) GROUP BY sid) GROUP BY d ORDER BY d ASC"
    " LIMIT 101",
    "weekly active users": f"SELECT toStartOfWeek({TS}) AS w, uniq(events.distinct_id)"
    f" FROM events WHERE {TEAM} GROUP BY w ORDER BY w ASC LIMIT 101",
    "top 3 paths per browser (LIMIT BY)": f"SELECT {prop('$browser')} AS b,"
    f" {prop('$pathname')} AS p, count() AS c FROM events WHERE {TEAM} GROUP BY b, p"
    " ORDER BY b ASC, c DESC, p ASC LIMIT 3 BY b LIMIT 101",
    "stickiness: users by active days": "SELECT days, count() FROM (SELECT events.distinct_id"
    f" AS distinct_id, uniq(toStartOfDay({TS})) AS days FROM events WHERE {TEAM}"
    " GROUP BY events.distinct_id) GROUP BY days ORDER BY days ASC LIMIT 101",
    "p90 and median events per user": "SELECT quantile(0.9)(c), median(c) FROM (SELECT"
    f" events.distinct_id AS distinct_id, count() AS c FROM events WHERE {TEAM}"
    " GROUP BY events.distinct_id) LIMIT 101",
    "hourly pageviews, last week": f"SELECT toStartOfHour({TS}) AS h, count() FROM events"
    f" WHERE and({TEAM}, equals(events.event, '$pageview'),"
    f" greaterOrEquals({TS}, {_at('2026-10-24')})) GROUP BY h ORDER BY h ASC LIMIT 1000",
    "trends, 7-day range": f"SELECT toStartOfDay({TS}) AS day, count() FROM events"
    f" WHERE and({TEAM}, equals(events.event, '$pageview'), greaterOrEquals({TS},"
    f" {_at('2026-10-24')}), less({TS}, {_at('2026-10-31')})) GROUP BY day ORDER BY day ASC"
    " LIMIT 101",
    "breakdown by browser, date filter": f"SELECT {prop('$browser')} AS b, count() AS c"
    f" FROM events WHERE and({TEAM}, equals(events.event, '$pageview'), greaterOrEquals({TS},"
    f" {_at('2026-10-17')}), less({TS}, {_at('2026-10-24')})) GROUP BY b ORDER BY c DESC"
    " LIMIT 101",
    "funnel over 14 days": _funnel(
        1209600,
        f", greaterOrEquals({TS}, {_at('2026-10-10')}), less({TS}, {_at('2026-10-24')})",
    ),
}

HOGQL: Final = {
    **{name: hogql for name, (hogql, _) in DUCKDB_QUERIES.items()},
    "trends, 7-day range": "select toStartOfDay(timestamp) as day, count() from events"
    " where event = '$pageview' and timestamp >= '2026-10-24' and timestamp < '2026-10-31'"
    " group by day order by day",
    "breakdown by browser, date filter": "select properties.$browser as b, count() as c"
    " from events where event = '$pageview' and timestamp >= '2026-10-17'"
    " and timestamp < '2026-10-24' group by b order by c desc",
    "funnel over 14 days": _funnel_hogql(
        1209600, " and timestamp >= '2026-10-10' and timestamp < '2026-10-24'"
    ),
}
# result columns compared within APPROX_TOLERANCE (ClickHouse's uniq, quantile, median)
APPROXIMATE: Final = {
    "unique users by os": {1},
    "sessions per day": {1},
    "retention: weekly cohorts": {2},
    "unique persons per day": {1},
    "weekly active users": {1},
    "p90 and median events per user": {0, 1},
}
assert set(HOGQL) == set(CLICKHOUSE), set(HOGQL) ^ set(CLICKHOUSE)
