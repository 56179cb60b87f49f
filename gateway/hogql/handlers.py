"""Printing handlers: the HogQL functions a template cannot express, rendered from the call
node (as sqlglot's handlers are). The resolver has checked every argument a handler relies on
(through the function's `check` in `functions.py`), so a handler only renders: it never raises.
"""

from __future__ import annotations

import re
from typing import Any, Final, Protocol

from gateway.hogql import ast
from gateway.hogql.binding import json_path

# Functions that build big values out of small ones are capped, so a one-line query cannot
# make the gateway allocate gigabytes: over the cap the query fails with this message.
MAX_BUILT: Final = 10_000_000
SIZE_CAP: Final = (
    "CASE WHEN {0} > "
    + str(MAX_BUILT)
    + " THEN error('Values built by a query are limited to "
    + str(MAX_BUILT)
    + " elements or characters.') ELSE {0} END"
)


def capped_list(sql: str) -> str:
    """An aggregate's list (groupArray) refused past MAX_BUILT elements, as `range`'s cap: over
    it the query fails before the value reaches the gateway (DuckDB computes the list once)."""
    too_big = f"error('Values built by a query are limited to {MAX_BUILT} elements or characters.')"
    return f"CASE WHEN len({sql}) > {MAX_BUILT} THEN {too_big} ELSE {sql} END"


# addDays(d, n), subtractHours(d, n), toIntervalWeek(n): HogQL unit → DuckDB interval unit
INTERVAL_UNITS: Final = {
    "Second": "seconds",
    "Minute": "minutes",
    "Hour": "hours",
    "Day": "days",
    "Week": "weeks",
    "Month": "months",
    "Quarter": "quarters",
    "Year": "years",
}
_UNIT_PLURAL: Final = {unit.lower(): plural for unit, plural in INTERVAL_UNITS.items()}
# ClickHouse formatDateTime → strftime (%M is the month name, ClickHouse's default since 23.4)
STRFTIME: Final = {
    "Y": "%Y",
    "y": "%y",
    "m": "%m",
    "c": "%m",
    "d": "%d",
    "H": "%H",
    "I": "%I",
    "i": "%M",
    "M": "%B",
    "S": "%S",
    "s": "%S",
    "F": "%Y-%m-%d",
    "T": "%H:%M:%S",
    "D": "%m/%d/%y",
    "R": "%H:%M",
    "j": "%j",
    "u": "%u",
    "w": "%w",
    "V": "%V",
    "a": "%a",
    "b": "%b",
    "h": "%I",
    "p": "%p",
    "f": "%f",
    "z": "%z",
    "n": "\n",
    "t": "\t",
    "%": "%%",
}
JSON_READERS: Final = {
    # name: (extraction, ClickHouse's answer for a missing key or text that is not JSON)
    "JSONExtractString": ("json_extract_string({d}, {w})", "''"),
    "JSONExtractInt": ("TRY_CAST(json_extract_string({d}, {w}) AS BIGINT)", "0"),
    "JSONExtractFloat": ("TRY_CAST(json_extract_string({d}, {w}) AS DOUBLE)", "0"),
    "JSONExtractBool": ("TRY_CAST(json_extract_string({d}, {w}) AS BOOLEAN)", "FALSE"),
    "JSONExtractRaw": ("CAST(json_extract({d}, {w}) AS VARCHAR)", "''"),
    "JSONHas": ("json_exists({d}, {w})", "FALSE"),
}


class SqlPrinter(Protocol):
    """What a handler may ask of the printer (DuckDBPrinter implements it)."""

    @property
    def local(self) -> bool:
        """True when the project's timezone is not UTC (datetimes are naive local times)."""

    def expr(self, node: ast.Expr) -> str: ...
    def predicate(self, node: ast.Expr) -> str: ...
    def bind(self, value: Any) -> str: ...
    def in_zone(self, sql: str) -> str: ...
    def name_of(self, node: ast.Call) -> str: ...
    def literal(self, node: ast.Expr) -> str: ...
    def is_date(self, node: ast.Expr) -> bool: ...
    def distinct_value(self, node: ast.Expr) -> str: ...


