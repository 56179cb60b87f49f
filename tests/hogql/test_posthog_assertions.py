"""PostHog's own HogQL test assertions (posthog/hogql/test/test_query.py, the schema tests),
restated as facts over the same data and asserted on our rows.

Each case is the query PostHog's test runs and the rows it expects, in this gateway's JSON
rendering (datetimes ISO with `Z`, tuples as lists, UUIDs as text). The data mirrors what
PostHog's tests create (`_create_person`/`_create_event` under a frozen clock); every scenario
lives in its own project so that counts stay those of PostHog's tests. Constant expressions and
functions are in `test_posthog_functions.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.analytics.store import AnalyticsStore
from gateway.hogql import HogQLQueryError, translate

# PostHog's test persons get this id (`_create_person` in its test base)
PERSON = "00000000-0000-4000-8000-000000000000"
DAY = dt.datetime(2020, 1, 10, tzinfo=dt.UTC)
RANDOM, JOINS, WINDOWS, ARRAYS, SESSIONS = 1, 2, 3, 4, 5
MARKER = "RANDOM_TEST_ID::x"


def _event(
    event: str, distinct_id: str, properties: dict[str, Any], at: dt.datetime
) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "event": event,
        "distinct_id": distinct_id,
        "properties": json.dumps(properties),
        "timestamp": at,
    }


def _person(person_id: str, distinct_ids: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": person_id,
        "distinct_ids": distinct_ids,
        "created_at": DAY,
        "is_identified": True,
        "properties": json.dumps(properties),
    }


def _random_events(store: AnalyticsStore) -> None:
    """`_create_random_events`: one person `bla`, two events; the null-properties event and a
    session of two events ten minutes apart (test_events_sessions_table)."""
    store.insert_persons(
        RANDOM,
        [_person(PERSON, ["bla"], {"sneaky_mail": "tim@posthog.com", "random_uuid": MARKER})],
    )
    props = {"random_prop": "don't include", "random_uuid": MARKER}
    store.insert_events(
        RANDOM,
        [
            _event("random event", "bla", {**props, "index": 0}, DAY),
            _event("random event", "bla", {**props, "index": 1}, DAY),
            _event(
                "empty event",
                "bla",
                {"empty_string": "", "null": None, "str_zero": "0", "num_zero": 0},
                DAY,
            ),
            _event("random event", MARKER, {"$session_id": "s-1"}, DAY.replace(hour=12, minute=10)),
            _event("random event", MARKER, {"$session_id": "s-1"}, DAY.replace(hour=12, minute=20)),
        ],
    )


def _joins(store: AnalyticsStore) -> None:
    store.insert_persons(JOINS, [_person(PERSON, ["person1"], {"email": "test@posthog.com"})])
    store.insert_events(
        JOINS,
        [
            _event("pageview", "person1", {"$browser": "Chrome"}, DAY),
            _event("click", "person1", {"$browser": "Firefox"}, DAY),
        ],
    )


def _windows(store: AnalyticsStore) -> None:
    """test_window_functions_*: five persons, three events each, ten minutes apart."""
    events = []
    for n in range(5):
        distinct_id = f"person_{n}_{MARKER}"
        store.insert_persons(
            WINDOWS, [_person(str(uuid.uuid4()), [distinct_id], {"name": f"P{n}"})]
        )
        for i, name in enumerate(("random event", "random bla", "random boo")):
            at = DAY + dt.timedelta(minutes=10 * i)
            events.append(_event(name, distinct_id, {"character": "Luigi"}, at))
    store.insert_events(WINDOWS, events)


def _arrays(store: AnalyticsStore) -> None:
    value = MARKER
    properties = {
        "string": value,
        "array_str": [value],
        "obj_array": {"id": [value]},
        "array_array_str": [[value]],
        "array_obj": [{"id": value}],
        "array_obj_array": [{"id": [value]}],
        "array_obj_array_obj": [{"id": [{"id": value}]}],
    }
    store.insert_events(ARRAYS, [_event("big event", "P", properties, DAY)])


def _sessions(store: AnalyticsStore) -> None:
    """test_sessions_v1: bounce rate's six sessions, and one session with a pathname."""

    def pageview(event: str, distinct_id: str, session: str, url: str, at: str) -> dict[str, Any]:
        stamp = dt.datetime.fromisoformat(at).replace(tzinfo=dt.UTC)
        return _event(event, distinct_id, {"$session_id": session, "$current_url": url}, stamp)

    store.insert_events(
        SESSIONS,
        [
            pageview("$pageview", "d1", "s1a", "https://example.com/1", "2023-12-02"),
            pageview("$pageview", "d1", "s1a", "https://example.com/2", "2023-12-03"),
            pageview("$pageview", "d1", "s1b", "https://example.com/3", "2023-12-12"),
            pageview("$pageview", "d2", "s2", "https://example.com/4", "2023-12-11"),
            pageview("$pageview", "d3", "s3", "https://example.com/5", "2023-12-11"),
            pageview("$autocapture", "d3", "s3", "https://example.com/5", "2023-12-11"),
            pageview("$pageview", "d4", "s4", "https://example.com/6", "2023-12-11T12:00:00"),
            pageview("$pageleave", "d4", "s4", "https://example.com/6", "2023-12-11T12:00:01"),
            pageview("$pageview", "d5", "s5", "https://example.com/7", "2023-12-11T12:00:00"),
            pageview("$pageleave", "d5", "s5", "https://example.com/7", "2023-12-11T12:00:11"),
        ],
    )


