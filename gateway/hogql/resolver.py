"""Meaning: which table each name refers to, which column or JSON path each field is, which
function each call is. Every decision the printer needs is made here and recorded by node.

Scopes are per SELECT: the tables of its FROM (by alias) and its own select aliases. Fields
resolve only within their own SELECT (correlated subqueries are not supported yet).
"""

from __future__ import annotations

import dataclasses
from typing import Final

from gateway.hogql import ast
from gateway.hogql.entry import check_arity
from gateway.hogql.errors import HogQLQueryError, HogQLUnsupported
from gateway.hogql.functions import DATE_UNITS, Function, lookup, window_lookup
from gateway.hogql.resolution import (
    ARRAY_JOIN_ALIAS,
    Column,
    JsonPath,
    Resolution,
    Source,
    Star,
)
from gateway.hogql.schema import TABLES
from gateway.hogql.scopes import Scope, check_identifier
from gateway.hogql.types import column_timezone, kind, result_type

MAX_NUMBERS: Final = 100_000_000
JOIN_TYPES: Final = {
    "JOIN": "JOIN",
    "INNER JOIN": "INNER JOIN",
    "LEFT JOIN": "LEFT JOIN",
    "LEFT OUTER JOIN": "LEFT JOIN",
    "RIGHT JOIN": "RIGHT JOIN",
    "RIGHT OUTER JOIN": "RIGHT JOIN",
    "FULL OUTER JOIN": "FULL OUTER JOIN",
    "FULL JOIN": "FULL OUTER JOIN",
    "CROSS JOIN": "CROSS JOIN",
}
SET_OPERATORS: Final = {
    "UNION ALL": "UNION ALL",
    "UNION DISTINCT": "UNION",
    "INTERSECT": "INTERSECT",
    "INTERSECT DISTINCT": "INTERSECT",
    "EXCEPT": "EXCEPT",
    "EXCEPT DISTINCT": "EXCEPT",
}
ARITHMETIC: Final = frozenset({"+", "-", "*", "/", "%"})
COMPARISONS: Final = frozenset(
    {"==", "=", "!=", "<", ">", "<=", ">=", "like", "ilike", "not like", "not ilike"}
    | {"=~", "!~", "=~*", "!~*"}  # `~` and `~*` parse as `=~` and `=~*`
)
# PostHog's message for a 0 index (`arr[0]`; `t.0` says array.1)
ZERO_INDEX: Final = "SQL indexes start from one, not from zero. E.g: array[1]"
DAYS: Final = frozenset({"day", "week", "month", "quarter", "year"})
# arrays, tuples, a constant (a list placeholder or one value) or a subquery
_IN_LISTS: Final = (ast.Tuple, ast.Array, ast.Constant, ast.SelectQuery, ast.SelectSetQuery)


def _error(message: str, node: ast.Node) -> HogQLQueryError:
    return HogQLQueryError(message, start=node.start, end=node.end)


