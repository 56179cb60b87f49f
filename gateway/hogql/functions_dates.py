"""More dates and times: `toStartOfInterval`, the other `toStartOf*`/`toLastDayOf*`,
`toYYYYMMDD`, `age`, `dateName`, Julian days, milliseconds, and PostHog's Postgres-compatible
`date_part`, `to_timestamp`, `to_char`, `make_date`, `make_timestamp`, `date_bin`, `timezone`,
`current_date`/`current_timestamp`. Buckets are computed in the project's timezone."""

from __future__ import annotations

from typing import Final

from gateway.hogql import ast
from gateway.hogql import handlers as h
from gateway.hogql.entry import Function, constant, error, f
from gateway.hogql.handlers import INTERVAL_UNITS, SqlPrinter

_INTERVAL_CALLS: Final = {f"toInterval{unit}": unit for unit in INTERVAL_UNITS}
# ClickHouse counts buckets from these origins: the epoch, weeks from Monday 1970-01-05,
# months and years from year 0
_ORIGINS: Final = {"Week": "1970-01-05", "Month": "0000-01-01", "Quarter": "0000-01-01"}
# buckets of a week or longer are Dates; a day bucket stays a DateTime (ClickHouse)
_DATE_UNITS: Final = {"Week", "Month", "Quarter", "Year"}
_PARTS: Final = {
    "year": "year({0})",
    "quarter": "quarter({0})",
    "month": "month({0})",
    "week": "week({0})",
    "day": "day({0})",
    "dow": "dayofweek({0})",  # Postgres: Sunday is 0
    "doy": "dayofyear({0})",
    "hour": "hour({0})",
    "minute": "minute({0})",
    "second": "second({0})",
}
_NAMES: Final = {
    "year": "%Y",
    "quarter": "Q",
    "month": "%B",
    "week": "W",
    "dayofyear": "%-j",
    "day": "%-d",
    "weekday": "%A",
    "hour": "%-H",
    "minute": "%-M",
    "second": "%-S",
}


def _interval(node: ast.Expr) -> tuple[str, int] | None:
    """(unit, n) of a constant interval argument (`INTERVAL 15 minute` is toIntervalMinute(15))."""
    if isinstance(node, ast.Call) and node.name in _INTERVAL_CALLS and len(node.args) == 1:
        amount = constant(node.args[0])
        if isinstance(amount, str) and amount.isdigit():
            amount = int(amount)  # toIntervalDay('1'): ClickHouse reads the text
        if isinstance(amount, int) and not isinstance(amount, bool) and amount > 0:
            return _INTERVAL_CALLS[node.name], amount
    return None


def _check_interval(name: str, node: ast.Call) -> None:
    if _interval(node.args[1]) is None:
        msg = f"{name}'s second argument is a constant positive interval: INTERVAL 15 minute."
        raise error(msg, node.args[1])


def _bucket(p: SqlPrinter, value: str, unit: str, amount: int, origin: str | None) -> str:
    width = f"INTERVAL {amount} {INTERVAL_UNITS[unit]}"
    if unit == "Year":
        width, unit = f"INTERVAL {amount * 12} months", "Month"
    start = origin or f"TIMESTAMP '{_ORIGINS.get(unit, '1970-01-01')}'"
    bucket = f"time_bucket({width}, CAST({value} AS TIMESTAMP), {start})"
    if unit in _DATE_UNITS and origin is None:  # with an origin, buckets start at its time
        return f"CAST({bucket} AS DATE)"
    return bucket


def _start_of_interval(p: SqlPrinter, node: ast.Call) -> str:
    """toStartOfInterval(t, INTERVAL n unit[, origin]); date_bin(INTERVAL, t, origin)."""
    if p.name_of(node) == "date_bin":
        step, value, origin = node.args
        found = _interval(step)
        start: str | None = f"CAST({p.expr(origin)} AS TIMESTAMP)"
    else:
        value, step = node.args[0], node.args[1]
        found = _interval(step)
        start = f"CAST({p.expr(node.args[2])} AS TIMESTAMP)" if len(node.args) == 3 else None
    assert found is not None  # checked by the resolver
    return _bucket(p, p.expr(value), found[0], found[1], start)


