"""The isolation boundary (gateway/hogql/tables.py): every table subquery is filtered on the
caller's project, for every table and every combination of lazy joins, and no query shape
reads another project's rows."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import uuid

import pytest

from gateway.analytics.store import AnalyticsStore
from gateway.hogql import translate
from gateway.hogql.binding import ValueSink
from gateway.hogql.schema import TABLES
from gateway.hogql.tables import ProjectTables

_FROM = re.compile(r'FROM (?:"(\w+)"|(events)\b)')
_FILTER = re.compile(r"project_id = \$(\d+)")
T0 = dt.datetime(2026, 1, 5, 12, tzinfo=dt.UTC)


def _lazy_sets(name):
    joins = sorted(TABLES[name].lazy)
    for size in range(len(joins) + 1):
        yield from (set(c) for c in itertools.combinations(joins, size))


CASES = [
    (name, lazy, zone)
    for name in sorted(TABLES)
    for lazy in _lazy_sets(name)
    for zone in ("UTC", "Asia/Tokyo")
]


@pytest.mark.parametrize(
    ("name", "lazy", "zone"), CASES, ids=[f"{n}-{'+'.join(sorted(j))}-{z}" for n, j, z in CASES]
)
def test_every_table_reference_is_filtered_on_the_project(name, lazy, zone):
    sink = ValueSink()
    sink.add(99)  # another number bound first: the filter must use the project's own parameter
    table = TABLES[name]
    used = set(table.columns) | {f"session.{c}" for c in TABLES["sessions"].columns}
    sql = ProjectTables(sink, project_id=7, timezone=zone).table(table, lazy, used)
    reads = _FROM.findall(sql)
    filters = [int(n) for n in _FILTER.findall(sql)]
    assert reads, sql
    assert len(filters) == len(reads), sql  # one filter per stored table read
    assert all(sink.values[n - 1] == 7 for n in filters), (sql, sink.values)


def _event(event, distinct_id, **properties):
    return {
        "uuid": str(uuid.uuid4()),
        "event": event,
        "distinct_id": distinct_id,
        "properties": json.dumps(properties),
        "timestamp": T0,
    }


@pytest.fixture
def two_projects():
    store = AnalyticsStore(None, timeout_s=5)
    for project, who in ((1, "alice"), (2, "mallory")):
        person = uuid.uuid5(uuid.NAMESPACE_DNS, who)
        props = {"$session_id": f"s-{who}", "$group_0": f"g-{who}", "$current_url": "https://x/"}
        store.insert_events(project, [_event("$pageview", who, **props)])
        store.insert_persons(
            project,
            [
                {
                    "id": person,
                    "created_at": T0,
                    "properties": json.dumps({"name": who}),
                    "is_identified": True,
                    "distinct_ids": [who, "shared"],
                }
            ],
        )
        store.insert_groups(
            project,
            [
                {
                    "index": 0,
                    "key": f"g-{who}",
                    "created_at": T0,
                    "updated_at": T0,
                    "properties": json.dumps({"name": who}),
                }
            ],
        )
    yield store
    store.close()


QUERIES = [
    "select distinct_id from events",
    "select person.properties.name from events",
    "select pdi.distinct_id, person_id from events",
    "select session.$session_duration, session.distinct_id from events",
    "select group_0.properties.name from events",
    "select toString(id), properties.name from persons",
    "select distinct_id, toString(person_id) from person_distinct_ids",
    "select person.properties.name from person_distinct_ids",
    "select key, properties.name from groups",
    "select distinct_id, $entry_current_url from sessions",
    "select distinct_id from (select distinct_id from events) t",
    "with e as (select distinct_id from events) select distinct_id from e",
    "select distinct_id from events union all select distinct_id from person_distinct_ids",
    "select e.distinct_id from events e join person_distinct_ids p on p.distinct_id = e.distinct_id",
    "select distinct_id from events where distinct_id in (select distinct_id from events)",
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin"])
async def test_no_query_reads_another_projects_rows(two_projects, query, zone):
    result = await two_projects.run(translate(query, project_id=1, timezone=zone))
    assert result.rows, query  # project 1's own rows are there
    assert "mallory" not in json.dumps(result.rows, default=str), result.rows
