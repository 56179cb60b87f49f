"""`uniq` and its approximate kin (`uniqIf`, `uniqHLL12`, `uniqTheta`): what they count.

ClickHouse's `uniq` hashes every value and counts distinct hashes (exactly up to 65,536 of them
per group, then from a sample). The gateway counts distinct values exactly, except that
`uniq(distinct_id)` over the stored events table counts the 64-bit hashes the events layout
stores beside each distinct id (`"$distinct_id_hash"`, gateway/analytics/layout.py): DuckDB
then reads and groups fixed-width integers instead of decoding strings (a quarter less CPU for
"unique users by os" at 10M events). Two distinct ids count as one only if their hashes
collide: for n distinct ids in a group, with probability about n² / 2⁶⁵ (1 in 37 million at a
million ids; docs/hogql.md, Semantics). Every other argument is counted as itself (hashing
strings or UUIDs on the fly measured no faster), and `uniqExact`, `count(DISTINCT x)` and
`countDistinctIf` stay exact: they print from their templates.

The decision reads only what the resolver recorded (which table a field belongs to).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.hogql import ast
from gateway.hogql.binding import quote_identifier
from gateway.hogql.resolution import Column, Resolution, Source
from gateway.hogql.tables import DISTINCT_ID_HASH

if TYPE_CHECKING:
    from gateway.hogql.handlers import SqlPrinter


def _sources(resolution: Resolution, alias: str) -> list[Source]:
    # aliases may repeat across the query's scopes: every source so named must agree
    return [s for s in resolution.sources.values() if s.alias == alias]


def hash_column(resolution: Resolution, node: ast.Expr) -> str | None:
    """`"alias"."$distinct_id_hash"` when `node` is the stored events table's `distinct_id`:
    what `uniq(node)` counts distinct values of instead of `node`."""
    meaning = resolution.fields.get(id(node))
    if not (isinstance(meaning, Column) and meaning.name == "distinct_id"):
        return None
    sources = _sources(resolution, meaning.alias)
    if not sources or any(s.table is None or s.table.name != "events" for s in sources):
        return None
    return f"{quote_identifier(meaning.alias)}.{quote_identifier(DISTINCT_ID_HASH)}"


def uniq(p: SqlPrinter, node: ast.Call) -> str:
    """uniq(x), uniqIf(x, cond), uniqHLL12(x), uniqTheta(x): distinct values of x, counted as
    `hash_column()` says. (Over a window, `uniq(x) OVER (…)`, the template prints it plainly.)"""
    sql = f"count(DISTINCT {p.distinct_value(node.args[0])})"
    if len(node.args) == 2:  # the -If combinator's condition
        sql += f" FILTER (WHERE {p.predicate(node.args[1])})"
    return sql
