"""Meaning: which table each name refers to, which column or JSON path each field is, which
function each call is. Every decision the printer needs is made here and recorded by node.

Scopes are per SELECT: the tables of its FROM (by alias) and its own select aliases. Fields
resolve only within their own SELECT (correlated subqueries are not supported yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from gateway.hogql import ast
from gateway.hogql.errors import HogQLQueryError, HogQLUnsupported
from gateway.hogql.functions import DATE_UNITS, Function, lookup, window_lookup
from gateway.hogql.schema import RESERVED, TABLES, Table

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


@dataclass(frozen=True, kw_only=True)
class Column:
    alias: str
    name: str


@dataclass(frozen=True, kw_only=True)
class JsonPath:
    alias: str
    column: str
    path: tuple[str | int, ...]


@dataclass(frozen=True, kw_only=True)
class SelectAlias:
    name: str


@dataclass(frozen=True, kw_only=True)
class Star:
    pass


@dataclass(frozen=True, kw_only=True)
class LambdaArg:
    name: str  # as printed (`__l0`): user names never reach SQL


@dataclass(frozen=True, kw_only=True)
class ColumnCte:
    """`WITH expr AS name`: the field is the expression."""

    expr: ast.Expr = field(hash=False, compare=False)


type FieldMeaning = Column | JsonPath | SelectAlias | Star | LambdaArg | ColumnCte
ARRAY_JOIN_ALIAS: Final = "__array_join"


@dataclass(kw_only=True)
class Source:
    """One FROM entry: a stored table, `numbers(…)`, or a subquery with its output names."""

    alias: str
    table: Table | None = None
    numbers: tuple[int, int] | None = None
    subquery_columns: list[str] | None = None
    cte: str | None = None
    # lazy joins this query names (`person`, `pdi`, `session`): the printer joins only these
    lazy: set[str] = field(default_factory=set)
    # columns named (`$session_duration`, `session.$session_duration`): derived tables
    # compute only these
    used: set[str] = field(default_factory=set)

    def has(self, name: str) -> bool:
        if self.table is not None:
            return (
                name in self.table.columns or name in self.table.virtual or name in self.table.lazy
            )
        if self.numbers is not None:
            return name == "number"
        return name in (self.subquery_columns or [])


@dataclass(kw_only=True)
class Resolution:
    fields: dict[int, FieldMeaning] = field(default_factory=dict)
    calls: dict[int, tuple[str, Function]] = field(default_factory=dict)
    sources: dict[int, Source] = field(default_factory=dict)
    joins: dict[int, str] = field(default_factory=dict)
    # constants printed as SQL literals (checked against a whitelist here, e.g. dateDiff units)
    literals: dict[int, str] = field(default_factory=dict)
    # parametric calls' parameters, checked numbers as printed (quantile(0.9)(x))
    params: dict[int, list[str]] = field(default_factory=dict)
    # lambdas' argument names as printed (`__l0`), by lambda node
    lambdas: dict[int, list[str]] = field(default_factory=dict)
    # array-function calls over several arrays (printed over list_zip)
    zipped: set[int] = field(default_factory=set)


def _error(message: str, node: ast.Node) -> HogQLQueryError:
    return HogQLQueryError(message, start=node.start, end=node.end)


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
        elif isinstance(item, ast.Field) and item.chain == ["*"]:
            names += _star_names(query.select_from, ctes or {})
        elif isinstance(item, ast.Field):
            names.append(str(item.chain[-1]))
        else:
            names.append("")
    return names


def _star_names(join: ast.JoinExpr | None, ctes: dict[str, list[str]]) -> list[str]:
    names: list[str] = []
    while join is not None:
        table = join.table
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
    def __init__(self) -> None:
        self.result = Resolution()
        # CTE name → its output columns, innermost scope last
        self._ctes: list[dict[str, list[str]]] = []
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
            for _, member in node.subsequent:
                self.query(member)
            return
        self._ctes.append({})
        self._column_ctes.append(node.column_ctes)
        try:
            empty = _Scope(sources=[], aliases=set())
            for expr in node.column_ctes.values():
                self.expr(expr, empty)
            for cte in node.ctes or []:
                if cte.name in self._ctes[-1]:
                    msg = f"CTE '{cte.name}' is defined twice."
                    raise _error(msg, cte)
                self.query(cte.expr)  # sees the CTEs defined before it
                self._ctes[-1][cte.name] = output_names(cte.expr, self._visible_ctes())
            self._select(node)
        finally:
            self._ctes.pop()
            self._column_ctes.pop()

    def _select(self, node: ast.SelectQuery) -> None:
        sources = self._from(node.select_from) if node.select_from else []
        column_ctes: dict[str, ast.Expr] = {}
        for level in self._column_ctes:
            column_ctes |= level
        if node.array_join:
            from_scope = _Scope(sources=sources, aliases=set(), column_ctes=column_ctes)
            for joined in node.array_join:
                self.expr(joined.expr, from_scope)
            sources = [
                *sources,
                Source(alias=ARRAY_JOIN_ALIAS, subquery_columns=[i.alias for i in node.array_join]),
            ]
        aliases = {i.alias for i in node.select if isinstance(i, ast.Alias)}
        scope = _Scope(sources=sources, aliases=aliases, column_ctes=column_ctes)
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

    def _from(self, join: ast.JoinExpr) -> list[Source]:
        sources: list[Source] = []
        current: ast.JoinExpr | None = join
        while current is not None:
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
        scope = _Scope(sources=sources, aliases=set())
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
            return Source(
                alias=join.alias or f"__subquery_{len(self.result.sources)}",
                subquery_columns=output_names(table, self._visible_ctes()),
            )
        if isinstance(table, ast.Call) and table.name == "numbers":
            return Source(alias=join.alias or "numbers", numbers=self._numbers(table))
        if isinstance(table, ast.Field) and len(table.chain) == 1:
            name = str(table.chain[0])
            ctes = self._visible_ctes()
            if name in ctes:
                return Source(alias=join.alias or name, cte=name, subquery_columns=ctes[name])
            stored = TABLES.get(name)
            if stored is None:
                msg = f"Unknown table `{name}`."
                raise _error(msg, table)
            return Source(alias=join.alias or name, table=stored)
        msg = "Unknown table."
        raise _error(msg, join)

    def _numbers(self, call: ast.Call) -> tuple[int, int]:
        values = []
        for arg in call.args:
            if (
                not isinstance(arg, ast.Constant)
                or isinstance(arg.value, bool)
                or not isinstance(arg.value, int)
            ):
                msg = "numbers() takes integer constants."
                raise _error(msg, arg)
            values.append(arg.value)
        if len(values) not in (1, 2):
            msg = "numbers() takes numbers(n) or numbers(start, n)."
            raise _error(msg, call)
        start, count = (0, values[0]) if len(values) == 1 else (values[0], values[1])
        if not 0 <= count <= MAX_NUMBERS:
            msg = f"numbers() is limited to {MAX_NUMBERS} rows."
            raise _error(msg, call)
        return start, count

    def expr(self, node: ast.Expr, scope: _Scope, *, allow_star: bool = False) -> None:
        match node:
            case ast.Field():
                self.result.fields[id(node)] = scope.field(node, allow_star=allow_star)
            case ast.ArrayAccess(array=array, property=index):
                self.expr(array, scope)
                meaning = self.result.fields.get(id(array))
                key = index.value if isinstance(index, ast.Constant) else None
                if isinstance(meaning, JsonPath) and isinstance(key, str | int):
                    if isinstance(key, bool) or (isinstance(key, int) and key < 1):
                        msg = "Array indices start at 1."
                        raise _error(msg, index)
                    self.result.fields[id(node)] = JsonPath(
                        alias=meaning.alias, column=meaning.column, path=(*meaning.path, key)
                    )
                    return
                if isinstance(key, int) and key == 0:
                    msg = "Array indices start at 1."
                    raise _error(msg, index)
                self.expr(index, scope)  # arr[i]: 1-based, negative from the end, as DuckDB
            case ast.Call():
                name, function = scope_lookup(node)
                self._params(node, name, function)
                if not function.min_args <= len(node.args) <= function.max_args:
                    wanted = str(function.min_args)
                    if function.max_args != function.min_args:
                        wanted += f" to {function.max_args}"
                    msg = f"Function '{name}' takes {wanted} arguments, got {len(node.args)}."
                    raise _error(msg, node)
                self.result.calls[id(node)] = (name, function)
                if name in UNIT_FIRST:
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
                if name in LAMBDA_FIRST and len(node.args) > 2:
                    self._zip(node)
                for arg in node.args:
                    self.expr(arg, scope)
            case ast.WindowFunction():
                name, function = window_lookup(node.name, start=node.start, end=node.end)
                if not function.min_args <= len(node.args) <= function.max_args:
                    msg = (
                        f"Function '{name}' takes {function.min_args} to {function.max_args}"
                        f" arguments, got {len(node.args)}."
                    )
                    raise _error(msg, node)
                self.result.calls[id(node)] = (name, function)
                for arg in node.args:
                    self.expr(arg, scope)
                for part in node.over.partition_by or []:
                    self.expr(part, scope)
                for order in node.over.order_by or []:
                    self.expr(order.expr, scope)
            case ast.SelectQuery() | ast.SelectSetQuery():
                self.query(node)
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
                inner = _Scope(
                    sources=scope.sources,
                    aliases=scope.aliases,
                    column_ctes=scope.column_ctes,
                    lambdas={**scope.lambdas, **names},
                )
                self.expr(body, inner)
            case _:
                for child in _children(node):
                    self.expr(child, scope)

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


# array functions whose first argument is a lambda
LAMBDA_FIRST: Final = frozenset(
    {"arrayMap", "arrayFilter", "arrayExists", "arrayAll", "arrayCount"}
)
# functions whose first argument is a date unit ('day'), printed as a checked literal
UNIT_FIRST: Final = frozenset(
    {"dateDiff", "dateAdd", "dateSub", "date_add", "date_sub", "dateTrunc", "date_trunc"}
)


def scope_lookup(node: ast.Call) -> tuple[str, Function]:
    return lookup(node.name, start=node.start, end=node.end)


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


@dataclass(kw_only=True)
class _Scope:
    sources: list[Source]
    aliases: set[str]
    column_ctes: dict[str, ast.Expr] = field(default_factory=dict)
    lambdas: dict[str, str] = field(default_factory=dict)

    def field(self, node: ast.Field, *, allow_star: bool) -> FieldMeaning:
        chain = node.chain
        first = str(chain[0])
        if first in self.lambdas and len(chain) == 1:
            return LambdaArg(name=self.lambdas[first])
        if first == "*" and len(chain) == 1:
            if not allow_star:
                msg = "* is only allowed in SELECT."
                raise _error(msg, node)
            for source in self.sources:
                if source.table is not None:
                    source.lazy.update(source.table.computed.values())
                    source.used.update(source.table.columns)
            return Star()
        if first in RESERVED:
            msg = f"{first} is not selectable."
            raise _error(msg, node)
        by_alias = [s for s in self.sources if s.alias == first]
        if by_alias and len(chain) > 1:
            return self._in(
                by_alias[0], [str(c) if isinstance(c, str) else c for c in chain[1:]], node
            )
        owners = [s for s in self.sources if s.has(first)]
        if len(owners) > 1:
            msg = f"Ambiguous field `{first}`: qualify it with a table alias."
            raise _error(msg, node)
        if owners:
            return self._in(owners[0], list(chain), node)
        if first in self.aliases and len(chain) == 1:
            return SelectAlias(name=first)
        if first in self.column_ctes and len(chain) == 1:
            return ColumnCte(expr=self.column_ctes[first])
        msg = f"Unable to resolve field: {first}"
        raise _error(msg, node)

    def _in(self, source: Source, chain: list[Any], node: ast.Field) -> FieldMeaning:
        name = str(chain[0])
        if name in RESERVED:
            msg = f"{name} is not selectable."
            raise _error(msg, node)
        if source.table is not None:
            table = source.table
            if name in table.virtual and len(chain) == 1:
                column, key = table.virtual[name]
                return JsonPath(alias=source.alias, column=column, path=(key,))
            if name in table.lazy:
                return self._lazy(source, chain, node)
            if name not in table.columns:
                msg = f"Field `{name}` does not exist on table `{table.name}`."
                raise _error(msg, node)
            if name in table.computed:
                source.lazy.add(table.computed[name])
            source.used.add(name)
            if name in table.json_columns:
                return JsonPath(alias=source.alias, column=name, path=tuple(chain[1:]))
            if len(chain) == 1:
                return Column(alias=source.alias, name=name)
            if name not in table.json_columns:
                msg = f"`{name}` has no fields."
                raise _error(msg, node)
            return JsonPath(alias=source.alias, column=name, path=tuple(chain[1:]))
        if not source.has(name) or len(chain) > 1:
            msg = f"Unable to resolve field: {'.'.join(map(str, chain))}"
            raise _error(msg, node)
        return Column(alias=source.alias, name=name)

    @staticmethod
    def _lazy(source: Source, chain: list[Any], node: ast.Field) -> FieldMeaning:
        """`person.properties.x`, `pdi.person_id`, `session.$session_duration`: a column of a
        lazy join, printed as `alias."person.properties"` once the printer joins it."""
        assert source.table is not None
        name = str(chain[0])
        joined = source.table.lazy[name]
        if len(chain) == 1:
            example = f"{name}.{next(iter(joined.columns))}"
            msg = f"`{name}` is a table: name one of its fields (`{example}`)."
            raise _error(msg, node)
        field_name = str(chain[1])
        if field_name in RESERVED:
            msg = f"{field_name} is not selectable."
            raise _error(msg, node)
        if field_name not in joined.columns:
            msg = f"Field `{field_name}` does not exist on table `{joined.name}`."
            raise _error(msg, node)
        source.lazy.add(name)
        column = f"{name}.{field_name}"
        source.used.add(column)
        if field_name in joined.json_columns:
            return JsonPath(alias=source.alias, column=column, path=tuple(chain[2:]))
        if len(chain) > 2:
            msg = f"`{column}` has no fields."
            raise _error(msg, node)
        return Column(alias=source.alias, name=column)


def resolve(tree: ast.SelectQuery | ast.SelectSetQuery) -> Resolution:
    resolver = Resolver()
    resolver.query(tree)
    return resolver.result
