"""DuckDBPrinter: renders a resolved HogQL tree as DuckDB SQL. It decides nothing: meaning comes
from the Resolution; every literal and JSON path becomes a bound parameter (`$n`, identical
values share one, so equal expressions stay equal for DuckDB's GROUP BY checks)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from gateway.hogql import ast
from gateway.hogql.errors import HogQLQueryError, HogQLUnsupported
from gateway.hogql.resolver import Column, JsonPath, Resolution, SelectAlias, Source, Star
from gateway.hogql.schema import PERSONS, SESSIONS, Table

SET_OPERATORS: Final = {
    "UNION ALL": "UNION ALL",
    "UNION DISTINCT": "UNION",
    "INTERSECT": "INTERSECT",
    "INTERSECT DISTINCT": "INTERSECT",
    "EXCEPT": "EXCEPT",
    "EXCEPT DISTINCT": "EXCEPT",
}
DEFAULT_LIMIT: Final = 100
MAX_LIMIT: Final = 50_000
_ARITHMETIC: Final = {"+": "+", "-": "-", "*": "*", "/": "/", "%": "%"}
_ORDERED: Final = {"<": "<", ">": ">", "<=": "<=", ">=": ">="}


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def json_path(path: tuple[str | int, ...]) -> str:
    parts = ["$"]
    for key in path:
        if isinstance(key, int):
            if key < 1:
                msg = "Array indices start at 1."
                raise HogQLQueryError(msg)
            parts.append(f"[{key - 1}]")
        else:
            parts.append('."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "".join(parts)


class ValueSink:
    """Bound parameters, deduplicated by (type, value)."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[tuple[type, Any], int] = {}  # lists keyed as tuples

    def add(self, value: Any) -> str:
        key = (type(value), tuple(value) if isinstance(value, list) else value)
        if key not in self._index:
            self.values.append(value)
            self._index[key] = len(self.values)
        return f"${self._index[key]}"