@pytest.fixture(scope="module")
def store() -> Iterator[AnalyticsStore]:
    store = AnalyticsStore(None, timeout_s=5)
    for scenario in (_random_events, _joins, _windows, _arrays, _sessions):
        scenario(store)
    yield store
    store.close()


def _run(store: AnalyticsStore, query: str, project: int) -> list[list[Any]]:
    translation = translate(query, project_id=project, values={}, materialized=store.materialized)
    return asyncio.run(store.run(translation)).rows


def _window_rows(extended: bool) -> list[list[Any]]:
    """PostHog's expected rows: an empty frame gives [] for groupArray and '' (the type's
    default) for first_value/last_value."""
    rows: list[list[Any]] = []
    for n in range(5):
        d = f"person_{n}_{MARKER}"
        plain = [
            [d, "2020-01-10T00:00:00Z", "random event", [], ["random bla", "random boo"]],
            [d, "2020-01-10T00:10:00Z", "random bla", ["random event"], ["random boo"]],
            [d, "2020-01-10T00:20:00Z", "random boo", ["random event", "random bla"], []],
        ]
        more = [
            [1, 1, "", "", "random bla", "random boo", 1, 1],
            [2, 2, "random event", "random event", "random boo", "random boo", 2, 2],
            [3, 3, "random event", "random bla", "", "", 3, 3],
        ]
        rows += [p + m for p, m in zip(plain, more, strict=True)] if extended else plain
    return rows


_WINDOW_FRAME = (
    "from events where timestamp > toDateTime('2020-01-09 00:00:00')"
    f" and distinct_id like '%_{MARKER}'"
)
_W1 = "PARTITION BY distinct_id ORDER BY timestamp ASC ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING"
_W2 = "PARTITION BY distinct_id ORDER BY timestamp ASC ROWS BETWEEN 1 FOLLOWING AND 2 FOLLOWING"
_PIVOT_INNER = (
    "SELECT properties.index as col_a, event as col_b, count() as col_c FROM events"
    " WHERE event = 'random event' AND properties.index IS NOT NULL"
    " GROUP BY properties.index, event"
)
_PROPERTY_PATHS = (
    "properties.string",
    "properties.array_str.1",
    "properties.array_str[1]",
    "properties.obj_array.id.1",
    "properties.obj_array.id[1]",
    "properties.array_array_str.1.1",
    "properties.array_array_str[1][1]",
    "properties.array_obj_array.1.id.1",
    "properties.array_obj_array[1]['id'][1]",
    "properties.array_obj_array_obj.1.id.1.id",
    "properties.array_obj_array_obj[1].id[1].id",
    "properties.array_obj_array_obj[1]['id'][1]['id']",
    "properties.array_obj.1.id",
    "properties.array_obj[1].id",
)

