"""Data in: PostHog-shaped events and persons from JSON Lines, and synthetic demo data.

`read_events` and `read_persons` validate row by row: a bad row is reported with its line
number and skipped, good rows are kept. Timestamps are ISO 8601 (naive means UTC).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import random
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

_BROWSERS: Final = ("Chrome", "Firefox", "Safari", "Edge")
_OS: Final = ("Mac OS X", "Windows", "Linux", "iOS", "Android")
_PATHS: Final = ("/", "/pricing", "/docs", "/blog", "/signup", "/login", "/product")
_EVENTS: Final = (("$pageview", 70), ("$autocapture", 15), ("signed_up", 3), ("$pageleave", 12))


@dataclass(frozen=True, kw_only=True)
class BadRow:
    """An input row a reader skipped: its line number (for Parquet, its row number) and why. The CLI
    loaders collect them and report them.
    """

    line: int
    reason: str


def _timestamp(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)


def _object(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    return raw


def _properties(value: Any) -> str:
    """`properties` (absent means `{}`) as the JSON text stored."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        msg = "`properties` must be an object"
        raise ValueError(msg)
    return json.dumps(value)


def _created_at(raw: dict[str, Any]) -> dt.datetime:
    if not isinstance(raw.get("created_at"), str):
        msg = "`created_at` must be an ISO 8601 string"
        raise ValueError(msg)
    return _timestamp(raw["created_at"])


def parse_event(raw: Any) -> dict[str, Any]:
    """One event in PostHog's export shape → a row; ValueError says what is wrong."""
    raw = _object(raw)
    for name in ("event", "distinct_id", "timestamp"):
        if not isinstance(raw.get(name), str) or not raw[name]:
            msg = f"`{name}` must be a non-empty string"
            raise ValueError(msg)
    properties = raw.get("properties")
    if isinstance(properties, str):  # CSV and Parquet carry properties as JSON text
        properties = json.loads(properties)
    timestamp = _timestamp(raw["timestamp"])
    return {
        "uuid": str(uuid.UUID(str(raw["uuid"]))) if raw.get("uuid") else str(uuid.uuid4()),
        "event": raw["event"],
        "distinct_id": raw["distinct_id"],
        "properties": _properties(properties),
        "timestamp": timestamp,
        "created_at": timestamp,
        "elements_chain": raw.get("elements_chain"),
    }


def parse_person(raw: Any) -> dict[str, Any]:
    """One person in PostHog's export shape → a row; ValueError says what is wrong."""
    raw = _object(raw)
    person_id = uuid.UUID(str(raw.get("id")))  # ValueError names a bad id
    distinct_ids = raw.get("distinct_ids")
    if (
        not isinstance(distinct_ids, list)
        or not distinct_ids
        or not all(isinstance(d, str) and d for d in distinct_ids)
    ):
        msg = "`distinct_ids` must be a non-empty list of non-empty strings"
        raise ValueError(msg)
    properties = _properties(raw.get("properties"))
    if not isinstance(raw.get("is_identified", False), bool):
        msg = "`is_identified` must be true or false"
        raise ValueError(msg)
    return {
        "id": str(person_id),
        "distinct_ids": distinct_ids,
        "created_at": _created_at(raw),
        "is_identified": raw.get("is_identified", False),
        "properties": properties,
    }


def parse_group(raw: Any) -> dict[str, Any]:
    """One group (`{index, key, created_at, updated_at?, properties}`) → a row."""
    raw = _object(raw)
    index = raw.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 4:
        msg = "`index` must be a group type index from 0 to 4"
        raise ValueError(msg)
    if not isinstance(raw.get("key"), str) or not raw["key"]:
        msg = "`key` must be a non-empty string"
        raise ValueError(msg)
    properties = _properties(raw.get("properties"))
    created = _created_at(raw)
    return {
        "index": index,
        "key": raw["key"],
        "created_at": created,
        "updated_at": _timestamp(raw["updated_at"]) if raw.get("updated_at") else created,
        "properties": properties,
    }


@dataclass(kw_only=True)
class Progress:
    """How far a reader is through its file (0…1), for the loaders' progress bar."""

    fraction: float = 0.0


def _fraction(handle: Any, size: int) -> float:
    return min(1.0, handle.buffer.tell() / size) if size else 1.0


def read_rows(
    path: Path,
    parse: Callable[[Any], dict[str, Any]],
    bad: list[BadRow],
    progress: Progress | None = None,
) -> Iterator[dict[str, Any]]:
    """JSON Lines through `parse`: bad rows go to `bad` with their line number."""
    size = path.stat().st_size
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if progress is not None and number % 1000 == 0:
                progress.fraction = _fraction(handle, size)
            if not line.strip():
                continue
            try:
                yield parse(json.loads(line))
            except (ValueError, TypeError) as err:
                bad.append(BadRow(line=number, reason=str(err)))
    if progress is not None:
        progress.fraction = 1.0


