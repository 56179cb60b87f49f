"""DuckDBPrinter: renders a resolved HogQL tree as DuckDB SQL. It decides nothing and checks
nothing: meaning, types and validity come from the Resolution (resolver.py); functions print
through their registry entry (functions.py: a template, or a handler in handlers.py); tables
print through the project filter (tables.py). Every literal and JSON path becomes a bound
parameter (`$n`, identical values share one, so equal expressions stay equal for DuckDB's
GROUP BY checks)."""

from __future__ import annotations

from typing import Any, Final

from gateway.hogql import ast
from gateway.hogql.binding import ValueSink, json_path, quote_identifier
from gateway.hogql.resolution import (
    ARRAY_JOIN_ALIAS,
    Column,
    ColumnCte,
    FieldMeaning,
    JsonPath,
    LambdaArg,
    Resolution,
    SelectAlias,
    Source,
    Star,
)
from gateway.hogql.tables import ProjectTables

DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 50_000


class DuckDBPrinter:
    """Prints one resolved query (`top()`), binding literals into `sink`.

    Created by `gateway.hogql.translate()` per query; it implements `handlers.SqlPrinter` for
    the function handlers. It raises nothing for a resolved tree (an unknown node is a bug).
    """

    def __init__(
        self,
        resolution: Resolution,
        *,
        project_id: int,
        query: str,
        sink: ValueSink,
        timezone: str = "UTC",
    ) -> None:
        self._r = resolution
        self._query = query
        self.sink = sink
        # Outside UTC, datetimes are naive local times of the project's timezone from the
        # table subqueries up: buckets, literals and `now()` are all read in that zone.
        self._tables = ProjectTables(sink, project_id=project_id, timezone=timezone)
        self._paged = False

    # -- what handlers ask (handlers.SqlPrinter) --------------------------------------------

    @property
    def local(self) -> bool:
        return self._tables.local

    def bind(self, value: Any) -> str:
        return self.sink.add(value)

    def in_zone(self, sql: str) -> str:
        return self._tables.in_zone(sql)

    def name_of(self, node: ast.Call) -> str:
        return self._r.calls[id(node)][0]

    def literal(self, node: ast.Expr) -> str:
        return self._r.literals[id(node)]

    def is_date(self, node: ast.Expr) -> bool:
        return id(node) in self._r.dates

    # -- queries -------------------------------------------------------------------------------

    def top(self, tree: ast.SelectQuery | ast.SelectSetQuery) -> str:
        # Only a plain SELECT without LIMIT is paged: it gets one extra row to tell `hasMore`.
        self._paged = isinstance(tree, ast.SelectQuery) and tree.limit is None
        return self._query_sql(tree, top=True)

    def _query_sql(self, node: ast.SelectQuery | ast.SelectSetQuery, *, top: bool) -> str:
        if isinstance(node, ast.SelectSetQuery):
            parts = [f"({self._query_sql(node.initial, top=top)})"]
            for _, member in node.subsequent:
                sql_operator = self._r.set_operators[id(member)]
                parts.append(f"{sql_operator} ({self._query_sql(member, top=top)})")
            return " ".join(parts)
        items = ", ".join(self._select_item(i, top=top) for i in node.select)
        sql = ""
        if node.ctes:
            sql = (
                "WITH "
                + ", ".join(
                    f"{quote_identifier(c.name)} AS ({self._query_sql(c.expr, top=False)})"
                    for c in node.ctes
                )
                + " "
            )
        sql += f"SELECT {'DISTINCT ' if node.distinct else ''}{items}"
        if node.select_from is not None:
            sql += f" FROM {self._from(node.select_from)}"
        if node.array_join:
            sql += self._array_join_sql(node, node.array_join)
        if node.where is not None:
            sql += f" WHERE {self.predicate(node.where)}"
        if node.group_by:
            sql += " GROUP BY " + ", ".join(self.expr(e) for e in node.group_by)
        if node.having is not None:
            sql += f" HAVING {self.predicate(node.having)}"
        if node.limit_by is not None:
            # LIMIT n BY exprs: the first n rows of each group, in the query's order
            count, by = node.limit_by
            order = self._order_sql(node.order_by) if node.order_by else ""
            sql += (
                " QUALIFY row_number() OVER (PARTITION BY "
                + ", ".join(self.expr(e) for e in by)
                + (f" ORDER BY {order}" if order else "")
                + f") <= {int(count)}"
            )
        if node.order_by:
            sql += " ORDER BY " + self._order_sql(node.order_by)
        return sql + self._limit_sql(node, top=top)

    def _array_join_sql(self, node: ast.SelectQuery, items: list[ast.Alias]) -> str:
        """ClickHouse's ARRAY JOIN: a row per element (arrays side by side are zipped)."""
        unnests = ", ".join(
            f"unnest({self.expr(item.expr)}) AS {quote_identifier(item.alias)}" for item in items
        )
        lateral = f"LATERAL (SELECT {unnests}) AS {quote_identifier(ARRAY_JOIN_ALIAS)}"
        if node.select_from is None:
            return f" FROM {lateral}"
        if node.array_join_left:
            return f" LEFT JOIN {lateral} ON TRUE"
        return f" CROSS JOIN {lateral}"

    def _limit_sql(self, node: ast.SelectQuery, *, top: bool) -> str:
        sql = ""
        limit = self._r.counts[id(node.limit)] if node.limit is not None else None
        if top:
            # Every top-level SELECT (each UNION member): 100 without a LIMIT, else capped.
            default = DEFAULT_LIMIT + 1 if self._paged else DEFAULT_LIMIT
            limit = default if limit is None else min(limit, MAX_LIMIT)
        if limit is not None:
            sql += f" LIMIT {limit}"
        if node.offset is not None:
            sql += f" OFFSET {self._r.counts[id(node.offset)]}"
        return sql

    def _order_sql(self, order_by: list[ast.OrderExpr]) -> str:
        return ", ".join(
            f"{self.expr(o.expr)} {'DESC' if o.order.upper() == 'DESC' else 'ASC'}"
            for o in order_by
        )

    def _select_item(self, item: ast.Expr, *, top: bool) -> str:
        sql = self.expr(item)
        if top and not isinstance(item, ast.Alias) and self._r.fields.get(id(item)) != Star():
            # Unaliased columns are named by the expression as written (`count()`), as PostHog.
            return f"{sql} AS {quote_identifier(self.text(item))}"
        return sql

    def text(self, node: ast.Node) -> str:
        if node.start is None or node.end is None:
            return "?"
        return self._query[node.start : node.end]

    def _from(self, join: ast.JoinExpr) -> str:
        sql = ""
        current: ast.JoinExpr | None = join
        while current is not None:
            source = self._r.sources[id(current)]
            table = f"{self._source(current, source)} AS {quote_identifier(source.alias)}"
            if current is join:
                sql = table
            else:
                sql += f" {self._r.joins[id(current)]} {table}"
                if current.constraint is not None:
                    sql += f" ON {self.predicate(current.constraint)}"
            current = current.next_join
        return sql

    def _source(self, join: ast.JoinExpr, source: Source) -> str:
        if source.table is not None:
            return self._tables.table(source.table, source.lazy, source.used)
        if source.cte is not None:
            return quote_identifier(source.cte)
        if source.numbers is not None:
            start, count = source.numbers
            return f"(SELECT range AS number FROM range({start}, {start + count}))"
        assert isinstance(join.table, ast.SelectQuery | ast.SelectSetQuery)
        return f"({self._query_sql(join.table, top=False)})"

    # -- expressions ---------------------------------------------------------------------------

    def expr(self, node: ast.Expr) -> str:  # noqa: C901 - one case per node type
        meaning = self._r.fields.get(id(node))
        if meaning is not None:
            return self._field(meaning)
        literal = self._r.literals.get(id(node))
        if literal is not None:
            return f"'{literal}'"  # whitelisted by the resolver
        match node:
            case ast.Constant(value=None):
                return "NULL"
            case ast.Constant(value=bool() as flag):
                return "TRUE" if flag else "FALSE"
            case ast.Constant(value=value):
                return self.sink.add(value)
            case ast.Alias(alias=alias, expr=expr):
                return f"{self.expr(expr)} AS {quote_identifier(alias)}"
            case ast.Call():
                return self._call(node)
            case ast.WindowFunction():
                return self._window(node)
            case ast.CompareOperation():
                return self._compare(node)
            case ast.ArithmeticOperation(op=op, left=left, right=right):
                sql = f"({self.expr(left)} {op} {self.expr(right)})"
                if id(node) in self._r.dates:
                    return f"CAST({sql} AS DATE)"  # Date ± INTERVAL stays a Date (ClickHouse)
                return sql
            case ast.And(exprs=exprs):
                return "(" + " AND ".join(self.expr(e) for e in exprs) + ")"
            case ast.Or(exprs=exprs):
                return "(" + " OR ".join(self.expr(e) for e in exprs) + ")"
            case ast.Not(expr=expr):
                return f"(NOT coalesce({self.expr(expr)}, FALSE))"
            case ast.BetweenExpr(expr=expr, low=low, high=high, negated=negated):
                between = f"{self.expr(expr)} BETWEEN {self.expr(low)} AND {self.expr(high)}"
                return f"({'NOT ' if negated else ''}coalesce({between}, FALSE))"
            case ast.Array(exprs=exprs):
                return "[" + ", ".join(self.expr(e) for e in exprs) + "]"
            case ast.Tuple(exprs=exprs):
                return "row(" + ", ".join(self.expr(e) for e in exprs) + ")"
            case ast.ArrayAccess(array=array, property=index):
                return f"({self.expr(array)})[{self.expr(index)}]"
            case ast.Lambda(expr=body):
                names = self._r.lambdas[id(node)]
                return f"(lambda {', '.join(names)}: {self.expr(body)})"
            case ast.SelectQuery() | ast.SelectSetQuery():
                return f"({self._query_sql(node, top=False)})"
        msg = f"{type(node).__name__} was not resolved"  # the resolver refuses unknown nodes
        raise ValueError(msg)

    def _field(self, meaning: FieldMeaning) -> str:
        match meaning:
            case Column(alias=alias, name=name):
                return f"{quote_identifier(alias)}.{quote_identifier(name)}"
            case JsonPath(alias=alias, column=column, path=path):
                ref = f"{quote_identifier(alias)}.{quote_identifier(column)}"
                if not path:
                    return ref
                # json_extract_string: missing key or JSON null → NULL, numbers and booleans as
                # their JSON text, objects and arrays as raw JSON (PostHog's property semantics).
                return f"json_extract_string({ref}, {self.sink.add(json_path(path))})"
            case SelectAlias(name=name):
                return quote_identifier(name)
            case LambdaArg(name=name):
                return name
            case ColumnCte(expr=expr):
                return f"({self.expr(expr)})"
            case Star():
                return "*"
        raise AssertionError(meaning)

    def _call(self, node: ast.Call | ast.WindowFunction) -> str:
        name, function = self._r.calls[id(node)]
        if function.handler is not None and isinstance(node, ast.Call):
            return function.handler(self, node)
        args = [self.expr(a) for a in node.args]
        if id(node) in self._r.zipped:
            zipped = f"list_zip({', '.join(args[1:])})"
            if name == "arrayFilter":  # ClickHouse returns the first array's elements
                kept = f"list_filter({zipped}, {args[0]})"
                return f"list_transform({kept}, lambda __e: __e[1])"
            args = [args[0], zipped]
        if function.condition:
            # -If: the aggregate over the rows where the condition holds: FILTER for a plain
            # aggregate call, else its arguments made NULL elsewhere (aggregates skip NULL)
            condition = self.predicate(node.args[-1]) if isinstance(node, ast.Call) else args[-1]
            args = args[:-1]
            if name == "countIf" and not args:
                return f"count(*) FILTER (WHERE {condition})"
            template = function.template
            if template.count("(") == 1 and template.endswith(")"):
                params = self._r.params.get(id(node), [])
                call = template.format(
                    *args,
                    args=", ".join(args),
                    params=", ".join(params),
                    **{f"p{i}": p for i, p in enumerate(params)},
                )
                return f"{call} FILTER (WHERE {condition})"
            args = [f"CASE WHEN coalesce({condition}, FALSE) THEN {a} END" for a in args]
        if name == "count" and not args:
            return "count(*)"
        if name == "count" and isinstance(node, ast.Call) and node.distinct:
            return f"count(DISTINCT {args[0]})"
        template = function.template
        if function.array_template is not None and id(node) in self._r.over_arrays:
            template = function.array_template
        params = self._r.params.get(id(node), [])
        padded = args + ["NULL"] * (function.max_args - len(args))
        return template.format(
            *padded,
            args=", ".join(args),
            params=", ".join(params),
            **{f"p{i}": p for i, p in enumerate(params)},
        )

    def _window(self, node: ast.WindowFunction) -> str:
        over = node.over
        parts = []
        if over.partition_by:
            parts.append("PARTITION BY " + ", ".join(self.expr(e) for e in over.partition_by))
        if over.order_by:
            parts.append(
                "ORDER BY "
                + ", ".join(
                    f"{self.expr(o.expr)} {'DESC' if o.order.upper() == 'DESC' else 'ASC'}"
                    for o in over.order_by
                )
            )
        if over.frame_method is not None and over.frame_start is not None:
            method = over.frame_method.upper()
            frame = f"{method} BETWEEN {self._bound(over.frame_start)} AND " + (
                self._bound(over.frame_end) if over.frame_end else "CURRENT ROW"
            )
            parts.append(frame)
        return f"{self._call(node)} OVER ({' '.join(parts)})"

    @staticmethod
    def _bound(bound: ast.FrameBound) -> str:
        kind = bound.kind.upper()  # checked by the resolver
        if kind == "CURRENT ROW":
            return "CURRENT ROW"
        if bound.offset is None:
            return f"UNBOUNDED {kind}"
        return f"{int(bound.offset)} {kind}"

    def predicate(self, node: ast.Expr) -> str:
        """A condition whose NULL drops the row as FALSE does (WHERE, HAVING, ON and the And/Or
        under them): the `coalesce(…, FALSE)` guards can go, so DuckDB pushes the filters into
        its scans. Under NOT they stay (`NOT NULL` is NULL, but HogQL's `NOT false` is true)."""
        match node:
            case ast.And(exprs=exprs):
                return "(" + " AND ".join(self.predicate(e) for e in exprs) + ")"
            case ast.Or(exprs=exprs):
                return "(" + " OR ".join(self.predicate(e) for e in exprs) + ")"
            case ast.CompareOperation():
                return self._compare(node, positive=True)
            case ast.BetweenExpr(expr=expr, low=low, high=high, negated=False):
                return f"({self.expr(expr)} BETWEEN {self.expr(low)} AND {self.expr(high)})"
        return self.expr(node)

    def _compare(  # noqa: C901 - one case per operator
        self, node: ast.CompareOperation, *, positive: bool = False
    ) -> str:
        def guard(sql: str) -> str:
            return f"({sql})" if positive else f"coalesce({sql}, FALSE)"

        left, op = self.expr(node.left), node.op.lower()
        if op in {"in", "not in"}:
            if isinstance(node.right, ast.Constant) and isinstance(node.right.value, list):
                # a list placeholder: one bound LIST value
                found = guard(f"list_contains({self.expr(node.right)}, {left})")
                return found if op == "in" else f"({left} IS NULL OR NOT {found})"
            if isinstance(node.right, ast.Tuple | ast.Array):
                right = "(" + ", ".join(self.expr(e) for e in node.right.exprs) + ")"
            elif isinstance(node.right, ast.Constant):  # `x IN (1)`: one value
                right = f"({self.expr(node.right)})"
            else:  # a subquery (the resolver refuses anything else)
                right = self.expr(node.right)
            if op == "in":
                return guard(f"{left} IN {right}")
            # HogQL keeps NULL x in `x NOT IN (…)`
            return f"({left} IS NULL OR coalesce({left} NOT IN {right}, FALSE))"
        right = self.expr(node.right)
        match op:
            case "==" | "=":
                if positive and any(
                    isinstance(side, ast.Constant) and side.value is not None
                    for side in (node.left, node.right)
                ):
                    return f"({left} = {right})"  # NULL = 'x' drops the row, as false does
                return f"({left} IS NOT DISTINCT FROM {right})"
            case "!=":
                return f"({left} IS DISTINCT FROM {right})"
            case "<" | ">" | "<=" | ">=":
                return guard(f"{left} {op} {right}")
            case "like" | "ilike" | "not like" | "not ilike":
                return guard(f"{left} {op.upper()} {right}")
            case "=~":
                return guard(f"regexp_matches({left}, {right})")
        # "!~": the resolver refuses any other operator
        return f"(NOT coalesce(regexp_matches({left}, {right}), FALSE))"