class DuckDBPrinter:
    def __init__(
        self, resolution: Resolution, *, project_id: int, query: str, sink: ValueSink
    ) -> None:
        self._r = resolution
        self._project = project_id
        self._query = query
        self.sink = sink
        self._paged = False

    # -- queries -------------------------------------------------------------------------------

    def top(self, tree: ast.SelectQuery | ast.SelectSetQuery) -> str:
        # Only a plain SELECT without LIMIT is paged: it gets one extra row to tell `hasMore`.
        self._paged = isinstance(tree, ast.SelectQuery) and tree.limit is None
        return self._query_sql(tree, top=True)

    def _query_sql(self, node: ast.SelectQuery | ast.SelectSetQuery, *, top: bool) -> str:
        if isinstance(node, ast.SelectSetQuery):
            parts = [f"({self._query_sql(node.initial, top=top)})"]
            for operator, member in node.subsequent:
                sql_operator = SET_OPERATORS.get(operator.upper())
                if sql_operator is None:
                    msg = f"{operator} is not supported by this gateway yet."
                    raise HogQLUnsupported(msg, start=member.start, end=member.end)
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
        if node.where is not None:
            sql += f" WHERE {self.expr(node.where)}"
        if node.group_by:
            sql += " GROUP BY " + ", ".join(self.expr(e) for e in node.group_by)
        if node.having is not None:
            sql += f" HAVING {self.expr(node.having)}"
        if node.order_by:
            sql += " ORDER BY " + ", ".join(
                f"{self.expr(o.expr)} {'DESC' if o.order.upper() == 'DESC' else 'ASC'}"
                for o in node.order_by
            )
        limit = self._int(node.limit, "LIMIT") if node.limit is not None else None
        if top:
            # Every top-level SELECT (each UNION member): 100 without a LIMIT, else capped.
            default = DEFAULT_LIMIT + 1 if self._paged else DEFAULT_LIMIT
            limit = default if limit is None else min(limit, MAX_LIMIT)
        if limit is not None:
            sql += f" LIMIT {limit}"
        if node.offset is not None:
            sql += f" OFFSET {self._int(node.offset, 'OFFSET')}"
        return sql

    @staticmethod
    def _int(node: ast.Expr, what: str) -> int:
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int)
            and not isinstance(node.value, bool)
            and node.value >= 0
        ):
            return node.value
        msg = f"{what} takes a non-negative integer."
        raise HogQLQueryError(msg, start=node.start, end=node.end)

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
                    sql += f" ON {self.expr(current.constraint)}"
            current = current.next_join
        return sql

    def _source(self, join: ast.JoinExpr, source: Source) -> str:
        if source.table is not None:
            return self._table(source.table, source.lazy)
        if source.cte is not None:
            return quote_identifier(source.cte)
        if source.numbers is not None:
            start, count = source.numbers
            return f"(SELECT range AS number FROM range({start}, {start + count}))"
        assert isinstance(join.table, ast.SelectQuery | ast.SelectSetQuery)
        return f"({self._query_sql(join.table, top=False)})"

    def _stored(self, name: str, columns: Iterable[str]) -> str:
        # The project filter, on every reference to every table: joins, subqueries, set
        # members and lazy joins alike. There is no other way for SQL to reach a stored table.
        listed = ", ".join(quote_identifier(c) for c in columns)
        return (
            f"(SELECT {listed} FROM {quote_identifier(name)}"
            f" WHERE project_id = {self.sink.add(self._project)})"
        )

    def _table(self, table: Table, lazy: set[str]) -> str:
        if not table.stored:
            return self._sessions()
        plain = [c for c in table.columns if c not in table.computed]
        if not lazy:
            return self._stored(table.name, table.columns)
        items = [f"t.{quote_identifier(c)}" for c in plain]
        joins = ""
        person_id = "t.person_id"
        if "pdi" in lazy or ("person" in lazy and table.name == "events"):
            # a distinct_id's person, else the person stored on the event
            person_id = "coalesce(pdi.person_id, t.person_id)"
            pdi = self._stored("person_distinct_ids", ["distinct_id", "person_id"])
            joins += f" LEFT JOIN {pdi} AS pdi ON pdi.distinct_id = t.distinct_id"
            items.append('pdi.distinct_id AS "pdi.distinct_id"')
            items.append(f'{person_id} AS "pdi.person_id"')
        for name in table.computed:
            items.append(f"{person_id} AS {quote_identifier(name)}")
        if "person" in lazy:
            people = self._stored("persons", PERSONS.columns)
            joins += f" LEFT JOIN {people} AS person ON person.id = {person_id}"
            items += [f'person.{quote_identifier(c)} AS "person.{c}"' for c in PERSONS.columns]
        if "session" in lazy:
            joins += (
                f" LEFT JOIN {self._sessions()} AS session ON session.session_id ="
                f" json_extract_string(t.properties, '$.\"$session_id\"')"
            )
            items += [f'session.{quote_identifier(c)} AS "session.{c}"' for c in SESSIONS.columns]
        return (
            f"(SELECT {', '.join(items)} FROM {quote_identifier(table.name)} AS t{joins}"
            f" WHERE t.project_id = {self.sink.add(self._project)})"
        )

    def _sessions(self) -> str:
        """`sessions`, derived from the project's events grouped by `$session_id`."""
        events = (
            "SELECT json_extract_string(properties, '$.\"$session_id\"') AS sid,"
            " json_extract_string(properties, '$.\"$current_url\"') AS url,"
            " distinct_id, timestamp, event FROM events"
            f" WHERE project_id = {self.sink.add(self._project)}"
        )
        return (
            "(SELECT sid AS session_id, sid AS id, arg_min(distinct_id, timestamp) AS distinct_id,"
            ' min(timestamp) AS "$start_timestamp", max(timestamp) AS "$end_timestamp",'
            " date_diff('second', min(timestamp), max(timestamp)) AS \"$session_duration\","
            ' arg_min(url, timestamp) FILTER (WHERE url IS NOT NULL) AS "$entry_current_url",'
            ' arg_max(url, timestamp) FILTER (WHERE url IS NOT NULL) AS "$end_current_url",'
            ' arg_max(url, timestamp) FILTER (WHERE url IS NOT NULL) AS "$exit_current_url",'
            " count(*) FILTER (WHERE event = '$pageview') AS \"$pageview_count\","
            " count(*) FILTER (WHERE event = '$autocapture') AS \"$autocapture_count\","
            ' count(*) AS "$event_count"'
            f" FROM ({events}) WHERE sid IS NOT NULL AND sid <> '' GROUP BY sid)"
        )

    # -- expressions ---------------------------------------------------------------------------

    def expr(self, node: ast.Expr) -> str:
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
            case ast.ArithmeticOperation(op=op, left=left, right=right) if op in _ARITHMETIC:
                return f"({self.expr(left)} {_ARITHMETIC[op]} {self.expr(right)})"
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
            case ast.SelectQuery() | ast.SelectSetQuery():
                return f"({self._query_sql(node, top=False)})"
        msg = f"{type(node).__name__} is not supported here."
        raise HogQLUnsupported(msg, start=node.start, end=node.end)

    def _field(self, meaning: Any) -> str:
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
            case Star():
                return "*"
        raise AssertionError(meaning)

    def _call(self, node: ast.Call | ast.WindowFunction) -> str:
        name, function = self._r.calls[id(node)]
        args = [self.expr(a) for a in node.args]
        if name == "count" and not args:
            return "count(*)"
        if name == "count" and isinstance(node, ast.Call) and node.distinct:
            return f"count(DISTINCT {args[0]})"
        if name == "concat":
            args = [f"coalesce(CAST({a} AS VARCHAR), '')" for a in args]
        return function.template.format(*args, args=", ".join(args))

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
        if over.frame_method is not None:
            method = over.frame_method.upper()
            if method not in {"ROWS", "RANGE"} or over.frame_start is None:
                msg = f"Window frame {over.frame_method} is not supported by this gateway yet."
                raise HogQLUnsupported(msg, start=over.start, end=over.end)
            frame = f"{method} BETWEEN {self._bound(over.frame_start)} AND " + (
                self._bound(over.frame_end) if over.frame_end else "CURRENT ROW"
            )
            parts.append(frame)
        return f"{self._call(node)} OVER ({' '.join(parts)})"

    @staticmethod
    def _bound(bound: ast.FrameBound) -> str:
        kind = bound.kind.upper()
        if kind == "CURRENT ROW":
            return "CURRENT ROW"
        if kind not in {"PRECEDING", "FOLLOWING"}:
            msg = f"Window frame bound {bound.kind} is not supported."
            raise HogQLUnsupported(msg, start=bound.start, end=bound.end)
        if bound.offset is None:
            return f"UNBOUNDED {kind}"
        if bound.offset < 0:
            msg = "Window frame offsets must not be negative."
            raise HogQLQueryError(msg, start=bound.start, end=bound.end)
        return f"{int(bound.offset)} {kind}"

    def _compare(self, node: ast.CompareOperation) -> str:
        left, op = self.expr(node.left), node.op.lower()
        if op in {"in", "not in"}:
            if isinstance(node.right, ast.Constant) and isinstance(node.right.value, list):
                # a list placeholder: one bound LIST value
                found = f"coalesce(list_contains({self.expr(node.right)}, {left}), FALSE)"
                return found if op == "in" else f"({left} IS NULL OR NOT {found})"
            if isinstance(node.right, ast.Tuple | ast.Array):
                right = "(" + ", ".join(self.expr(e) for e in node.right.exprs) + ")"
            elif isinstance(node.right, ast.Constant):  # `x IN (1)`: one value
                right = f"({self.expr(node.right)})"
            elif isinstance(node.right, ast.SelectQuery | ast.SelectSetQuery):
                right = self.expr(node.right)
            else:
                msg = "IN takes a list or a subquery."
                raise HogQLQueryError(msg, start=node.right.start, end=node.right.end)
            if op == "in":
                return f"coalesce({left} IN {right}, FALSE)"
            # HogQL keeps NULL x in `x NOT IN (…)`
            return f"({left} IS NULL OR coalesce({left} NOT IN {right}, FALSE))"
        right = self.expr(node.right)
        match op:
            case "==" | "=":
                return f"({left} IS NOT DISTINCT FROM {right})"
            case "!=":
                return f"({left} IS DISTINCT FROM {right})"
            case "<" | ">" | "<=" | ">=":
                return f"coalesce({left} {_ORDERED[op]} {right}, FALSE)"
            case "like" | "ilike" | "not like" | "not ilike":
                return f"coalesce({left} {op.upper()} {right}, FALSE)"
            case "=~":
                return f"coalesce(regexp_matches({left}, {right}), FALSE)"
            case "!~":
                return f"(NOT coalesce(regexp_matches({left}, {right}), FALSE))"
        msg = f"Operator {node.op} is not supported by this gateway yet."
        raise HogQLUnsupported(msg, start=node.start, end=node.end)
