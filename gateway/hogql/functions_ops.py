"""Function forms of HogQL's operators (`equals(a, b)` is `a = b`, with HogQL's NULL rules, as
PostHog's printer turns them into the operator), logic, arithmetic, math and bits: registry
entries merged into `functions.FUNCTIONS`."""

from __future__ import annotations

from typing import Final

from gateway.hogql import ast
from gateway.hogql.entry import Function, constant, error, f
from gateway.hogql.handlers import SqlPrinter

# function name → HogQL operator (PostHog's HOGQL_COMPARISON_MAPPING)
COMPARISONS: Final = {
    "equals": "==",
    "notEquals": "!=",
    "less": "<",
    "greater": ">",
    "lessOrEquals": "<=",
    "greaterOrEquals": ">=",
    "like": "like",
    "ilike": "ilike",
    "notLike": "not like",
    "notILike": "not ilike",
    "in": "in",
    "notIn": "not in",
}
_ARITHMETIC: Final = {"plus": "+", "minus": "-", "multiply": "*", "divide": "/"}


def _compare(p: SqlPrinter, node: ast.Call) -> str:
    """equals(a, b) … notIn(a, b): printed as the operator itself."""
    op = COMPARISONS[p.name_of(node)]
    left, right = node.args
    return p.expr(ast.CompareOperation(op=op, left=left, right=right, start=node.start))


def _check_in(name: str, node: ast.Call) -> None:
    if not isinstance(node.args[1], ast.Tuple | ast.Array | ast.Constant):
        msg = f"{name}(x, …) takes a tuple or array of values as its second argument."
        raise error(msg, node.args[1])


def _arithmetic(p: SqlPrinter, node: ast.Call) -> str:
    left, right = node.args
    op = _ARITHMETIC[p.name_of(node)]
    return p.expr(ast.ArithmeticOperation(op=op, left=left, right=right, start=node.start))


def _xor(p: SqlPrinter, node: ast.Call) -> str:
    """xor(a, b, …): true when an odd number of the arguments are true (NULL gives NULL)."""
    ones = " + ".join(f"CAST(CAST({p.expr(a)} AS BOOLEAN) AS INTEGER)" for a in node.args)
    return f"(({ones}) % 2 = 1)"


def _bit_test(p: SqlPrinter, node: ast.Call) -> str:
    """bitTestAll(x, i, …) / bitTestAny(x, i, …)."""
    value = p.expr(node.args[0])
    bits = [f"((({value}) >> ({p.expr(i)})) & 1 = 1)" for i in node.args[1:]]
    joiner = " AND " if p.name_of(node) == "bitTestAll" else " OR "
    return "(" + joiner.join(bits) + ")"


def _check_digits(name: str, node: ast.Call) -> None:
    if len(node.args) == 2:
        digits = constant(node.args[1])
        if isinstance(digits, bool) or not isinstance(digits, int) or not -30 <= digits <= 30:
            msg = f"{name}'s second argument is an integer constant from -30 to 30."
            raise error(msg, node.args[1])


def _rounder(kind: str) -> Function:
    """floor/ceil/trunc(x[, n]): to n decimal places, as ClickHouse's."""
    one = {"floor": "floor({0})", "ceil": "ceil({0})", "trunc": "trunc({0})"}[kind]
    scaled = one.format("{0} * pow(10, {1})") + " / pow(10, {1})"
    template = f"CASE WHEN {{1}} IS NULL THEN {one} ELSE {scaled} END"
    return f(1, 2, template, check=_check_digits)


