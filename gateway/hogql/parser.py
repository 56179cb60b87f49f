"""HogQL text → typed AST, through PostHog's own parser (`hogql-parser-rs`).

Anything the parser accepts that this module does not know (a node kind, or a clause such as
CTEs or ARRAY JOIN) is refused as unsupported with its span: a query is never run with part of
it silently dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import hogql_parser_rs

from gateway.hogql import ast
from gateway.hogql.errors import HogQLQueryError, HogQLSyntaxError, HogQLUnsupported

_SELECT_KEYS: Final = {
    "node",
    "start",
    "end",
    "select",
    "distinct",
    "select_from",
    "where",
    "group_by",
    "having",
    "order_by",
    "limit",
    "offset",
    "ctes",
    "window_exprs",
    "array_join_op",
    "array_join_list",
    "limit_by",
}
_JOIN_KEYS: Final = {
    "node",
    "start",
    "end",
    "table",
    "alias",
    "join_type",
    "constraint",
    "next_join",
    "table_args",
}


def _offset(value: Any) -> int | None:
    return value.get("offset") if isinstance(value, dict) else None


def _span(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {"start": _offset(raw.get("start")), "end": _offset(raw.get("end"))}


# what may follow an ORDER BY expression: comments and string literals (COLLATE 'x') are
# skipped before looking for NULLS FIRST / NULLS LAST, which the parser reads but drops
_ORDER_TAIL_NOISE: Final = re.compile(r"/\*.*?\*/|--[^\n]*|'(?:[^'\\]|\\.)*'", re.DOTALL)
_NULLS: Final = re.compile(r"\bNULLS\s+(FIRST|LAST)\b", re.IGNORECASE)


# calls that are an operator on two arguments: built as the operator, so a Date ± INTERVAL stays
# a Date whichever way it is written (plus(d, INTERVAL 1 DAY), date_add(d, INTERVAL 1 DAY):
# PostHog's two-argument date_add, ClickHouse's dateAdd(date, interval))
_OPERATOR_CALLS: Final = {
    "plus": "+",
    "minus": "-",
    **dict.fromkeys(("date_add", "dateAdd", "timeStampAdd"), "+"),
    **dict.fromkeys(("date_sub", "dateSub", "date_subtract", "timeStampSub"), "-"),
}


def _nulls_order(query: str, raw: Mapping[str, Any]) -> str | None:
    """NULLS FIRST / LAST as written after an ORDER BY expression (from the query text: the
    parser's OrderExpr has no field for it), or None."""
    start, end = _offset(raw["expr"].get("end")), _offset(raw.get("end"))
    if start is None or end is None:
        return None
    found = _NULLS.search(_ORDER_TAIL_NOISE.sub(" ", query[start:end]))
    return found.group(1).upper() if found else None


class _Builder:
    """Converts the parser's JSON dicts; `values` fill `{placeholders}`."""

    def __init__(self, values: Mapping[str, Any], query: str = "") -> None:
        self._values = values
        self._query = query
        # named windows of the SELECTs being built, innermost last
        self._windows: list[dict[str, dict[str, Any]]] = []
        self._kinds: dict[str, Callable[[dict[str, Any]], ast.Expr]] = {
            "Constant": lambda r: ast.Constant(value=r.get("value"), **_span(r)),
            "Field": lambda r: ast.Field(chain=list(r["chain"]), **_span(r)),
            "Call": self._call,
            "Alias": lambda r: ast.Alias(alias=r["alias"], expr=self.expr(r["expr"]), **_span(r)),
            "CompareOperation": lambda r: ast.CompareOperation(
                op=r["op"], left=self.expr(r["left"]), right=self.expr(r["right"]), **_span(r)
            ),
            "ArithmeticOperation": lambda r: ast.ArithmeticOperation(
                op=r["op"], left=self.expr(r["left"]), right=self.expr(r["right"]), **_span(r)
            ),
            "And": lambda r: ast.And(exprs=self.exprs(r["exprs"]), **_span(r)),
            "Or": lambda r: ast.Or(exprs=self.exprs(r["exprs"]), **_span(r)),
            "Not": lambda r: ast.Not(expr=self.expr(r["expr"]), **_span(r)),
            "BetweenExpr": lambda r: ast.BetweenExpr(
                expr=self.expr(r["expr"]),
                low=self.expr(r["low"]),
                high=self.expr(r["high"]),
                negated=bool(r.get("negated")),
                **_span(r),
            ),
            "Tuple": lambda r: ast.Tuple(exprs=self.exprs(r["exprs"]), **_span(r)),
            "Dict": self._dict,
            "Array": lambda r: ast.Array(exprs=self.exprs(r["exprs"]), **_span(r)),
            "ArrayAccess": lambda r: ast.ArrayAccess(
                array=self.expr(r["array"]), property=self.expr(r["property"]), **_span(r)
            ),
            "Placeholder": self._placeholder,
            # t.1 is tupleElement(t, 1) (ClickHouse's own spelling of it)
            "TupleAccess": lambda r: ast.Call(
                name="tupleElement",
                args=[self.expr(r["tuple"]), ast.Constant(value=r.get("index"))],
                **_span(r),
            ),
            "Lambda": lambda r: ast.Lambda(
                args=[str(a) for a in r.get("args") or []], expr=self.expr(r["expr"]), **_span(r)
            ),
            "WindowFunction": self._window_function,
            "SelectQuery": self.select,
            "SelectSetQuery": self.select_set,
        }

    def expr(self, raw: dict[str, Any]) -> ast.Expr:
        kind = raw.get("node")
        build = self._kinds.get(str(kind))
        if build is None:
            msg = f"{kind} is not supported by this gateway yet."
            raise HogQLUnsupported(msg, **_span(raw))
        return build(raw)

    def exprs(self, raws: list[dict[str, Any]] | None) -> list[ast.Expr]:
        return [self.expr(r) for r in raws or []]

    def _dict(self, raw: dict[str, Any]) -> ast.Tuple:
        """{'a': 1} is PostHog's HogQLX object: tuple('__hx_tag', '__hx_obj', 'a', 1) (its
        printer's visit_dict; PostHog's UI shows it as an object)."""
        tag = [ast.Constant(value="__hx_tag"), ast.Constant(value="__hx_obj")]
        pairs = [self.expr(part) for item in raw.get("items") or [] for part in item]
        return ast.Tuple(exprs=[*tag, *pairs], **_span(raw))

    def _call(self, raw: dict[str, Any]) -> ast.Expr:
        params = raw.get("params")
        op = _OPERATOR_CALLS.get(raw["name"])
        if op is not None and params is None and len(raw.get("args") or []) == 2:
            left, right = self.exprs(raw["args"])
            return ast.ArithmeticOperation(op=op, left=left, right=right, **_span(raw))
        args = self.exprs(raw.get("args"))
        if raw["name"].lower() == "count" and [getattr(a, "chain", None) for a in args] == [["*"]]:
            args = []  # count(*) is count(), as PostHog's parser makes it
        return ast.Call(
            name=raw["name"],
            args=args,
            params=None if params is None else self.exprs(params),
            distinct=bool(raw.get("distinct")),
            **_span(raw),
        )

    def _order(self, raws: list[dict[str, Any]] | None) -> list[ast.OrderExpr] | None:
        for o in raws or []:
            if o.get("with_fill") is not None:
                msg = "ORDER BY … WITH FILL is not supported by this gateway yet."
                raise HogQLUnsupported(msg, **_span(o["with_fill"]))
        orders = [
            ast.OrderExpr(
                expr=self.expr(o["expr"]),
                order=o.get("order", "ASC"),
                nulls=_nulls_order(self._query, o),
                **_span(o),
            )
            for o in raws or []
        ]
        return orders or None

    def _bound(self, raw: dict[str, Any] | None) -> ast.FrameBound | None:
        if raw is None:
            return None
        value = raw.get("frame_value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            msg = "Window frame offsets must be integers."
            raise HogQLQueryError(msg, **_span(raw))
        return ast.FrameBound(kind=str(raw.get("frame_type", "")), offset=value, **_span(raw))

    def _window_function(self, raw: dict[str, Any]) -> ast.WindowFunction:
        over = raw.get("over_expr")
        if over is None and raw.get("over_identifier") is not None:
            name = str(raw["over_identifier"])
            over = next((w[name] for w in reversed(self._windows) if name in w), None)
            if over is None:
                msg = f"Window `{name}` is not defined (WINDOW {name} AS (…))."
                raise HogQLQueryError(msg, **_span(raw))
        if over is None:
            over = {}
        if raw.get("args"):
            msg = f"Parametric {raw['name']}(…)(…) is not supported by this gateway yet."
            raise HogQLUnsupported(msg, **_span(raw))
        window = ast.WindowExpr(
            partition_by=self.exprs(over.get("partition_by")) or None,
            order_by=self._order(over.get("order_by")),
            frame_method=over.get("frame_method"),
            frame_start=self._bound(over.get("frame_start")),
            frame_end=self._bound(over.get("frame_end")),
            **_span(over),
        )
        return ast.WindowFunction(
            name=raw["name"], args=self.exprs(raw.get("exprs")), over=window, **_span(raw)
        )

    def _ctes(self, raws: list[dict[str, Any]] | None) -> list[ast.CTE] | None:
        ctes = []
        for raw in raws or []:
            if raw.get("cte_type") != "subquery":
                continue  # `WITH expr AS name`: see _column_ctes
            body = self.expr(raw["expr"])
            assert isinstance(body, ast.SelectQuery | ast.SelectSetQuery)
            ctes.append(ast.CTE(name=str(raw["name"]), expr=body, **_span(raw)))
        return ctes or None

    def _placeholder(self, raw: dict[str, Any]) -> ast.Expr:
        inner = raw.get("expr") or {}
        chain = inner.get("chain") or []
        name = ".".join(str(part) for part in chain)
        if name == "filters":
            return ast.Constant(value=True, **_span(raw))
        if name in self._values:
            return ast.Constant(value=self._values[name], **_span(raw))
        msg = f"Placeholder {{{name}}} is not available in this context."
        raise HogQLQueryError(msg, **_span(raw))

    def select(self, raw: dict[str, Any]) -> ast.SelectQuery:
        extra = set(raw) - _SELECT_KEYS
        if extra:
            msg = f"{', '.join(sorted(extra))} is not supported by this gateway yet."
            raise HogQLUnsupported(msg, **_span(raw))
        self._windows.append(raw.get("window_exprs") or {})
        try:
            return self._select(raw)
        finally:
            self._windows.pop()

    def _array_join(self, raw: dict[str, Any]) -> tuple[list[ast.Alias] | None, bool]:
        op = raw.get("array_join_op")
        if op is None:
            return None, False
        if op not in {"ARRAY JOIN", "LEFT ARRAY JOIN", "INNER ARRAY JOIN"}:
            msg = f"{op} is not supported by this gateway yet."
            raise HogQLUnsupported(msg, **_span(raw))
        items = []
        for item in raw.get("array_join_list") or []:
            built = self.expr(item)
            if not isinstance(built, ast.Alias):
                msg = "ARRAY JOIN needs an alias for each array (ARRAY JOIN arr AS a)."
                raise HogQLQueryError(msg, **_span(item))
            items.append(built)
        return items, op == "LEFT ARRAY JOIN"

    def _limit_by(self, raw: dict[str, Any] | None) -> tuple[int, list[ast.Expr]] | None:
        if raw is None:
            return None
        n = self.expr(raw["n"])
        if raw.get("offset_value") is not None or not (
            isinstance(n, ast.Constant)
            and isinstance(n.value, int)
            and not isinstance(n.value, bool)
            and n.value >= 0
        ):
            msg = "LIMIT n BY takes a non-negative integer n (and no offset here)."
            raise HogQLQueryError(msg, **_span(raw))
        return n.value, self.exprs(raw.get("exprs"))

    def _select(self, raw: dict[str, Any]) -> ast.SelectQuery:
        ctes = self._ctes(raw.get("ctes"))
        column_ctes = {
            str(c["name"]): self.expr(c["expr"])
            for c in raw.get("ctes") or []
            if c.get("cte_type") != "subquery"
        }
        array_join, array_join_left = self._array_join(raw)
        order_by = self._order(raw.get("order_by"))
        return ast.SelectQuery(
            column_ctes=column_ctes,
            array_join=array_join,
            array_join_left=array_join_left,
            limit_by=self._limit_by(raw.get("limit_by")),
            select=self.exprs(raw.get("select")),
            distinct=bool(raw.get("distinct")),
            select_from=self._join(raw["select_from"]) if raw.get("select_from") else None,
            where=self.expr(raw["where"]) if raw.get("where") else None,
            group_by=self.exprs(raw.get("group_by")) or None,
            having=self.expr(raw["having"]) if raw.get("having") else None,
            order_by=order_by,
            ctes=ctes,
            limit=self.expr(raw["limit"]) if raw.get("limit") else None,
            offset=self.expr(raw["offset"]) if raw.get("offset") else None,
            **_span(raw),
        )

    def select_set(self, raw: dict[str, Any]) -> ast.SelectSetQuery:
        initial = self.expr(raw["initial_select_query"])
        assert isinstance(initial, ast.SelectQuery | ast.SelectSetQuery)
        rest = []
        for node in raw.get("subsequent_select_queries") or []:
            query = self.expr(node["select_query"])
            assert isinstance(query, ast.SelectQuery | ast.SelectSetQuery)
            rest.append((str(node["set_operator"]), query))
        return ast.SelectSetQuery(initial=initial, subsequent=rest, **_span(raw))

    def _join(self, raw: dict[str, Any]) -> ast.JoinExpr:
        extra = set(raw) - _JOIN_KEYS
        if extra:
            msg = f"{', '.join(sorted(extra))} in FROM is not supported by this gateway yet."
            raise HogQLUnsupported(msg, **_span(raw))
        table = raw.get("table")
        built: Any = None
        if table is not None:
            built = self.expr(table)
            if raw.get("table_args") is not None:
                assert isinstance(built, ast.Field)
                built = ast.Call(
                    name=str(built.chain[0]), args=self.exprs(raw["table_args"]), **_span(raw)
                )
        constraint = raw.get("constraint")
        if constraint is not None and constraint.get("constraint_type", "ON") != "ON":
            msg = "Only JOIN … ON is supported by this gateway yet."
            raise HogQLUnsupported(msg, **_span(constraint))
        return ast.JoinExpr(
            table=built,
            alias=raw.get("alias"),
            join_type=raw.get("join_type"),
            constraint=self.expr(constraint["expr"]) if constraint else None,
            next_join=self._join(raw["next_join"]) if raw.get("next_join") else None,
            **_span(raw),
        )


def parse_select(
    query: str, values: Mapping[str, Any] | None = None
) -> ast.SelectQuery | ast.SelectSetQuery:
    """Parse one SELECT (or UNION/INTERSECT/EXCEPT); anything else is a syntax error."""
    raw = json.loads(hogql_parser_rs.parse_select_json(query))
    if raw.get("error"):
        message = str(raw.get("message", "Syntax error"))
        if raw.get("type") == "NotImplementedError":
            raise HogQLSyntaxError(message, **_span(raw))
        raise HogQLSyntaxError(message, **_span(raw))
    tree = _Builder(values or {}, query).expr(raw)
    if not isinstance(tree, ast.SelectQuery | ast.SelectSetQuery):
        msg = "Only SELECT queries can be run."
        raise HogQLSyntaxError(msg, start=tree.start, end=tree.end)
    return tree
