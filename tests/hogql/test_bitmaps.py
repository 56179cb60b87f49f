"""Distinct persons counted with bitmaps of person numbers (issue #16, gateway/hogql/bitmaps.py):
the same rows and types as the plain count(DISTINCT person_id), with persons reached through
several distinct ids, persons stored on events (also ones a distinct id names too), events of no
person, more persons than one 64-bit word holds, merged and buffered rows, another project's
persons, and in a project's timezone; every other shape stays plain."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from gateway.analytics.store import AnalyticsStore
from gateway.hogql import translate

T0 = dt.datetime(2026, 10, 3, 22, tzinfo=dt.UTC)
OLD = dt.datetime(1969, 12, 1, 3, tzinfo=dt.UTC)
PERSONS = 150  # three 64-bit words


def _pid(n: int) -> str:
    return str(uuid.UUID(int=(n * 7919 + 13) % (1 << 64) << 32))  # not in index order


def _events(count: int, *, start: int = 0) -> list[dict[str, object]]:
    out = []
    for i in range(start, start + count):
        own = None
        if i % 11 == 0:
            own = _pid(i % 40)  # a person stored on the event: also one that ids name
        elif i % 13 == 0:
            own = _pid(1000 + i % 7)  # a person only events name
        out.append(
            {
                "uuid": str(uuid.uuid4()),
                "event": ["$pageview", "signed_up", "$autocapture"][i % 3],
                # ids 0..299: two per person; 300..319 name nobody
                "distinct_id": f"id-{i % 320}",
                "properties": json.dumps({"$os": ["Linux", "iOS", None][i % 5 % 3]}),
                "timestamp": OLD + dt.timedelta(days=i % 97, hours=i % 5)
                if i % 17 == 0  # across 1970 and several 64-day words
                else T0 + dt.timedelta(hours=(i * 5) % 120),
                "person_id": own,
            }
        )
    return out


@pytest.fixture(scope="module")
def store():
    store = AnalyticsStore(None, materialized=["$os"])
    store.insert_persons(
        1,
        [
            {
                "id": _pid(n),
                "distinct_ids": [f"id-{2 * n}", f"id-{2 * n + 1}"],
                "created_at": T0,
                "is_identified": True,
                "properties": "{}",
            }
            for n in range(PERSONS)
        ],
    )
    store.insert_persons(
        2,
        [
            {
                "id": str(uuid.uuid4()),
                "distinct_ids": [f"id-{n}"],
                "created_at": T0,
                "is_identified": True,
                "properties": "{}",
            }
            for n in range(40)
        ],
    )
    store.insert_events(1, _events(2500))
    store.layout.merge()
    store.insert_events(1, _events(1500, start=2500))
    store.insert_events(2, _events(300))
    yield store
    store.close()


async def _run(store, query, zone):
    translation = translate(query, project_id=1, materialized=store.materialized, timezone=zone)
    return translation.sql, await store.run(translation)


# (query, its plain twin: HAVING keeps the plain form)
SAME = [
    (
        "select toStartOfDay(timestamp) as d, uniq(person_id) from events group by d order by d",
        "select toStartOfDay(timestamp) as d, uniq(person_id) from events group by d"
        " having 1 = 1 order by d",
    ),
    (
        "select event, uniq(person_id), uniqExact(person_id) as x, count(distinct person_id)"
        " from events where event != 'signed_up' group by event order by event",
        "select event, uniq(person_id), uniqExact(person_id) as x, count(distinct person_id)"
        " from events where event != 'signed_up' group by event having 1 = 1 order by event",
    ),
    (
        "select toStartOfWeek(timestamp), properties.$os as os, uniq(person_id) as u from events"
        " group by toStartOfWeek(timestamp), os order by toStartOfWeek(timestamp), os desc, u",
        "select toStartOfWeek(timestamp), properties.$os as os, uniq(person_id) as u from events"
        " group by toStartOfWeek(timestamp), os having 1 = 1"
        " order by toStartOfWeek(timestamp), os desc, u",
    ),
    (
        "select d, u from (select toStartOfHour(timestamp) as d, uniq(person_id) as u from events"
        " group by d) order by d",
        "select d, u from (select toStartOfHour(timestamp) as d, uniq(person_id) as u from events"
        " group by d having 1 = 1) order by d",
    ),
    (
        "select distinct_id, uniq(person_id) as u from events group by distinct_id"
        " order by distinct_id limit 400",
        "select distinct_id, uniq(person_id) as u from events group by distinct_id"
        " having 1 = 1 order by distinct_id limit 400",
    ),
    (
        "select days, count() from (select distinct_id, uniq(toStartOfDay(timestamp)) as days"
        " from events group by distinct_id) group by days order by days",
        "select days, count() from (select distinct_id, uniq(toStartOfDay(timestamp)) as days"
        " from events group by distinct_id having 1 = 1) group by days order by days",
    ),
    (
        "select event, uniq(toStartOfDay(timestamp)), count(distinct toStartOfDay(timestamp))"
        " from events group by event order by event",
        "select event, uniq(toStartOfDay(timestamp)), count(distinct toStartOfDay(timestamp))"
        " from events group by event having 1 = 1 order by event",
    ),
    (
        "select person_id, uniq(toStartOfDay(timestamp)) as n from events group by person_id"
        " order by person_id",
        "select person_id, uniq(toStartOfDay(timestamp)) as n from events group by person_id"
        " having 1 = 1 order by person_id",
    ),
    (
        "select toStartOfDay(timestamp) as d, uniq(person_id) from events"
        " where distinct_id in ('id-1', 'id-300', 'id-301') group by d order by d",
        "select toStartOfDay(timestamp) as d, uniq(person_id) from events"
        " where distinct_id in ('id-1', 'id-300', 'id-301') group by d having 1 = 1 order by d",
    ),
]


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
@pytest.mark.parametrize(("query", "plain"), SAME)
async def test_bitmaps_count_the_plain_distinct_persons(store, query, plain, zone):
    sql, got = await _run(store, query, zone)
    plain_sql, want = await _run(store, plain, zone)
    assert '"%bits"' in sql, sql
    assert '"%bits"' not in plain_sql, plain_sql
    assert got.rows and got.rows == want.rows, (got.rows[:5], want.rows[:5])
    assert got.columns == want.columns
    assert got.types == want.types


async def test_every_project_person_counts_once(store):
    sql, result = await _run(
        store, "select event, uniq(person_id) from events group by event", "UTC"
    )
    assert '"$person_index"' in sql
    direct = store._conn.execute(
        "SELECT count(DISTINCT coalesce(p.person_id, e.person_id)) FROM events e"
        " LEFT JOIN person_distinct_ids p ON p.project_id = 1 AND p.distinct_id = e.distinct_id"
        " WHERE e.project_id = 1 AND e.event = '$pageview'"
    ).fetchall()[0][0]
    assert dict(map(tuple, result.rows))["$pageview"] == direct > 64


PLAIN = [
    "select toStartOfDay(timestamp) as d, uniq(person_id) from events where d > '2026-10-04'"
    " group by d",
    "select event, uniq(person_id), uniq(toStartOfDay(timestamp)) from events group by event",
    "select event, uniq(toStartOfDay(timestamp + interval 1 hour)) from events group by event",
    "select event, uniq(toStartOfHour(timestamp)) from events group by event",
    "select event, uniq(person_id), count() from events group by event",
    "select event, uniqIf(person_id, event = 'x') from events group by event",
    "select event, uniq(distinct_id) from events group by event",
    "select uniq(person_id) from events",
    "select event, uniq(person_id) from events group by event having uniq(person_id) > 1",
    "select event, uniq(person_id), any(person.properties.x) from events group by event",
    "select e.event, uniq(e.person_id) from events e join events f on e.uuid = f.uuid"
    " group by e.event",
    "select concat(event, '!'), uniq(person_id) from events group by event",
    "select event, uniq(person_id) from events group by event order by count()",
    "select event, uniq(person_id) over (partition by event) from events",
    "select distinct event, uniq(person_id) from events group by event",
    "select event, uniq(person_id) from events group by event limit 1 by event",
    "select d, uniq(person_id) from (select event as d, person_id from events) group by d",
]


@pytest.mark.parametrize("query", PLAIN)
async def test_other_shapes_stay_plain(store, query):
    sql, result = await _run(store, query, "UTC")
    assert '"%bits"' not in sql, sql
    assert result.rows
