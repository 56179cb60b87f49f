"""Lazy joins (`person_id`, `pdi.*`, `person.*`, `session.*`), `persons`,
`person_distinct_ids` and `sessions`, run on DuckDB: rows, per project."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from gateway.analytics.store import AnalyticsStore
from gateway.hogql import HogQLQueryError, translate

T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
ALICE = str(uuid.UUID(int=1))
BOB = str(uuid.UUID(int=2))
MALLORY = str(uuid.UUID(int=3))


def _event(event, distinct_id, minutes, **properties):
    return {
        "uuid": str(uuid.uuid4()),
        "event": event,
        "distinct_id": distinct_id,
        "properties": json.dumps(properties),
        "timestamp": T0 + dt.timedelta(minutes=minutes),
    }


def _person(person_id, distinct_ids, **properties):
    return {
        "id": person_id,
        "distinct_ids": distinct_ids,
        "created_at": T0,
        "is_identified": True,
        "properties": json.dumps(properties),
    }


@pytest.fixture
def run():
    store = AnalyticsStore(None, timeout_s=5)
    store.insert_events(
        1,
        [
            _event("$pageview", "anon-1", 0, **{"$session_id": "s1", "$current_url": "/a"}),
            _event("$pageview", "alice", 5, **{"$session_id": "s1", "$current_url": "/b"}),
            _event("$autocapture", "alice", 7, **{"$session_id": "s1"}),
            _event("$pageview", "bob", 60, **{"$session_id": "s2", "$current_url": "/c"}),
            _event("$pageview", "nobody", 90),
        ],
    )
    store.insert_persons(
        1,
        [
            _person(ALICE, ["alice", "anon-1"], email="alice@example.com"),
            _person(BOB, ["bob"], email="bob@example.com"),
        ],
    )
    store.insert_events(2, [_event("$pageview", "mallory", 0, **{"$session_id": "s1"})])
    store.insert_persons(2, [_person(MALLORY, ["mallory", "alice"], email="m@evil.test")])

    async def run(query, project_id=1):
        return await store.run(translate(query, project_id=project_id))

    yield run
    store.close()


async def test_person_id_comes_through_distinct_ids(run):
    result = await run(
        "select distinct_id, person_id, pdi.person_id from events order by timestamp"
    )
    assert result.rows == [
        ["anon-1", ALICE, ALICE],
        ["alice", ALICE, ALICE],
        ["alice", ALICE, ALICE],
        ["bob", BOB, BOB],
        ["nobody", None, None],
    ]
    assert result.types[1] == "UUID"


async def test_person_properties_and_breakdowns(run):
    result = await run(
        "select person.properties.email as email, count() as c, uniq(person_id)"
        " from events group by email order by email"
    )
    # project 2 also maps `alice`, to its own person: never seen from project 1
    assert result.rows == [["alice@example.com", 3, 1], ["bob@example.com", 1, 1], [None, 1, 0]]


async def test_aliases_and_joins_with_persons(run):
    result = await run(
        "select e.event, p.properties.email from events e"
        " join persons p on p.id = e.person_id where e.distinct_id = 'bob'"
    )
    assert result.rows == [["$pageview", "bob@example.com"]]
    result = await run(
        "select distinct_id, person.properties.email from person_distinct_ids order by distinct_id"
    )
    assert result.rows == [
        ["alice", "alice@example.com"],
        ["anon-1", "alice@example.com"],
        ["bob", "bob@example.com"],
    ]


async def test_persons_table_and_star(run):
    result = await run("select id, properties.email, is_identified from persons order by id")
    assert result.rows == [[ALICE, "alice@example.com", True], [BOB, "bob@example.com", True]]
    result = await run("select * from events where distinct_id = 'anon-1'")
    assert result.columns[-1] == "person_id"
    assert result.rows[0][-1] == ALICE


async def test_sessions(run):
    result = await run(
        "select session_id, distinct_id, $session_duration, $entry_current_url,"
        " $end_current_url, $pageview_count, $autocapture_count, $start_timestamp"
        " from sessions order by session_id"
    )
    assert result.rows == [
        ["s1", "anon-1", 420, "/a", "/b", 2, 1, "2026-11-23T10:00:00Z"],
        ["s2", "bob", 0, "/c", "/c", 1, 0, "2026-11-23T11:00:00Z"],
    ]
    result = await run(
        "select event, session.$session_duration, session.$entry_current_url from events"
        " where distinct_id = 'alice' order by timestamp"
    )
    assert result.rows == [["$pageview", 420, "/a"], ["$autocapture", 420, "/a"]]


async def test_other_projects_persons_and_sessions_are_invisible(run):
    result = await run("select person.properties.email, session.$event_count from events", 2)
    assert result.rows == [["m@evil.test", 1]]
    result = await run("select count() from persons", 2)
    assert result.rows == [[1]]
    result = await run("select count() from person_distinct_ids where distinct_id = 'alice'", 2)
    assert result.rows == [[1]]


async def test_lazy_join_errors(run):
    with pytest.raises(HogQLQueryError, match="is a table"):
        await run("select person from events")
    with pytest.raises(HogQLQueryError, match="does not exist on table `persons`"):
        await run("select person.nope from events")
    with pytest.raises(HogQLQueryError, match="team_id is not selectable"):
        await run("select person.team_id from events")


def test_persons_load_again_replaces_and_moves_ids():
    store = AnalyticsStore(None)
    store.insert_persons(1, [_person(ALICE, ["a", "b"], v=1)])
    store.insert_persons(
        1, [_person(ALICE, ["a"], v=2), _person(BOB, ["b"], v=3), _person(BOB, ["b"], v=4)]
    )
    conn = store._conn
    assert conn.execute("select count(*) from persons").fetchone() == (2,)
    assert conn.execute("select properties->>'v' from persons where id = $1", [BOB]).fetchone() == (
        "4",
    ), "a person twice in one batch: the last one, once"
    rows = conn.execute(
        "select distinct_id, person_id::varchar from person_distinct_ids order by 1"
    ).fetchall()
    assert rows == [("a", ALICE), ("b", BOB)]
    store.close()


async def test_pdi_person_is_the_events_person(run):
    result = await run(
        "select distinct_id, pdi.person.properties.email, pdi.person.id = person.id"
        " from events order by timestamp"
    )
    assert result.rows == [
        ["anon-1", "alice@example.com", True],
        ["alice", "alice@example.com", True],
        ["alice", "alice@example.com", True],
        ["bob", "bob@example.com", True],
        ["nobody", None, True],
    ]