def _shifted(
    p: SqlPrinter, node: ast.Call, date: ast.Expr, unit: str, amount: str, sign: str
) -> str:
    """date ± n units; a Date stays a Date (ClickHouse), DuckDB would make it a timestamp."""
    shifted = f"({p.expr(date)} {sign} to_{unit}(CAST({amount} AS INTEGER)))"
    whole_days = unit not in {"seconds", "minutes", "hours"}
    return f"CAST({shifted} AS DATE)" if p.is_date(node) and whole_days else shifted


def shift(p: SqlPrinter, node: ast.Call) -> str:
    """addDays(d, n), subtractHours(d, n)…"""
    name = p.name_of(node)
    sign = "+" if name.startswith("add") else "-"
    unit = INTERVAL_UNITS[name.removeprefix("add").removeprefix("subtract").removesuffix("s")]
    return _shifted(p, node, node.args[0], unit, p.expr(node.args[1]), sign)


def interval(p: SqlPrinter, node: ast.Call) -> str:
    """toIntervalWeek(n)…"""
    unit = INTERVAL_UNITS[p.name_of(node).removeprefix("toInterval")]
    return f"to_{unit}(CAST({p.expr(node.args[0])} AS INTEGER))"


def date_add(p: SqlPrinter, node: ast.Call) -> str:
    """dateAdd('unit', n, d), dateSub, date_add, date_sub."""
    unit = _UNIT_PLURAL[p.literal(node.args[0])]
    sign = "-" if p.name_of(node) in {"dateSub", "date_sub"} else "+"
    return _shifted(p, node, node.args[2], unit, p.expr(node.args[1]), sign)


def range_(p: SqlPrinter, node: ast.Call) -> str:
    """range(end), range(start, end), with its size cap."""
    args = [p.expr(a) for a in node.args]
    start, end = ("0", args[0]) if len(args) == 1 else (args[0], args[1])
    return f"range({start}, {start} + {SIZE_CAP.format(f'({end}) - ({start})')})"


def logical(p: SqlPrinter, node: ast.Call) -> str:
    """and(…), or(…): NULL is false."""
    joined = f" {p.name_of(node).upper()} ".join(f"coalesce({p.expr(a)}, FALSE)" for a in node.args)
    return f"({joined})"


def concat(p: SqlPrinter, node: ast.Call) -> str:
    """concat treats NULL as ''."""
    args = ", ".join(f"coalesce(CAST({p.expr(a)} AS VARCHAR), '')" for a in node.args)
    return f"concat({args})"


def multi_if(p: SqlPrinter, node: ast.Call) -> str:
    """multiIf(c1, v1, …, else) as CASE."""
    args = node.args
    whens = " ".join(
        f"WHEN {p.expr(args[i])} THEN {p.expr(args[i + 1])}" for i in range(0, len(args) - 1, 2)
    )
    return f"CASE {whens} ELSE {p.expr(args[-1])} END"


_UNIT_US: Final = {
    "toStartOfMinute": ("minute", 60_000_000),
    "toStartOfHour": ("hour", 3_600_000_000),
    "toStartOfDay": ("day", 86_400_000_000),
}


def _floor_us(value: str, unit_us: int) -> str:
    """Microseconds since 1970 of `value`, floored to a multiple of `unit_us` (before 1970
    too: DuckDB's `%` keeps the dividend's sign)."""
    us = f"epoch_us({value})"
    return f"({us} - ((({us} % {unit_us}) + {unit_us}) % {unit_us}))"


