"""What the resolver decided, recorded by node (`id(node)`): the contract between the resolver,
which makes every decision and check, and the printer, which only renders them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from gateway.hogql import ast

if TYPE_CHECKING:
    from gateway.hogql.functions import Function
    from gateway.hogql.schema import Table

ARRAY_JOIN_ALIAS: Final = "__array_join"


@dataclass(frozen=True, kw_only=True)
class Column:
    alias: str
    name: str


@dataclass(frozen=True, kw_only=True)
class JsonPath:
    alias: str
    column: str
    path: tuple[str | int, ...]  # indices are 1-based and checked
    # the stored table whose column this is (`events`): its hot properties may be columns
    table: str = ""


@dataclass(frozen=True, kw_only=True)
class SelectAlias:
    name: str


@dataclass(frozen=True, kw_only=True)
class Star:
    """`*`, or `t.*` (the columns of the FROM entry named `t`: `alias`). Over a stored table
    `columns` names its public columns: its subquery also carries internal ones (materialized
    properties, hashes, joined ids) that `*` must not show."""

    alias: str | None = None
    source: str | None = None
    columns: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class LambdaArg:
    name: str  # as printed (`__l0`): user names never reach SQL


@dataclass(frozen=True, kw_only=True)
class ColumnCte:
    """`WITH expr AS name`: the field is the expression."""

    expr: ast.Expr = field(hash=False, compare=False)


type FieldMeaning = Column | JsonPath | SelectAlias | Star | LambdaArg | ColumnCte


@dataclass(kw_only=True)
class Source:
    """One FROM entry: a stored table, `numbers(…)`, or a subquery with its output names."""

    alias: str
    table: Table | None = None
    numbers: tuple[int, int] | None = None
    subquery_columns: list[str] | None = None
    # a FROM subquery's columns: (ClickHouse type if known, nullable), as types.result_type
    subquery_types: dict[str, tuple[str | None, bool]] = field(default_factory=dict)
    cte: str | None = None
    # lazy joins this query names (`person`, `pdi`, `session`): the printer joins only these
    lazy: set[str] = field(default_factory=set)
    # columns named (`$session_duration`, `session.$session_duration`): derived tables
    # compute only these; a subquery's columns that the enclosing query reads (`*`: all)
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
    """Everything the printer reads, by node id. Built by `resolver.resolve()` only."""

    fields: dict[int, FieldMeaning] = field(default_factory=dict)
    calls: dict[int, tuple[str, Function]] = field(default_factory=dict)
    sources: dict[int, Source] = field(default_factory=dict)
    joins: dict[int, str] = field(default_factory=dict)
    # set members by member node: the SQL operator (UNION ALL, EXCEPT…), checked
    set_operators: dict[int, str] = field(default_factory=dict)
    # LIMIT / OFFSET / LIMIT BY counts by expression node, checked non-negative integers
    counts: dict[int, int] = field(default_factory=dict)
    # constants printed as SQL literals (checked against a whitelist here, e.g. dateDiff units)
    literals: dict[int, str] = field(default_factory=dict)
    # parametric calls' parameters, checked numbers as printed (quantile(0.9)(x))
    params: dict[int, list[str]] = field(default_factory=dict)
    # lambdas' argument names as printed (`__l0`), by lambda node
    lambdas: dict[int, list[str]] = field(default_factory=dict)
    # array-function calls over several arrays (printed over list_zip)
    zipped: set[int] = field(default_factory=set)
    # calls and `±` whose result is cast back to a Date (ClickHouse keeps a Date a Date)
    dates: set[int] = field(default_factory=set)
    # calls whose first argument is an array (`length(arr)`): printed with the array template
    over_arrays: set[int] = field(default_factory=set)
    # calls that are NULL for a bare NULL argument (Function.null_strict): printed as NULL
    nulls: set[int] = field(default_factory=set)
    # per result column of the first SELECT, the zone its datetimes are shown in when not the
    # project's (toTimeZone); empty for `SELECT *`
    column_timezones: tuple[str | None, ...] = ()
    # per result column of the first SELECT: (ClickHouse type where known better than DuckDB's
    # result type, nullable), as `types.result_type` decides; empty for `SELECT *`
    column_types: tuple[tuple[str | None, bool], ...] = ()
    # fields that name a FROM subquery's column: that column's result type
    field_types: dict[int, tuple[str | None, bool]] = field(default_factory=dict)
