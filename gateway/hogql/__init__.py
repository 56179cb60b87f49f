"""HogQL → DuckDB: `translate()` is pure (no DuckDB import); `execute.py` runs the result."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from gateway.hogql import ast
from gateway.hogql.binding import ValueSink
from gateway.hogql.duckdb import DEFAULT_LIMIT, MAX_LIMIT, DuckDBPrinter
from gateway.hogql.errors import HogQLError, HogQLQueryError, HogQLSyntaxError, HogQLUnsupported
from gateway.hogql.functions import known_timezone
from gateway.hogql.parser import parse_select
from gateway.hogql.resolver import resolve

SCALARS: Final = (str, int, float, bool, type(None))
MAX_LIST: Final = 10_000


def placeholder_values(values: Any) -> dict[str, Any] | None:
    """Placeholder values as accepted from clients and kernels: scalars, or flat lists of
    scalars (at most 10,000 items). None when anything else is given."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        return None
    for value in values.values():
        if isinstance(value, list):
            if len(value) > MAX_LIST or not all(isinstance(v, SCALARS) for v in value):
                return None
        elif not isinstance(value, SCALARS):
            return None
    return values


@dataclass(frozen=True, kw_only=True)
class Translation:
    sql: str
    params: list[Any]
    # A plain SELECT without LIMIT is paged: `hasMore`, `limit`, `offset` in the response.
    paged: bool
    row_cap: int
    # the project's timezone: datetimes are shown in it (naive results are times in it)
    timezone: str = "UTC"
    # per result column, a zone other than the project's (toTimeZone), or None
    column_timezones: tuple[str | None, ...] = ()
    # per result column: (ClickHouse type the resolver knows, or None; nullable); see
    # `gateway.hogql.types.type_name`
    column_types: tuple[tuple[str | None, bool], ...] = ()


def translate(
    query: str,
    *,
    project_id: int,
    values: Mapping[str, Any] | None = None,
    timezone: str = "UTC",
    materialized: Collection[str] = (),
) -> Translation:
    """Parse, resolve and print one HogQL SELECT for `project_id`, whose datetimes are in
    `timezone`; `materialized` names the events properties the store keeps as columns (its
    `AnalyticsStore.materialized`). Raises HogQLError."""
    if not known_timezone(timezone):
        msg = f"The project's timezone '{timezone}' is not a known timezone."
        raise HogQLQueryError(msg)
    tree = parse_select(query, values)
    resolution = resolve(tree)
    sink = ValueSink()
    printer = DuckDBPrinter(
        resolution,
        project_id=project_id,
        query=query,
        sink=sink,
        timezone=timezone,
        materialized=materialized,
    )
    sql = printer.top(tree)
    paged = isinstance(tree, ast.SelectQuery) and tree.limit is None
    members = 1 if isinstance(tree, ast.SelectQuery) else 1 + len(tree.subsequent)
    row_cap = DEFAULT_LIMIT if paged else MAX_LIMIT * members
    return Translation(
        sql=sql,
        params=sink.values,
        paged=paged,
        row_cap=row_cap,
        timezone=timezone,
        column_timezones=resolution.column_timezones,
        column_types=resolution.column_types,
    )


__all__ = [
    "HogQLError",
    "HogQLQueryError",
    "HogQLSyntaxError",
    "HogQLUnsupported",
    "Translation",
    "placeholder_values",
    "translate",
]