def _is_null(node: ast.Expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def output_names(
    query: ast.SelectQuery | ast.SelectSetQuery, ctes: dict[str, list[str]] | None = None
) -> list[str]:
    """The column names a query produces (`*` expanded over its FROM, CTEs included)."""
    if isinstance(query, ast.SelectSetQuery):
        return output_names(query.initial, ctes)
    names = []
    for item in query.select:
        if isinstance(item, ast.Alias):
            names.append(item.alias)
        elif isinstance(item, ast.Field) and item.chain[-1] == "*" and len(item.chain) <= 2:
            alias = str(item.chain[0]) if len(item.chain) == 2 else None
            names += _star_names(query.select_from, ctes or {}, alias)
        elif isinstance(item, ast.Field):
            names.append(str(item.chain[-1]))
        else:
            names.append("")
    return names


def _star_names(
    join: ast.JoinExpr | None, ctes: dict[str, list[str]], alias: str | None = None
) -> list[str]:
    """The columns `*` gives (`t.*`: only those of the FROM entry named `alias`)."""
    names: list[str] = []
    while join is not None:
        table = join.table
        named = join.alias or (str(table.chain[0]) if isinstance(table, ast.Field) else None)
        if alias is not None and named != alias:
            join = join.next_join
            continue
        if isinstance(table, ast.SelectQuery | ast.SelectSetQuery):
            names += output_names(table, ctes)
        elif isinstance(table, ast.Call) and table.name == "numbers":
            names.append("number")
        elif isinstance(table, ast.Field) and str(table.chain[0]) in ctes:
            names += ctes[str(table.chain[0])]
        elif isinstance(table, ast.Field) and str(table.chain[0]) in TABLES:
            names += list(TABLES[str(table.chain[0])].columns)
        join = join.next_join
    return names


class Resolver:
    """Walks one parsed query, records every decision in `result` and raises HogQLError for
    anything the printer could not render. Used through `resolve()`."""

    def __init__(self) -> None:
        self.result = Resolution()
        # CTE name → its output columns, innermost scope last
        self._ctes: list[dict[str, list[str]]] = []
        # CTE name → its columns' result types (as a FROM subquery's), the same scopes
        self._cte_types: list[dict[str, dict[str, tuple[str | None, bool]]]] = []
        # `WITH expr AS name` of the enclosing queries, innermost last
        self._column_ctes: list[dict[str, ast.Expr]] = []
        self._lambdas = 0
        # lambdas applied to several arrays at once (arrayMap((x, y) -> …, a, b))
        self._zipped: set[int] = set()

    def _visible_ctes(self) -> dict[str, list[str]]:
        visible: dict[str, list[str]] = {}
        for scope in self._ctes:
            visible |= scope
        return visible

    def query(self, node: ast.SelectQuery | ast.SelectSetQuery) -> None:
        if isinstance(node, ast.SelectSetQuery):
            self.query(node.initial)
            for operator, member in node.subsequent:
                sql_operator = SET_OPERATORS.get(operator.upper())
                if sql_operator is None:
                    msg = f"{operator} is not supported by this gateway yet."
                    raise HogQLUnsupported(msg, start=member.start, end=member.end)
                self.result.set_operators[id(member)] = sql_operator
                self.query(member)
            return
        self._ctes.append({})
        self._cte_types.append({})
        self._column_ctes.append(node.column_ctes)
        try:
            empty = Scope(sources=[], aliases=set())
            for expr in node.column_ctes.values():
                self.expr(expr, empty)
            for name in node.column_ctes:
                check_identifier(name, node)
            for cte in node.ctes or []:
                check_identifier(cte.name, cte)
                if cte.name in self._ctes[-1]:
                    msg = f"CTE '{cte.name}' is defined twice."
                    raise _error(msg, cte)
                self.query(cte.expr)  # sees the CTEs defined before it
                names = output_names(cte.expr, self._visible_ctes())
                self._ctes[-1][cte.name] = names
                self._cte_types[-1][cte.name] = self._output_types(cte.expr, names)
            self._select(node)
        finally:
            self._ctes.pop()
            self._cte_types.pop()
            self._column_ctes.pop()

    def _select(self, node: ast.SelectQuery) -> None:
        sources = self._from(node.select_from) if node.select_from else []
        column_ctes: dict[str, ast.Expr] = {}
        for level in self._column_ctes:
            column_ctes |= level
        if node.array_join:
            from_scope = Scope(sources=sources, aliases=set(), column_ctes=column_ctes)
            for joined in node.array_join:
                self.expr(joined.expr, from_scope)
            sources = [
                *sources,
                Source(alias=ARRAY_JOIN_ALIAS, subquery_columns=[i.alias for i in node.array_join]),
            ]
        aliases = {i.alias for i in node.select if isinstance(i, ast.Alias)}
        scope = Scope(sources=sources, aliases=aliases, column_ctes=column_ctes)
        if node.limit_by is not None:
            for by in node.limit_by[1]:
                self.expr(by, scope)
        for item in node.select:
            self.expr(item, scope, allow_star=True)
        for part in (node.where, node.having, node.limit, node.offset):
            if part is not None:
                self.expr(part, scope)
        for item in node.group_by or []:
            self.expr(item, scope)
        for order in node.order_by or []:
            self.expr(order.expr, scope)
        self._counts(node)

    def _counts(self, node: ast.SelectQuery) -> None:
        for part, what in ((node.limit, "LIMIT"), (node.offset, "OFFSET")):
            if part is not None:
                self.result.counts[id(part)] = _count(part, what)

    def _from(self, join: ast.JoinExpr) -> list[Source]:
        sources: list[Source] = []
        current: ast.JoinExpr | None = join
        while current is not None:
            check_identifier(current.alias or "", current)
            source = self._source(current)
            if any(s.alias == source.alias for s in sources):
                msg = f"Table alias '{source.alias}' is used twice."
                raise _error(msg, current)
            sources.append(source)
            self.result.sources[id(current)] = source
            if current is not join:
                join_type = (current.join_type or "JOIN").upper()
                if join_type not in JOIN_TYPES:
                    msg = f"{join_type} is not supported by this gateway yet."
                    raise HogQLUnsupported(msg, start=current.start, end=current.end)
                self.result.joins[id(current)] = JOIN_TYPES[join_type]
            current = current.next_join
        scope = Scope(sources=sources, aliases=set())
        current = join
        while current is not None:
            if current.constraint is not None:
                self.expr(current.constraint, scope)
            current = current.next_join
        return sources

    def _source(self, join: ast.JoinExpr) -> Source:
        table = join.table
        if isinstance(table, ast.SelectQuery | ast.SelectSetQuery):
            self.query(table)
            # ClickHouse lets a FROM subquery go unnamed: it gets a name no query can write
            names = output_names(table, self._visible_ctes())
            return Source(
                alias=join.alias or f"__subquery_{len(self.result.sources)}",
                subquery_columns=names,
                subquery_types=self._output_types(table, names),
            )
        if isinstance(table, ast.Call) and table.name == "numbers":
            return Source(alias=join.alias or "numbers", numbers=self._numbers(table))
        if isinstance(table, ast.Field) and len(table.chain) == 1:
            name = str(table.chain[0])
            ctes = self._visible_ctes()
            if name in ctes:
                types = next(t[name] for t in reversed(self._cte_types) if name in t)
                return Source(
                    alias=join.alias or name,
                    cte=name,
                    subquery_columns=ctes[name],
                    subquery_types=types,
                )
            stored = TABLES.get(name)
            if name == "numbers":
                msg = "Table function 'numbers' requires arguments"
                raise _error(msg, table)
            if stored is None:
                msg = f"Unknown table `{name}`."
                raise _error(msg, table)
            return Source(alias=join.alias or name, table=stored)
        if isinstance(table, ast.Call) and table.name in TABLES:
            msg = f"Table '{table.name}' does not accept arguments"
            raise _error(msg, table)
        msg = "Unknown table."
        raise _error(msg, join)

    def _numbers(self, call: ast.Call) -> tuple[int, int]:
        if not call.args:
            msg = "Table function 'numbers' requires at least 1 argument"
            raise _error(msg, call)
        if len(call.args) > 2:
            msg = "Table function 'numbers' requires at most 2 arguments"
            raise _error(msg, call)
        values = []
        for arg in call.args:
            value = _constant_int(arg)
            if value is None:
                msg = "numbers() takes integer constants (or arithmetic of them)."
                raise _error(msg, arg)
            values.append(value)
        if len(values) not in (1, 2):
            msg = "numbers() takes numbers(n) or numbers(start, n)."
            raise _error(msg, call)
        start, count = (0, values[0]) if len(values) == 1 else (values[0], values[1])
        if not 0 <= count <= MAX_NUMBERS:
            msg = f"numbers() is limited to {MAX_NUMBERS} rows."
            raise _error(msg, call)
        return start, count

    def expr(self, node: ast.Expr, scope: Scope, *, allow_star: bool = False) -> None:  # noqa: C901 - one case per node type
        match node:
            case ast.Field():
                named = scope.field(node, allow_star=allow_star)
                self.result.fields[id(node)] = named
                if isinstance(named, Column):
                    for source in scope.sources:
                        if source.alias == named.alias and named.name in source.subquery_types:
                            self.result.field_types[id(node)] = source.subquery_types[named.name]
                        elif source.alias == named.alias and source.numbers is not None:
                            self.result.field_types[id(node)] = ("UInt64", False)  # numbers()
            case ast.ArrayAccess(array=array, property=index):
                self.expr(array, scope)
                meaning = self.result.fields.get(id(array))
                key = index.value if isinstance(index, ast.Constant) else None
                if isinstance(meaning, JsonPath) and isinstance(key, str | int):
                    if isinstance(key, bool) or (isinstance(key, int) and key < 1):
                        msg = ZERO_INDEX
                        raise _error(msg, index)
                    self.result.fields[id(node)] = JsonPath(
                        alias=meaning.alias, column=meaning.column, path=(*meaning.path, key)
                    )
                    return
                if isinstance(key, int) and key == 0:
                    msg = ZERO_INDEX
                    raise _error(msg, index)
                self.expr(index, scope)  # arr[i]: 1-based, negative from the end, as DuckDB
            case ast.Call():
                if self._json_element(node, scope):
                    return
                name, function = lookup(node.name, start=node.start, end=node.end)
                self._params(node, name, function)
                check_arity(name, function, node)
                self.result.calls[id(node)] = (name, function)
                if function.null_strict and any(_is_null(a) for a in node.args):
                    # NULL before anything is checked, as ClickHouse's dateDiff('x', NULL, d)
                    self.result.nulls.add(id(node))
                if function.unit_first and id(node) not in self.result.nulls:
                    unit = node.args[0]
                    value = (
                        unit.value.lower()
                        if isinstance(unit, ast.Constant) and isinstance(unit.value, str)
                        else None
                    )
                    if value not in DATE_UNITS:
                        msg = f"{name}'s unit must be one of {', '.join(sorted(DATE_UNITS))}."
                        raise _error(msg, unit)
                    self.result.literals[id(unit)] = str(value)
                if function.lambda_first and len(node.args) > 2:
                    self._zip(node)
                for arg in node.args:
                    self.expr(arg, scope)
                if function.check is not None:
                    function.check(name, node)
                self._call_types(node, function)
            case ast.WindowFunction():
                name, function = window_lookup(node.name, start=node.start, end=node.end)
                check_arity(name, function, node)
                self.result.calls[id(node)] = (name, function)
                for arg in node.args:
                    self.expr(arg, scope)
                for part in node.over.partition_by or []:
                    self.expr(part, scope)
                for order in node.over.order_by or []:
                    self.expr(order.expr, scope)
                _check_frame(node.over)
            case ast.SelectQuery() | ast.SelectSetQuery():
                self.query(node)
            case ast.Alias(alias=alias, expr=expr):
                check_identifier(alias, node)
                self.expr(expr, scope)
            case ast.Lambda(args=args, expr=body):
                names: dict[str, str] = {}
                if id(node) in self._zipped:
                    # one argument per array: the elements of the zipped arrays, by position
                    element = f"__l{self._lambdas}"
                    self._lambdas += 1
                    names = {p: f"{element}[{i}]" for i, p in enumerate(args, start=1)}
                    self.result.lambdas[id(node)] = [element]
                else:
                    for parameter in args:
                        names[parameter] = f"__l{self._lambdas}"
                        self._lambdas += 1
                    self.result.lambdas[id(node)] = list(names.values())
                inner = Scope(
                    sources=scope.sources,
                    aliases=scope.aliases,
                    column_ctes=scope.column_ctes,
                    lambdas={**scope.lambdas, **names},
                )
                self.expr(body, inner)
            case ast.CompareOperation(op=op, right=right):
                _check_compare(node, op.lower(), right)
                self.expr(node.left, scope)
                self.expr(right, scope)
            case ast.ArithmeticOperation(op=op, left=left, right=right):
                if op not in ARITHMETIC:
                    msg = f"{type(node).__name__} is not supported here."
                    raise HogQLUnsupported(msg, start=node.start, end=node.end)
                self.expr(left, scope)
                self.expr(right, scope)
                if _is_null(left) or _is_null(right):
                    self.result.nulls.add(id(node))  # NULL ± x is NULL (DuckDB: NULL - INTERVAL
                    return  # has no overload)
                interval = self.result.calls.get(id(right))
                if (
                    interval
                    and interval[1].interval
                    # a Date plus hours, minutes or seconds is a DateTime (ClickHouse)
                    and interval[0].removeprefix("toInterval").lower() in DAYS
                    and op in {"+", "-"}
                    and kind(self.result, left) == "date"
                ):
                    self.result.dates.add(id(node))  # Date ± INTERVAL stays a Date
            case _:
                for child in _children(node):
                    self.expr(child, scope)

    def _json_element(self, node: ast.Call, scope: Scope) -> bool:
        """`properties.list.1` (t.1 over a property): one more step of the JSON path, as
        PostHog reads it, not an element of the property's text."""
        if node.name != "tupleElement" or len(node.args) != 2:
            return False
        index = node.args[1].value if isinstance(node.args[1], ast.Constant) else None
        if isinstance(index, bool) or not isinstance(index, int) or index < 1:
            return False
        inner = node.args[0]  # only what can be a property path (resolved once more below)
        if not isinstance(inner, ast.Field | ast.ArrayAccess) and not (
            isinstance(inner, ast.Call) and inner.name == "tupleElement"
        ):
            return False
        self.expr(inner, scope)
        meaning = self.result.fields.get(id(node.args[0]))
        if not isinstance(meaning, JsonPath):
            return False
        self.result.fields[id(node)] = dataclasses.replace(meaning, path=(*meaning.path, index))
        return True

    def _output_types(
        self, query: ast.SelectQuery | ast.SelectSetQuery, names: list[str]
    ) -> dict[str, tuple[str | None, bool]]:
        """A subquery's column types by name (its first SELECT's; none through `*`)."""
        while isinstance(query, ast.SelectSetQuery):
            query = query.initial
        if len(query.select) != len(names):
            return {}
        return {
            n: result_type(self.result, item) for n, item in zip(names, query.select, strict=True)
        }

    def _call_types(self, node: ast.Call, function: Function) -> None:
        """Kinds the printer's SQL depends on, once the arguments are resolved."""
        if function.array_template is not None and kind(self.result, node.args[0]) == "array":
            self.result.over_arrays.add(id(node))
        # addDays(d, n), dateAdd('day', n, d): a Date stays a Date (ClickHouse); dateTrunc
        # of a Date too, to a day or longer; of a DateTime to a week or longer it is a Date
        truncates = self.result.calls[id(node)][0] in {"dateTrunc", "date_trunc"}
        unit = self.result.literals.get(id(node.args[0])) if truncates else None
        if unit in DAYS and unit != "day":
            self.result.dates.add(id(node))
            return
        if function.kind_from is None or kind(self.result, node.args[function.kind_from]) != "date":
            return
        if function.handler is not None or self.result.literals.get(id(node.args[0])) in DAYS:
            self.result.dates.add(id(node))

    def _zip(self, node: ast.Call) -> None:
        function = node.args[0]
        arrays = len(node.args) - 1
        if not isinstance(function, ast.Lambda) or len(function.args) != arrays:
            msg = f"{node.name} over {arrays} arrays takes a lambda of {arrays} arguments."
            raise _error(msg, node)
        self._zipped.add(id(function))
        self.result.zipped.add(id(node))

    def _params(self, node: ast.Call, name: str, function: Function) -> None:
        """quantile(0.9)(x): numeric constant parameters, printed as numbers."""
        if function.params is None:
            if node.params is not None:
                msg = f"Function '{name}' takes no parameters."
                raise _error(msg, node)
            return
        low, high = function.params
        given = node.params or []
        if not low <= len(given) <= high:
            msg = f"Function '{name}' takes {low} to {high} parameters: {name}(p)(x)."
            raise _error(msg, node)
        printed = []
        for param in given:
            value = param.value if isinstance(param, ast.Constant) else None
            if isinstance(value, bool) or not isinstance(value, int | float):
                msg = f"The parameters of {name} must be numbers."
                raise _error(msg, param)
            if name.startswith("quantile") and not 0 <= value <= 1:
                msg = "Quantile levels are between 0 and 1."
                raise _error(msg, param)
            if name.startswith("topK") and not (isinstance(value, int) and 1 <= value <= 10_000):
                msg = "topK(n) takes an integer n from 1 to 10000."
                raise _error(msg, param)
            printed.append(repr(value))
        self.result.params[id(node)] = printed


_FOLD: Final = {"+": "plus", "-": "minus", "*": "multiply", "%": "modulo"}
_FOLDED: Final = 1 << 62


def _constant_int(node: ast.Expr) -> int | None:
    """An integer constant, or arithmetic of them (`numbers(2 * 5)`, `numbers(plus(1, 2))`);
    None for anything else. Operands are bounded, so folding never builds a huge integer."""
    match node:
        case ast.Constant(value=bool()):
            return None
        case ast.Constant(value=int() as value):
            return value
        case ast.ArithmeticOperation(op=op, left=left, right=right) if op in _FOLD:
            return _constant_int(ast.Call(name=_FOLD[op], args=[left, right]))
        case ast.Call(name="plus" | "minus" | "multiply" | "intDiv" | "modulo", args=[a, b]):
            x, y = _constant_int(a), _constant_int(b)
            if x is None or y is None or abs(x) > _FOLDED or abs(y) > _FOLDED:
                return None
            if node.name in {"intDiv", "modulo"}:
                if y == 0:
                    return None
                # ClickHouse rounds integer division toward zero
                quotient = abs(x) // abs(y) * (1 if (x >= 0) == (y >= 0) else -1)
                return quotient if node.name == "intDiv" else x - quotient * y
            return {"plus": x + y, "minus": x - y, "multiply": x * y}[node.name]
    return None


def _count(node: ast.Expr, what: str) -> int:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
        and node.value >= 0
    ):
        return node.value
    msg = f"{what} takes a non-negative integer."
    raise HogQLQueryError(msg, start=node.start, end=node.end)


