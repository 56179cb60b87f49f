"""Typed HogQL nodes, built from the parser's JSON. Only the kinds listed here exist; any other
kind is refused with its span (an unknown node is never passed through)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(kw_only=True)
class Node:
    """Base of every HogQL syntax node: the node's character span in the query text (start,
    end), for error positions."""

    start: int | None = None
    end: int | None = None


@dataclass(kw_only=True)
class Expr(Node):
    """Base of HogQL expressions (everything that yields a value, subqueries included)."""

    pass


@dataclass(kw_only=True)
class Constant(Expr):
    """A literal value (string, number, boolean, NULL, or a placeholder's bound value)."""

    value: Any


@dataclass(kw_only=True)
class Field(Expr):
    """A name chain such as `properties.$browser` or `person.properties.email`; the resolver
    decides what it means."""

    chain: list[str | int]


@dataclass(kw_only=True)
class Call(Expr):
    """A function call `name(args)`, with parametric arguments `name(params)(args)` and
    `DISTINCT` as parsed."""

    name: str
    args: list[Expr]
    params: list[Expr] | None = None
    distinct: bool = False


@dataclass(kw_only=True)
class Alias(Expr):
    """`expr AS alias` in a select list (or a WITH alias)."""

    alias: str
    expr: Expr


@dataclass(kw_only=True)
class CompareOperation(Expr):
    """A comparison (`==`, `!=`, `<`, `LIKE`, `IN`, regex operators, …) printed with HogQL's
    NULL rules."""

    op: str
    left: Expr
    right: Expr


@dataclass(kw_only=True)
class ArithmeticOperation(Expr):
    """`left op right` for `+ - * / %`."""

    op: str
    left: Expr
    right: Expr


@dataclass(kw_only=True)
class And(Expr):
    """A conjunction of two or more expressions."""

    exprs: list[Expr]


@dataclass(kw_only=True)
class Or(Expr):
    """A disjunction of two or more expressions."""

    exprs: list[Expr]


@dataclass(kw_only=True)
class Not(Expr):
    """Logical negation."""

    expr: Expr


@dataclass(kw_only=True)
class BetweenExpr(Expr):
    """`expr [NOT] BETWEEN low AND high`."""

    expr: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(kw_only=True)
class Tuple(Expr):
    """A tuple literal `(a, b, …)`."""

    exprs: list[Expr]


@dataclass(kw_only=True)
class Array(Expr):
    """An array literal `[a, b, …]`."""

    exprs: list[Expr]


@dataclass(kw_only=True)
class ArrayAccess(Expr):
    """`array[index]` (1-based, as ClickHouse) or a tuple element access."""

    array: Expr
    property: Expr


@dataclass(kw_only=True)
class Lambda(Expr):
    """`(x, y) -> expr`, only as an argument of higher-order array functions."""

    args: list[str]
    expr: Expr


@dataclass(kw_only=True)
class FrameBound(Node):
    """One end of a window frame: `n PRECEDING`, `n FOLLOWING`, `CURRENT ROW` or unbounded
    (offset None)."""

    kind: str  # PRECEDING, FOLLOWING, CURRENT ROW
    offset: int | None = None  # None: UNBOUNDED


@dataclass(kw_only=True)
class WindowExpr(Node):
    """A window specification: PARTITION BY, ORDER BY and an optional ROWS/RANGE frame."""

    partition_by: list[Expr] | None = None
    order_by: list[OrderExpr] | None = None
    frame_method: str | None = None  # ROWS or RANGE
    frame_start: FrameBound | None = None
    frame_end: FrameBound | None = None


@dataclass(kw_only=True)
class WindowFunction(Expr):
    """A function over a window (`row_number() OVER (…)`, or an aggregate with OVER)."""

    name: str
    args: list[Expr]
    over: WindowExpr


@dataclass(kw_only=True)
class CTE(Node):
    """`WITH name AS (subquery)`: a named subquery of the enclosing SELECT."""

    name: str
    expr: SelectQuery | SelectSetQuery


@dataclass(kw_only=True)
class OrderExpr(Node):
    """An ORDER BY item: an expression, ASC or DESC, and where NULLs go ("FIRST", "LAST"; None:
    ClickHouse's default, last in either direction)."""

    expr: Expr
    order: str = "ASC"
    nulls: str | None = None


@dataclass(kw_only=True)
class JoinExpr(Node):
    """One table, subquery or table function in FROM, with its alias, join type and ON
    constraint; `next_join` chains the next one."""

    table: Expr | SelectQuery | SelectSetQuery | None
    alias: str | None = None
    join_type: str | None = None
    constraint: Expr | None = None
    next_join: JoinExpr | None = None


@dataclass(kw_only=True)
class SelectQuery(Expr):
    """One SELECT with every clause the gateway supports (the parser refuses the others with
    their span)."""

    select: list[Expr]
    distinct: bool = False
    select_from: JoinExpr | None = None
    where: Expr | None = None
    group_by: list[Expr] | None = None
    having: Expr | None = None
    order_by: list[OrderExpr] | None = None
    limit: Expr | None = None
    offset: Expr | None = None
    ctes: list[CTE] | None = None
    # `WITH 5 AS n`: names for expressions, usable anywhere in the query
    column_ctes: dict[str, Expr] = field(default_factory=dict)
    # ARRAY JOIN arr AS a [, …]: aliases with their array expressions; LEFT keeps empty rows
    array_join: list[Alias] | None = None
    array_join_left: bool = False
    # LIMIT n BY exprs
    limit_by: tuple[int, list[Expr]] | None = None


@dataclass(kw_only=True)
class SelectSetQuery(Expr):
    """SELECTs combined with UNION ALL / UNION DISTINCT / INTERSECT / EXCEPT, evaluated left to
    right."""

    initial: SelectQuery | SelectSetQuery
    subsequent: list[tuple[str, SelectQuery | SelectSetQuery]]
