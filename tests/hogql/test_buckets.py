"""Time buckets printed by integer arithmetic on a column's microseconds (issue #16,
gateway/hogql/handlers.py): the same weeks as ClickHouse's toStartOfWeek (mode 0 Sunday,
mode 1 Monday) and as the calendar path (`date_trunc`), at week boundaries, before 1970 and at
the ends of DuckDB's timestamp range."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from gateway.analytics.store import AnalyticsStore
from gateway.hogql import translate
from gateway.hogql.handlers import _week_start_day
from tests.hogql.conftest import events_at

DAY_US = 86_400_000_000
WEEK_US = 7 * DAY_US
FIRST_US = -9_223_372_022_400_000_000  # DuckDB's first TIMESTAMP, 290309-12-22 BC
LAST_US = 9_223_372_036_854_775_806  # and its last, 294247-01-10 04:00:54.775806


def _reference(us: int, mode: int) -> int:
    """Day number of the week's first day, by Python's floor division (exact for any int)."""
    day = us // DAY_US
    return day - (day + 4 - mode) % 7


def _moments() -> list[int]:
    out = [FIRST_US, FIRST_US + 1, LAST_US, LAST_US - 1, 2**62 - 1, 2**62, 2**62 + 1]
    out += [LAST_US - k * DAY_US for k in range(1, 9)]
    out += [FIRST_US + k * DAY_US for k in range(1, 9)]
    # every day boundary of two weeks around the epoch and around 2026-11-01 (a Sunday),
    # and a microsecond either side of each
    for base in (0, 1_793_491_200_000_000, -62_135_596_800_000_000):  # 1970, 2026-11-01, 0001
        for k in range(-8, 9):
            edge = base + k * DAY_US
            out += [edge - 1, edge, edge + 1]
    return out


@pytest.mark.parametrize("mode", [0, 1])
def test_week_start_day_equals_floor_arithmetic(mode):
    conn = duckdb.connect()
    moments = _moments()
    conn.execute("CREATE TABLE t (us BIGINT)")
    conn.executemany("INSERT INTO t VALUES (?)", [[m] for m in moments])
    printed = _week_start_day("make_timestamp(us)", mode)
    rows = conn.execute(f"SELECT us, {printed} FROM t").fetchall()
    assert len(rows) == len(moments)
    for us, got in rows:
        assert got == _reference(us, mode), (us, mode)
    # and as a weekday: every result is a Sunday (mode 0) or a Monday (mode 1)
    days = conn.execute(
        f"SELECT DISTINCT dayofweek(DATE '1970-01-01' + CAST({printed} AS INTEGER)) FROM t"
        " WHERE us BETWEEN -62135596800000000 AND 253402300799999999"
    ).fetchall()
    assert days == [(mode,)]
    conn.close()


def test_week_start_day_of_null_and_infinity_is_null():
    conn = duckdb.connect()
    printed = _week_start_day("x", 0)
    rows = conn.execute(
        f"SELECT {printed} FROM (VALUES (NULL::TIMESTAMP), ('infinity'::TIMESTAMP),"
        " ('-infinity'::TIMESTAMP)) v(x)"
    ).fetchall()
    assert rows == [(None,), (None,), (None,)]
    conn.close()


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/New_York", "Pacific/Chatham"])
async def test_weeks_of_a_column_equal_the_calendar_path(zone):
    """Around Sunday and Monday midnights (UTC and local), before 1970, across DST, and in
    years 1 and 9999; the day, hour and minute buckets too."""
    store = AnalyticsStore(None)
    moments = [
        dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(hours=h, microseconds=u)
        for h in range(-30, 54, 3)
        for u in (-1, 0, 1)
    ]
    moments += [
        dt.datetime(1969, 12, 28, tzinfo=dt.UTC) + dt.timedelta(days=d, microseconds=u)
        for d in range(-8, 9)
        for u in (-1, 0, 1)
    ]
    moments += [dt.datetime(1900, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 3, 8, 7, tzinfo=dt.UTC)]
    moments += [
        dt.datetime(1, 1, 2, 0, 0, 59, 999_999, tzinfo=dt.UTC),
        dt.datetime(1601, 3, 1, 12, 30, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 30, 23, 59, 59, 999_999, tzinfo=dt.UTC),
    ]
    store.insert_events(1, events_at(moments))
    store.layout.merge()
    fast = (
        "select timestamp, toStartOfWeek(timestamp), toStartOfWeek(timestamp, 0),"
        " toStartOfWeek(timestamp, 1), toMonday(timestamp), toStartOfDay(timestamp),"
        " toStartOfHour(timestamp), toStartOfMinute(timestamp) from events order by timestamp"
        " limit 1000"
    )
    slow = fast.replace("(timestamp", "(timestamp + interval 0 second")
    assert "epoch_us" in translate(fast, project_id=1, timezone=zone).sql
    assert "epoch_us" not in translate(slow, project_id=1, timezone=zone).sql
    got = await store.run(translate(fast, project_id=1, timezone=zone))
    want = await store.run(translate(slow, project_id=1, timezone=zone))
    assert len(got.rows) == len(moments)
    assert got.rows == want.rows
    assert got.types == want.types
    store.close()
