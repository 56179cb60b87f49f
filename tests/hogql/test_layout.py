"""The events layout (gateway/analytics/layout.py, issue #16): the write buffer merged into the
clustered table without losing or doubling rows, beside writers and readers and across a crash;
materialized property columns equal to the JSON extraction; isolation kept with them."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import pytest

from gateway.analytics.layout import check_properties
from gateway.analytics.store import AnalyticsStore
from gateway.hogql import translate
from gateway.hogql.binding import ValueSink
from gateway.hogql.schema import EVENTS
from gateway.hogql.tables import ProjectTables
from tests.hogql.conftest import events_at

T0 = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
_FROM = re.compile(r'FROM (?:"(\w+)"|(events)\b)')
_FILTER = re.compile(r"project_id = \$(\d+)")


def _events(count, *, start=0, project_hint=""):
    return [
        {
            "uuid": str(uuid.uuid4()),
            "event": ["$pageview", "signed_up", "$autocapture"][i % 3],
            "distinct_id": f"u{i % 17}{project_hint}",
            "properties": json.dumps({"$browser": ["Chrome", "Firefox"][i % 2], "n": i}),
            "timestamp": T0 + dt.timedelta(minutes=(i * 7919) % 50_000),
        }
        for i in range(start, start + count)
    ]


def _count(store, table="events"):
    """(rows, sum of their `n`): a row lost or doubled changes one of them."""
    sql = f"SELECT count(*), sum(CAST(json_extract(properties, '$.n') AS BIGINT)) FROM {table}"
    return tuple(store._conn.execute(sql).fetchall()[0])


def _sorted(store):
    """True when events_main is in cluster order (project, UTC day, event, timestamp)."""
    rows = store._conn.execute(
        "SELECT project_id, CAST(timestamp AS DATE), event, timestamp FROM events_main"
        " ORDER BY rowid"
    ).fetchall()
    return rows == sorted(rows)


def test_merge_moves_every_row_once_and_keeps_the_cluster_order():
    store = AnalyticsStore(None, materialized=["$browser"])
    store.insert_events(2, _events(500, project_hint="b"))
    store.insert_events(1, _events(700, start=500))
    before = _count(store)
    assert store.layout.merge() == 1200
    assert _count(store) == before
    assert _count(store, "events_buffer")[0] == 0
    assert _sorted(store)  # a merge into an empty table is a full sort
    store.insert_events(1, _events(300, start=1200))
    store.layout.merge()
    assert _count(store)[0] == 1500
    assert not _sorted(store)  # two sorted runs...
    store.layout.recluster()
    assert _sorted(store)  # ...made one
    assert _count(store)[0] == 1500
    store.close()


def test_writers_and_readers_during_merges_and_reclusters():
    store = AnalyticsStore(None, materialized=["$browser"])
    stop = threading.Event()
    written = []
    seen_drops = []

    def writer():
        start = 0
        while not stop.is_set() and start < 30_000:
            store.insert_events(1, _events(500, start=start))
            written.append(500)
            start += 500

    def reader():
        cursor = store._conn.cursor()
        last = 0
        while not stop.is_set():
            count = cursor.execute("SELECT count(*) FROM events").fetchall()[0][0]
            if count < last:  # a reader never sees rows vanish (nor a half-moved merge)
                seen_drops.append((last, count))
            last = count
        cursor.close()

    threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
    for thread in threads:
        thread.start()
    for _ in range(15):
        store.layout.merge()
        store.layout.recluster()
    stop.set()
    for thread in threads:
        thread.join()
    store.layout.flush()
    assert seen_drops == []
    assert _count(store)[0] == sum(written)
    assert _count(store, "events_buffer")[0] == 0
    assert _sorted(store)
    store.close()


_CRASH = textwrap.dedent(
    """
    import os, sys
    from gateway.analytics.store import AnalyticsStore
    store = AnalyticsStore(__import__("pathlib").Path(sys.argv[1]), materialized=["$browser"])
    print("ready", flush=True)
    sys.stdin.readline()
    store.layout.{action}()
    print("done", flush=True)
    os._exit(0)
    """
)


@pytest.mark.parametrize("action", ["merge", "recluster"])
def test_a_crash_mid_merge_loses_and_doubles_nothing(tmp_path, action):
    path = tmp_path / "analytics.duckdb"
    store = AnalyticsStore(path, materialized=["$browser"])
    for start in range(0, 200_000, 20_000):
        store.insert_events(1, _events(20_000, start=start))
    if action == "recluster":
        store.layout.merge()
        store.insert_events(1, _events(1_000, start=200_000))
        store.layout.merge()
    before = _count(store)
    store.close(flush=False)
    child = subprocess.Popen(
        [sys.executable, "-c", _CRASH.format(action=action), str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdout is not None and child.stdin is not None
    assert child.stdout.readline().strip() == "ready"
    child.stdin.write("\n")
    child.stdin.flush()
    # killed while the transaction runs (moving 200,000 rows takes ~0.3-0.6 s; this is 0.05 s)
    threading.Event().wait(0.05)
    finished = child.poll() is not None
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdin.close()
    child.stdout.close()
    assert not finished, "the merge ended before the kill: make it bigger"
    reopened = AnalyticsStore(path, materialized=["$browser"])
    assert _count(reopened) == before  # the transaction is all or nothing
    main, buffered = _count(reopened, "events_main")[0], _count(reopened, "events_buffer")[0]
    assert main + buffered == before[0]
    reopened.layout.flush()
    assert _count(reopened) == before
    assert _sorted(reopened)
    reopened.close()


def test_an_old_store_file_becomes_the_buffer_and_is_merged(tmp_path):
    import duckdb

    path = tmp_path / "analytics.duckdb"
    old = duckdb.connect(str(path))
    old.execute(
        "CREATE TABLE events (project_id BIGINT NOT NULL, uuid UUID NOT NULL, event VARCHAR NOT"
        " NULL, properties JSON, timestamp TIMESTAMPTZ NOT NULL, distinct_id VARCHAR NOT NULL,"
        " elements_chain VARCHAR, created_at TIMESTAMPTZ NOT NULL, person_id UUID)"
    )
    old.execute(
        "INSERT INTO events SELECT 1, uuid(), 'e', '{\"$browser\": \"Safari\"}', now(), 'd',"
        " NULL, now(), NULL FROM range(10)"
    )
    old.close()
    store = AnalyticsStore(path, materialized=["$browser"])
    assert _count(store, "events_buffer")[0] == 10
    store.layout.flush()
    rows = store._conn.execute('SELECT "mat_$browser", count(*) FROM events GROUP BY 1').fetchall()
    assert rows == [("Safari", 10)]
    store.close()


def test_the_materialized_set_follows_the_setting_and_none_keeps_the_files(tmp_path):
    path = tmp_path / "analytics.duckdb"
    AnalyticsStore(path, materialized=["$browser", "$os"]).close()
    loader = AnalyticsStore(path)  # a CLI loader: keeps what the gateway made
    assert loader.materialized == ("$browser", "$os")
    loader.close()
    store = AnalyticsStore(path, materialized=["$os", "n"])
    assert store.materialized == ("$os", "n")
    columns = [r[0] for r in store._conn.execute("DESCRIBE events_main").fetchall()]
    assert "mat_$browser" not in columns and "mat_n" in columns
    store.close()
    with pytest.raises(ValueError, match="cannot be a materialized property"):
        check_properties(["bad'name"])


VALUES = {
    "s": "text",
    "empty": "",
    "nothing": None,
    "zero": 0,
    "float": 49.5,
    "bool": True,
    "obj": {"a": [1, 2]},
    "list": [1, "x"],
    "quote": 'say "hi"',
    "unicode": "żółw",
}


async def test_materialized_columns_hold_what_json_extraction_gives():
    keys = [*VALUES, "missing"]
    plain = AnalyticsStore(None)
    stored = AnalyticsStore(None, materialized=keys)
    rows = [
        {
            "uuid": str(uuid.uuid4()),
            "event": "e",
            "distinct_id": "d",
            "properties": json.dumps(VALUES if i % 2 else {"s": None, "empty": "x"}),
            "timestamp": T0,
        }
        for i in range(4)
    ]
    for store in (plain, stored):
        store.insert_events(1, rows[:2])
        store.layout.merge()
        store.insert_events(1, rows[2:])  # buffered: computed by the view
    select = ", ".join(f"properties.{k}" for k in keys)
    for query in (
        f"select {select} from events order by properties.s",
        "select properties.empty, count() from events group by properties.empty",
        "select count() from events where properties.nothing is null and properties.empty = ''",
        "select session.$session_duration from events",
    ):
        expected = await plain.run(translate(query, project_id=1))
        translation = translate(query, project_id=1, materialized=stored.materialized)
        assert '"mat_' in translation.sql or "session" in query
        assert (await stored.run(translation)).rows == expected.rows, query
    plain.close()
    stored.close()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York"])
async def test_start_of_buckets_equal_date_trunc(zone):
    store = AnalyticsStore(None)
    moments = [
        dt.datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(1950, 6, 15, 7, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 5, 59, 59, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 1, 6, 0, tzinfo=dt.UTC),
    ]
    store.insert_events(1, events_at(moments))
    fast = (
        "select toStartOfMinute(timestamp), toStartOfHour(timestamp), toStartOfDay(timestamp),"
        " toStartOfWeek(timestamp), toStartOfWeek(timestamp, 1) from events order by timestamp"
    )
    # the same functions over an expression take the date_trunc path
    slow = fast.replace("(timestamp", "(timestamp + interval 0 second")
    assert "epoch_us" in translate(fast, project_id=1, timezone=zone).sql
    assert "epoch_us" not in translate(slow, project_id=1, timezone=zone).sql
    got = await store.run(translate(fast, project_id=1, timezone=zone))
    want = await store.run(translate(slow, project_id=1, timezone=zone))
    assert got.rows == want.rows
    assert got.types == want.types
    store.close()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
@pytest.mark.parametrize("lazy", [set(), {"session"}, {"session", "person", "group_0"}])
def test_materialized_columns_keep_every_read_project_filtered(zone, lazy):
    sink = ValueSink()
    sink.add(99)  # another number bound first: the filter must use the project's own parameter
    tables = ProjectTables(sink, project_id=7, timezone=zone, materialized=["$session_id"])
    used = set(EVENTS.columns) | {"session.$session_duration", "session.$entry_current_url"}
    sql = tables.table(EVENTS, lazy, used)
    reads = _FROM.findall(sql)
    filters = [int(n) for n in _FILTER.findall(sql)]
    assert reads and len(filters) == len(reads), sql  # one filter per stored table read
    assert all(sink.values[n - 1] == 7 for n in filters), (sql, sink.values)
    assert '"mat_$session_id"' in sql


async def test_materialized_queries_read_only_their_project():
    store = AnalyticsStore(None, materialized=["$browser", "$session_id"])
    for project, who in ((1, "alice"), (2, "mallory")):
        store.insert_events(
            project,
            [
                {
                    "uuid": str(uuid.uuid4()),
                    "event": "e",
                    "distinct_id": who,
                    "timestamp": T0,
                    "properties": json.dumps({"$browser": who, "$session_id": f"s-{who}"}),
                }
            ],
        )
    store.layout.merge()
    for query in (
        "select properties.$browser from events",
        "select session.$session_duration, properties.$browser from events",
        "select session_id from sessions",
    ):
        result = await store.run(translate(query, project_id=1, materialized=store.materialized))
        assert result.rows and "mallory" not in json.dumps(result.rows), (query, result.rows)
    store.close()