_ROUND_DURATION: Final = (1, 10, 30, 60, 120, 180, 240, 300, 600, 1200, 1800, 3600, 7200, 18000)
_ROUND_AGE: Final = ((55, 55), (45, 45), (35, 35), (25, 25), (18, 18), (1, 17))
_SIZES: Final = {
    "formatReadableSize": (1024, ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")),
    "formatReadableDecimalSize": (1000, ("B", "KB", "MB", "GB", "TB", "PB", "EB")),
    "formatReadableQuantity": (
        1000,
        ("", " thousand", " million", " billion", " trillion", " quadrillion"),
    ),
}


def _readable(p: SqlPrinter, node: ast.Call) -> str:
    """formatReadableSize(x) and friends: two decimals and the largest unit under x."""
    base, units = _SIZES[p.name_of(node)]
    x = f"CAST({p.expr(node.args[0])} AS DOUBLE)"
    space = " " if p.name_of(node) != "formatReadableQuantity" else ""
    whens = []
    for i in range(len(units) - 1, 0, -1):
        whens.append(
            f"WHEN abs({x}) >= {float(base**i)} THEN printf('%.2f', {x} / {float(base**i)})"
            f" || '{space}{units[i]}'"
        )
    last = f"printf('%.2f', {x}) || '{space}{units[0]}'".replace(" || ''", "")
    return f"CASE WHEN {x} IS NULL THEN NULL {' '.join(whens)} ELSE {last} END"


def _round_duration(p: SqlPrinter, node: ast.Call) -> str:
    x = p.expr(node.args[0])
    whens = " ".join(f"WHEN {x} >= {b} THEN {b}" for b in reversed(_ROUND_DURATION))
    return f"CASE WHEN {x} IS NULL THEN NULL {whens} ELSE 0 END"


def _round_age(p: SqlPrinter, node: ast.Call) -> str:
    x = p.expr(node.args[0])
    whens = " ".join(f"WHEN {x} >= {low} THEN {to}" for low, to in _ROUND_AGE)
    return f"CASE WHEN {x} IS NULL THEN NULL {whens} ELSE 0 END"


def _norm(body: str) -> str:
    return f"list_transform(CAST({{0}} AS DOUBLE[]), lambda __n: {body})"


def _pairs(body: str) -> str:
    zipped = "list_zip(CAST({0} AS DOUBLE[]), CAST({1} AS DOUBLE[]))"
    return f"list_transform({zipped}, lambda __z: {body})"


_DIFF: Final = "abs(__z[1] - __z[2])"
_BOTH: Final = "CASE WHEN {0} IS NOT NULL AND {1} IS NOT NULL THEN "

FUNCTIONS: Final[dict[str, Function]] = {
    # operators as functions (PostHog prints them as the operator)
    **{name: f(2, 2, handler=_compare) for name in COMPARISONS},
    "in": f(2, 2, handler=_compare, check=_check_in),
    "notIn": f(2, 2, handler=_compare, check=_check_in),
    **{name: f(2, 2, handler=_arithmetic) for name in _ARITHMETIC},
    "xor": f(2, 64, handler=_xor),
    "intDivOrZero": f(2, 2, "CASE WHEN {1} = 0 AND {0} IS NOT NULL THEN 0 ELSE ({0} // {1}) END"),
    "moduloOrZero": f(2, 2, "CASE WHEN {1} = 0 THEN 0 ELSE ({0} % {1}) END"),
    "positiveModulo": f(
        2, 2, "CASE WHEN ({0} % {1}) < 0 THEN ({0} % {1}) + abs({1}) ELSE ({0} % {1}) END"
    ),
    "gcd": f(2, 2, "gcd({0}, {1})"),
    "lcm": f(2, 2, "lcm({0}, {1})"),
    # NULL if either is (DuckDB's greatest/least skip NULL)
    "max2": f(2, 2, _BOTH + "CAST(greatest({0}, {1}) AS DOUBLE) END"),
    "min2": f(2, 2, _BOTH + "CAST(least({0}, {1}) AS DOUBLE) END"),
    # math (ClickHouse computes in Float64)
    "exp2": f(1, 1, "pow(2, {0})"),
    "exp10": f(1, 1, "pow(10, {0})"),
    "cbrt": f(1, 1, "cbrt({0})"),
    "lgamma": f(1, 1, "lgamma({0})"),
    "tgamma": f(1, 1, "gamma({0})"),
    **{name: f(1, 1, f"{name}(CAST({{0}} AS DOUBLE))") for name in ("sin", "cos", "tan")},
    **{name: f(1, 1, f"{name}(CAST({{0}} AS DOUBLE))") for name in ("asin", "acos", "atan")},
    "sinh": f(1, 1, "((exp({0}) - exp(-({0}))) / 2)"),
    "cosh": f(1, 1, "((exp({0}) + exp(-({0}))) / 2)"),
    "asinh": f(1, 1, "ln({0} + sqrt({0} * {0} + 1))"),
    "acosh": f(
        1,
        1,
        "CASE WHEN {0} >= 1 THEN ln({0} + sqrt({0} * {0} - 1))"
        " WHEN {0} IS NOT NULL THEN 'nan'::DOUBLE END",
    ),
    "atanh": f(1, 1, "(0.5 * ln((1 + {0}) / (1 - {0})))"),
    "atan2": f(2, 2, "atan2({0}, {1})"),
    "hypot": f(2, 2, "sqrt({0} * {0} + {1} * {1})"),
    "log1p": f(1, 1, "ln(1 + {0})"),
    "degrees": f(1, 1, "degrees({0})"),
    "radians": f(1, 1, "radians({0})"),
    "factorial": f(1, 1, "CAST(factorial(CAST(greatest({0}, 0) AS INTEGER)) AS UBIGINT)"),
    "intExp2": f(1, 1, "CAST(pow(2, {0}) AS UBIGINT)"),
    "intExp10": f(1, 1, "CAST(pow(10, {0}) AS UBIGINT)"),
    "width_bucket": f(
        4,
        4,
        "CASE WHEN {0} < {1} THEN 0 WHEN {0} >= {2} THEN {3} + 1"
        " ELSE CAST(floor(({0} - {1}) / ({2} - {1}) * {3}) AS BIGINT) + 1 END",
    ),
    "isFinite": f(1, 1, "isfinite(CAST({0} AS DOUBLE))"),
    "isInfinite": f(1, 1, "isinf(CAST({0} AS DOUBLE))"),
    "isNaN": f(1, 1, "isnan(CAST({0} AS DOUBLE))"),
    # rounding: round() of a float is half to even in ClickHouse
    "round": f(1, 2, "round_even({0}, coalesce({1}, 0))", check=_check_digits),
    "roundBankers": f(1, 2, "round_even({0}, coalesce({1}, 0))", check=_check_digits),
    "floor": _rounder("floor"),
    "ceil": _rounder("ceil"),
    "trunc": _rounder("trunc"),
    "roundToExp2": f(1, 1, "CASE WHEN {0} < 1 THEN 0 ELSE pow(2, floor(log2({0}))) END"),
    "roundDuration": f(1, 1, handler=_round_duration),
    "roundAge": f(1, 1, handler=_round_age),
    "roundDown": f(
        2,
        2,
        "CASE WHEN {0} IS NOT NULL THEN"
        " coalesce(list_max(list_filter({1}, lambda __r: __r <= {0})), ({1})[1]) END",
    ),
    # bits (of the 64-bit integers DuckDB computes in)
    "bitAnd": f(2, 2, "({0} & {1})"),
    "bitOr": f(2, 2, "({0} | {1})"),
    "bitXor": f(2, 2, "xor({0}, {1})"),
    # DuckDB refuses to shift a negative number: two's complement, -a << n is -(a << n)
    "bitShiftLeft": f(2, 2, "({0} * (CAST(1 AS BIGINT) << {1}))"),
    "bitShiftRight": f(2, 2, "({0} >> {1})"),
    # conversions
    "toBool": f(1, 1, "TRY_CAST({0} AS BOOLEAN)"),
    # toFloatOrDefault(x) is toFloatOrZero(x): NULL stays NULL (PostHog's test_mapping)
    "toFloatOrDefault": f(
        1,
        2,
        "CASE WHEN {0} IS NOT NULL OR {1} IS NOT NULL"
        " THEN coalesce(TRY_CAST({0} AS DOUBLE), {1}, 0) END",
    ),
    # no Nullable wrapper here: both are the value itself (assumeNotNull(NULL) stays NULL, where
    # ClickHouse leaves the answer undefined)
    "assumeNotNull": f(1, 1, "{0}", kind_from=0, keeps_zone=True),
    "toNullable": f(1, 1, "{0}", kind_from=0, keeps_zone=True),
    "bitTest": f(2, 2, "((({0}) >> ({1})) & 1)"),
    "bitTestAll": f(3, 64, handler=_bit_test),
    "bitTestAny": f(3, 64, handler=_bit_test),
    "bitCount": f(1, 1, "bit_count(CAST({0} AS BIGINT))"),
    "bitHammingDistance": f(2, 2, "bit_count(CAST(xor({0}, {1}) AS BIGINT))"),
    # readable numbers
    **{name: f(1, 1, handler=_readable) for name in _SIZES},
    "indexHint": f(1, 1, "1"),
    # vectors (arrays of numbers)
    "L1Norm": f(1, 1, f"list_sum({_norm('abs(__n)')})"),
    "L2Norm": f(1, 1, f"sqrt(list_sum({_norm('__n * __n')}))"),
    "LinfNorm": f(1, 1, f"list_max({_norm('abs(__n)')})"),
    "LpNorm": f(2, 2, f"pow(list_sum({_norm('pow(abs(__n), {1})')}), 1 / {{1}})"),
    "L1Distance": f(2, 2, f"list_sum({_pairs(_DIFF)})"),
    "L2Distance": f(2, 2, f"sqrt(list_sum({_pairs(f'{_DIFF} * {_DIFF}')}))"),
    "LinfDistance": f(2, 2, f"list_max({_pairs(_DIFF)})"),
    "LpDistance": f(3, 3, f"pow(list_sum({_pairs(f'pow({_DIFF}, {{2}})')}), 1 / {{2}})"),
    "cosineDistance": f(2, 2, "list_cosine_distance(CAST({0} AS DOUBLE[]), CAST({1} AS DOUBLE[]))"),
    "dotProduct": f(2, 2, "list_dot_product(CAST({0} AS DOUBLE[]), CAST({1} AS DOUBLE[]))"),
}
