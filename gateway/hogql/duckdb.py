"""DuckDBPrinter: renders a resolved HogQL tree as DuckDB SQL. It decides nothing: meaning comes
from the Resolution; every literal and JSON path becomes a bound parameter (`$n`, identical
values share one, so equal expressions stay equal for DuckDB's GROUP BY checks)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from gateway.hogql import ast
from gateway.hogql.errors import HogQLQueryError, HogQLUnsupported
from gateway.hogql.functions import INTERVAL_UNITS, SIZE_CAP, known_timezone
from gateway.hogql.resolver import (
    ARRAY_JOIN_ALIAS,
    Column,
    ColumnCte,
    JsonPath,
    LambdaArg,
    Resolution,
    SelectAlias,
    Source,
    Star,
)
from gateway.hogql.schema import GROUPS, PERSON_DISTINCT_IDS, PERSONS, SESSIONS, Table

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


_UNIT_PLURAL: Final = {
    "second": "seconds",
    "minute": "minutes",
    "hour": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "quarter": "quarters",
    "year": "years",
}
# addDays(d, n), subtractHours(d, n): (DuckDB interval unit, sign); toIntervalWeek(n): unit
_SHIFTS: Final = {
    f"{verb}{unit}s": (plural, sign)
    for unit, plural in INTERVAL_UNITS.items()
    for verb, sign in (("add", "+"), ("subtract", "-"))
}
_INTERVALS: Final = {f"toInterval{unit}": plural for unit, plural in INTERVAL_UNITS.items()}
# functions of a datetime that keep its zone (toStartOfDay(toTimeZone(ts, 'X')) is shown in X)
_TIME_KEEPING: Final = ("toStartOf", "add", "subtract", "dateTrunc", "date_trunc")
# functions whose result has their first argument's kind
_KEEPS_KIND: Final = frozenset({"coalesce", "ifNull", "nullIf", "any", "anyLast", "min", "max"})
# ClickHouse formatDateTime → strftime (%M is the month name, ClickHouse's default since 23.4)
_STRFTIME: Final = {
    "Y": "%Y",
    "y": "%y",
    "m": "%m",
    "c": "%m",
    "d": "%d",
    "H": "%H",
    "I": "%I",
    "i": "%M",
    "M": "%B",
    "S": "%S",
    "s": "%S",
    "F": "%Y-%m-%d",
    "T": "%H:%M:%S",
    "D": "%m/%d/%y",
    "R": "%H:%M",
    "j": "%j",
    "u": "%u",
    "w": "%w",
    "V": "%V",
    "a": "%a",
    "b": "%b",
    "h": "%I",
    "p": "%p",
    "f": "%f",
    "z": "%z",
    "n": "\n",
    "t": "\t",
    "%": "%%",
}


# sessions' fields over the project's events (sid, url, distinct_id, timestamp, event)
_SESSION_FIELDS: Final = {
    "session_id": "sid",
    "id": "sid",
    "distinct_id": "arg_min(distinct_id, timestamp)",
    "$start_timestamp": "min(timestamp)",
    "$end_timestamp": "max(timestamp)",
    "$session_duration": "date_diff('second', min(timestamp), max(timestamp))",
    "$entry_current_url": "arg_min(url, timestamp) FILTER (WHERE url IS NOT NULL)",
    "$end_current_url": "arg_max(url, timestamp) FILTER (WHERE url IS NOT NULL)",
    "$exit_current_url": "arg_max(url, timestamp) FILTER (WHERE url IS NOT NULL)",
    "$pageview_count": "count(*) FILTER (WHERE event = '$pageview')",
    "$autocapture_count": "count(*) FILTER (WHERE event = '$autocapture')",
    "$event_count": "count(*)",
}


class DuckDBPrinter:
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
        self._project = project_id
        self._query = query
        self.timezone = timezone
        # Outside UTC, datetimes are naive local times of the project's timezone from the
        # table subqueries up: buckets, literals and `now()` are all read in that zone.
        self._local = timezone != "UTC"
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
        if node.array_join:
            # ClickHouse's ARRAY JOIN: a row per element (arrays side by side are zipped)
            unnests = ", ".join(
                f"unnest({self.expr(item.expr)}) AS {quote_identifier(item.alias)}"
                for item in node.array_join
            )
            lateral = f"LATERAL (SELECT {unnests}) AS {quote_identifier(ARRAY_JOIN_ALIAS)}"
            if node.select_from is None:
                sql += f" FROM {lateral}"
            elif node.array_join_left:
                sql += f" LEFT JOIN {lateral} ON TRUE"
            else:
                sql += f" CROSS JOIN {lateral}"
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

    def _order_sql(self, order_by: list[ast.OrderExpr]) -> str:
        return ", ".join(
            f"{self.expr(o.expr)} {'DESC' if o.order.upper() == 'DESC' else 'ASC'}"
            for o in order_by
        )

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
                    sql += f" ON {self.predicate(current.constraint)}"
            current = current.next_join
        return sql

    def _source(self, join: ast.JoinExpr, source: Source) -> str:
        if source.table is not None:
            return self._table(source.table, source.lazy, source.used)
        if source.cte is not None:
            return quote_identifier(source.cte)
        if source.numbers is not None:
            start, count = source.numbers
            return f"(SELECT range AS number FROM range({start}, {start + count}))"
        assert isinstance(join.table, ast.SelectQuery | ast.SelectSetQuery)
        return f"({self._query_sql(join.table, top=False)})"

    def _in_zone(self, sql: str) -> str:
        """Outside UTC, DuckDB's `timezone(zone, x)` both ways: an instant (TIMESTAMPTZ) becomes
        the project's local time (naive), and a local time becomes the instant again."""
        return f"timezone({self.sink.add(self.timezone)}, {sql})" if self._local else sql

    def _column(self, table: Table, column: str, qualifier: str = "") -> str:
        ref = f"{qualifier}{quote_identifier(column)}"
        if table.column_type(column).startswith("DateTime"):
            ref = self._in_zone(ref)
        return ref

    def _stored(self, table: Table) -> str:
        # The project filter, on every reference to every table: joins, subqueries, set
        # members and lazy joins alike. There is no other way for SQL to reach a stored table.
        refs = [(self._column(table, c), quote_identifier(c)) for c in table.columns]
        listed = ", ".join(ref if ref == name else f"{ref} AS {name}" for ref, name in refs)
        return (
            f"(SELECT {listed} FROM {quote_identifier(table.name)}"
            f" WHERE project_id = {self.sink.add(self._project)})"
        )

    def _table(self, table: Table, lazy: set[str], used: set[str]) -> str:
        if not table.stored:
            return self._sessions(used)
        if not lazy:
            return self._stored(table)
        items = [
            f"{self._column(table, c, 't.')} AS {quote_identifier(c)}"
            for c in table.columns
            if c not in table.computed
        ]
        joins = ""
        person_id = "t.person_id"
        if "pdi" in lazy or ("person" in lazy and table.name == "events"):
            # a distinct_id's person, else the person stored on the event
            person_id = "coalesce(pdi.person_id, t.person_id)"
            pdi = self._stored(PERSON_DISTINCT_IDS)
            joins += f" LEFT JOIN {pdi} AS pdi ON pdi.distinct_id = t.distinct_id"
            items.append('pdi.distinct_id AS "pdi.distinct_id"')
            items.append(f'{person_id} AS "pdi.person_id"')
        for name in table.computed:
            items.append(f"{person_id} AS {quote_identifier(name)}")
        if "person" in lazy:
            joins += f" LEFT JOIN {self._stored(PERSONS)} AS person ON person.id = {person_id}"
            items += [f'person.{quote_identifier(c)} AS "person.{c}"' for c in PERSONS.columns]
        for name in sorted(n for n in lazy if n.startswith("group_")):
            # `group_2.properties.name`: the group whose key is the event's `$group_2`
            index = int(name.removeprefix("group_"))
            joins += (
                f' LEFT JOIN {self._stored(GROUPS)} AS {name} ON {name}."index" = {index}'
                f" AND {name}.key = json_extract_string(t.properties, '$.\"$group_{index}\"')"
            )
            items += [f'{name}.{quote_identifier(c)} AS "{name}.{c}"' for c in GROUPS.columns]
        if "session" in lazy:
            fields = {c.removeprefix("session.") for c in used if c.startswith("session.")}
            joins += (
                f" LEFT JOIN {self._sessions(fields)} AS session ON session.session_id ="
                f" json_extract_string(t.properties, '$.\"$session_id\"')"
            )
            items += [
                f'session.{quote_identifier(c)} AS "session.{c}"'
                for c in SESSIONS.columns
                if c in fields
            ]
        return (
            f"(SELECT {', '.join(items)} FROM {quote_identifier(table.name)} AS t{joins}"
            f" WHERE t.project_id = {self.sink.add(self._project)})"
        )

    def _sessions(self, used: set[str]) -> str:
        """`sessions`, derived from the project's events grouped by `$session_id`; only the
        fields a query names are computed (the URLs are the costly ones)."""
        urls = used & {"$entry_current_url", "$end_current_url", "$exit_current_url"}
        url = ", json_extract_string(properties, '$.\"$current_url\"') AS url" if urls else ""
        events = (
            f"SELECT json_extract_string(properties, '$.\"$session_id\"') AS sid{url},"
            f" distinct_id, {self._in_zone('timestamp')} AS timestamp, event FROM events"
            f" WHERE project_id = {self.sink.add(self._project)}"
        )
        items = ", ".join(
            [
                f"{_SESSION_FIELDS[c]} AS {quote_identifier(c)}"
                for c in SESSIONS.columns
                if c in used or c == "session_id"
            ]
        )
        # `length(sid) > 0` drops NULL and '' in one test (two tests cost DuckDB ~30% here)
        return f"(SELECT {items} FROM ({events}) WHERE length(sid) > 0 GROUP BY sid)"

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
                sql = f"({self.expr(left)} {_ARITHMETIC[op]} {self.expr(right)})"
                interval = self._r.calls.get(id(right), ("",))[0] in _INTERVALS
                if interval and op in {"+", "-"} and self.kind(left) == "date":
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
            case LambdaArg(name=name):
                return name
            case ColumnCte(expr=expr):
                return f"({self.expr(expr)})"
            case Star():
                return "*"
        raise AssertionError(meaning)

    def _call(self, node: ast.Call | ast.WindowFunction) -> str:
        name, function = self._r.calls[id(node)]
        special = _SPECIAL.get(name)
        if special is not None and isinstance(node, ast.Call):
            return special(self, node)
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
        if name == "concat":
            args = [f"coalesce(CAST({a} AS VARCHAR), '')" for a in args]
        if name in {"length", "empty", "notEmpty"} and self.kind(node.args[0]) == "array":
            return {
                "length": f"len({args[0]})",
                "empty": f"(len({args[0]}) = 0)",
                "notEmpty": f"(len({args[0]}) > 0)",
            }[name]
        params = self._r.params.get(id(node), [])
        padded = args + ["NULL"] * (function.max_args - len(args))
        return function.template.format(
            *padded,
            args=", ".join(args),
            params=", ".join(params),
            **{f"p{i}": p for i, p in enumerate(params)},
        )

    def kind(self, node: ast.Expr) -> str | None:
        """ "array" or "date" where the printer must tell (length(arr), addDays(date, n))."""
        match node:
            case ast.Alias(expr=expr):
                return self.kind(expr)
            case ast.Array():
                return "array"
            case ast.Constant(value=list()):
                return "array"
            case ast.Call():
                found = self._r.calls.get(id(node))
                if found is None:
                    return None
                name, function = found
                if name in _KEEPS_KIND or name in _SHIFTS:
                    return self.kind(node.args[0]) if node.args else None
                if name in {"dateAdd", "dateSub", "date_add", "date_sub"}:
                    return self.kind(node.args[2])
                return function.kind
            case ast.ArithmeticOperation(left=left):
                return self.kind(left)
        meaning = self._r.fields.get(id(node))
        if isinstance(meaning, ColumnCte):
            return self.kind(meaning.expr)
        return None

    def _shift(self, date: ast.Expr, unit: str, amount: str, sign: str) -> str:
        """date ± n units; a Date stays a Date (ClickHouse), DuckDB would make it a timestamp."""
        shifted = f"({self.expr(date)} {sign} to_{unit}(CAST({amount} AS INTEGER)))"
        return f"CAST({shifted} AS DATE)" if self.kind(date) == "date" else shifted

    def _shift_call(self, node: ast.Call) -> str:
        unit, sign = _SHIFTS[self._r.calls[id(node)][0]]
        return self._shift(node.args[0], unit, self.expr(node.args[1]), sign)

    def _interval(self, node: ast.Call) -> str:
        unit = _INTERVALS[self._r.calls[id(node)][0]]
        return f"to_{unit}(CAST({self.expr(node.args[0])} AS INTEGER))"

    def _date_add(self, node: ast.Call) -> str:
        name, _ = self._r.calls[id(node)]
        unit = _UNIT_PLURAL[self._r.literals[id(node.args[0])]]
        sign = "-" if name in {"dateSub", "date_sub"} else "+"
        return self._shift(node.args[2], unit, self.expr(node.args[1]), sign)

    def _range(self, node: ast.Call) -> str:
        args = [self.expr(a) for a in node.args]
        start, end = ("0", args[0]) if len(args) == 1 else (args[0], args[1])
        return f"range({start}, {start} + {SIZE_CAP.format(f'({end}) - ({start})')})"

    def _logical(self, node: ast.Call) -> str:
        name, _ = self._r.calls[id(node)]
        joined = f" {name.upper()} ".join(f"coalesce({self.expr(a)}, FALSE)" for a in node.args)
        return f"({joined})"

    def _multi_if(self, node: ast.Call) -> str:
        args = node.args
        if len(args) % 2 == 0:
            msg = "multiIf takes condition, value pairs and a default: multiIf(c1, v1, …, else)."
            raise HogQLQueryError(msg, start=node.start, end=node.end)
        whens = " ".join(
            f"WHEN {self.expr(args[i])} THEN {self.expr(args[i + 1])}"
            for i in range(0, len(args) - 1, 2)
        )
        return f"CASE {whens} ELSE {self.expr(args[-1])} END"

    def _start_of_week(self, node: ast.Call) -> str:
        mode = 0
        if len(node.args) == 2:
            given = node.args[1]
            if not (isinstance(given, ast.Constant) and given.value in (0, 1)):
                msg = "toStartOfWeek's mode is 0 (weeks start on Sunday) or 1 (Monday)."
                raise HogQLQueryError(msg, start=given.start, end=given.end)
            mode = int(given.value)
        value = self.expr(node.args[0])
        if mode == 1:
            return f"CAST(date_trunc('week', {value}) AS DATE)"
        return f"CAST(CAST({value} AS DATE) - CAST(dayofweek({value}) AS INTEGER) AS DATE)"

    def _format_date_time(self, node: ast.Call) -> str:
        fmt = node.args[1]
        if not (isinstance(fmt, ast.Constant) and isinstance(fmt.value, str)):
            msg = "formatDateTime's format must be a string constant."
            raise HogQLQueryError(msg, start=fmt.start, end=fmt.end)
        out, text, i = [], fmt.value, 0
        while i < len(text):
            if text[i] != "%":
                out.append(text[i])
                i += 1
                continue
            spec = text[i + 1 : i + 2]
            if spec not in _STRFTIME:
                msg = f"formatDateTime: %{spec} is not supported by this gateway yet."
                raise HogQLUnsupported(msg, start=fmt.start, end=fmt.end)
            out.append(_STRFTIME[spec])
            i += 2
        return f"strftime({self.expr(node.args[0])}, {self.sink.add(''.join(out))})"

    # -- time: the project's timezone -------------------------------------------------------

    def _now(self, node: ast.Call) -> str:
        name, _ = self._r.calls[id(node)]
        now = self._in_zone("current_timestamp")
        return {
            "now": now,
            "today": f"CAST({now} AS DATE)",
            "yesterday": f"CAST({now} AS DATE) - 1",
        }[name]

    def _parse_datetime(self, node: ast.Call) -> str:
        """A string as a datetime: with an offset it is that instant; without, a time in the
        project's timezone (HOGQL.md: literals are read in it). NULL when unparseable."""
        text = self.expr(node.args[0])
        if not self._local:
            return f"TRY_CAST({text} AS TIMESTAMPTZ)"
        offset = self.sink.add(r"(Z|[+-]\d\d(:?\d\d)?)$")
        return (
            f"CASE WHEN regexp_matches(CAST({text} AS VARCHAR), {offset})"
            f" THEN {self._in_zone(f'TRY_CAST({text} AS TIMESTAMPTZ)')}"
            f" ELSE TRY_CAST({text} AS TIMESTAMP) END"
        )

    def _unix(self, node: ast.Call) -> str:
        name, _ = self._r.calls[id(node)]
        value = self.expr(node.args[0])
        if name == "toUnixTimestamp":
            return f"CAST(epoch({self._in_zone(value)}) AS BIGINT)"
        return self._in_zone(f"to_timestamp(CAST({value} AS DOUBLE))")

    def _to_time_zone(self, node: ast.Call) -> str:
        """toTimeZone(ts, 'Zone'): the same instant as a time in that zone (shown with it)."""
        zone = node.args[1]
        if not (isinstance(zone, ast.Constant) and isinstance(zone.value, str)):
            msg = "toTimeZone's timezone must be a string constant."
            raise HogQLQueryError(msg, start=zone.start, end=zone.end)
        if not known_timezone(zone.value):
            msg = f"Unknown timezone: '{zone.value}'."
            raise HogQLQueryError(msg, start=zone.start, end=zone.end)
        value = self.expr(node.args[0])
        return f"timezone({self.sink.add(zone.value)}, {self._in_zone(value)})"

    def column_timezone(self, node: ast.Expr) -> str | None:
        """The zone a result column's datetimes are shown in, when not the project's."""
        match node:
            case ast.Alias(expr=expr):
                return self.column_timezone(expr)
            case ast.Call(args=args) if id(node) in self._r.calls:
                name, _ = self._r.calls[id(node)]
                if name == "toTimeZone" and isinstance(args[1], ast.Constant):
                    return str(args[1].value)
                if args and (name in _KEEPS_KIND or name.startswith(_TIME_KEEPING)):
                    return self.column_timezone(args[0])
            case ast.ArithmeticOperation(left=left):
                return self.column_timezone(left)
        return None

    def _json(self, node: ast.Call) -> str:
        name, _ = self._r.calls[id(node)]
        path: list[str | int] = []
        for key in node.args[1:]:
            value = key.value if isinstance(key, ast.Constant) else None
            if isinstance(value, bool) or not isinstance(value, str | int) or value == 0:
                msg = f"{name} takes keys as string constants or 1-based indices."
                raise HogQLQueryError(msg, start=key.start, end=key.end)
            path.append(value)
        document = self.expr(node.args[0])
        where = self.sink.add(json_path(tuple(path)))
        inner = {
            "JSONExtractString": f"json_extract_string({document}, {where})",
            "JSONExtractInt": f"TRY_CAST(json_extract_string({document}, {where}) AS BIGINT)",
            "JSONExtractFloat": f"TRY_CAST(json_extract_string({document}, {where}) AS DOUBLE)",
            "JSONExtractBool": f"TRY_CAST(json_extract_string({document}, {where}) AS BOOLEAN)",
            "JSONExtractRaw": f"CAST(json_extract({document}, {where}) AS VARCHAR)",
            "JSONHas": f"json_exists({document}, {where})",
        }[name]
        # ClickHouse answers a missing key (or text that is not JSON) with the type's default
        default = {
            "JSONExtractString": "''",
            "JSONExtractInt": "0",
            "JSONExtractFloat": "0",
            "JSONExtractBool": "FALSE",
            "JSONExtractRaw": "''",
            "JSONHas": "FALSE",
        }[name]
        return f"coalesce(CASE WHEN json_valid({document}) THEN {inner} END, {default})"

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
            elif isinstance(node.right, ast.SelectQuery | ast.SelectSetQuery):
                right = self.expr(node.right)
            else:
                msg = "IN takes a list or a subquery."
                raise HogQLQueryError(msg, start=node.right.start, end=node.right.end)
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
                return guard(f"{left} {_ORDERED[op]} {right}")
            case "like" | "ilike" | "not like" | "not ilike":
                return guard(f"{left} {op.upper()} {right}")
            case "=~":
                return guard(f"regexp_matches({left}, {right})")
            case "!~":
                return f"(NOT coalesce(regexp_matches({left}, {right}), FALSE))"
        msg = f"Operator {node.op} is not supported by this gateway yet."
        raise HogQLUnsupported(msg, start=node.start, end=node.end)


