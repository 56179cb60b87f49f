"""Project timezones: buckets, literals, `now()` and results in the project's zone;
`toTimeZone` for another. Events (conftest): 2026-11-23 10:30Z, 11-24 16:30Z, 11-25 12:30Z."""

from __future__ import annotations

import io
import time

import pyarrow as pa
import pyarrow.ipc
import pytest

from gateway.hogql import HogQLQueryError, translate


@pytest.fixture
def run_in(analytics):
    async def run_in(timezone, query, project_id=1):
        return await analytics.run(translate(query, project_id=project_id, timezone=timezone))

    return run_in


async def test_days_are_the_projects_days(run_in):
    query = "select toStartOfDay(timestamp) as day, count() from events group by day order by day"
    tokyo = await run_in("Asia/Tokyo", query)
    assert tokyo.rows == [["2026-11-23T00:00:00+09:00", 1], ["2026-11-25T00:00:00+09:00", 2]]
    assert tokyo.types[0] == "DateTime64(6, 'Asia/Tokyo')"
    utc = await run_in("UTC", query)
    assert [r[0] for r in utc.rows] == [
        "2026-11-23T00:00:00Z",
        "2026-11-24T00:00:00Z",
        "2026-11-25T00:00:00Z",
    ]


async def test_values_parts_and_literals_in_the_projects_zone(run_in):
    result = await run_in(
        "America/New_York",
        "select timestamp, toHour(timestamp), toDate(timestamp), toDayOfWeek(timestamp)"
        " from events order by timestamp limit 1",
    )
    assert result.rows == [["2026-11-23T05:30:00-05:00", 5, "2026-11-23", 1]]
    literal = "select count() from events where timestamp >= '2026-11-25'"
    assert (await run_in("Asia/Tokyo", literal)).rows == [[2]]
    assert (await run_in("UTC", literal)).rows == [[1]]
    with_offset = "select count() from events where timestamp >= toDateTime('2026-11-25T00:00:00Z')"
    assert (await run_in("Asia/Tokyo", with_offset)).rows == [[1]]


async def test_to_time_zone_shows_another_zone(run_in):
    result = await run_in(
        "Asia/Tokyo",
        "select toTimeZone(timestamp, 'UTC') as utc, toHour(toTimeZone(timestamp, 'America/New_York')),"
        " toStartOfDay(toTimeZone(timestamp, 'UTC')), timestamp"
        " from events order by timestamp limit 1",
    )
    assert result.rows == [
        ["2026-11-23T10:30:00Z", 5, "2026-11-23T00:00:00Z", "2026-11-23T19:30:00+09:00"]
    ]
    assert result.types[0] == "DateTime64(6, 'UTC')"
    assert result.types[3] == "DateTime64(6, 'Asia/Tokyo')"
    with pytest.raises(HogQLQueryError, match="Unknown timezone: 'Mars/Olympus'"):
        await run_in("UTC", "select toTimeZone(now(), 'Mars/Olympus')")


async def test_now_is_the_same_instant_everywhere(run_in):
    for zone in ("UTC", "Pacific/Kiritimati", "America/Adak"):
        (seconds,) = (await run_in(zone, "select toUnixTimestamp(now())")).rows[0]
        assert abs(seconds - time.time()) < 60, zone


def test_unknown_project_timezone_is_an_error():
    with pytest.raises(HogQLQueryError, match="not a known timezone"):
        translate("select 1", project_id=1, timezone="Nowhere/Land")


async def test_arrow_results_carry_the_zone(analytics, tmp_path):
    translation = translate(
        "select timestamp, toTimeZone(timestamp, 'UTC') from events order by timestamp limit 1",
        project_id=1,
        timezone="Asia/Tokyo",
    )
    await analytics.run_to_file(translation, tmp_path / "r.arrow", uid=None)
    table = pyarrow.ipc.open_stream(io.BytesIO((tmp_path / "r.arrow").read_bytes())).read_all()
    assert table.schema.field(0).type == pa.timestamp("us", tz="Asia/Tokyo")
    assert table.schema.field(1).type == pa.timestamp("us", tz="UTC")
    first, second = table.to_pylist()[0].values()
    assert first == second, "the same instant"
    assert first.isoformat() == "2026-11-23T19:30:00+09:00"


async def test_to_time_zone_of_one_argument_is_the_projects_zone(run_in):
    """PostHog appends the project's timezone to toTimeZone(ts)."""
    result = await run_in(
        "Asia/Tokyo",
        "select toTimeZone(timestamp), toTimeZone(timestamp, 'UTC') from events"
        " order by timestamp limit 1",
    )
    assert result.rows == [["2026-11-23T19:30:00+09:00", "2026-11-23T10:30:00Z"]]
    assert result.types == ["DateTime64(6, 'Asia/Tokyo')", "DateTime64(6, 'UTC')"]