CASES: list[tuple[str, int, str, list[list[Any]]]] = [
    # test_query / test_subquery / test_subquery_alias
    (
        "query",
        RANDOM,
        f"select count(), event from events where properties.random_uuid = '{MARKER}' group by event",
        [[2, "random event"]],
    ),
    (
        "subquery",
        RANDOM,
        "select cnt, event from (select count() as cnt, event from events"
        f" where properties.random_uuid = '{MARKER}' group by event) group by cnt, event",
        [[2, "random event"]],
    ),
    (
        "subquery_alias",
        RANDOM,
        "select cnt, event from (select count(*) as cnt, event from events"
        f" where properties.random_uuid = '{MARKER}' group by event) as c group by cnt, event",
        [[2, "random event"]],
    ),
    (
        "query_distinct",
        RANDOM,
        f"select distinct properties.sneaky_mail from persons where properties.random_uuid = '{MARKER}'",
        [["tim@posthog.com"]],
    ),
    (
        "joins_simple",
        RANDOM,
        "SELECT event, pdi.distinct_id, p.properties.sneaky_mail FROM events e"
        " LEFT JOIN person_distinct_ids pdi ON pdi.distinct_id = e.distinct_id"
        " LEFT JOIN persons p ON p.id = pdi.person_id WHERE event = 'random event'"
        " AND e.distinct_id = 'bla' LIMIT 1",
        [["random event", "bla", "tim@posthog.com"]],
    ),
    (
        "joins_events_pdi",
        RANDOM,
        "SELECT event, pdi.distinct_id, pdi.person_id FROM events WHERE distinct_id = 'bla' LIMIT 1",
        [["random event", "bla", PERSON]],
    ),
    (
        "joins_events_e_pdi",
        RANDOM,
        "SELECT event, e.pdi.distinct_id, pdi.person_id FROM events e"
        " WHERE distinct_id = 'bla' LIMIT 1",
        [["random event", "bla", PERSON]],
    ),
    (
        "joins_pdi_persons",
        RANDOM,
        "SELECT pdi.distinct_id, pdi.person.created_at FROM person_distinct_ids pdi LIMIT 10",
        [["bla", "2020-01-10T00:00:00Z"]],
    ),
    (
        "joins_pdi_person_properties",
        RANDOM,
        "SELECT pdi.distinct_id, pdi.person.properties.sneaky_mail FROM person_distinct_ids pdi LIMIT 10",
        [["bla", "tim@posthog.com"]],
    ),
    (
        "joins_events_first_to_persons",
        JOINS,
        "SELECT events.event, persons.properties.email FROM events"
        " JOIN persons ON events.person_id = persons.id WHERE events.event = 'pageview'",
        [["pageview", "test@posthog.com"]],
    ),
    (
        "joins_lazy_on_both_sides",
        JOINS,
        "SELECT e1.event, e2.event FROM events e1 JOIN events e2 ON e1.person_id = e2.person_id"
        " WHERE e1.event = 'pageview' AND e2.event = 'click'",
        [["pageview", "click"]],
    ),
    (
        "joins_persons_to_events",
        JOINS,
        "SELECT count() FROM (SELECT persons.id, events.event FROM persons"
        " JOIN events ON persons.id = events.person_id WHERE events.event = 'pageview' LIMIT 10)",
        [[1]],
    ),
    (
        "joins_events_pdi_person",
        RANDOM,
        "SELECT event, pdi.distinct_id, pdi.person.id FROM events WHERE distinct_id = 'bla' LIMIT 1",
        [["random event", "bla", PERSON]],
    ),
    (
        "joins_events_pdi_person_properties",
        RANDOM,
        "SELECT event, pdi.distinct_id, pdi.person.properties.sneaky_mail FROM events"
        " WHERE distinct_id = 'bla' LIMIT 1",
        [["random event", "bla", "tim@posthog.com"]],
    ),
    (
        "joins_events_pdi_e_person_properties",
        RANDOM,
        "SELECT event, pdi.distinct_id, e.pdi.person.properties.sneaky_mail FROM events e"
        " WHERE distinct_id = 'bla' LIMIT 1",
        [["random event", "bla", "tim@posthog.com"]],
    ),
    (
        "joins_events_person_properties",
        RANDOM,
        "SELECT event, e.pdi.person.properties.sneaky_mail FROM events e"
        " WHERE distinct_id = 'bla' LIMIT 1",
        [["random event", "tim@posthog.com"]],
    ),
    (
        "joins_events_person_properties_in_aggregation",
        RANDOM,
        "SELECT s.pdi.person.properties.sneaky_mail, count() FROM events s"
        " WHERE distinct_id = 'bla' GROUP BY s.pdi.person.properties.sneaky_mail LIMIT 10",
        [["tim@posthog.com", 3]],
    ),
    (
        "select_person_with_joins",
        RANDOM,
        "SELECT event, person.id, person.properties.sneaky_mail FROM events"
        " WHERE distinct_id = 'bla' LIMIT 1",
        [["random event", PERSON, "tim@posthog.com"]],
    ),
    # test_null_properties: "" stays "", JSON null and missing keys are NULL, 0 is "0"
    (
        "null_properties",
        RANDOM,
        "SELECT properties.empty_string, properties.`null`, properties.undefined,"
        " properties.str_zero, properties.num_zero FROM events WHERE events.event = 'empty event'",
        [["", None, None, "0", "0"]],
    ),
    # test_tuple_access and the pivot tables: tuple .1/.2, sumMap, arrayZip
    (
        "tuple_access",
        RANDOM,
        "select col_a, arrayZip((sumMap(g.1, g.2) as x).1, x.2) as r from ("
        f" select col_a, groupArray((col_b, col_c)) as g from ({_PIVOT_INNER}) group by col_a)"
        " group by col_a ORDER BY col_a",
        [["0", [["random event", 1]]], ["1", [["random event", 1]]]],
    ),
    (
        "pivot_table_1_level",
        RANDOM,
        f"WITH PIVOT_TABLE_COL_ABC AS ({_PIVOT_INNER}),"
        " PIVOT_FUNCTION_1 AS (select col_a, groupArray((col_b, col_c)) as g"
        " from PIVOT_TABLE_COL_ABC group by col_a),"
        " PIVOT_FUNCTION_2 AS (select col_a, arrayZip((sumMap(g.1, g.2) as x).1, x.2) as r"
        " from PIVOT_FUNCTION_1 group by col_a)"
        " SELECT * FROM PIVOT_FUNCTION_2 ORDER BY col_a",
        [["0", [["random event", 1]]], ["1", [["random event", 1]]]],
    ),
    # test_window_functions_simple / _with_window
    (
        "window_functions_simple",
        WINDOWS,
        f"select distinct_id, timestamp, event, groupArray(event) OVER ({_W1}) AS two_before,"
        f" groupArray(event) OVER ({_W2}) AS two_after {_WINDOW_FRAME}"
        " order by distinct_id, timestamp",
        _window_rows(extended=False),
    ),
    (
        "window_functions_with_window",
        WINDOWS,
        "select distinct_id, timestamp, event, groupArray(event) OVER w1 AS two_before,"
        " groupArray(event) OVER w2 AS two_after, row_number() OVER w1 AS rn_1,"
        " row_number() OVER w2 AS rn_2, first_value(event) OVER w1 AS first_value_1,"
        " last_value(event) OVER w1 AS last_value_1, first_value(event) OVER w2 AS first_value_2,"
        " last_value(event) OVER w2 AS last_value_2, rank() OVER w1 AS rank_1,"
        f" dense_rank() OVER w2 AS rank_2 {_WINDOW_FRAME}"
        f" window w1 as ({_W1}), w2 as ({_W2}) order by distinct_id, timestamp",
        _window_rows(extended=True),
    ),
    # test_property_access_with_arrays: every path form reaches the same value
    (
        "property_access_with_arrays",
        ARRAYS,
        f"SELECT {', '.join(_PROPERTY_PATHS)} FROM events WHERE properties.string = '{MARKER}'",
        [[MARKER] * len(_PROPERTY_PATHS)],
    ),
    # test_events_sessions_table: a session of two events ten minutes apart
    (
        "events_sessions_table",
        RANDOM,
        "SELECT session.session_id, session.$session_duration from events"
        f" WHERE distinct_id = '{MARKER}' order by timestamp",
        [["s-1", 600], ["s-1", 600]],
    ),
    # test_hogql_groupby_unnecessary_ifnull / unnecessary_ifnull / proper_ifnull: no rows
    (
        "groupby_unnecessary_ifnull",
        RANDOM,
        "select toDate(timestamp) as timestamp, count() as cnt from events"
        " where timestamp >= addDays(today(), -10) group by timestamp having cnt > 10 limit 1",
        [],
    ),
    (
        "unnecessary_ifnull",
        RANDOM,
        "select toDate(timestamp) as timestamp, JSONExtractInt(properties, 'field') as json_int"
        " from events where timestamp >= addDays(today(), -10) and json_int = 17 limit 1",
        [],
    ),
    (
        "proper_ifnull",
        RANDOM,
        "WITH latest_events AS (SELECT distinct_id, argMax(properties.$os_version, timestamp)"
        " AS latest_os_version FROM events WHERE properties.$os = 'iOS'"
        " AND timestamp >= now() - INTERVAL 30 DAY GROUP BY distinct_id),"
        " major_versions AS (SELECT distinct_id, latest_os_version,"
        " splitByChar('.', ifNull(latest_os_version, ''))[1] AS major_version FROM latest_events)"
        " SELECT major_version, count() AS user_count,"
        " round(100 * count() / sum(count()) OVER (), 2) AS percentage FROM major_versions"
        " WHERE major_version IN ('17', '18', '26') GROUP BY major_version ORDER BY major_version",
        [],
    ),
    (
        "clickhouse_timestamp_handling",
        RANDOM,
        "SELECT count(DISTINCT uuid) AS occurrences, max(timestamp) AS last_seen,"
        " reverse(arrayMap(x -> countEqual(groupArray(dateDiff('hour', toStartOfHour(timestamp),"
        " toStartOfHour(now()))), x), range(24))) AS volumeDay FROM events"
        " WHERE and(equals(event, '$exception'), or(and(greater(timestamp,"
        " toDateTime('2025-02-10 23:53:03.175952+02:30')), less(timestamp,"
        " toDateTime('2025-02-11 23:53'))), and(greater(timestamp, toDateTime('2025-02-12 23:53:03')),"
        " less(timestamp, toDateTime('2025-02-13 23:53:03.175952')))))"
        " GROUP BY distinct_id ORDER BY occurrences DESC LIMIT 51 OFFSET 0",
        [],
    ),
    # test_sessions_v1: test_select_star, test_bounce_rate, test_can_use_v1_and_v2_fields
    (
        "sessions_select_star",
        SESSIONS,
        "select count() from (select * from sessions where session_id = 's2')",
        [[1]],
    ),
    (
        "sessions_bounce_rate",
        SESSIONS,
        "select $is_bounce, session_id from sessions ORDER BY session_id",
        [[0, "s1a"], [1, "s1b"], [1, "s2"], [0, "s3"], [1, "s4"], [0, "s5"]],
    ),
    (
        "sessions_v1_and_v2_fields",
        SESSIONS,
        "select $session_duration, duration, $end_current_url, $exit_current_url"
        " from sessions where session_id = 's2'",
        [[0, 0, "https://example.com/4", "https://example.com/4"]],
    ),
]


