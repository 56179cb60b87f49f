"""Data-in helpers: event validation and reproducible demo data."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.hogql.load import parse_event

_DIGEST = (
    "import datetime as dt, hashlib\n"
    "from gateway.hogql.load import demo_events\n"
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
    from gateway.hogql.execute import AnalyticsStore

    store = AnalyticsStore(None)
    try:
        assert store.insert_events(1, []) == 0
    finally:
        store.close()
