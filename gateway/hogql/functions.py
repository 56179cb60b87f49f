"""The function registry: one `Function` entry per HogQL function this gateway runs, holding
everything about it (arity, aggregate or not, argument shapes, the resolver's check, and how
DuckDB spells it: a template or a handler from `handlers.py`). Adding a function is one entry.

A call to anything else is an error (HogQL has a closed function list); the message suggests
the closest known name, as PostHog's does. `FUNCTIONS` and `WINDOW_FUNCTIONS` are plain dicts
of frozen entries: enumerate them for docs (`registry()`).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterator
from typing import Any, Final

import pytz

from gateway.hogql import (
    ast,
    functions_arrays,
    functions_dates,
    functions_json,
    functions_ops,
    functions_text,
    uniq,
)
from gateway.hogql import handlers as h
from gateway.hogql.catalogue import refusal
from gateway.hogql.entry import Function, error, f
from gateway.hogql.errors import HogQLQueryError, HogQLUnsupported
from gateway.hogql.handlers import INTERVAL_UNITS, SIZE_CAP, STRFTIME

__all__ = [
    "DATE_UNITS",
    "FUNCTIONS",
    "WINDOW_FUNCTIONS",
    "Function",
    "known_timezone",
    "lookup",
    "registry",
    "window_lookup",
]

_f = f
_error = error


def known_timezone(name: str) -> bool:
    """An IANA timezone name (pytz's database, which DuckDB's ICU knows too)."""
    return name in pytz.all_timezones_set


# -- checks the resolver runs (a handler relies on them) -------------------------------------


def _check_multi_if(_name: str, node: ast.Call) -> None:
    if len(node.args) % 2 == 0:
        msg = "multiIf takes condition, value pairs and a default: multiIf(c1, v1, …, else)."
        raise _error(msg, node)


def _check_week_mode(_name: str, node: ast.Call) -> None:
    if len(node.args) == 2:
        given = node.args[1]
        if not (isinstance(given, ast.Constant) and given.value in (0, 1)):
            msg = "toStartOfWeek's mode is 0 (weeks start on Sunday) or 1 (Monday)."
            raise _error(msg, given)


def _check_format(_name: str, node: ast.Call) -> None:
    fmt = node.args[1]
    if not (isinstance(fmt, ast.Constant) and isinstance(fmt.value, str)):
        msg = "formatDateTime's format must be a string constant."
        raise _error(msg, fmt)
    text, i = fmt.value, 0
    while i < len(text):
        if text[i] != "%":
            i += 1
            continue
        spec = text[i + 1 : i + 2]
        if spec not in STRFTIME:
            msg = f"formatDateTime: %{spec} is not supported by this gateway yet."
            raise HogQLUnsupported(msg, start=fmt.start, end=fmt.end)
        i += 2


def _check_zone(_name: str, node: ast.Call) -> None:
    if len(node.args) == 1:
        return  # toTimeZone(ts): the project's zone (PostHog appends it)
    zone = node.args[1]
    if not (isinstance(zone, ast.Constant) and isinstance(zone.value, str)):
        msg = "toTimeZone's timezone must be a string constant."
        raise _error(msg, zone)
    if not known_timezone(zone.value):
        msg = f"Unknown timezone: '{zone.value}'."
        raise _error(msg, zone)


def _check_json_keys(name: str, node: ast.Call) -> None:
    for key in node.args[1:]:
        value = key.value if isinstance(key, ast.Constant) else None
        if isinstance(value, bool) or not isinstance(value, str | int) or value == 0:
            msg = f"{name} takes keys as string constants or 1-based indices."
            raise _error(msg, key)
    for key in node.args[1:]:
        if isinstance(key, ast.Constant) and isinstance(key.value, int) and key.value < 1:
            msg = "Array indices start at 1."
            raise _error(msg, key)


def _check_case(_name: str, node: ast.Call) -> None:
    if len(node.args) % 2:
        msg = "CASE x WHEN … takes WHEN value THEN result pairs and an ELSE."
        raise _error(msg, node)


# entries several names share
_JSON: Final = Function(min_args=2, max_args=16, handler=h.json_extract, check=_check_json_keys)
_PARSE_DATETIME: Final = Function(min_args=1, max_args=1, handler=h.parse_datetime)
_DATE_ADD: Final = Function(
    min_args=3, max_args=3, handler=h.date_add, unit_first=True, kind_from=2
)
_LAMBDA: Final[dict[str, Any]] = {"kind": "array", "lambda_first": True}
_TIME_UNITS: Final = {"Second", "Minute", "Hour"}
# toInt/accurateCastOrNull(x, 'Int64'): text only when it is an integer ('3.5' and ' 3' are
# NULL), a number only when it is whole (3.7 is NULL); DuckDB's cast would round both
_TO_INT: Final = (
    "CASE WHEN typeof({0}) = 'VARCHAR' THEN CASE WHEN regexp_full_match(CAST({0} AS VARCHAR),"
    " '[+-]?[0-9]+') THEN TRY_CAST({0} AS BIGINT) END WHEN TRY_CAST({0} AS DOUBLE)"
    " = trunc(TRY_CAST({0} AS DOUBLE)) THEN TRY_CAST({0} AS BIGINT) END"
)


# URL parts (RE2, both engines): scheme-relative and schemeless URLs as ClickHouse takes them
_HOST = r"'^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//(?:[^/?#@]*@)?([^/?#:]*)'"
_PATH = r"'^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//[^/?#]*([^?#]*)'"


FUNCTIONS: Final[dict[str, Function]] = {
    # aggregates
    "count": _f(0, 1, "count({args})", aggregate=True),  # count() → count(*), see printer
    "sum": _f(1, 1, "sum({0})", aggregate=True),
    "avg": _f(1, 1, "avg({0})", aggregate=True),
    "min": _f(1, 1, "min({0})", aggregate=True, kind_from=0, keeps_zone=True),
    "max": _f(1, 1, "max({0})", aggregate=True, kind_from=0, keeps_zone=True),
    # `uniq` may be exact (HOGQL.md): distinct values; `distinct_id`'s as the 64-bit hashes
    # the store keeps (gateway/hogql/uniq.py); the template is for `uniq(x) OVER (…)`
    "uniq": _f(1, 1, "count(DISTINCT {0})", handler=uniq.uniq, aggregate=True),
    "uniqExact": _f(1, 1, "count(DISTINCT {0})", aggregate=True),
    "any": _f(1, 1, "any_value({0})", aggregate=True, kind_from=0, keeps_zone=True),
    "anyLast": _f(1, 1, "last({0})", aggregate=True, kind_from=0, keeps_zone=True),
    "argMax": _f(2, 2, "arg_max({0}, {1})", aggregate=True),
    "argMin": _f(2, 2, "arg_min({0}, {1})", aggregate=True),
    # groupArray skips NULLs and is [] (not NULL) over no rows
    "groupArray": _f(
        1,
        1,
        h.capped_list("coalesce(list({0}) FILTER (WHERE {0} IS NOT NULL){over}, [])"),
        aggregate=True,
        kind="array",
    ),
    "median": _f(1, 1, "median({0})", aggregate=True),
    # dates: now/today/yesterday and parsing are in the project's timezone (handlers)
    "now": _f(0, 0, handler=h.now),
    "today": _f(0, 0, handler=h.now, kind="date"),
    "toDate": _f(1, 1, "TRY_CAST({0} AS DATE)", kind="date"),
    "toDateTime": _PARSE_DATETIME,
    "toStartOfHour": _f(1, 1, handler=h.start_of, keeps_zone=True),
    "toStartOfDay": _f(1, 1, handler=h.start_of, keeps_zone=True),
    # ClickHouse returns a Date for these
    "toStartOfMonth": _f(
        1, 1, "CAST(date_trunc('month', {0}) AS DATE)", kind="date", keeps_zone=True
    ),
    "toStartOfYear": _f(
        1, 1, "CAST(date_trunc('year', {0}) AS DATE)", kind="date", keeps_zone=True
    ),
    "toStartOfQuarter": _f(
        1, 1, "CAST(date_trunc('quarter', {0}) AS DATE)", kind="date", keeps_zone=True
    ),
    "toStartOfMinute": _f(1, 1, handler=h.start_of, keeps_zone=True),
    # DuckDB weeks start on Monday, as toMonday does
    "toMonday": _f(1, 1, "CAST(date_trunc('week', {0}) AS DATE)", kind="date"),
    # ClickHouse's default week starts on Sunday, and the result is a Date
    "toStartOfWeek": _f(
        1, 2, handler=h.start_of_week, check=_check_week_mode, kind="date", keeps_zone=True
    ),
    "toYYYYMM": _f(1, 1, "(year({0}) * 100 + month({0}))"),
    "toDayOfMonth": _f(1, 1, "day({0})"),
    "toMinute": _f(1, 1, "minute({0})"),
    # dateDiff('unit', a, b) counts unit boundaries crossed, as DuckDB's date_diff does; the
    # unit must be a constant from DATE_UNITS (printed as a checked literal)
    "dateDiff": _f(3, 3, "date_diff({0}, {1}, {2})", unit_first=True),
    "toYear": _f(1, 1, "year({0})"),
    "toMonth": _f(1, 1, "month({0})"),
    "toHour": _f(1, 1, "hour({0})"),
    # ClickHouse: Monday = 1 … Sunday = 7 (DuckDB's isodow)
    "toDayOfWeek": _f(1, 1, "isodow({0})"),
    # strings
    "lower": _f(1, 1, "lower({0})"),
    "upper": _f(1, 1, "upper({0})"),
    # ClickHouse's length counts bytes (of a string; of an array: its elements)
    "length": _f(1, 1, "strlen(CAST({0} AS VARCHAR))", array_template="len({0})"),
    # concat treats NULL as ''
    "concat": _f(1, 64, handler=h.concat),
    "toString": _f(1, 1, "CAST({0} AS VARCHAR)"),
    "startsWith": _f(2, 2, "starts_with({0}, {1})"),
    "endsWith": _f(2, 2, "ends_with({0}, {1})"),
    "replaceAll": _f(3, 3, "replace({0}, {1}, {2})"),
    "trim": _f(1, 1, "trim({0})"),
    # note the argument order: ClickHouse splitByChar(separator, string)
    "splitByChar": _f(2, 2, "string_split({1}, {0})", kind="array"),
    # RE2 in both engines
    "match": _f(2, 2, "regexp_matches({0}, {1})"),
    "replaceRegexpAll": _f(3, 3, "regexp_replace({0}, {1}, {2}, 'g')"),
    # conversions: NULL on bad input, as ClickHouse's *OrNull
    "toInt": _f(1, 1, _TO_INT),
    "toFloat": _f(1, 1, "TRY_CAST({0} AS DOUBLE)"),
    "toIntOrNull": _f(1, 1, _TO_INT),
    "toFloatOrNull": _f(1, 1, "TRY_CAST({0} AS DOUBLE)"),
    "toUUID": _f(1, 1, "TRY_CAST({0} AS UUID)"),
    # *OrZero: 0 for text that is no number, but NULL stays NULL (ClickHouse)
    "toIntOrZero": _f(1, 1, "CASE WHEN {0} IS NOT NULL THEN coalesce(" + _TO_INT + ", 0) END"),
    "toFloatOrZero": _f(
        1, 1, "CASE WHEN {0} IS NOT NULL THEN coalesce(TRY_CAST({0} AS DOUBLE), 0) END"
    ),
    # conditionals
    "if": _f(3, 3, "CASE WHEN {0} THEN {1} ELSE {2} END"),
    "coalesce": _f(1, 64, "coalesce({args})", kind_from=0, keeps_zone=True),
    "ifNull": _f(2, 2, "coalesce({0}, {1})", kind_from=0, keeps_zone=True),
    "nullIf": _f(2, 2, "nullif({0}, {1})", kind_from=0, keeps_zone=True),
    "isNull": _f(1, 1, "({0} IS NULL)"),
    "isNotNull": _f(1, 1, "({0} IS NOT NULL)"),
    # parametric and more aggregates
    "quantile": _f(1, 1, "quantile_cont({0}, {p0})", aggregate=True, params=(1, 1)),
    "quantiles": _f(1, 1, "quantile_cont({0}, [{params}])", aggregate=True, params=(1, 32)),
    "topK": _f(1, 1, "approx_top_k({0}, {p0})", aggregate=True, params=(1, 1), kind="array"),
    "groupUniqArray": _f(
        1,
        1,
        h.capped_list("coalesce(list(DISTINCT {0}) FILTER (WHERE {0} IS NOT NULL){over}, [])"),
        aggregate=True,
        kind="array",
    ),
    "stddevPop": _f(1, 1, "stddev_pop({0})", aggregate=True),
    "stddevSamp": _f(1, 1, "stddev_samp({0})", aggregate=True),
    "varPop": _f(1, 1, "var_pop({0})", aggregate=True),
    "varSamp": _f(1, 1, "var_samp({0})", aggregate=True),
    "corr": _f(2, 2, "corr({0}, {1})", aggregate=True),
    # more dates
    "yesterday": _f(0, 0, handler=h.now, kind="date"),
    "toQuarter": _f(1, 1, "quarter({0})"),
    "toSecond": _f(1, 1, "second({0})"),
    "toDayOfYear": _f(1, 1, "dayofyear({0})"),
    "toISOWeek": _f(1, 1, "weekofyear({0})"),
    "toUnixTimestamp": _f(1, 1, handler=h.unix),
    "fromUnixTimestamp": _f(1, 1, handler=h.unix),
    "toDateOrNull": _f(1, 1, "TRY_CAST({0} AS DATE)", kind="date"),
    "toDateTimeOrNull": _PARSE_DATETIME,
    # the precision (second argument) is accepted: datetimes here always keep microseconds
    "toDateTime64": dataclasses.replace(_PARSE_DATETIME, max_args=2),
    "parseDateTime": _f(
        2,
        2,
        handler=functions_dates.parse_date_time,
        check=_check_format,
    ),
    "parseDateTimeBestEffort": _PARSE_DATETIME,
    "parseDateTimeBestEffortOrNull": _PARSE_DATETIME,
    "toTimeZone": _f(1, 2, handler=h.to_time_zone, check=_check_zone),
    # a Date truncated to a day or longer stays a Date (ClickHouse)
    "dateTrunc": _f(2, 2, "date_trunc({0}, {1})", unit_first=True, keeps_zone=True, kind_from=1),
    "date_trunc": _f(2, 2, "date_trunc({0}, {1})", unit_first=True, keeps_zone=True, kind_from=1),
    # dateAdd('unit', n, d), addDays(d, n) …: handlers (a Date stays a Date)
    "dateAdd": _DATE_ADD,
    "dateSub": _DATE_ADD,
    "date_add": _DATE_ADD,
    "date_sub": _DATE_ADD,
    "formatDateTime": _f(2, 2, handler=h.format_date_time, check=_check_format),
    # more strings
    # offset 0 is '' in ClickHouse (DuckDB would read it as before the first character)
    "substring": _f(2, 3, "CASE WHEN {1} = 0 THEN left({0}, 0) ELSE substring({args}) END"),
    "substr": _f(2, 3, "substring({args})"),
    "replace": _f(3, 3, "replace({0}, {1}, {2})"),
    # an empty needle replaces nothing (ClickHouse)
    "replaceOne": _f(
        3,
        3,
        "CASE WHEN {1} = '' THEN {0} ELSE"
        " regexp_replace({0}, regexp_escape({1}), replace({2}, '\\', '\\\\')) END",
    ),
    "replaceRegexpOne": _f(3, 3, "regexp_replace({0}, {1}, {2})"),
    # the first capture group, or the whole match when the pattern has none
    "extract": _f(2, 2, handler=h.extract),
    "position": _f(2, 2, "strpos({0}, {1})"),
    "positionCaseInsensitive": _f(2, 2, "strpos(lower({0}), lower({1}))"),
    "trimLeft": _f(1, 1, "ltrim({0})"),
    "trimRight": _f(1, 1, "rtrim({0})"),
    "leftPad": _f(3, 3, "lpad({0}, CAST(" + SIZE_CAP.format("{1}") + " AS INTEGER), {2})"),
    "rightPad": _f(3, 3, "rpad({0}, CAST(" + SIZE_CAP.format("{1}") + " AS INTEGER), {2})"),
    "repeat": _f(
        2,
        2,
        "repeat({0}, CAST("
        + SIZE_CAP.format("strlen({0}) * {1}")
        + " // greatest(strlen({0}), 1) AS BIGINT))",
    ),
    "reverse": _f(1, 1, "reverse({0})", array_template="list_reverse({0})"),
    "lowerUTF8": _f(1, 1, "lower({0})"),
    "upperUTF8": _f(1, 1, "upper({0})"),
    "lengthUTF8": _f(1, 1, "length(CAST({0} AS VARCHAR))"),
    "splitByString": _f(2, 2, "string_split({1}, {0})", kind="array"),
    "ilike": _f(2, 2, "coalesce({0} ILIKE {1}, FALSE)"),
    "like": _f(2, 2, "coalesce({0} LIKE {1}, FALSE)"),
    "notLike": _f(2, 2, "coalesce({0} NOT LIKE {1}, FALSE)"),
    "notILike": _f(2, 2, "coalesce({0} NOT ILIKE {1}, FALSE)"),
    "toLowCardinality": _f(1, 1, "{0}"),
    # empty/notEmpty and length work on strings and arrays: the resolver picks by kind
    # NULL stays NULL (ClickHouse over a Nullable argument)
    "empty": _f(1, 1, "(CAST({0} AS VARCHAR) = '')", array_template="(len({0}) = 0)"),
    "notEmpty": _f(1, 1, "(CAST({0} AS VARCHAR) <> '')", array_template="(len({0}) > 0)"),
    # JSON text (any string), keys as further arguments
    "JSONExtractString": _JSON,
    "JSONExtractInt": _JSON,
    "JSONExtractFloat": _JSON,
    "JSONExtractBool": _JSON,
    "JSONExtractRaw": _JSON,
    "JSONHas": _JSON,
    # URLs
    "domain": _f(1, 1, f"regexp_extract({{0}}, {_HOST}, 1)"),
    "domainWithoutWWW": _f(
        1, 1, f"regexp_replace(regexp_extract({{0}}, {_HOST}, 1), '^www\\.', '')"
    ),
    "protocol": _f(1, 1, "regexp_extract({0}, '^([a-zA-Z][a-zA-Z0-9+.-]*):', 1)"),
    "path": _f(1, 1, f"regexp_extract({{0}}, {_PATH}, 1)"),
    "extractURLParameter": _f(
        2, 2, "regexp_extract({0}, '[?&#]' || regexp_escape({1}) || '=([^&#]*)', 1)"
    ),
    # the fragment stays (ClickHouse cuts only '?…' up to '#')
    "cutQueryString": _f(1, 1, "regexp_replace({0}, '[?][^#]*', '')"),
    # arrays and lambdas (`x -> …`; `(x, y) -> …` over several arrays, zipped by the printer)
    "arrayMap": _f(2, 9, "list_transform({1}, {0})", **_LAMBDA),
    "arrayFilter": _f(2, 9, "list_filter({1}, {0})", **_LAMBDA),
    "arrayExists": _f(2, 9, "(len(list_filter({1}, {0})) > 0)", lambda_first=True),
    "arrayAll": _f(2, 9, "(len(list_filter({1}, {0})) = len({1}))", lambda_first=True),
    "arrayCount": _f(2, 9, "len(list_filter({1}, {0}))", lambda_first=True),
    "has": _f(2, 2, "coalesce(list_contains({0}, {1}), FALSE)"),
    "hasAny": _f(2, 2, "coalesce(list_has_any({0}, {1}), FALSE)"),
    "hasAll": _f(2, 2, "coalesce(list_has_all({0}, {1}), FALSE)"),
    "indexOf": _f(2, 2, "coalesce(list_position({0}, {1}), 0)"),
    "arrayJoin": _f(1, 1, "unnest({0})"),
    "arraySort": _f(1, 1, "list_sort({0})", kind="array"),
    "arrayReverseSort": _f(1, 1, "list_reverse_sort({0})", kind="array"),
    "arrayReverse": _f(1, 1, "list_reverse({0})", kind="array"),
    "arrayConcat": _f(2, 8, "list_concat({args})", kind="array"),
    "arrayStringConcat": _f(1, 2, "array_to_string({0}, coalesce({1}, ''))"),
    "arraySum": _f(1, 1, "list_sum({0})"),
    "arrayMin": _f(1, 1, "list_min({0})"),
    "arrayMax": _f(1, 1, "list_max({0})"),
    "arrayAvg": _f(1, 1, "list_avg({0})"),
    "range": _f(1, 2, handler=h.range_, kind="array"),  # with its size cap
    "array": _f(0, 64, "[{args}]", kind="array"),
    "tuple": _f(1, 64, "row({args})"),
    # CASE x WHEN a THEN b … ELSE c END (the parser's name for it)
    "_caseWithExpression": _f(4, 127, handler=h.case_with_expression, check=_check_case),
    # more conditionals and math
    "multiIf": _f(3, 63, handler=h.multi_if, check=_check_multi_if),  # as CASE
    "not": _f(1, 1, "(NOT coalesce({0}, FALSE))"),
    "and": _f(2, 64, handler=h.logical),  # NULL is false
    "or": _f(2, 64, handler=h.logical),
    "least": _f(2, 2, "least({0}, {1})"),
    "greatest": _f(2, 2, "greatest({0}, {1})"),
    "pow": _f(2, 2, "pow({0}, {1})"),
    "power": _f(2, 2, "pow({0}, {1})"),
    "sqrt": _f(1, 1, "sqrt({0})"),
    "exp": _f(1, 1, "exp({0})"),
    "log": _f(1, 1, "ln({0})"),
    "ln": _f(1, 1, "ln({0})"),
    "log2": _f(1, 1, "log2({0})"),
    "log10": _f(1, 1, "log10({0})"),
    "sign": _f(1, 1, "sign({0})"),
    "modulo": _f(2, 2, "({0} % {1})"),
    "negate": _f(1, 1, "(-{0})"),
    "pi": _f(0, 0, "pi()"),
    "e": _f(0, 0, "exp(1)"),
    # math
    # ClickHouse rounds floats half to even (banker's rounding)
    "round": _f(1, 2, "round_even({0}, CAST(coalesce({1}, 0) AS INTEGER))"),
    "floor": _f(1, 1, "floor({0})"),
    "ceil": _f(1, 1, "ceil({0})"),
    "abs": _f(1, 1, "abs({0})"),
    "intDiv": _f(2, 2, "({0} // {1})"),
}
# addDays(d, n), subtractHours(d, n), toIntervalWeek(n): the interval is added and a Date
# stays a Date (ClickHouse) where DuckDB would make it a timestamp
for _unit in INTERVAL_UNITS:
    # a Date plus hours, minutes or seconds is a DateTime (addHours(toDate(…), 1) is 01:00)
    _shift = _f(
        2, 2, handler=h.shift, keeps_zone=True, kind_from=None if _unit in _TIME_UNITS else 0
    )
    FUNCTIONS[f"add{_unit}s"] = _shift
    FUNCTIONS[f"subtract{_unit}s"] = _shift
    FUNCTIONS[f"toInterval{_unit}"] = _f(1, 1, handler=h.interval, interval=True)

# the function families (functions_*.py) join the registry; their entries win
FUNCTIONS.update(functions_ops.FUNCTIONS)
FUNCTIONS.update(functions_json.FUNCTIONS)
FUNCTIONS.update(functions_dates.FUNCTIONS)
FUNCTIONS.update(functions_text.FUNCTIONS)
FUNCTIONS.update(functions_arrays.FUNCTIONS)
FUNCTIONS["to_char"] = FUNCTIONS["formatDateTime"]  # PostHog: to_char is formatDateTime
# functions of dates that are NULL for a bare NULL argument, as ClickHouse's (the oracle's
# cases: toYear(NULL), dateDiff('day', NULL, d), addDays(NULL, 1)); DuckDB cannot type it
_NULL_STRICT: Final = (
    *(f"{verb}{unit}s" for verb in ("add", "subtract") for unit in INTERVAL_UNITS),
    *("age", "dateDiff", "date_diff", "date_part", "dateTrunc", "date_trunc", "toISOYear"),
    *("toYear", "toQuarter", "toMonth", "toDayOfMonth", "toDayOfYear", "toDayOfWeek", "toWeek"),
    *("toHour", "toMinute", "toSecond", "toMonday", "toLastDayOfWeek", "toStartOfISOYear"),
    *("toStartOfYear", "toStartOfQuarter", "toStartOfMonth", "toStartOfWeek", "toStartOfDay"),
    *("toStartOfHour", "toStartOfMinute", "toYYYYMM", "toYYYYMMDD", "toYYYYMMDDhhmmss"),
)
for _name in _NULL_STRICT:
    FUNCTIONS[_name] = dataclasses.replace(FUNCTIONS[_name], null_strict=True)

# Window-only functions; aggregates from FUNCTIONS may also take OVER (…).
WINDOW_FUNCTIONS: Final[dict[str, Function]] = {
    "row_number": _f(0, 0, "row_number()"),
    "rank": _f(0, 0, "rank()"),
    "dense_rank": _f(0, 0, "dense_rank()"),
    "lag": _f(1, 3, "lag({args})"),
    "lead": _f(1, 3, "lead({args})"),
    "first_value": _f(1, 1, "first_value({0})"),
    "last_value": _f(1, 1, "last_value({0})"),
    **functions_arrays.WINDOW_FUNCTIONS,
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
        "not",
        "and",
        "or",
        "sortableSemVer",  # PostHog: people may not know the capitalisation
    )
}


def _combinator(name: str) -> Function | None:
    """`sumIf`, `uniqIf`, `argMaxIf`, `quantileIf(p)`…: an aggregate with a condition last."""
    if not name.endswith("If"):
        return None
    base = FUNCTIONS.get(name[:-2])
    if base is None or not base.aggregate:
        return None
    return dataclasses.replace(
        base,
        min_args=base.min_args + 1,
        max_args=base.max_args + 1,
        condition=True,
        kind_from=None,
        keeps_zone=False,
    )


def registry() -> Iterator[tuple[str, Function, bool]]:
    """Every function by name, with True for window-only ones (for docs and tests). The -If
    combinators (`sumIf`) are derived from the aggregates, so they are not listed."""
    for name, function in FUNCTIONS.items():
        yield name, function, False
    for name, function in WINDOW_FUNCTIONS.items():
        yield name, function, True


def lookup(name: str, *, start: int | None, end: int | None) -> tuple[str, Function]:
    canonical = name if name in FUNCTIONS else _CASE_INSENSITIVE.get(name.lower(), name)
    function = FUNCTIONS.get(canonical) or _combinator(canonical)
    refused = refusal(name) if function is None else None
    if refused is not None:
        msg = f"{name}(...) is not supported by this gateway: {refused}."
        raise HogQLUnsupported(msg, start=start, end=end)
    if function is None:
        close = difflib.get_close_matches(name, FUNCTIONS, n=1)
        hint = f" Perhaps you meant '{close[0]}(...)'?" if close else ""
        msg = f"Unsupported function call '{name}(...)'.{hint}"
        raise HogQLQueryError(msg, start=start, end=end)
    return canonical, function