def _check_compare(node: ast.CompareOperation, op: str, right: ast.Expr) -> None:
    if op in {"in", "not in"}:
        if not isinstance(right, _IN_LISTS):
            msg = "IN takes a list or a subquery."
            raise HogQLQueryError(msg, start=right.start, end=right.end)
    elif op not in COMPARISONS:
        msg = f"Operator {node.op} is not supported by this gateway yet."
        raise HogQLUnsupported(msg, start=node.start, end=node.end)


def _check_frame(over: ast.WindowExpr) -> None:
    if over.frame_method is None:
        return
    if over.frame_method.upper() not in {"ROWS", "RANGE"} or over.frame_start is None:
        msg = f"Window frame {over.frame_method} is not supported by this gateway yet."
        raise HogQLUnsupported(msg, start=over.start, end=over.end)
    for bound in (over.frame_start, over.frame_end):
        if bound is None or bound.kind.upper() == "CURRENT ROW":
            continue
        if bound.kind.upper() not in {"PRECEDING", "FOLLOWING"}:
            msg = f"Window frame bound {bound.kind} is not supported."
            raise HogQLUnsupported(msg, start=bound.start, end=bound.end)
        if bound.offset is not None and bound.offset < 0:
            msg = "Window frame offsets must not be negative."
            raise HogQLQueryError(msg, start=bound.start, end=bound.end)


