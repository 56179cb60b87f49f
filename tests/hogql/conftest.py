"""An in-memory analytics store with two projects' events, and a way to run HogQL on it."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from gateway.analytics.store import AnalyticsStore
from gateway.hogql import translate

T0 = dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.UTC)  # a Monday


def _event(event, distinct_id, properties, hours=0.0):
    return {
        "uuid": str(uuid.uuid4()),
        "event": event,
        "distinct_id": distinct_id,
        "properties": json.dumps(properties),
        "timestamp": T0 + dt.timedelta(hours=hours),
    }


def events_at(moments: list[dt.datetime]) -> list[dict[str, Any]]:
    """One bare event ("e" by "d", no properties) at each moment."""
    return [
        {
            "uuid": str(uuid.uuid4()),
            "event": "e",
            "distinct_id": "d",
            "properties": "{}",
            "timestamp": moment,
        }
        for moment in moments
    ]


def merged_and_buffered(events: Callable[..., list[dict[str, Any]]]) -> AnalyticsStore:
    """A store with project 1's rows partly merged into the clustered table and partly
    buffered, the same distinct ids on both sides (`events(count, start=…)` makes them), and
    project 2's (other ids) buffered; `$os` materialized."""
    store = AnalyticsStore(None, materialized=["$os"])
    store.insert_events(1, events(400))
    store.layout.merge()
    store.insert_events(1, events(300, start=400))
    store.insert_events(2, [{**e, "distinct_id": "other-" + e["distinct_id"]} for e in events(50)])
    return store


# every property these tests read, kept as columns in the "materialized" form (issue #16)
MATERIALIZED = ("$browser", "$os", "price", "ok", "nothing", "obj", "empty", "plan", "token")


@pytest.fixture(params=["json", "materialized"])
def analytics(request):
    """Each test runs on both forms of properties: parsed from JSON, and read from the
    store's materialized columns; project 1's rows are merged into the clustered table, project
    2's stay in the write buffer."""
    materialized = MATERIALIZED if request.param == "materialized" else ()
    store = AnalyticsStore(None, timeout_s=5, materialized=materialized)
    store.insert_events(
        1,
        [
            _event(
                "$pageview",
                "alice",
                {
                    "$browser": "Chrome",
                    "price": 49.5,
                    "ok": True,
                    "nothing": None,
                    "obj": {"a": [1, 2]},
                    "empty": "",
                },
            ),
            _event("$pageview", "bob", {"$browser": "Firefox", "$os": "Linux"}, hours=30),
            _event("signed_up", "alice", {"$browser": "Chrome", "plan": "pro"}, hours=50),
        ],
    )
    store.layout.merge()
    store.insert_events(2, [_event("secret", "mallory", {"token": "s3cret"})])
    yield store
    store.close()


@pytest.fixture
def run(analytics):
    async def run(query, project_id=1, **values):
        translation = translate(
            query, project_id=project_id, values=values, materialized=analytics.materialized
        )
        return await analytics.run(translation)

    return run
