"""DuckDBPrinter: renders a resolved HogQL tree as DuckDB SQL. It decides nothing and checks
nothing: meaning, types and validity come from the Resolution (resolver.py); functions print
through their registry entry (functions.py: a template, or a handler in handlers.py); tables
print through the project filter (tables.py). Every literal and JSON path becomes a bound
parameter (`$n`, identical values share one, so equal expressions stay equal for DuckDB's
GROUP BY checks)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Final

from gateway.hogql import ast, grouping, uniq
from gateway.hogql.binding import ValueSink, json_path, quote_identifier
from gateway.hogql.bitmaps import Bitmaps, bitmaps
from gateway.hogql.handlers import day_number
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
from gateway.hogql.tables import PERSON_INDEX, ProjectTables

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
        materialized: Collection[str] = (),
    ) -> None:
        self._r = resolution
        self._query = query
        self.sink = sink
        # Outside UTC, datetimes are naive local times of the project's timezone from the
        # table subqueries up: buckets, literals and `now()` are all read in that zone.
        self._tables = ProjectTables(
            sink, project_id=project_id, timezone=timezone, materialized=materialized
        )
        self._paged = False
        # FROM subqueries grouped by the distinct id hash, by query node (grouping.py)
        self._hash_groups: dict[int, grouping.HashGrouping] = {}

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

    def distinct_value(self, node: ast.Expr) -> str:
        """What `uniq(node)` counts distinct values of (gateway/hogql/uniq.py)."""
        return uniq.hash_column(self._r, node) or self.expr(node)

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
        plan = bitmaps(self._r, node, self.text)
        if plan is not None:
            assert isinstance(node, ast.SelectQuery)  # checked by bitmaps()
            return self._bitmaps_sql(node, plan, top=top)
        hashed = self._hash_groups.get(id(node))
        blanks = hashed.blanks if hashed is not None else {}
        items = ", ".join(
            f"NULL AS {quote_identifier(blanks[id(i)])}"
            if id(i) in blanks
            else self._select_item(i, top=top)
            for i in node.select
        )
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
            keys = hashed.keys if hashed is not None else {}
            sql += " GROUP BY " + ", ".join(keys.get(id(e)) or self.expr(e) for e in node.group_by)
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

    def _bitmaps_sql(self, node: ast.SelectQuery, plan: Bitmaps, *, top: bool) -> str:
        """The SELECT counting distinct values with bitmaps of their numbers (bitmaps.py)."""
        source = plan.source
        assert source.table is not None  # checked by bitmaps()
        alias = quote_identifier(source.alias)
        lazy = source.lazy
        if plan.day_of is None:  # the person's number
            index = f'{alias}."{PERSON_INDEX}"'
            lazy = lazy | {PERSON_INDEX}
        else:
            index = day_number(self, plan.day_of)
        hashed = self._hash_groups.get(id(node))
        hashed_keys = hashed.keys if hashed is not None else {}
        blanks = hashed.blanks if hashed is not None else {}
        keys = [
            f'{hashed_keys.get(id(g)) or self.expr(k)} AS "%key{i}"'
            for i, (g, k) in enumerate(zip(plan.groups, plan.keys, strict=True))
        ]
        table = self._tables.table(source.table, lazy, source.used)
        inner = (
            f'SELECT {", ".join(keys)}, {index} >> 6 AS "%block", bit_or(CAST(1 AS UBIGINT)'
            f' << CAST({index} & 63 AS INTEGER)) AS "%bits" FROM {table} AS {alias}'
        )
        if node.where is not None:
            inner += f" WHERE {self.predicate(node.where)}"
        grouped = ", ".join(f'"%key{i}"' for i in range(len(plan.keys)))
        inner += f' GROUP BY {grouped}, "%block"'
        items = []
        for item in node.select:
            key = plan.items[id(item)]
            if id(item) in blanks:
                sql = "NULL"
            elif key is None:
                sql = 'CAST(coalesce(sum(bit_count("%bits")), 0) AS BIGINT)'
            else:
                sql = f'"%key{key}"'
            if isinstance(item, ast.Alias):
                name = item.alias
            elif isinstance(item, ast.Field) and not top:
                name = str(item.chain[-1])
            else:
                name = self.text(item)
            items.append(f"{sql} AS {quote_identifier(name)}")
        sql = f"SELECT {', '.join(items)} FROM ({inner}) GROUP BY {grouped}"
        if node.order_by:
            sql += " ORDER BY " + ", ".join(
                (
                    f'"%key{plan.order[id(o.expr)]}"'
                    if id(o.expr) in plan.order
                    else self.expr(o.expr)
                )
                + (" DESC" if o.order.upper() == "DESC" else " ASC")
                + (f" NULLS {o.nulls}" if o.nulls in {"FIRST", "LAST"} else "")
                for o in node.order_by
            )
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
        elif limit is not None:
            # DuckDB 2.0's projection_pullup drops a bare LIMIT over a LEFT JOIN whose right side
            # it knows is empty (`select * from events limit 1` gave every row while no person
            # existed); with an OFFSET the limit stays, in the same plan (Limit / Top N)
            sql += " OFFSET 0"
        return sql

    def _order_sql(self, order_by: list[ast.OrderExpr]) -> str:
        # NULLs go last in either direction unless the query says (ClickHouse's default, and
        # the store's DuckDB default_null_order)
        return ", ".join(
            f"{self.expr(o.expr)} {'DESC' if o.order.upper() == 'DESC' else 'ASC'}"
            + (f" NULLS {o.nulls}" if o.nulls in {"FIRST", "LAST"} else "")
            for o in order_by
        )

    def _select_item(self, item: ast.Expr, *, top: bool) -> str:
        sql = self.expr(item)
        star = isinstance(self._r.fields.get(id(item)), Star)
        if top and not isinstance(item, ast.Alias) and not star:
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
        hashed = grouping.by_hash(self._r, join.table, source)
        if hashed is not None:
            self._hash_groups[id(join.table)] = hashed
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
                if id(node) in self._r.nulls:
                    return "NULL"
                sql = f"({self._operand(left)} {op} {self._operand(right)})"
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

    def _operand(self, node: ast.Expr) -> str:
        """An arithmetic operand; an integer literal as BIGINT: DuckDB types a small one as
        INTEGER and `70000 * 70000` would overflow, where ClickHouse widens (UInt64)."""
        sql = self.expr(node)
        value = node.value if isinstance(node, ast.Constant) else None
        if type(value) is int and -(2**63) <= value < 2**63:
            return f"CAST({sql} AS BIGINT)"
        return sql

    def _field(self, meaning: FieldMeaning) -> str:
        match meaning:
            case Column(alias=alias, name=name):
                return f"{quote_identifier(alias)}.{quote_identifier(name)}"
            case JsonPath(alias=alias, column=column, path=path, table=table):
                ref = f"{quote_identifier(alias)}.{quote_identifier(column)}"
                if not path:
                    return ref
                stored = self._tables.materialized(table, column, path)
                if stored is not None:  # the store's column: the same values, no JSON parse
                    return f"{quote_identifier(alias)}.{quote_identifier(stored)}"
                # json_extract_string: missing key or JSON null → NULL, numbers and booleans as
                # their JSON text, objects and arrays as raw JSON (PostHog's property semantics).
                return f"json_extract_string({ref}, {self.sink.add(json_path(path))})"
            case SelectAlias(name=name):
                return quote_identifier(name)
            case LambdaArg(name=name):
                return name
            case ColumnCte(expr=expr):
                return f"({self.expr(expr)})"
            case Star(alias=alias, source=source, columns=columns):
                if columns and source is not None:  # a stored table: its public columns only
                    table = quote_identifier(source)
                    return ", ".join(f"{table}.{quote_identifier(c)}" for c in columns)
                return "*" if alias is None else f"{quote_identifier(alias)}.*"
        raise AssertionError(meaning)

    def _call(self, node: ast.Call | ast.WindowFunction, over: str = "") -> str:
        if id(node) in self._r.nulls:
            return "NULL"  # toYear(NULL): NULL, as ClickHouse (the resolver checked the call)
        _, function = self._r.calls[id(node)]
        if function.handler is not None and isinstance(node, ast.Call):
            return function.handler(self, node)
        sql = self._template_call(node, over)
        if id(node) in self._r.dates:
            return f"CAST({sql} AS DATE)"  # dateTrunc('month', <Date>) stays a Date
        if over and "{over}" not in function.template:
            return sql + over
        return sql

    def _template_call(self, node: ast.Call | ast.WindowFunction, over: str) -> str:
        name, function = self._r.calls[id(node)]
        template = function.template
        if isinstance(node, ast.Call) and node.distinct and "DISTINCT" not in template:
            # countIf(DISTINCT x, cond), sum(DISTINCT x): DISTINCT over the first argument
            for first in ("{0}", "{args}"):
                if first in template:
                    template = template.replace(first, f"DISTINCT {first}", 1)
                    break
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
            if template.count("(") == 1 and template.endswith(")"):
                params = self._r.params.get(id(node), [])
                call = template.format(
                    *args,
                    args=", ".join(args),
                    params=", ".join(params),
                    over="",
                    **{f"p{i}": p for i, p in enumerate(params)},
                )
                return f"{call} FILTER (WHERE {condition})"
            args = [f"CASE WHEN coalesce({condition}, FALSE) THEN {a} END" for a in args]
        if name == "count" and not args:
            return "count(*)"
        if function.array_template is not None and id(node) in self._r.over_arrays:
            template = function.array_template
        params = self._r.params.get(id(node), [])
        padded = args + ["NULL"] * (function.max_args - len(args))
        return template.format(
            *padded,
            args=", ".join(args),
            params=", ".join(params),
            over=over,
            **{f"p{i}": p for i, p in enumerate(params)},
        )

    def _window(self, node: ast.WindowFunction) -> str:
        over = node.over
        parts = []
        if over.partition_by:
            parts.append("PARTITION BY " + ", ".join(self.expr(e) for e in over.partition_by))
        if over.order_by:
            parts.append("ORDER BY " + self._order_sql(over.order_by))
        if over.frame_method is not None and over.frame_start is not None:
            method = over.frame_method.upper()
            frame = f"{method} BETWEEN {self._bound(over.frame_start)} AND " + (
                self._bound(over.frame_end) if over.frame_end else "CURRENT ROW"
            )
            parts.append(frame)
        return self._call(node, over=f" OVER ({' '.join(parts)})")

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

    def _compare(self, node: ast.CompareOperation, *, positive: bool = False) -> str:
        """HogQL's NULL rules, as PostHog's printer applies them (docs/hogql.md, Semantics)."""
        op = node.op.lower()
        if op in {"in", "not in"}:
            return self._in(node, op, positive=positive)
        left, right = self.expr(node.left), self.expr(node.right)
        if op in {"==", "="}:
            if positive and (_value(node.left) or _value(node.right)):
                return f"({left} = {right})"  # NULL = 'x' drops the row, as false does
            return f"({left} IS NOT DISTINCT FROM {right})"
        if op == "!=":
            return f"({left} IS DISTINCT FROM {right})"
        if op in {"<", ">", "<=", ">="}:
            return _guard(f"{left} {op} {right}", positive=positive)
        negated = op.startswith(("not", "!"))
        if op in {"=~", "!~", "=~*", "!~*"}:
            flags = ", 'i'" if op.endswith("*") else ""
            matched = f"regexp_matches({left}, {right}{flags})"
            test = f"(NOT {matched})" if negated else matched
        else:  # like, ilike, not like, not ilike
            test = f"{left} {op.upper()} {right}"
        # A NULL constant side makes it an IS NULL test; with another constant side, NULL is
        # no match; otherwise NULL on both sides is a match (negated: the reverse of each)
        for side, other in ((node.right, left), (node.left, right)):
            if _null(side):
                return f"({other} IS {'NOT ' if negated else ''}NULL)"
        if _value(node.left) or _value(node.right):
            return f"coalesce({test}, TRUE)" if negated else _guard(test, positive=positive)
        if negated:
            return f"coalesce({test}, {left} IS NOT NULL OR {right} IS NOT NULL)"
        return f"coalesce({test}, {left} IS NULL AND {right} IS NULL)"

    def _in(self, node: ast.CompareOperation, op: str, *, positive: bool) -> str:
        """IN as ClickHouse's transform_null_in (PostHog's setting): NULL is a value that
        matches NULL, and the answer is never NULL."""
        left, right = self.expr(node.left), node.right
        has_null: str  # SQL: does the list hold a NULL?
        if isinstance(right, ast.Constant) and isinstance(right.value, list):
            # a list placeholder: one bound LIST value, its NULLs left out
            values = [v for v in right.value if v is not None]
            has_null = "TRUE" if len(values) < len(right.value) else "FALSE"
            found = f"list_contains({self.sink.add(values)}, {left})"
        elif isinstance(right, ast.Tuple | ast.Array | ast.Constant):
            items = right.exprs if isinstance(right, ast.Tuple | ast.Array) else [right]
            kept = [e for e in items if not _null(e)]
            unknown = [self.expr(e) for e in kept if not isinstance(e, ast.Constant)]
            has_null = (
                "TRUE"
                if len(kept) < len(items)
                else " OR ".join(f"{e} IS NULL" for e in unknown) or "FALSE"
            )
            found = f"{left} IN ({', '.join(self.expr(e) for e in kept)})" if kept else "FALSE"
        else:  # a subquery (the resolver refuses anything else)
            query = self.expr(right)
            has_null = f"EXISTS (SELECT 1 FROM {query} AS __in(__v) WHERE __v IS NULL)"
            found = f"{left} IN {query}"
        if has_null == "FALSE":
            if op == "in":
                return _guard(found, positive=positive)
            return f"({left} IS NULL OR NOT coalesce({found}, FALSE))"
        null_in = f"{left} IS NULL" if has_null == "TRUE" else f"{left} IS NULL AND ({has_null})"
        matched = f"({null_in} OR coalesce({found}, FALSE))"
        return matched if op == "in" else f"(NOT {matched})"


def _guard(sql: str, *, positive: bool) -> str:
    """A comparison whose NULL is false: bare where NULL drops the row as FALSE does."""
    return f"({sql})" if positive else f"coalesce({sql}, FALSE)"


def _null(node: ast.Expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _value(node: ast.Expr) -> bool:
    """A constant other than NULL."""
    return isinstance(node, ast.Constant) and node.value is not None
