"""Parsing of the notebook list's query string into a `NotebookFilter` (pure, no I/O)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

from gateway.errors import InvalidRequest
from gateway.store.records import ORDERABLE_FIELDS, ContainsTerm, NotebookFilter, User

_RELATIVE: Final = re.compile(r"^-?(\d+)?([hdwmqysHDWMQY])(Start|End)?$")


def _shift_months(value: datetime, months: int) -> datetime:
    index = value.year * 12 + value.month - 1 - months
    year, month = divmod(index, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def _truncate(value: datetime, unit: str, *, end: bool) -> datetime:
    day_start = value.replace(hour=0, minute=0, second=0, microsecond=0)
    match unit:
        case "h":
            start = value.replace(minute=0, second=0, microsecond=0)
            span = timedelta(hours=1)
        case "d" | "w" | "q":
            start, span = day_start, timedelta(days=1)
        case "m":
            start = day_start.replace(day=1)
            span = _shift_months(start, -1) - start
        case "y":
            start = day_start.replace(month=1, day=1)
            span = start.replace(year=start.year + 1) - start
        case _:
            return value
    return start + span - timedelta(microseconds=1) if end else start


def relative_date_parse(text: str, *, now: datetime, tz: tzinfo, attr: str) -> datetime:
    """PostHog's `relative_date_parse`: ISO date/datetime (naive → project tz) or `-7d`-style.

    Unlike PostHog, an unparseable value is a 400 rather than silently "now"; so is an amount
    that leaves the calendar (`-99999999999d`).
    """
    try:
        return _relative_date_parse(text, now=now, tz=tz, attr=attr)
    except (OverflowError, ValueError) as err:
        msg = f"'{text}' is out of the range of dates."
        raise InvalidRequest(msg, attr=attr) from err


def _relative_date_parse(text: str, *, now: datetime, tz: tzinfo, attr: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is not None:
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=tz)
    match = _RELATIVE.match(text.strip())
    if match is None:
        msg = f"'{text}' is not a date: use ISO 8601 or a relative date like -7d, -24h, -1m."
        raise InvalidRequest(msg, attr=attr)
    amount = int(match.group(1) or 1)
    unit = match.group(2)
    local_now = now.astimezone(tz)
    if unit == "M":
        result = local_now - timedelta(minutes=amount)
    elif unit in "sS":
        result = local_now - timedelta(seconds=amount)
    else:
        unit = unit.lower()
        if unit == "m":
            result = _shift_months(local_now, amount)
        elif unit == "y":
            result = _shift_months(local_now, 12 * amount)
        else:
            days = {"h": 0.0, "d": 1.0, "w": 7.0, "q": 91.0}[unit]
            hours = amount if unit == "h" else 0
            result = local_now - timedelta(days=days * amount, hours=hours)
    if match.group(3):
        result = _truncate(result, unit, end=match.group(3) == "End")
    return result


def _depluralise(target: str) -> str:
    if target.endswith("ies"):
        return target[:-3] + "y"
    if target.endswith("s"):
        return target[:-1]
    return target


def parse_contains(text: str) -> tuple[ContainsTerm, ...]:
    """`recording:true, query:abc` → terms; targets depluralised, `ph-` prefix implied."""
    terms = []
    for raw in re.split(r"[\s,]+", text.strip()):
        if not raw:
            continue
        target, sep, value_text = raw.partition(":")
        target = _depluralise(target.lower().removeprefix("ph-"))
        if not target:
            continue  # no node type named: matches nothing, so it narrows nothing
        value: bool | int | str | None = None
        if sep:
            if value_text.lower() in {"true", "false"}:
                value = value_text.lower() == "true"
            elif value_text.isdigit():
                value = int(value_text)
            elif value_text:
                value = value_text
        terms.append(ContainsTerm(target=target, value=value))
    return tuple(terms)


def parse_order(text: str) -> tuple[str, bool]:
    """The `order` parameter (`field` or `-field`) as (field, descending). Raises InvalidRequest
    (attr `order`) for a field outside ORDERABLE_FIELDS.
    """
    desc = text.startswith("-")
    name = text.removeprefix("-")
    if name not in ORDERABLE_FIELDS:
        msg = f"Cannot order by '{name}'; choose one of {', '.join(sorted(ORDERABLE_FIELDS))}."
        raise InvalidRequest(msg, attr="order")
    return name, desc


def parse_notebook_filter(
    query: Mapping[str, str], *, user: User, now: datetime, timezone: str
) -> NotebookFilter:
    """The notebook list's query string as a NotebookFilter, for the list handler. Dates are read in
    the project's `timezone` relative to `now`, and a `user` parameter (any value) means created by
    `user`; a bad value raises InvalidRequest naming its parameter.
    """
    tz = ZoneInfo(timezone)
    order_field, order_desc = parse_order(query.get("order") or "-last_modified_at")

    def when(name: str) -> datetime | None:
        value = query.get(name)
        return None if not value else relative_date_parse(value, now=now, tz=tz, attr=name)

    return NotebookFilter(
        created_by_user_id=user.id if "user" in query else None,
        created_by_uuid=query.get("created_by") or None,
        last_modified_by_uuid=query.get("last_modified_by") or None,
        date_from=when("date_from"),
        date_to=when("date_to"),
        search=query.get("search") or None,
        contains=parse_contains(query.get("contains", "")),
        short_id=query.get("short_id") or None,
        order_field=order_field,
        order_desc=order_desc,
    )
