"""Data-in helpers: event validation and reproducible demo data."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.analytics.load import parse_event

_DIGEST = (
    "import datetime as dt, hashlib\n"
    "from gateway.analytics.load import demo_events\n"
    "rows = demo_events(300, now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))\n"
    "print(hashlib.sha256(''.join(r['properties'] for r in rows).encode()).hexdigest())\n"
)


def test_demo_data_is_the_same_in_every_process():
    digests = {
        subprocess.run(
            [sys.executable, "-c", _DIGEST],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ([], "not a JSON object"),
        ({"distinct_id": "u", "timestamp": "2026-01-01"}, "`event`"),
        (
            {"event": "e", "distinct_id": "u", "timestamp": "2026-01-01", "properties": []},
            "`properties`",
        ),
        ({"event": "e", "distinct_id": "u", "timestamp": "yesterday"}, "isoformat"),
        ({"event": "e", "distinct_id": "u", "timestamp": "2026-01-01", "uuid": "nope"}, "UUID"),
    ],
)
def test_bad_events_say_why(raw, reason):
    with pytest.raises(ValueError, match=reason):
        parse_event(raw)


def test_naive_timestamps_are_utc():
    row = parse_event({"event": "e", "distinct_id": "u", "timestamp": "2026-01-01T10:00:00"})
    assert row["timestamp"].utcoffset().total_seconds() == 0


def test_inserting_no_rows_is_fine():
    from gateway.analytics.store import AnalyticsStore

    store = AnalyticsStore(None)
    try:
        assert store.insert_events(1, []) == 0
    finally:
        store.close()


def test_csv_and_parquet_events(tmp_path):
    import datetime as dt

    import pyarrow as pa
    import pyarrow.parquet as pq

    from gateway.analytics.load import BadRow, read_events

    source = tmp_path / "events.csv"
    source.write_text(
        "event,distinct_id,timestamp,properties\n"
        '$pageview,u1,2026-01-01T00:00:00Z,"{""$browser"": ""Chrome""}"\n'
        "broken,,2026-01-01T00:00:00Z,\n"
        "signed_up,u2,2026-01-02T00:00:00,\n"
    )
    bad: list[BadRow] = []
    rows = list(read_events(source, bad))
    assert [r["event"] for r in rows] == ["$pageview", "signed_up"]
    assert rows[0]["properties"] == '{"$browser": "Chrome"}'
    assert bad == [BadRow(line=3, reason="`distinct_id` must be a non-empty string")]

    table = pa.table(
        {
            "event": ["a", "b"],
            "distinct_id": ["u1", None],
            "timestamp": pa.array(
                [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)] * 2, pa.timestamp("us", tz="UTC")
            ),
            "properties": ['{"x": 1}', None],
        }
    )
    pq.write_table(table, tmp_path / "events.parquet")
    bad = []
    rows = list(read_events(tmp_path / "events.parquet", bad))
    assert [(r["event"], r["properties"]) for r in rows] == [("a", '{"x": 1}')]
    assert [b.line for b in bad] == [2]
