"""Wall-clock access, injectable so tests can move time without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """The time source everything that stamps or expires things reads (`app[CLOCK_KEY]`, the auth
    cache, share tokens and the login limiter): `SystemClock` in production, `FakeClock` in tests.
    """

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    """The real clock; `create_app` uses it unless given another, and the CLI stamps its writes with
    it.
    """

    def now(self) -> datetime:
        """The current wall-clock time, timezone-aware UTC."""
        return datetime.now(UTC)


class FakeClock:
    """A clock that only moves when told to; used by tests and benchmarks."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        """The time given at construction plus every `advance` since; it never moves on its own."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock by `seconds` (may be fractional)."""
        self._now += timedelta(seconds=seconds)


def isoformat(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, microsecond precision (sortable as text)."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(value: str) -> datetime:
    """The inverse of `isoformat` (also reads any ISO 8601 with an offset)."""
    return datetime.fromisoformat(value)
