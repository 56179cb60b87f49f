"""Type decisions the resolver makes from what it has resolved: an expression's kind ("array",
"date" where the printer's SQL must differ) and the zone a result column is shown in.

Called by the resolver once a node's subtree is resolved (they read `Resolution` only).
"""

from __future__ import annotations

import re
from typing import Any, Final

from gateway.hogql import ast
from gateway.hogql.functions_ops import COMPARISONS
from gateway.hogql.resolution import ColumnCte, JsonPath, Resolution

type ResultType = tuple[str | None, bool]  # (ClickHouse type, if known; nullable)


def kind(resolution: Resolution, node: ast.Expr) -> str | None:
    """ "array" or "date" where it matters (length(arr), addDays(date, n)); None otherwise."""
    match node:
        case ast.Alias(expr=expr):
            return kind(resolution, expr)
        case ast.Array():
            return "array"
        case ast.Constant(value=list()):
            return "array"
        case ast.Call():
            found = resolution.calls.get(id(node))
            if found is None:
                return None
            _, function = found
            if function.kind_from is not None:
                index = function.kind_from
                return kind(resolution, node.args[index]) if len(node.args) > index else None
            return function.kind
        case ast.ArithmeticOperation(left=left):
            return kind(resolution, left)
    meaning = resolution.fields.get(id(node))
    if isinstance(meaning, ColumnCte):
        return kind(resolution, meaning.expr)
    return None


def column_timezone(resolution: Resolution, node: ast.Expr) -> str | None:
    """The zone a result column's datetimes are shown in, when not the project's."""
    match node:
        case ast.Alias(expr=expr):
            return column_timezone(resolution, expr)
        case ast.Call(args=args) if id(node) in resolution.calls:
            name, function = resolution.calls[id(node)]
            if name == "toTimeZone" and len(args) == 2 and isinstance(args[1], ast.Constant):
                return str(args[1].value)
            if args and (function.keeps_zone or name == "toTimeZone"):
                return column_timezone(resolution, args[0])
        case ast.ArithmeticOperation(left=left):
            return column_timezone(resolution, left)
    return None


# -- result types, as ClickHouse reports them for PostHog's printed SQL ----------------------

_NAMED: Final = {
    # counts and positions are UInt64 in ClickHouse (DuckDB: BIGINT)
    **dict.fromkeys(
        (
            "count",
            "countIf",
            "uniq",
            "uniqIf",
            "uniqExact",
            "uniqExactIf",
            "length",
            "lengthUTF8",
            "position",
            "positionCaseInsensitive",
            "indexOf",
            "row_number",
            "rank",
            "dense_rank",
        ),
        "UInt64",
    ),
    # predicates are UInt8 (0/1), as ClickHouse's functions return them
    **dict.fromkeys(
        (
            "isNull",
            "isNotNull",
            "empty",
            "notEmpty",
            "like",
            "ilike",
            "notLike",
            "notILike",
            "match",
            "has",
            "hasAny",
            "hasAll",
            "startsWith",
            "endsWith",
            "and",
            "or",
            "not",
            "JSONHas",
            *COMPARISONS,
            # DuckDB answers these with BOOLEAN; ClickHouse with UInt8 (found by comparing
            # the oracle's result types)
            *("JSONExtractBool", "arrayAll", "arrayExists", "bitTestAll", "bitTestAny"),
            *("hasSubstr", "isFinite", "isInfinite", "isNaN", "isValidJSON", "isValidUTF8"),
            *("isIPAddressInRange", "isIPv4String", "isIPv6String", "mapContains", "xor"),
            *("multiMatchAny", "multiSearchAny"),
        ),
        "UInt8",
    ),
    **dict.fromkeys(
        ("toMonth", "toDayOfMonth", "toHour", "toMinute", "toSecond", "toDayOfWeek", "toQuarter"),
        "UInt8",
    ),
    **dict.fromkeys(("toYear", "toDayOfYear"), "UInt16"),
    "toYYYYMM": "UInt32",
}
# never NULL, whatever their arguments (aggregates that count, NULL tests, concat's '' for NULL,
# and the function forms of operators: PostHog prints like(a, b) as a LIKE b, with its NULL rules)
_NEVER_NULL: Final = frozenset(
    {"count", "countIf", "uniq", "uniqIf", "uniqExact", "uniqExactIf", "isNull", "isNotNull"}
    | {"concat", "groupArray", "groupUniqArray", "groupArrayIf", "empty", "notEmpty", "array"}
    | COMPARISONS.keys()
)
# NULL for input they cannot read (ClickHouse's *OrNull; toInt and toFloat are those in HogQL)
_NULL_ON_BAD_INPUT: Final = frozenset(
    {"toInt", "toFloat", "toIntOrNull", "toFloatOrNull", "toDateOrNull", "toDateTimeOrNull"}
    | {"parseDateTimeBestEffortOrNull", "nullIf"}
)
_NOT_NULLABLE: Final = ("Nullable(", "Array(", "Tuple(", "Map(")


