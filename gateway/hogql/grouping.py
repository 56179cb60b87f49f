"""Grouping a FROM subquery by the stored distinct id hash instead of the distinct id (#16).

`select days, count() from (select distinct_id, uniq(toStartOfDay(timestamp)) as days from
events group by distinct_id) group by days` (PostHog's stickiness) groups 10M events by their
distinct id only to count the groups: the enclosing query never reads `distinct_id`. Grouping
by the 64-bit `"$distinct_id_hash"` the events layout stores beside it (as `uniq(distinct_id)`
counts, gateway/hogql/uniq.py) makes every group key, and every key of a distinct aggregate's
hash table inside the groups, a fixed-width integer instead of a string: 0.66 of that query's
time at 10M events (docs/benchmarks.md). The groups are the same unless two distinct ids of
the project share a 64-bit hash (about n²/2⁶⁵ for n ids: docs/hogql.md, Storage layout).

It applies to a plain SELECT in FROM (not a CTE, not a set member) that
- groups by the stored events table's `distinct_id` (the field, or a select alias of it),
- has no `*`, DISTINCT, LIMIT BY, ARRAY JOIN or `WITH x AS name`,
- selects `distinct_id` only as whole columns (`distinct_id`, `distinct_id AS u`) that the
  enclosing query never reads (`*` over the subquery reads every column), and names it nowhere
  else after grouping except inside aggregate arguments (WHERE and JOIN ON are before grouping).
Those columns print as NULL (nothing reads them) and the key as the hash. The decision reads
only what the resolver recorded.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.hogql import ast, uniq
from gateway.hogql.resolution import Column, Resolution, SelectAlias, Source


@dataclass(frozen=True)
class HashGrouping:
    """How to print one SELECT: GROUP BY items by node id → SQL, select items by node id →
    the name of the column printed as NULL."""

    keys: dict[int, str]
    blanks: dict[int, str]


def children(node: ast.Node) -> Iterator[ast.Node]:
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        items = value if isinstance(value, list | tuple) else [value]
        for item in items:
            if isinstance(item, list | tuple):
                yield from (i for i in item if isinstance(i, ast.Node))
            elif isinstance(item, ast.Node):
                yield item


def _fields(r: Resolution, node: ast.Node, *, aggregated: bool) -> Iterator[tuple[ast.Field, bool]]:
    """Every field under `node`, with whether it sits in an aggregate's arguments (a nested
    query's fields never count as aggregated: they are checked as if read after grouping)."""
    if isinstance(node, ast.Field):
        yield node, aggregated
        return
    if isinstance(node, ast.SelectQuery | ast.SelectSetQuery):
        aggregated = False
    elif isinstance(node, ast.Call):
        call = r.calls.get(id(node))
        aggregated = aggregated or (call is not None and call[1].aggregate)
    elif isinstance(node, ast.WindowFunction):
        aggregated = False  # evaluated per group: its arguments and window see the row
    for child in children(node):
        yield from _fields(r, child, aggregated=aggregated)


def _key(r: Resolution, query: ast.SelectQuery, node: ast.Expr) -> str | None:
    """The hash column when GROUP BY item `node` is the stored events' distinct id."""
    meaning = r.fields.get(id(node))
    if isinstance(meaning, SelectAlias):
        for item in query.select:
            if isinstance(item, ast.Alias) and item.alias == meaning.name:
                return uniq.hash_column(r, item.expr)
        return None
    return uniq.hash_column(r, node)


def _read_after_grouping(
    r: Resolution, query: ast.SelectQuery, target: Column, allowed: set[int], names: set[str]
) -> bool:
    """Whether the key column is read after grouping outside an aggregate's arguments, or a
    blanked column by its alias anywhere (ClickHouse and DuckDB let WHERE and ON name select
    aliases too), other than by the nodes in `allowed`."""
    after = [*query.select, *(query.group_by or [])]
    after += [query.having] if query.having is not None else []
    after += [o.expr for o in query.order_by or []]
    before = [query.where] if query.where is not None else []
    join = query.select_from
    while join is not None:
        before += [join.constraint] if join.constraint is not None else []
        join = join.next_join
    early = {id(b) for b in before}
    for top in after + before:
        for node, aggregated in _fields(r, top, aggregated=False):
            meaning = r.fields.get(id(node))
            if id(node) in allowed:
                continue
            if isinstance(meaning, SelectAlias) and meaning.name in names:
                return True
            if meaning == target and not aggregated and id(top) not in early:
                return True
    return False


def by_hash(r: Resolution, query: ast.Expr, source: Source) -> HashGrouping | None:
    """The rewrite for FROM subquery `query` read as `source`, or None where it does not apply."""
    if not isinstance(query, ast.SelectQuery) or source.cte is not None or not query.group_by:
        return None
    if query.distinct or query.limit_by or query.array_join or query.column_ctes:
        return None
    keys = {id(g): sql for g in query.group_by if (sql := _key(r, query, g)) is not None}
    if len(set(keys.values())) != 1:
        return None
    (hashed,) = set(keys.values())
    blanks: dict[int, str] = {}
    allowed: set[int] = set(keys)  # field nodes that may name the key
    target: Column | None = None
    for item in query.select:
        inner = item.expr if isinstance(item, ast.Alias) else item
        if isinstance(inner, ast.Field) and uniq.hash_column(r, inner) == hashed:
            name = item.alias if isinstance(item, ast.Alias) else str(inner.chain[-1])
            if name in source.used:
                return None  # the enclosing query reads it
            blanks[id(item)] = name
            allowed.add(id(inner))
    for g in query.group_by:
        meaning = r.fields.get(id(g))
        if id(g) in keys and isinstance(meaning, Column):
            target = meaning
    for item in query.select:
        meaning = r.fields.get(id(item.expr if isinstance(item, ast.Alias) else item))
        if id(item) in blanks and isinstance(meaning, Column):
            target = meaning
    assert target is not None  # a key is the column itself or an alias of a selected one
    if _read_after_grouping(r, query, target, allowed, set(blanks.values())):
        return None
    return HashGrouping(keys=keys, blanks=blanks)