def start_of(p: SqlPrinter, node: ast.Call) -> str:
    """toStartOfMinute/Hour/Day. On a column (a timestamp of a table or subquery) by integer
    arithmetic on its microseconds: the same instants as `date_trunc`, which goes through
    calendar fields and costs ~4x more per row (trends group millions of rows by it)."""
    unit, unit_us = _UNIT_US[p.name_of(node)]
    value = p.expr(node.args[0])
    if not isinstance(node.args[0], ast.Field):
        return f"date_trunc('{unit}', {value})"
    floor = _floor_us(value, unit_us)
    # naive local times stay naive; instants (UTC projects) stay instants (make_timestamptz of
    # microseconds: the instant `to_timestamp(seconds)` gives, without its conversion through
    # a double, ~a third of the bucket's cost)
    return f"make_timestamp({floor})" if p.local else f"make_timestamptz({floor})"


def day_number(p: SqlPrinter, field: ast.Expr) -> str:
    """The day `toStartOfDay(field)` of a column is, as days since 1970 (BIGINT; NULL for
    NULL): what gateway/hogql/bitmaps.py numbers its days by, one number per bucket."""
    return f"({_floor_us(p.expr(field), 86_400_000_000)} // 86400000000)"


_DAY_US: Final = 86_400_000_000
_WEEK_US: Final = 7 * _DAY_US
# below this many microseconds (year ~146,000) `us + 4 days` cannot overflow BIGINT
_SAFE_US: Final = 2**62


def _week_start_day(value: str, mode: int) -> str:
    """Day number (days since 1970-01-01) of the Sunday (mode 0) or Monday (mode 1) that
    starts the week holding `value`: 7·floor((us + s) / week) - s/day, s = 4 days for Sunday
    (1970-01-01 was a Thursday), 3 for Monday. One 64-bit division a row, where a floor to the
    day and then to the week took five (36 % of weekly active users' CPU). DuckDB's `//`
    truncates, so it floors only a non-negative dividend: before the week holding 1970 the
    dividend is moved up by one (⌊x/w⌋ = trunc((x + 1)/w) - 1 for x < 0), and instants within
    `s` of DuckDB's last timestamp, where `us + s` would overflow, subtract a week first."""
    shift = (4 - mode) * _DAY_US
    us = f"epoch_us({value})"
    week = (
        f"CASE WHEN {us} >= -{shift} AND {us} < {_SAFE_US} THEN ({us} + {shift}) // {_WEEK_US}"
        f" WHEN {us} < 0 THEN ({us} + {shift + 1}) // {_WEEK_US} - 1"
        f" ELSE ({us} - {_WEEK_US - shift}) // {_WEEK_US} + 1 END"
    )
    return f"(7 * ({week}) - {4 - mode})"


def start_of_week(p: SqlPrinter, node: ast.Call) -> str:
    """toStartOfWeek(d[, mode]): mode 0 weeks start on Sunday (ClickHouse's default), 1 Monday."""
    mode = 0
    if len(node.args) == 2:
        given = node.args[1]
        assert isinstance(given, ast.Constant)  # checked by the resolver
        mode = int(given.value)
    value = p.expr(node.args[0])
    if isinstance(node.args[0], ast.Field):
        return f"CAST(DATE '1970-01-01' + CAST({_week_start_day(value, mode)} AS INTEGER) AS DATE)"
    if mode == 1:
        return f"CAST(date_trunc('week', {value}) AS DATE)"
    return f"CAST(CAST({value} AS DATE) - CAST(dayofweek({value}) AS INTEGER) AS DATE)"


def strftime_format(text: str) -> str:
    """A ClickHouse format as strftime's (every `%x` in STRFTIME: checked by the resolver)."""
    out, i = [], 0
    while i < len(text):
        if text[i] != "%":
            out.append(text[i])
            i += 1
            continue
        out.append(STRFTIME[text[i + 1 : i + 2]])
        i += 2
    return "".join(out)


def format_date_time(p: SqlPrinter, node: ast.Call) -> str:
    fmt = node.args[1]
    assert isinstance(fmt, ast.Constant)  # checked by the resolver
    return f"strftime({p.expr(node.args[0])}, {p.bind(strftime_format(str(fmt.value)))})"


# -- time: the project's timezone -------------------------------------------------------------