def read_events(
    path: Path, bad: list[BadRow], progress: Progress | None = None
) -> Iterator[dict[str, Any]]:
    """Events from JSON Lines, or CSV (`.csv`, a header row; `properties` as JSON text) or
    Parquet (`.parquet`; `properties` as JSON text or a struct). Bad rows go to `bad`."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, bad, progress or Progress())
    if suffix == ".parquet":
        return _read_parquet(path, bad, progress or Progress())
    return read_rows(path, parse_event, bad, progress)


def _read_csv(path: Path, bad: list[BadRow], progress: Progress) -> Iterator[dict[str, Any]]:
    size = path.stat().st_size
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for raw in reader:
            if reader.line_num % 1000 == 0:
                progress.fraction = _fraction(handle, size)
            row = {k: v for k, v in raw.items() if v != "" and k is not None}
            try:
                yield parse_event(row)
            except (ValueError, TypeError) as err:
                bad.append(BadRow(line=reader.line_num, reason=str(err)))


def _read_parquet(path: Path, bad: list[BadRow], progress: Progress) -> Iterator[dict[str, Any]]:
    import pyarrow.parquet as pq  # noqa: PLC0415 - only for Parquet input

    number = 0
    source = pq.ParquetFile(path)
    total = source.metadata.num_rows
    for batch in source.iter_batches(batch_size=10_000):
        progress.fraction = number / total if total else 1.0
        for raw in batch.to_pylist():
            number += 1
            if isinstance(raw.get("timestamp"), dt.datetime):
                raw["timestamp"] = raw["timestamp"].isoformat()
            try:
                yield parse_event(raw)
            except (ValueError, TypeError) as err:
                bad.append(BadRow(line=number, reason=str(err)))


def read_persons(
    path: Path, bad: list[BadRow], progress: Progress | None = None
) -> Iterator[dict[str, Any]]:
    """Persons from JSON Lines in PostHog's export shape (see `parse_person`), for the CLI's person
    loader; bad rows go to `bad`.
    """
    return read_rows(path, parse_person, bad, progress)


def demo_persons(
    events: int, *, seed: int = 7, now: dt.datetime | None = None
) -> Iterator[dict[str, Any]]:
    """A person for each user `demo_events(events)` makes, with an email and a plan."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=60)
    for i in range(max(1, events // 40)):
        user = f"user-{i}"
        yield {
            "id": str(uuid.UUID(int=zlib.crc32(user.encode()) << 64 | i)),
            "distinct_ids": [user],
            "created_at": start + dt.timedelta(seconds=rng.randint(0, 30 * 86400)),
            "is_identified": True,
            "properties": json.dumps(
                {
                    "email": f"{user}@{('example.com', 'acme.io', 'posthog.com')[i % 3]}",
                    "plan": ("free", "pro", "enterprise")[zlib.crc32(user.encode()) % 3],
                }
            ),
        }


def demo_events(
    count: int, *, seed: int = 7, now: dt.datetime | None = None
) -> Iterator[dict[str, Any]]:
    """Plausible product analytics: users with sessions of pageviews over the last 30 days."""
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    end = now or dt.datetime.now(dt.UTC)
    users = [f"user-{i}" for i in range(max(1, count // 40))]
    names = [name for name, _ in _EVENTS]
    weights = [weight for _, weight in _EVENTS]
    for _ in range(count):
        user = rng.choice(users)
        timestamp = end - dt.timedelta(seconds=rng.randint(0, 30 * 86400))
        path = rng.choice(_PATHS)
        yield {
            "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
            "event": rng.choices(names, weights)[0],
            "distinct_id": user,
            "properties": json.dumps(
                {
                    # crc32, not hash(): the same seed gives the same data in every process
                    "$browser": _BROWSERS[zlib.crc32(user.encode()) % len(_BROWSERS)],
                    "$os": _OS[zlib.crc32(user[::-1].encode()) % len(_OS)],
                    "$current_url": f"https://example.com{path}",
                    "$pathname": path,
                    "$session_id": f"{user}-{timestamp:%Y%m%d}",
                    "plan": rng.choice(["free", "pro", "enterprise", None]),
                }
            ),
            "timestamp": timestamp,
            "created_at": timestamp,
        }


def read_groups(
    path: Path, bad: list[BadRow], progress: Progress | None = None
) -> Iterator[dict[str, Any]]:
    """Groups from JSON Lines (see `parse_group`), for the CLI loader; bad rows go to `bad`."""
    return read_rows(path, parse_group, bad, progress)
