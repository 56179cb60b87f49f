"""Relative dates and the `contains` grammar, without HTTP."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from gateway.errors import InvalidRequest
from gateway.filters import parse_contains, relative_date_parse
from gateway.store import ContainsTerm

NOW = datetime(2026, 3, 31, 15, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-7d", datetime(2026, 3, 24, 15, 30, tzinfo=UTC)),
        ("-24h", datetime(2026, 3, 30, 15, 30, tzinfo=UTC)),
        ("-2w", datetime(2026, 3, 17, 15, 30, tzinfo=UTC)),
        ("-1m", datetime(2026, 2, 28, 15, 30, tzinfo=UTC)),  # clamped to February's end
        ("-1y", datetime(2025, 3, 31, 15, 30, tzinfo=UTC)),
        ("-30M", datetime(2026, 3, 31, 15, 0, tzinfo=UTC)),
        ("-10s", datetime(2026, 3, 31, 15, 29, 50, tzinfo=UTC)),
        ("-1q", datetime(2025, 12, 30, 15, 30, tzinfo=UTC)),
        ("-1dStart", datetime(2026, 3, 30, tzinfo=UTC)),
        ("-0mStart", datetime(2026, 3, 1, tzinfo=UTC)),
        ("-1yStart", datetime(2025, 1, 1, tzinfo=UTC)),
        ("2026-01-02", datetime(2026, 1, 2, tzinfo=UTC)),
        ("2026-01-02T03:04:05+01:00", datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)),
    ],
)
def test_relative_dates(text, expected):
    assert relative_date_parse(text, now=NOW, tz=UTC, attr="date_from") == expected


def test_naive_iso_takes_the_project_timezone():
    tz = ZoneInfo("Europe/Berlin")
    parsed = relative_date_parse("2026-06-01T12:00:00", now=NOW, tz=tz, attr="date_from")
    assert parsed.astimezone(UTC) == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


def test_day_start_is_in_the_project_timezone():
    tz = ZoneInfo("America/New_York")
    parsed = relative_date_parse("-0dStart", now=NOW, tz=tz, attr="date_from")
    assert parsed.astimezone(UTC) == datetime(2026, 3, 31, 4, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["soon", "-7x", "7 days ago", ""])
def test_unparseable_dates_are_400(text):
    with pytest.raises(InvalidRequest) as info:
        relative_date_parse(text, now=NOW, tz=UTC, attr="date_to")
    assert info.value.attr == "date_to"


def test_contains_grammar():
    assert parse_contains("recordings:true, queries:abc replay-timestamp:s1 ph-recording:7") == (
        ContainsTerm(target="recording", value=True),
        ContainsTerm(target="query", value="abc"),
        ContainsTerm(target="replay-timestamp", value="s1"),
        ContainsTerm(target="recording", value=7),
    )
    assert parse_contains("") == ()
