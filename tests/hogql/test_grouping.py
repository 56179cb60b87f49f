"""A FROM subquery grouped by the events' distinct id whose id column nobody reads groups by
the stored distinct id hash (issue #16, gateway/hogql/grouping.py): the same rows as the plain
grouping, for merged and buffered rows; and every shape where the id is read stays plain."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid

import pytest

from gateway.hogql import translate
from tests.hogql.conftest import merged_and_buffered

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
HASHED = 'GROUP BY "events"."$distinct_id_hash"'
# grouped by the hash: directly, or as the key of the bitmap form (gateway/hogql/bitmaps.py)
_GROUPED_BY_HASH = re.compile(
    r'GROUP BY ("[^"]+"\.[^,)]*, )*"[^"]+"\."\$distinct_id_hash"|"\$distinct_id_hash" AS "%key'
)


def _events(count, *, start=0, ids=23):
    return [
        {
            "uuid": str(uuid.uuid4()),
            "event": ["$pageview", "signed_up", "$autocapture"][i % 3],
            "distinct_id": f"u{i % ids}" if i % 2 else f"user-{i % ids}-żółw-{'x' * (i % ids)}",
            "properties": json.dumps({"$os": ["Linux", "iOS", None][i % 5 % 3]}),
            "timestamp": T0 + dt.timedelta(hours=(i * 7) % 500),
        }
        for i in range(start, start + count)
    ]


@pytest.fixture(scope="module")
def store():
    """Project 1's rows partly merged and partly buffered, with the same distinct ids on both
    sides; project 2's (other ids) buffered."""
    store = merged_and_buffered(_events)
    yield store
    store.close()


async def _rows(store, query):
    translation = translate(query, project_id=1, materialized=store.materialized)
    result = await store.run(translation)
    return translation.sql, result


# (query, its plain twin): the twin groups by an expression of the id, which is never hashed
SAME = [
    (
        "select days, count() from (select distinct_id, uniq(toStartOfDay(timestamp)) as days"
        " from events group by distinct_id) group by days order by days",
        "select days, count() from (select concat(distinct_id, '') as i,"
        " uniq(toStartOfDay(timestamp)) as days from events group by i) group by days"
        " order by days",
    ),
    (
        "select count(), sum(c) from (select distinct_id as u, count() as c from events"
        " group by u)",
        "select count(), sum(c) from (select concat(distinct_id, '') as u, count() as c"
        " from events group by u)",
    ),
    (
        "select count() from (select distinct_id from events where event = 'signed_up'"
        " group by distinct_id)",
        "select count() from (select concat(distinct_id, '') from events"
        " where event = 'signed_up' group by concat(distinct_id, ''))",
    ),
    (
        "select n, count() from (select events.distinct_id, event, count() as n,"
        " min(distinct_id) as m from events group by event, distinct_id"
        " having length(min(distinct_id)) > 3 order by count() desc) group by n order by n",
        "select n, count() from (select concat(events.distinct_id, '') as i, event,"
        " count() as n, min(distinct_id) as m from events group by event, i"
        " having length(min(distinct_id)) > 3 order by count() desc) group by n order by n",
    ),
    (
        # max, not any: any picks whichever row a plan reads first (the two plans differ)
        "select os, count() from (select e.distinct_id, max(properties.$os) as os from events e"
        " group by e.distinct_id) group by os order by os",
        "select os, count() from (select concat(e.distinct_id, '') as i, max(properties.$os)"
        " as os from events e group by i) group by os order by os",
    ),
]


@pytest.mark.parametrize(("query", "plain"), SAME)
async def test_grouping_by_the_hash_gives_the_plain_rows(store, query, plain):
    sql, got = await _rows(store, query)
    plain_sql, want = await _rows(store, plain)
    assert _GROUPED_BY_HASH.search(sql), sql
    assert not _GROUPED_BY_HASH.search(plain_sql), plain_sql
    assert got.rows and got.rows == want.rows, (query, got.rows, want.rows)
    assert got.types == want.types


async def test_the_stickiness_counts_every_merged_and_buffered_id_once(store):
    sql, result = await _rows(
        store,
        "select sum(c) from (select distinct_id, count() as c from events group by distinct_id)"
        " union all select count() from (select distinct_id from events group by distinct_id)",
    )
    assert HASHED in sql
    assert sorted(result.rows) == [[23 * 2], [700]]  # both id spellings; every project-1 event


PLAIN = [
    # the enclosing query reads the id (by name, by alias, by *)
    "select distinct_id, days from (select distinct_id, uniq(toStartOfDay(timestamp)) as days"
    " from events group by distinct_id)",
    "select u from (select distinct_id as u, count() from events group by u)",
    "select * from (select distinct_id, count() from events group by distinct_id)",
    "select s.* from (select distinct_id, count() from events group by distinct_id) s",
    "select e.event from events e join (select distinct_id, count() as c from events"
    " group by distinct_id) f on f.distinct_id = e.distinct_id",
    # the subquery reads it after grouping, outside an aggregate
    "select count() from (select distinct_id, count() from events group by distinct_id"
    " order by distinct_id limit 3)",
    "select count() from (select concat(distinct_id, '!') as x from events group by distinct_id)",
    "select count() from (select distinct_id, count() from events group by distinct_id"
    " having distinct_id != 'u1')",
    "select count() from (select distinct_id as u, count() from events group by u"
    " order by u limit 2)",
    "select count() from (select row_number() over (partition by distinct_id) as r"
    " from events group by distinct_id)",
    "select count() from (select distinct_id, count() from events group by distinct_id"
    " limit 1 by distinct_id)",
    "select count() from (select distinct distinct_id, count() from events group by distinct_id)",
    # a blanked column named by its alias before grouping or inside an aggregate
    "select count() from (select distinct_id as u, count() from events where u != 'u1' group by u)",
    "select count() from (select distinct_id as u, count(u) as c from events group by distinct_id)",
    # not a FROM subquery: a CTE, the top level, a set member, IN
    "with s as (select distinct_id, count() as c from events group by distinct_id)"
    " select count() from s",
    "select distinct_id, count() from events group by distinct_id",
    "select count() from (select distinct_id from events group by distinct_id union all"
    " select distinct_id from events group by distinct_id)",
    "select count() from events where distinct_id in (select distinct_id from events"
    " group by distinct_id)",
    # not the stored events' distinct id
    "select count() from (select distinct_id, count() from (select event as distinct_id"
    " from events) group by distinct_id)",
    "select count() from (select event, count() from events group by event)",
    "select m, count() from (select distinct_id, max(m) as m from (select distinct_id,"
    " toStartOfWeek(timestamp) as m from events) group by distinct_id) group by m",
]


@pytest.mark.parametrize("query", PLAIN)
async def test_grouping_stays_plain_where_the_id_is_read(store, query):
    try:
        translation = translate(query, project_id=1, materialized=store.materialized)
    except Exception as error:  # a shape the resolver refuses is plain too
        pytest.skip(f"refused: {error}")
    assert not _GROUPED_BY_HASH.search(translation.sql), translation.sql
    result = await store.run(translation)
    assert result.rows