def _window(p: SqlPrinter, node: ast.Call) -> str:
    """ClickHouse's window-view functions as plain values: tumble(t, i) is the interval-wide
    bucket [start, end) holding t; hop(t, h, w) the first w-wide window, hopped by h, that
    holds t (it ends where t's h-bucket ends)."""
    name = p.name_of(node)
    found = [_interval(a) for a in node.args[1:]]
    assert all(found)  # checked by the resolver
    (unit, amount), *window = [i for i in found if i is not None]
    start = _bucket(p, f"CAST({p.expr(node.args[0])} AS TIMESTAMP)", unit, amount, None)
    end = f"({start} + INTERVAL {amount} {INTERVAL_UNITS[unit]})"
    if unit in _DATE_UNITS:
        end = f"CAST({end} AS DATE)"  # Dates on both ends (ClickHouse)
    if window:
        (w_unit, w_amount), *_ = window
        start = f"({end} - INTERVAL {w_amount} {INTERVAL_UNITS[w_unit]})"
    if name.endswith("Start"):
        return start
    return end if name.endswith("End") else f"row({start}, {end})"


def _check_windows(name: str, node: ast.Call) -> None:
    for arg in node.args[1:]:
        if _interval(arg) is None:
            msg = f"{name} takes constant positive intervals: toIntervalDay(1)."
            raise error(msg, arg)


def _check_date_bin(_name: str, node: ast.Call) -> None:
    if _interval(node.args[0]) is None:
        msg = "date_bin's first argument is a constant positive interval: INTERVAL 15 minute."
        raise error(msg, node.args[0])


def _every(minutes: int) -> Function:
    return f(1, 1, handler=lambda p, n: _bucket(p, p.expr(n.args[0]), "Minute", minutes, None))


def parse_date_time(p: SqlPrinter, node: ast.Call) -> str:
    """parseDateTime(text, format): the format as formatDateTime's (checked); NULL when the
    text does not match (PostHog prints parseDateTimeOrNull)."""
    fmt = constant(node.args[1])
    assert isinstance(fmt, str)  # checked by the resolver
    text, spec = p.expr(node.args[0]), p.bind(h.strftime_format(fmt))
    parsed = f"try_strptime(CAST({text} AS VARCHAR), {spec})"
    return parsed if p.local else f"CAST({parsed} AS TIMESTAMPTZ)"


def _check_part(name: str, node: ast.Call) -> None:
    part = constant(node.args[0])
    table = _PARTS if name == "date_part" else _NAMES
    if not (isinstance(part, str) and part.lower() in table):
        msg = f"{name}'s first argument is one of {', '.join(table)}."
        raise error(msg, node.args[0])


def _date_part(p: SqlPrinter, node: ast.Call) -> str:
    part = str(constant(node.args[0])).lower()
    return _PARTS[part].format(p.expr(node.args[1]))


def _date_name(p: SqlPrinter, node: ast.Call) -> str:
    part = str(constant(node.args[0])).lower()
    value = p.expr(node.args[1])
    if part == "quarter":
        return f"CAST(quarter({value}) AS VARCHAR)"
    if part == "week":
        return f"CAST(week({value}) AS VARCHAR)"
    return f"strftime({value}, '{_NAMES[part]}')"


def _current(p: SqlPrinter, node: ast.Call) -> str:
    now = p.in_zone("current_timestamp")
    return now if p.name_of(node) == "current_timestamp" else f"CAST({now} AS DATE)"


def _check_zone_last(name: str, node: ast.Call) -> None:
    from gateway.hogql.functions import known_timezone  # noqa: PLC0415 - the registry imports us

    zone = node.args[-1] if name != "timezone" else node.args[0]
    value = constant(zone)
    if not (isinstance(value, str) and known_timezone(value)):
        msg = f"{name}: the timezone must be a known timezone name, as a string constant."
        raise error(msg, zone)


def _make_timestamp(p: SqlPrinter, node: ast.Call) -> str:
    """make_timestamp(y, m, d, h, mi, s[, zone]): a time in the project's zone, or in `zone`."""
    parts = ", ".join(p.expr(a) for a in node.args[:6])
    naive = f"make_timestamp({parts})"
    if len(node.args) == 7:
        zone = constant(node.args[6])
        return p.in_zone(f"timezone({p.bind(zone)}, {naive})")
    return naive


def _check_make_timestamp(name: str, node: ast.Call) -> None:
    if len(node.args) == 7:
        _check_zone_last(name, node)


def _timezone(p: SqlPrinter, node: ast.Call) -> str:
    """timezone('Zone', ts): toTimeZone(ts, 'Zone')."""
    zone = constant(node.args[0])
    return f"timezone({p.bind(zone)}, {p.in_zone(p.expr(node.args[1]))})"


def _check_week(_name: str, node: ast.Call) -> None:
    if len(node.args) >= 2 and constant(node.args[1]) not in (0, 3):
        msg = "toWeek's mode is 0 (weeks start on Sunday) or 3 (ISO weeks) in this gateway."
        raise error(msg, node.args[1])