_SPECIAL: Final[dict[str, Callable[[DuckDBPrinter, ast.Call], str]]] = {
    "multiIf": DuckDBPrinter._multi_if,
    "and": DuckDBPrinter._logical,
    "or": DuckDBPrinter._logical,
    "range": DuckDBPrinter._range,
    "dateAdd": DuckDBPrinter._date_add,
    "dateSub": DuckDBPrinter._date_add,
    "date_add": DuckDBPrinter._date_add,
    "date_sub": DuckDBPrinter._date_add,
    "toStartOfWeek": DuckDBPrinter._start_of_week,
    "now": DuckDBPrinter._now,
    "today": DuckDBPrinter._now,
    "yesterday": DuckDBPrinter._now,
    "toDateTime": DuckDBPrinter._parse_datetime,
    "toDateTimeOrNull": DuckDBPrinter._parse_datetime,
    "parseDateTimeBestEffort": DuckDBPrinter._parse_datetime,
    "parseDateTimeBestEffortOrNull": DuckDBPrinter._parse_datetime,
    "toUnixTimestamp": DuckDBPrinter._unix,
    "fromUnixTimestamp": DuckDBPrinter._unix,
    "toTimeZone": DuckDBPrinter._to_time_zone,
    **dict.fromkeys(_SHIFTS, DuckDBPrinter._shift_call),
    **dict.fromkeys(_INTERVALS, DuckDBPrinter._interval),
    "formatDateTime": DuckDBPrinter._format_date_time,
    **dict.fromkeys(
        (
            "JSONExtractString",
            "JSONExtractInt",
            "JSONExtractFloat",
            "JSONExtractBool",
            "JSONExtractRaw",
            "JSONHas",
        ),
        DuckDBPrinter._json,
    ),
}