# where we differ from PostHog's assertion on purpose or not yet (docs/hogql.md); strict
KNOWN: dict[str, str] = {
    "tuple_access": "sumMap (aggregates over maps) is not implemented yet",
    "pivot_table_1_level": "sumMap (aggregates over maps) is not implemented yet",
    "window_functions_with_window": "first_value/last_value of an empty frame are NULL, not ''",
}


def _cases() -> list[Any]:
    return [
        pytest.param(
            project,
            query,
            expected,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN[name])] if name in KNOWN else [],
        )
        for name, project, query, expected in CASES
    ]


@pytest.mark.parametrize(("project", "query", "expected"), _cases())
def test_posthog_rows(
    store: AnalyticsStore, project: int, query: str, expected: list[list[Any]]
) -> None:
    assert _run(store, query, project) == expected


ERRORS: list[tuple[str, str, str]] = [
    # test_property_access_with_arrays_zero_index_error
    (
        "zero_index",
        "SELECT properties.something[0] FROM events",
        "SQL indexes start from one, not from zero. E.g: array[1]",
    ),
    (
        "zero_tuple_index",
        "SELECT properties.something.0 FROM events",
        "SQL indexes start from one, not from zero. E.g: array.1",
    ),
    # test_numbers_table
    ("numbers_bare", "SELECT number from numbers", "Table function 'numbers' requires arguments"),
    (
        "numbers_none",
        "SELECT number from numbers()",
        "Table function 'numbers' requires at least 1 argument",
    ),
    (
        "numbers_three",
        "SELECT number from numbers(1,2,3)",
        "Table function 'numbers' requires at most 2 arguments",
    ),
    # test_events_table_error_if_function
    (
        "events_with_arguments",
        "SELECT * from events(1, 4)",
        "Table 'events' does not accept arguments",
    ),
]


@pytest.mark.parametrize(("query", "message"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_posthog_errors(store: AnalyticsStore, query: str, message: str) -> None:
    with pytest.raises(HogQLQueryError) as raised:
        _run(store, query, RANDOM)
    assert str(raised.value) == message