_LAST_WEEK_DAY: Final = "CAST(CAST({0} AS DATE) + (6 - CAST(dayofweek({0}) AS INTEGER)) AS DATE)"

FUNCTIONS: Final[dict[str, Function]] = {
    "toStartOfInterval": f(
        2, 3, handler=_start_of_interval, check=_check_interval, keeps_zone=True
    ),
    "date_bin": f(3, 3, handler=_start_of_interval, check=_check_date_bin, keeps_zone=True),
    "toStartOfSecond": f(1, 1, "date_trunc('second', {0})", keeps_zone=True),
    **{
        name: f(arity, arity, handler=_window, check=_check_windows, keeps_zone=True)
        for name, arity in {"tumble": 2, "tumbleStart": 2, "tumbleEnd": 2}.items()
        | {"hop": 3, "hopStart": 3, "hopEnd": 3}.items()
    },
    "toStartOfFiveMinutes": _every(5),
    "toStartOfTenMinutes": _every(10),
    "toStartOfFifteenMinutes": _every(15),
    "timeSlot": _every(30),
    "toStartOfISOYear": f(1, 1, "CAST(date_trunc('isoyear', {0}) AS DATE)", kind="date"),
    "toLastDayOfMonth": f(1, 1, "last_day(CAST({0} AS DATE))", kind="date"),
    "toLastDayOfWeek": f(
        1,
        2,
        "CASE WHEN coalesce({1}, 0) = 1 THEN CAST(date_trunc('week', {0}) AS DATE) + 6"
        f" ELSE {_LAST_WEEK_DAY} END",
        kind="date",
    ),
    "toISOYear": f(1, 1, "isoyear({0})"),
    "toWeek": f(
        1,
        2,
        "CASE WHEN coalesce({1}, 0) = 3 THEN weekofyear({0})"
        " ELSE CAST(strftime({0}, '%U') AS INTEGER) END",
        check=_check_week,
    ),
    "toYYYYMMDD": f(1, 1, "(year({0}) * 10000 + month({0}) * 100 + day({0}))"),
    "toYYYYMMDDhhmmss": f(
        1,
        1,
        "(year({0}) * 10000000000 + month({0}) * 100000000 + day({0}) * 1000000"
        " + hour({0}) * 10000 + minute({0}) * 100 + second({0}))",
    ),
    "monthName": f(1, 1, "monthname({0})"),
    "dateName": f(2, 2, handler=_date_name, check=_check_part),
    "date_part": f(2, 2, handler=_date_part, check=_check_part),
    # age: whole units elapsed (dateDiff counts boundaries crossed)
    "age": f(3, 3, "datesub({0}, {1}, {2})", unit_first=True),
    "date_diff": f(3, 3, "date_diff({0}, {1}, {2})", unit_first=True),
    "toModifiedJulianDay": f(1, 1, "(TRY_CAST({0} AS DATE) - DATE '1858-11-17')"),
    "fromModifiedJulianDay": f(1, 1, "(DATE '1858-11-17' + CAST({0} AS INTEGER))", kind="date"),
    "toUnixTimestamp64Milli": f(1, 1, "epoch_ms({0})"),
    "fromUnixTimestamp64Milli": f(1, 1, "to_timestamp(CAST({0} AS DOUBLE) / 1000)"),
    "current_timestamp": f(0, 0, handler=_current),
    "current_date": f(0, 0, handler=_current, kind="date"),
    "to_timestamp": f(1, 1, handler=h.unix),
    "to_date": f(1, 1, "TRY_CAST({0} AS DATE)", kind="date"),
    "make_date": f(3, 3, "make_date({0}, {1}, {2})", kind="date"),
    "make_timestamp": f(6, 7, handler=_make_timestamp, check=_check_make_timestamp),
    "make_timestamptz": f(7, 7, handler=_make_timestamp, check=_check_zone_last),
    "make_interval": f(
        6,
        6,
        "(to_years(CAST({0} AS INTEGER)) + to_months(CAST({1} AS INTEGER))"
        " + to_days(CAST({2} AS INTEGER)) + to_hours(CAST({3} AS INTEGER))"
        " + to_minutes(CAST({4} AS INTEGER)) + to_seconds(CAST({5} AS INTEGER)))",
        interval=True,
    ),
    "timezone": f(2, 2, handler=_timezone, check=_check_zone_last),
    "timeStampAdd": f(2, 2, "({0} + {1})", kind_from=0),
    "timeStampSub": f(2, 2, "({0} - {1})", kind_from=0),
    "date_subtract": f(2, 2, "({0} - {1})", kind_from=0),
}
