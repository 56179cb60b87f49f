"""More arrays (`arrayReduce`, `arrayFold`, `arrayFirst`, `arrayCumSum`, …), maps, more
aggregates (PostHog's Postgres-compatible `array_agg`, `string_agg`, `json_agg`, `every` among
them) and window functions. Functions that build values take the same size cap as `range`."""

from __future__ import annotations

from typing import Final

from gateway.hogql import ast
from gateway.hogql.entry import Function, constant, error, f
from gateway.hogql.handlers import SIZE_CAP, SqlPrinter, capped_list
from gateway.hogql.uniq import uniq

# arrayReduce's aggregates: PostHog's permitted list (config.py), as DuckDB list aggregates
_REDUCERS: Final = {
    "count": "len(list_filter({0}, lambda __x: __x IS NOT NULL))",
    "sum": "coalesce(list_sum({0}), 0)",
    "min": "list_min({0})",
    "max": "list_max({0})",
    "avg": "CASE WHEN len({0}) = 0 THEN 'nan'::DOUBLE ELSE list_avg({0}) END",
    "uniq": "len(list_distinct({0}))",
}
_INDICES: Final = "range(1, len({0}) + 1)"
# groupArray and friends: capped at MAX_BUILT elements, as range and repeat are
_LIST: Final = capped_list("coalesce(list({0}) FILTER (WHERE {0} IS NOT NULL), [])")


def _check_reduce(_name: str, node: ast.Call) -> None:
    name = constant(node.args[0])
    if name not in _REDUCERS:
        msg = f"arrayReduce's first argument is one of {', '.join(map(repr, _REDUCERS))}."
        raise error(msg, node.args[0])


def _reduce(p: SqlPrinter, node: ast.Call) -> str:
    return _REDUCERS[str(constant(node.args[0]))].format(p.expr(node.args[1]))


def _map(p: SqlPrinter, node: ast.Call) -> str:
    """map(k1, v1, k2, v2, …)."""
    args = [p.expr(a) for a in node.args]
    return f"map([{', '.join(args[0::2])}], [{', '.join(args[1::2])}])"


def _check_map(_name: str, node: ast.Call) -> None:
    if len(node.args) % 2:
        msg = "map takes key, value pairs: map(k1, v1, k2, v2, …)."
        raise error(msg, node)


def _check_tuple_index(_name: str, node: ast.Call) -> None:
    index = constant(node.args[1])
    if index == 0 and not isinstance(index, bool):
        msg = "SQL indexes start from one, not from zero. E.g: array.1"  # PostHog's words
        raise error(msg, node.args[1])
    if isinstance(index, bool) or not isinstance(index, int) or index < 1:
        msg = "tupleElement's index is an integer constant from 1."
        raise error(msg, node.args[1])


def _slice(p: SqlPrinter, node: ast.Call) -> str:
    """arraySlice(a, offset[, length]): a negative offset counts from the end, offset 0 is [],
    a negative length leaves that many off the end (ClickHouse)."""
    a, offset = p.expr(node.args[0]), p.expr(node.args[1])
    start = f"(CASE WHEN {offset} > 0 THEN {offset} ELSE len({a}) + {offset} + 1 END)"
    if len(node.args) == 2:
        end = f"len({a})"
    else:
        n = p.expr(node.args[2])
        end = f"(CASE WHEN {n} >= 0 THEN {start} + {n} - 1 ELSE len({a}) + {n} END)"
    # DuckDB reads a negative bound from the end: clamp both to the array
    sliced = f"list_slice({a}, greatest({start}, 1), greatest({end}, 0))"
    return f"CASE WHEN {offset} = 0 THEN list_slice({a}, 1, 0) ELSE {sliced} END"


def _intersect(p: SqlPrinter, node: ast.Call) -> str:
    """arrayIntersect(a, b, …): the distinct elements of `a` (in its order, NULL included)
    found in every other array."""
    first, others = p.expr(node.args[0]), [p.expr(a) for a in node.args[1:]]
    tests = " AND ".join(f"list_position({o}, __x) IS NOT NULL" for o in others) or "TRUE"
    return f"list_filter({first}, lambda __x, __i: list_position({first}, __x) = __i AND {tests})"


