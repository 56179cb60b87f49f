"""Persons and groups built from captured events (PostHog's semantics), read back through
`POST hogql/execute`; sent by the stock `posthog` Python client and by hand-made bodies."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import orjson
from posthog import Posthog


async def _hogql(client, account, query: str) -> list[list[Any]]:
    resp = await client.post(
        account.url("scratchpad/hogql/execute"), json={"query": query}, headers=account.headers
    )
    assert resp.status == 200, await resp.text()
    results: list[list[Any]] = (await resp.json())["results"]
    return results


async def _send(client, account, events: list[dict[str, Any]], **body: Any) -> None:
    resp = await client.post(
        "/batch/", json={"api_key": account.project.api_token, "batch": events, **body}
    )
    assert resp.status == 200, await resp.text()


def _sdk(host: str, token: str) -> None:
    posthog = Posthog(token, host=host, sync_mode=True, max_retries=0, disable_geoip=True)
    posthog.capture("$pageview", distinct_id="anon-1", properties={"$browser": "Firefox"})
    # what posthog-js's identify() sends; the Python client has no identify()
    posthog.capture(
        "$identify",
        distinct_id="user@example.com",
        properties={"$anon_distinct_id": "anon-1", "$set": {"email": "user@example.com"}},
    )
    posthog.set(distinct_id="user@example.com", properties={"plan": "pro"})
    posthog.set_once(distinct_id="user@example.com", properties={"plan": "free", "first": "a"})
    posthog.alias(previous_id="user@example.com", distinct_id="backend-42")
    posthog.group_identify("company", "acme", {"name": "Acme Inc.", "employees": 11})
    posthog.capture("paid", distinct_id="backend-42", groups={"company": "acme"})
    posthog.shutdown()


async def test_python_client_identify_set_alias_group(client, jane):
    host = str(client.make_url("")).rstrip("/")
    await asyncio.to_thread(_sdk, host, jane.project.api_token)
    rows = await _hogql(
        client,
        jane,
        "select event, distinct_id, person.properties.email, person.properties.plan,"
        " person.properties.first, person.is_identified from events order by timestamp",
    )
    by_event = {r[0]: r[1:] for r in rows}
    # the anonymous pageview now belongs to the identified person
    assert by_event["$pageview"] == ["anon-1", "user@example.com", "pro", "a", True]
    assert by_event["paid"] == ["backend-42", "user@example.com", "pro", "a", True]
    persons = await _hogql(
        client,
        jane,
        "select distinct_id, person_id from person_distinct_ids where distinct_id in"
        " ('anon-1', 'user@example.com', 'backend-42')",
    )
    assert len(persons) == 3
    assert len({p[1] for p in persons}) == 1, "every distinct id on one person"
    groups = await _hogql(
        client, jane, "select index, key, properties.name, properties.employees from groups"
    )
    assert groups == [[0, "acme", "Acme Inc.", "11"]]
    paid = await _hogql(
        client,
        jane,
        "select `$group_0`, group_0.properties.name from events where event = 'paid'",
    )
    assert paid == [["acme", "Acme Inc."]]


async def test_merge_keeps_every_distinct_id_and_mergeinto_properties_win(client, jane, clock):
    t0 = (clock.now() - dt.timedelta(days=2)).isoformat()
    await _send(
        client,
        jane,
        [
            {"event": "e", "distinct_id": "a1", "timestamp": t0, "$set": {"x": "anon", "y": 1}},
            {"event": "e", "distinct_id": "a2"},
            {"event": "e", "distinct_id": "b", "$set": {"x": "known"}},
        ],
    )
    # a2 takes a1's person (one batch), then b takes that person and both of its ids (another
    # batch: a1 is not named there, it moves with its person)
    await _send(
        client,
        jane,
        [{"event": "$identify", "distinct_id": "a2", "properties": {"$anon_distinct_id": "a1"}}],
    )
    await _send(
        client,
        jane,
        [{"event": "$merge_dangerously", "distinct_id": "b", "properties": {"alias": "a2"}}],
    )
    rows = await _hogql(
        client,
        jane,
        "select distinct_id, person.properties.x, person.properties.y, person.created_at,"
        " person.is_identified from person_distinct_ids order by distinct_id",
    )
    assert [r[0] for r in rows] == ["a1", "a2", "b"]
    created = (clock.now() - dt.timedelta(days=2)).isoformat().replace("+00:00", "Z")
    assert {tuple(r[1:]) for r in rows} == {("known", "1", created, True)}, "older created_at"
    assert await _hogql(client, jane, "select count() from persons") == [[1]]
    events = await _hogql(client, jane, "select count(distinct person_id) from events")
    assert events == [[1]]


async def test_identified_person_is_not_merged_into_another(client, jane):
    await _send(
        client,
        jane,
        [
            {"event": "$identify", "distinct_id": "u1", "properties": {"$anon_distinct_id": "x"}},
            {"event": "$identify", "distinct_id": "u2", "properties": {"$anon_distinct_id": "y"}},
            {"event": "$identify", "distinct_id": "u2", "properties": {"$anon_distinct_id": "u1"}},
        ],
    )
    assert await _hogql(client, jane, "select count() from persons") == [[2]]
    await _send(
        client,
        jane,
        [{"event": "$merge_dangerously", "distinct_id": "u2", "properties": {"alias": "u1"}}],
    )
    assert await _hogql(client, jane, "select count() from persons") == [[1]]


async def test_set_once_unset_and_event_order(client, jane):
    await _send(
        client,
        jane,
        [
            {"event": "e", "distinct_id": "d", "properties": {"$set_once": {"a": 1, "b": 1}}},
            {"event": "e", "distinct_id": "d", "properties": {"$set_once": {"a": 2}}},
            {"event": "e", "distinct_id": "d", "properties": {"$set": {"b": 2, "c": 3}}},
            {"event": "e", "distinct_id": "d", "properties": {"$unset": ["c"]}},
            {"event": "e", "distinct_id": "d", "properties": {"$set": {"b": 3}}},
        ],
    )
    assert await _hogql(client, jane, "select properties from persons") == [['{"a":1,"b":3}']]


async def test_illegal_ids_and_personless_events_make_no_merge(client, jane):
    await _send(
        client,
        jane,
        [
            {"event": "$identify", "distinct_id": "u", "properties": {"$anon_distinct_id": "null"}},
            {"event": "e", "distinct_id": "p", "properties": {"$process_person_profile": False}},
        ],
    )
    rows = await _hogql(
        client, jane, "select distinct_id, person.is_identified from person_distinct_ids"
    )
    assert rows == [["u", False]]


async def test_clock_skew_is_corrected_with_sent_at(client, jane, clock):
    now = clock.now()
    skewed = now + dt.timedelta(hours=3)  # the client's clock runs 3 h ahead
    await _send(
        client,
        jane,
        [
            {
                "event": "e",
                "distinct_id": "d",
                "timestamp": (skewed - dt.timedelta(minutes=5)).isoformat(),
            }
        ],
        sent_at=skewed.isoformat(),
    )
    resp = await client.post(
        "/e/",
        data=orjson.dumps(
            [
                {
                    "event": "f",
                    "properties": {"distinct_id": "d", "token": jane.project.api_token},
                    "offset": 60_000,
                }
            ]
        ),
        headers={"Content-Type": "text/plain"},
    )
    assert resp.status == 200, await resp.text()
    rows = await _hogql(client, jane, "select event, timestamp from events order by event")
    got = {r[0]: dt.datetime.fromisoformat(r[1]) for r in rows}
    assert got["e"] == now - dt.timedelta(minutes=5)
    assert got["f"] == now - dt.timedelta(minutes=1)
