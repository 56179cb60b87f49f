"""Typed HogQL nodes, built from the parser's JSON. Only the kinds listed here exist; any other
kind is refused with its span (an unknown node is never passed through)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(kw_only=True)
class Node:
    start: int | None = None
    end: int | None = None


@dataclass(kw_only=True)
class Expr(Node):
    pass


@dataclass(kw_only=True)
class Constant(Expr):
    value: Any


@dataclass(kw_only=True)
class Field(Expr):
    chain: list[str | int]


@dataclass(kw_only=True)
class Call(Expr):
    name: str
    args: list[Expr]
    params: list[Expr] | None = None
    distinct: bool = False


@dataclass(kw_only=True)
class Alias(Expr):
    alias: str
    expr: Expr


@dataclass(kw_only=True)
class CompareOperation(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(kw_only=True)
class ArithmeticOperation(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(kw_only=True)
class And(Expr):
    exprs: list[Expr]


@dataclass(kw_only=True)
class Or(Expr):
    exprs: list[Expr]


@dataclass(kw_only=True)
class Not(Expr):
    expr: Expr


@dataclass(kw_only=True)
class BetweenExpr(Expr):
    expr: Expr
    low: Expr
    high: Expr
    negated: bool = False


@dataclass(kw_only=True)
class Tuple(Expr):
    exprs: list[Expr]


@dataclass(kw_only=True)
class Array(Expr):
    exprs: list[Expr]


@dataclass(kw_only=True)
class ArrayAccess(Expr):
    array: Expr
    property: Expr


@dataclass(kw_only=True)
class Lambda(Expr):
    args: list[str]
    expr: Expr


@dataclass(kw_only=True)
class FrameBound(Node):
    kind: str  # PRECEDING, FOLLOWING, CURRENT ROW
    offset: int | None = None  # None: UNBOUNDED


@dataclass(kw_only=True)
class WindowExpr(Node):
    partition_by: list[Expr] | None = None
    order_by: list[OrderExpr] | None = None
    frame_method: str | None = None  # ROWS or RANGE
    frame_start: FrameBound | None = None
    frame_end: FrameBound | None = None


@dataclass(kw_only=True)
class WindowFunction(Expr):
    name: str
    args: list[Expr]
    over: WindowExpr


@dataclass(kw_only=True)
class CTE(Node):
    name: str
    expr: SelectQuery | SelectSetQuery


@dataclass(kw_only=True)
class OrderExpr(Node):
    expr: Expr
    order: str = "ASC"


@dataclass(kw_only=True)
class JoinExpr(Node):
    table: Expr | SelectQuery | SelectSetQuery | None
    alias: str | None = None
    join_type: str | None = None
    constraint: Expr | None = None
    next_join: JoinExpr | None = None


@dataclass(kw_only=True)
class SelectQuery(Expr):
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
    initial: SelectQuery | SelectSetQuery
    subsequent: list[tuple[str, SelectQuery | SelectSetQuery]]