def _rotate(direction: str) -> str:
    shift = "(({1}) % greatest(len({0}), 1) + greatest(len({0}), 1)) % greatest(len({0}), 1)"
    if direction == "right":
        shift = f"(len({{0}}) - {shift}) % greatest(len({{0}}), 1)"
    rotated = (
        f"list_concat(list_slice({{0}}, {shift} + 1, len({{0}})), list_slice({{0}}, 1, {shift}))"
    )
    return f"CASE WHEN {{1}} IS NOT NULL THEN {rotated} END"


FUNCTIONS: Final[dict[str, Function]] = {
    # arrays
    "arrayElement": f(2, 2, "({0})[{1}]"),
    "countEqual": f(2, 2, "len(list_filter({0}, lambda __x: __x IS NOT DISTINCT FROM {1}))"),
    "hasSubstr": f(
        2,
        2,
        "(len({1}) = 0 OR coalesce(list_bool_or(list_transform(range(1, len({0}) - len({1}) + 2),"
        " lambda __i: list_slice({0}, __i, __i + len({1}) - 1) = {1})), FALSE))",
    ),
    "arrayEnumerate": f(1, 1, _INDICES, kind="array"),
    "arrayEnumerateDense": f(
        1,
        1,
        "list_transform(range(1, len({0}) + 1), lambda __i:"
        " len(list_distinct(list_slice({0}, 1, list_position({0}, ({0})[__i])))))",
        kind="array",
    ),
    "arrayPopBack": f(1, 1, "list_slice({0}, 1, len({0}) - 1)", kind="array"),
    "arrayPopFront": f(1, 1, "list_slice({0}, 2, len({0}))", kind="array"),
    "arrayPushBack": f(2, 2, "list_append({0}, {1})", kind="array"),
    "arrayPushFront": f(2, 2, "list_prepend({1}, {0})", kind="array"),
    "arrayResize": f(
        2,
        3,
        "CASE WHEN {1} <= len({0}) THEN list_slice({0}, 1, {1}) ELSE list_concat({0},"
        " list_transform(range(" + SIZE_CAP.format("{1} - len({0})") + "), lambda __x: {2})) END",
        kind="array",
    ),
    "arrayWithConstant": f(
        2, 2, "list_transform(range(" + SIZE_CAP.format("{0}") + "), lambda __x: {1})", kind="array"
    ),
    "arrayUniq": f(1, 1, "len(list_distinct({0}))"),
    "arrayDifference": f(
        1,
        1,
        "list_transform(range(1, len({0}) + 1), lambda __i:"
        " CASE WHEN __i = 1 THEN 0 ELSE ({0})[__i] - ({0})[__i - 1] END)",
        kind="array",
    ),
    "arrayCumSum": f(
        1,
        1,
        "list_transform(range(1, len({0}) + 1), lambda __i: list_sum(list_slice({0}, 1, __i)))",
        kind="array",
    ),
    "arrayProduct": f(1, 1, "CAST(coalesce(list_product({0}), 1) AS DOUBLE)"),
    "arrayIntersect": f(1, 8, handler=_intersect, kind="array"),
    "arraySlice": f(2, 3, handler=_slice, kind="array"),
    # the first occurrence of each element, in order, without NULL (ClickHouse)
    "arrayDistinct": f(
        1,
        1,
        "list_filter({0}, lambda __x, __i: __x IS NOT NULL AND list_position({0}, __x) = __i)",
        kind="array",
    ),
    # consecutive duplicates collapse to one (NULLs too)
    "arrayCompact": f(
        1,
        1,
        "list_filter({0}, lambda __x, __i: __i = 1 OR __x IS DISTINCT FROM ({0})[__i - 1])",
        kind="array",
    ),
    "arrayFlatten": f(1, 1, "flatten({0})", kind="array"),
    "arrayZip": f(2, 8, "list_zip({args})", kind="array"),
    "arrayReduce": f(2, 2, handler=_reduce, check=_check_reduce),
    "arrayFold": f(3, 3, "list_reduce({1}, {0}, {2})"),
    "arrayRotateLeft": f(2, 2, _rotate("left"), kind="array"),
    "arrayRotateRight": f(2, 2, _rotate("right"), kind="array"),
    "arrayFirst": f(2, 2, "(list_filter({1}, {0}))[1]", lambda_first=True),
    "arrayLast": f(2, 2, "(list_filter({1}, {0}))[-1]", lambda_first=True),
    "arrayFirstIndex": f(
        2, 2, "coalesce(list_position(list_transform({1}, {0}), TRUE), 0)", lambda_first=True
    ),
    "arrayLastIndex": f(
        2,
        2,
        "CASE WHEN list_position(list_reverse(list_transform({1}, {0})), TRUE) IS NULL THEN 0"
        " ELSE len({1}) + 1 - list_position(list_reverse(list_transform({1}, {0})), TRUE) END",
        lambda_first=True,
    ),
    # tuples and maps
    "tupleElement": f(2, 2, "({0})[{1}]", check=_check_tuple_index),
    "map": f(0, 64, handler=_map, check=_check_map),
    "mapFromArrays": f(2, 2, "map({0}, {1})"),
    "mapKeys": f(1, 1, "map_keys({0})", kind="array"),
    "mapValues": f(1, 1, "map_values({0})", kind="array"),
    "mapContains": f(2, 2, "coalesce(list_contains(map_keys({0}), {1}), FALSE)"),
    "mapContainsKeyLike": f(
        2, 2, "(len(list_filter(map_keys({0}), lambda __k: __k LIKE {1})) > 0)"
    ),
    "mapUpdate": f(2, 2, "map_concat({0}, {1})"),
    # aggregates
    "array_agg": f(1, 1, _LIST, aggregate=True, kind="array"),
    "json_agg": f(1, 1, "CAST(to_json(" + _LIST + ") AS VARCHAR)", aggregate=True),
    "string_agg": f(2, 2, "coalesce(string_agg({0}, {1}), '')", aggregate=True),
    "every": f(1, 1, "CAST(min({0}) AS BOOLEAN)", aggregate=True),
    "covarPop": f(2, 2, "covar_pop({0}, {1})", aggregate=True),
    "covarSamp": f(2, 2, "covar_samp({0}, {1})", aggregate=True),
    "anyHeavy": f(1, 1, "mode({0})", aggregate=True, kind_from=0),
    "avgWeighted": f(2, 2, "(sum({0} * {1}) / sum({1}))", aggregate=True),
    "skewPop": f(
        1,
        1,
        "(skewness({0}) * pow(count({0}) - 2, 1) / sqrt(count({0}) * (count({0}) - 1)))",
        aggregate=True,
    ),
    "skewSamp": f(1, 1, "skewness({0})", aggregate=True),
    "kurtPop": f(1, 1, "(kurtosis_pop({0}) + 3)", aggregate=True),
    "kurtSamp": f(1, 1, "(kurtosis({0}) + 3)", aggregate=True),
    "groupBitAnd": f(1, 1, "bit_and({0})", aggregate=True),
    "groupBitOr": f(1, 1, "bit_or({0})", aggregate=True),
    "groupBitXor": f(1, 1, "bit_xor({0})", aggregate=True),
    "sumWithOverflow": f(1, 1, "sum({0})", aggregate=True),
    "uniqHLL12": f(1, 1, "count(DISTINCT {0})", handler=uniq, aggregate=True),
    "uniqTheta": f(1, 1, "count(DISTINCT {0})", handler=uniq, aggregate=True),
    "countDistinctIf": f(
        1, 2, "count(DISTINCT CASE WHEN coalesce({1}, TRUE) THEN {0} END)", aggregate=True
    ),
    "medianExact": f(1, 1, "quantile_disc({0}, 0.5)", aggregate=True, kind_from=0),
    "medianExactLow": f(1, 1, "quantile_disc({0}, 0.5)", aggregate=True, kind_from=0),
    "medianExactHigh": f(1, 1, "quantile_disc({0}, 0.5)", aggregate=True, kind_from=0),
    **{
        name: f(1, 1, "median({0})", aggregate=True)
        for name in (
            "medianTiming",
            "medianDeterministic",
            "medianTDigest",
            "medianBFloat16",
        )
    },
    "simpleLinearRegression": f(
        2, 2, "row(regr_slope({1}, {0}), regr_intercept({1}, {0}))", aggregate=True
    ),
    "md5": f(1, 1, "upper(md5(CAST({0} AS VARCHAR)))"),
}

WINDOW_FUNCTIONS: Final[dict[str, Function]] = {
    "nth_value": f(2, 2, "nth_value({0}, {1})"),
    "lagInFrame": f(1, 3, "lag({args})"),
    "leadInFrame": f(1, 3, "lead({args})"),
}