def _literal_type(value: Any) -> ResultType:
    """ClickHouse's type of a literal: the smallest integer type that holds it."""
    if value is None:
        return "Nullable(Nothing)", True
    if isinstance(value, bool):
        return "Bool", False
    if isinstance(value, int):
        for bits in (8, 16, 32, 64):
            if 0 <= value < 1 << bits:
                return f"UInt{bits}", False
            if -(1 << (bits - 1)) <= value < 0:
                return f"Int{bits}", False
        return None, False
    if isinstance(value, float):
        return "Float64", False
    if isinstance(value, str):
        return "String", False
    return None, False


_NUMBER: Final = re.compile(r"(U?)Int(8|16|32|64)|Float(32|64)")
_OPERATOR_FUNCTIONS: Final = {"plus": "+", "minus": "-", "multiply": "*", "modulo": "%"}


def _arithmetic_type(op: str, left: str | None, right: str | None) -> str | None:
    """ClickHouse's result type of `left op right` for integer and float types (measured with
    ClickHouse: UInt8 + UInt8 is UInt16, UInt8 - UInt8 Int16, Int64 % UInt8 Int16, …); None
    when either type is unknown here."""
    a = _NUMBER.fullmatch(left or "")
    b = _NUMBER.fullmatch(right or "")
    if a is None or b is None:
        return None
    if op == "/" or a.group(3) or b.group(3):
        return "Float64"
    bits_a, bits_b = int(a.group(2)), int(b.group(2))
    signed = not a.group(1) or not b.group(1)
    if op == "%":  # the divisor's width; signed (and doubled) when the dividend is
        return f"UInt{bits_b}" if a.group(1) else f"Int{min(64, 2 * bits_b)}"
    bits = min(64, 2 * max(bits_a, bits_b))
    if op == "-" or signed:
        return f"Int{bits}"
    return f"UInt{bits}"


def _call_type(resolution: Resolution, node: ast.Call | ast.WindowFunction) -> ResultType:
    if id(node) in resolution.nulls:
        return "Nullable(Nothing)", True  # toYear(NULL), as ClickHouse types it
    found = resolution.calls.get(id(node))
    name = found[0] if found else node.name
    args = [result_type(resolution, a) for a in node.args]
    nullable = any(n for _, n in args)
    if name in {"coalesce", "ifNull"}:
        nullable = all(n for _, n in args)
    elif name in {"if", "multiIf"}:
        values = [*args[1::2], args[-1]] if name == "multiIf" else args[1:]
        nullable = any(n for _, n in values)
    elif name in _NEVER_NULL:
        nullable = False
    elif name in _NULL_ON_BAD_INPUT:
        nullable = True
    if name in _OPERATOR_FUNCTIONS and len(args) == 2:
        return _arithmetic_type(_OPERATOR_FUNCTIONS[name], args[0][0], args[1][0]), nullable
    return _NAMED.get(name), nullable


def result_type(resolution: Resolution, node: ast.Expr) -> ResultType:
    """(ClickHouse type where the resolver knows it better than DuckDB's result does, nullable)
    of an expression, as ClickHouse would report it for PostHog's SQL: `count()` is UInt64,
    a property Nullable(String), a comparison UInt8 (PostHog's printer makes it never NULL).
    None: the type is read from DuckDB's result (`gateway.analytics.store`)."""
    match node:
        case ast.Alias(expr=expr):
            return result_type(resolution, expr)
        case ast.Constant(value=value):
            return _literal_type(value)
        case ast.CompareOperation() | ast.And() | ast.Or() | ast.Not() | ast.BetweenExpr():
            return "UInt8", False
        case ast.ArithmeticOperation(op=op, left=left, right=right):
            if id(node) in resolution.nulls:
                return "Nullable(Nothing)", True
            (left_type, left_null), (right_type, right_null) = (
                result_type(resolution, left),
                result_type(resolution, right),
            )
            known = "Float64" if op == "/" else _arithmetic_type(op, left_type, right_type)
            return known, left_null or right_null
        case ast.Call() | ast.WindowFunction():
            return _call_type(resolution, node)
    if id(node) in resolution.field_types:  # a FROM subquery's column
        return resolution.field_types[id(node)]
    meaning = resolution.fields.get(id(node))
    if isinstance(meaning, JsonPath) and meaning.path:
        return "String", True  # a property: missing or JSON null is NULL
    if isinstance(meaning, ColumnCte):
        return result_type(resolution, meaning.expr)
    return None, False


def type_name(known: str | None, nullable: bool, fallback: str) -> str:  # noqa: FBT001 - a pair
    """The name `types` reports: `known` (else `fallback`, DuckDB's type mapped), Nullable where
    the value may be NULL and ClickHouse allows it."""
    name = fallback if known is None or known.startswith("DateTime") else known
    if nullable and not name.startswith(_NOT_NULLABLE):
        return f"Nullable({name})"
    return name