def now(p: SqlPrinter, node: ast.Call) -> str:
    """now(), today(), yesterday(): in the project's timezone."""
    current = p.in_zone("current_timestamp")
    return {
        "now": current,
        "today": f"CAST({current} AS DATE)",
        "yesterday": f"CAST({current} AS DATE) - 1",
    }[p.name_of(node)]


def parse_datetime(p: SqlPrinter, node: ast.Call) -> str:
    """A string as a datetime: with an offset it is that instant; without, a time in the
    project's timezone (HOGQL.md: literals are read in it). NULL when unparseable."""
    text = p.expr(node.args[0])
    if not p.local:
        return f"TRY_CAST({text} AS TIMESTAMPTZ)"
    offset = p.bind(r"(Z|[+-]\d\d(:?\d\d)?)$")
    return (
        f"CASE WHEN regexp_matches(CAST({text} AS VARCHAR), {offset})"
        f" THEN {p.in_zone(f'TRY_CAST({text} AS TIMESTAMPTZ)')}"
        f" ELSE TRY_CAST({text} AS TIMESTAMP) END"
    )


def unix(p: SqlPrinter, node: ast.Call) -> str:
    """toUnixTimestamp(d), fromUnixTimestamp(n): seconds since the epoch of an instant."""
    value = p.expr(node.args[0])
    if p.name_of(node) == "toUnixTimestamp":
        return f"CAST(epoch({p.in_zone(value)}) AS BIGINT)"
    return p.in_zone(f"to_timestamp(CAST({value} AS DOUBLE))")


def to_time_zone(p: SqlPrinter, node: ast.Call) -> str:
    """toTimeZone(ts, 'Zone'): the same instant as a time in that zone (shown with it);
    toTimeZone(ts): in the project's zone, which its datetimes already are."""
    if len(node.args) == 1:
        return p.expr(node.args[0])
    zone = node.args[1]
    assert isinstance(zone, ast.Constant)  # a known zone: checked by the resolver
    value = p.expr(node.args[0])
    return f"timezone({p.bind(zone.value)}, {p.in_zone(value)})"


def json_extract(p: SqlPrinter, node: ast.Call) -> str:
    """JSONExtractString(text, key, …) and friends over JSON text, keys as a bound path."""
    path: list[str | int] = []
    for key in node.args[1:]:
        assert isinstance(key, ast.Constant)  # checked by the resolver
        path.append(key.value)
    document = p.expr(node.args[0])
    extraction, default = JSON_READERS[p.name_of(node)]
    inner = extraction.format(d=document, w=p.bind(json_path(tuple(path))))
    # NULL for a NULL document (a missing property), the default for text that is no JSON
    guarded = f"coalesce(CASE WHEN json_valid({document}) THEN {inner} END, {default})"
    return f"CASE WHEN {document} IS NOT NULL THEN {guarded} END"


def extract(p: SqlPrinter, node: ast.Call) -> str:
    """extract(s, pattern): the first capture group, or the whole match without one; '' when
    nothing matches (ClickHouse)."""
    pattern = node.args[1]
    group = 0
    if isinstance(pattern, ast.Constant) and isinstance(pattern.value, str):
        try:
            group = min(re.compile(pattern.value).groups, 1)
        except re.error:  # RE2 syntax Python does not know: count groups by hand
            group = int(re.search(r"\((?!\?)", pattern.value.replace("\\(", "")) is not None)
    return f"regexp_extract({p.expr(node.args[0])}, {p.expr(pattern)}, {group})"


def case_with_expression(p: SqlPrinter, node: ast.Call) -> str:
    """CASE x WHEN a THEN b … ELSE c END."""
    args = node.args
    whens = " ".join(
        f"WHEN {p.expr(args[i])} THEN {p.expr(args[i + 1])}" for i in range(1, len(args) - 1, 2)
    )
    return f"CASE {p.expr(args[0])} {whens} ELSE {p.expr(args[-1])} END"
