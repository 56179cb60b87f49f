"""HogQL functions this gateway runs, with arity and how DuckDB spells them.

A call to anything else is an error (HogQL has a closed function list); the message suggests
the closest known name, as PostHog's does.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Final

from gateway.hogql.errors import HogQLQueryError


@dataclass(frozen=True, kw_only=True)
class Function:
    min_args: int
    max_args: int
    # DuckDB template: {0}, {1}… are the rendered arguments; {args} is all of them, comma-joined
    template: str
    aggregate: bool = False


def _f(min_args: int, max_args: int, template: str, *, aggregate: bool = False) -> Function:
    return Function(min_args=min_args, max_args=max_args, template=template, aggregate=aggregate)


FUNCTIONS: Final[dict[str, Function]] = {
    # aggregates
    "count": _f(0, 1, "count({args})", aggregate=True),  # count() → count(*), see printer
    "sum": _f(1, 1, "sum({0})", aggregate=True),
    "avg": _f(1, 1, "avg({0})", aggregate=True),
    "min": _f(1, 1, "min({0})", aggregate=True),
    "max": _f(1, 1, "max({0})", aggregate=True),
    # `uniq` may be exact (HOGQL.md); DuckDB's exact count distinct is used.
    "uniq": _f(1, 1, "count(DISTINCT {0})", aggregate=True),
    "uniqExact": _f(1, 1, "count(DISTINCT {0})", aggregate=True),
    "any": _f(1, 1, "any_value({0})", aggregate=True),
    "anyLast": _f(1, 1, "last({0})", aggregate=True),
    "argMax": _f(2, 2, "arg_max({0}, {1})", aggregate=True),
    "argMin": _f(2, 2, "arg_min({0}, {1})", aggregate=True),
    # groupArray skips NULLs and is [] (not NULL) over no rows
    "groupArray": _f(
        1, 1, "coalesce(list({0}) FILTER (WHERE {0} IS NOT NULL), [])", aggregate=True
    ),
    "median": _f(1, 1, "median({0})", aggregate=True),
    "avgIf": _f(2, 2, "avg({0}) FILTER (WHERE {1})", aggregate=True),
    "uniqIf": _f(2, 2, "count(DISTINCT {0}) FILTER (WHERE {1})", aggregate=True),
    "countIf": _f(1, 1, "count(*) FILTER (WHERE {0})", aggregate=True),
    "sumIf": _f(2, 2, "sum({0}) FILTER (WHERE {1})", aggregate=True),
    # dates (UTC in this slice: project timezones are not applied yet)
    "now": _f(0, 0, "current_timestamp"),
    "today": _f(0, 0, "current_date"),
    "toDate": _f(1, 1, "TRY_CAST({0} AS DATE)"),
    "toDateTime": _f(1, 1, "TRY_CAST({0} AS TIMESTAMPTZ)"),
    "toStartOfHour": _f(1, 1, "date_trunc('hour', {0})"),
    "toStartOfDay": _f(1, 1, "date_trunc('day', {0})"),
    # ClickHouse returns a Date for these
    "toStartOfMonth": _f(1, 1, "CAST(date_trunc('month', {0}) AS DATE)"),
    "toStartOfYear": _f(1, 1, "CAST(date_trunc('year', {0}) AS DATE)"),
    "toStartOfQuarter": _f(1, 1, "CAST(date_trunc('quarter', {0}) AS DATE)"),
    "toStartOfMinute": _f(1, 1, "date_trunc('minute', {0})"),
    # DuckDB weeks start on Monday, as toMonday does
    "toMonday": _f(1, 1, "CAST(date_trunc('week', {0}) AS DATE)"),
    # ClickHouse's default week starts on Sunday, and the result is a Date
    "toStartOfWeek": _f(1, 1, "CAST(CAST({0} AS DATE) - CAST(dayofweek({0}) AS INTEGER) AS DATE)"),
    "toYYYYMM": _f(1, 1, "(year({0}) * 100 + month({0}))"),
    "toDayOfMonth": _f(1, 1, "day({0})"),
    "toMinute": _f(1, 1, "minute({0})"),
    "addHours": _f(2, 2, "({0} + to_hours(CAST({1} AS BIGINT)))"),
    "addMinutes": _f(2, 2, "({0} + to_minutes(CAST({1} AS BIGINT)))"),
    "subtractHours": _f(2, 2, "({0} - to_hours(CAST({1} AS BIGINT)))"),
    # dateDiff('unit', a, b) counts unit boundaries crossed, as DuckDB's date_diff does; the
    # unit must be a constant from DATE_UNITS (printed as a literal, see the printer)
    "dateDiff": _f(3, 3, "date_diff({0}, {1}, {2})"),
    "toYear": _f(1, 1, "year({0})"),
    "toMonth": _f(1, 1, "month({0})"),
    "toHour": _f(1, 1, "hour({0})"),
    # ClickHouse: Monday = 1 … Sunday = 7 (DuckDB's isodow)
    "toDayOfWeek": _f(1, 1, "isodow({0})"),
    # strings
    "lower": _f(1, 1, "lower({0})"),
    "upper": _f(1, 1, "upper({0})"),
    # ClickHouse's length counts bytes
    "length": _f(1, 1, "strlen(CAST({0} AS VARCHAR))"),
    # concat treats NULL as ''
    "concat": _f(1, 64, "concat({args})"),
    "toString": _f(1, 1, "CAST({0} AS VARCHAR)"),
    "startsWith": _f(2, 2, "starts_with({0}, {1})"),
    "endsWith": _f(2, 2, "ends_with({0}, {1})"),
    "replaceAll": _f(3, 3, "replace({0}, {1}, {2})"),
    "trim": _f(1, 1, "trim({0})"),
    # note the argument order: ClickHouse splitByChar(separator, string)
    "splitByChar": _f(2, 2, "string_split({1}, {0})"),
    # RE2 in both engines
    "match": _f(2, 2, "regexp_matches({0}, {1})"),
    "replaceRegexpAll": _f(3, 3, "regexp_replace({0}, {1}, {2}, 'g')"),
    # conversions: NULL on bad input, as ClickHouse's *OrNull
    "toInt": _f(1, 1, "TRY_CAST({0} AS BIGINT)"),
    "toFloat": _f(1, 1, "TRY_CAST({0} AS DOUBLE)"),
    "toIntOrNull": _f(1, 1, "TRY_CAST({0} AS BIGINT)"),
    "toFloatOrNull": _f(1, 1, "TRY_CAST({0} AS DOUBLE)"),
    "toUUID": _f(1, 1, "TRY_CAST({0} AS UUID)"),
    "toIntOrZero": _f(1, 1, "coalesce(TRY_CAST({0} AS BIGINT), 0)"),
    "toFloatOrZero": _f(1, 1, "coalesce(TRY_CAST({0} AS DOUBLE), 0)"),
    # conditionals
    "if": _f(3, 3, "CASE WHEN {0} THEN {1} ELSE {2} END"),
    "coalesce": _f(1, 64, "coalesce({args})"),
    "ifNull": _f(2, 2, "coalesce({0}, {1})"),
    "nullIf": _f(2, 2, "nullif({0}, {1})"),
    "isNull": _f(1, 1, "({0} IS NULL)"),
    "isNotNull": _f(1, 1, "({0} IS NOT NULL)"),
    # math
    "round": _f(1, 2, "round({args})"),
    "floor": _f(1, 1, "floor({0})"),
    "ceil": _f(1, 1, "ceil({0})"),
    "abs": _f(1, 1, "abs({0})"),
    "intDiv": _f(2, 2, "({0} // {1})"),
}
# Window-only functions; aggregates from FUNCTIONS may also take OVER (…).
WINDOW_FUNCTIONS: Final[dict[str, Function]] = {
    "row_number": _f(0, 0, "row_number()"),
    "rank": _f(0, 0, "rank()"),
    "dense_rank": _f(0, 0, "dense_rank()"),
    "lag": _f(1, 3, "lag({args})"),
    "lead": _f(1, 3, "lead({args})"),
    "first_value": _f(1, 1, "first_value({0})"),
    "last_value": _f(1, 1, "last_value({0})"),
}


def window_lookup(name: str, *, start: int | None, end: int | None) -> tuple[str, Function]:
    if name in WINDOW_FUNCTIONS:
        return name, WINDOW_FUNCTIONS[name]
    canonical, function = lookup(name, start=start, end=end)
    if not function.aggregate:
        msg = f"{canonical}(...) cannot be used as a window function."
        raise HogQLQueryError(msg, start=start, end=end)
    return canonical, function


# dateDiff units (printed as SQL literals after this check, never as user text)
DATE_UNITS: Final = frozenset(
    {"second", "minute", "hour", "day", "week", "month", "quarter", "year"}
)
# HogQL accepts these in any case (HOGQL.md); every other name is case-sensitive.
_CASE_INSENSITIVE: Final = {
    name.lower(): name
    for name in (
        "count",
        "min",
        "max",
        "sum",
        "avg",
        "if",
        "coalesce",
        "ifNull",
        "nullIf",
        "isNull",
        "now",
    )
}


def lookup(name: str, *, start: int | None, end: int | None) -> tuple[str, Function]:
    canonical = name if name in FUNCTIONS else _CASE_INSENSITIVE.get(name.lower(), name)
    function = FUNCTIONS.get(canonical)
    if function is None:
        close = difflib.get_close_matches(name, FUNCTIONS, n=1)
        hint = f" Perhaps you meant '{close[0]}(...)'?" if close else ""
        msg = f"Unsupported function call '{name}(...)'.{hint}"
        raise HogQLQueryError(msg, start=start, end=end)
    return canonical, function
