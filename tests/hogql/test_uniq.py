"""`uniq(distinct_id)` counts the distinct id hashes the events layout stores (issue #16,
gateway/hogql/uniq.py): the same answers as the exact count, for merged and buffered rows, in
joins, under -If; the stored hashes follow the DuckDB that reads them."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import duckdb
import pytest

from gateway.analytics.store import AnalyticsStore
from gateway.hogql import translate
from tests.hogql.conftest import merged_and_buffered

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)


def _events(count, *, start=0, ids=23):
    return [
        {
            "uuid": str(uuid.uuid4()),
            "event": ["$pageview", "signed_up", "$autocapture"][i % 3],
            # short (inlined) and long distinct ids, unicode, and ids that differ by one byte
            "distinct_id": f"u{i % ids}" if i % 2 else f"user-{i % ids}-żółw-{'x' * (i % ids)}",
            "properties": json.dumps({"$os": ["Linux", "iOS", None][i % 3]}),
            "timestamp": T0 + dt.timedelta(hours=i % 200),
        }
        for i in range(start, start + count)
    ]


@pytest.fixture
def store():
    """Project 1's rows partly merged into the clustered table and partly buffered, with the
    same distinct ids on both sides; project 2's (other ids) buffered."""
    store = merged_and_buffered(_events)
    yield store
    store.close()


# (query, pairs of result columns that must be equal: a uniq and its exact twin)
QUERIES = [
    (
        "select uniq(distinct_id), uniqExact(distinct_id), count(distinct distinct_id),"
        " uniqHLL12(distinct_id), uniqTheta(distinct_id) from events",
        [(0, 1), (0, 2), (0, 3), (0, 4)],
    ),
    (
        "select event, uniq(distinct_id), uniqExact(distinct_id) from events group by event",
        [(1, 2)],
    ),
    (
        "select properties.$os, uniq(distinct_id), uniqExact(distinct_id) from events"
        " group by properties.$os",
        [(1, 2)],
    ),
    (
        "select toStartOfDay(timestamp) as d, uniq(distinct_id), uniqExact(distinct_id)"
        " from events group by d",
        [(1, 2)],
    ),
    (
        "select uniqIf(distinct_id, event = 'signed_up'),"
        " uniqExactIf(distinct_id, event = 'signed_up') from events",
        [(0, 1)],
    ),
    # a join: the right side's NULL-extended rows are not counted, as the exact count skips NULL
    (
        "select uniq(b.distinct_id), uniqExact(b.distinct_id), uniq(a.distinct_id),"
        " uniqExact(a.distinct_id) from events a left join events b on a.distinct_id ="
        " b.distinct_id and b.event = 'signed_up' and b.distinct_id like 'u1%'",
        [(0, 1), (2, 3)],
    ),
    (
        "select uniq(e.distinct_id), uniqExact(e.distinct_id) from events e"
        " join (select distinct_id, min(timestamp) as f from events group by distinct_id) f"
        " on f.distinct_id = e.distinct_id",
        [(0, 1)],
    ),
]


@pytest.mark.parametrize(("query", "pairs"), QUERIES)
async def test_uniq_of_distinct_id_is_the_exact_count(store, query, pairs):
    translation = translate(query, project_id=1, materialized=store.materialized)
    assert "$distinct_id_hash" in translation.sql
    result = await store.run(translation)
    assert result.rows
    for row in result.rows:
        assert all(row[a] == row[b] for a, b in pairs), (query, row)
    direct = store._conn.execute(
        "SELECT count(DISTINCT distinct_id) FROM events WHERE project_id = 1"
    ).fetchall()[0][0]
    if query == QUERIES[0][0]:
        assert result.rows[0][0] == direct == 23 * 2  # the merged and buffered ids, once each


def test_uniq_reads_the_stored_hash_only_for_the_events_distinct_id():
    def sql(query):
        return translate(query, project_id=1).sql

    assert 'count(DISTINCT "events"."$distinct_id_hash")' in sql(
        "select uniq(distinct_id) from events"
    )
    assert 'count(DISTINCT "e"."$distinct_id_hash") FILTER' in sql(
        "select uniqIf(e.distinct_id, e.event = 'x') from events e"
    )
    # exact aggregates, other columns, and a subquery's column named distinct_id: as written
    for query in (
        "select uniqExact(distinct_id), count(distinct distinct_id) from events",
        "select uniq(person_id), uniq(properties.$os) from events",
        "select uniq(distinct_id) from (select distinct_id from events)",
        "select uniq(e.distinct_id) from (select event as distinct_id from events) e",
        "select uniq(distinct_id) from sessions",
        "select uniq(distinct_id) over () from events",
    ):
        assert "$distinct_id_hash" not in sql(query).split(" FROM ")[0], query


async def test_a_subquery_named_like_the_table_is_not_read_for_hashes(store):
    # `events` names both the stored table (inside) and a subquery (outside): no stored hash
    query = "select uniq(events.distinct_id) from (select event as distinct_id from events) events"
    result = await store.run(translate(query, project_id=1, materialized=store.materialized))
    assert result.rows == [[3]]


def _stored_hashes_ok(conn):
    return conn.execute(
        'SELECT bool_and("$distinct_id_hash" = hash(distinct_id)), count(*) FROM events_main'
    ).fetchall()[0]


def test_the_stored_hash_is_refilled_when_it_is_missing_or_stale(tmp_path):
    path = tmp_path / "analytics.duckdb"
    store = AnalyticsStore(path)
    store.insert_events(1, _events(500))
    store.close()  # merged
    # as if another DuckDB (another hash()) had filled the column
    raw = duckdb.connect(str(path))
    raw.execute('UPDATE events_main SET "$distinct_id_hash" = 42')
    raw.execute("UPDATE events_layout SET hash_probe = 1")
    raw.close()
    reopened = AnalyticsStore(path)
    assert _stored_hashes_ok(reopened._conn) == (True, 500)
    reopened.close()
    # a file from before the column: added and filled at open
    raw = duckdb.connect(str(path))
    raw.execute("DROP VIEW events")
    raw.execute('ALTER TABLE events_main DROP COLUMN "$distinct_id_hash"')
    raw.execute("ALTER TABLE events_layout DROP COLUMN hash_probe")
    raw.close()
    reopened = AnalyticsStore(path)
    assert _stored_hashes_ok(reopened._conn) == (True, 500)
    reopened.close()


def test_merges_keep_each_column_whatever_order_columns_were_added_in(tmp_path):
    path = tmp_path / "analytics.duckdb"
    AnalyticsStore(path, materialized=["$browser", "$os"]).close()
    store = AnalyticsStore(path, materialized=["$os", "$browser", "plan"])  # reordered, one more
    store.insert_events(
        1,
        [
            {
                "uuid": str(uuid.uuid4()),
                "event": "e",
                "distinct_id": "d",
                "properties": json.dumps({"$browser": "Chrome", "$os": "Linux", "plan": "pro"}),
                "timestamp": T0,
            }
        ],
    )
    store.layout.merge()
    row = store._conn.execute(
        'SELECT "mat_$browser", "mat_$os", "mat_plan", "$distinct_id_hash" = hash(\'d\')'
        " FROM events_main"
    ).fetchall()
    assert row == [("Chrome", "Linux", "pro", True)]
    store.layout.recluster()
    assert store._conn.execute('SELECT "mat_$os" FROM events').fetchall() == [("Linux",)]
    store.close()