def _children(node: ast.Expr) -> list[ast.Expr]:
    match node:
        case ast.Alias(expr=expr) | ast.Not(expr=expr):
            return [expr]
        case (
            ast.CompareOperation(left=left, right=right)
            | ast.ArithmeticOperation(left=left, right=right)
        ):
            return [left, right]
        case (
            ast.And(exprs=exprs)
            | ast.Or(exprs=exprs)
            | ast.Tuple(exprs=exprs)
            | ast.Array(exprs=exprs)
        ):
            return list(exprs)
        case ast.BetweenExpr(expr=expr, low=low, high=high):
            return [expr, low, high]
        case ast.Constant():
            return []
    msg = f"{type(node).__name__} is not supported by this gateway yet."
    raise HogQLUnsupported(msg, start=node.start, end=node.end)


def resolve(tree: ast.SelectQuery | ast.SelectSetQuery) -> Resolution:
    """Resolve `tree`: every name, call and type decision, checked. Raises HogQLError."""
    resolver = Resolver()
    resolver.query(tree)
    result = resolver.result
    first = tree
    while isinstance(first, ast.SelectSetQuery):
        first = first.initial
    if not any(isinstance(result.fields.get(id(item)), Star) for item in first.select):
        result.column_timezones = tuple(column_timezone(result, item) for item in first.select)
        result.column_types = tuple(result_type(result, item) for item in first.select)
    return result
