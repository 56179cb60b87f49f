"""Distinct persons per group counted with bitmaps of person numbers (issue #16).

`select toStartOfDay(timestamp) as d, uniq(person_id) from events group by d` (PostHog's daily
active users) is, in DuckDB, a hash table of every (day, person) pair: 6M pairs for 10M events,
~85 % of the query's time. Numbering the project's persons 0, 1, 2, … (`"$person_index"`,
gateway/hogql/tables.py: over the persons its distinct ids name and those stored on events, in
UUID order) lets the query instead OR one bit per event into 64-bit words, grouped by (the
query's keys, number // 64), and add up the words' set bits per group: the same count, exactly
(a person is one number, a number one bit), from a table of (group, word) pairs, 94k of them for
the 6M pairs (0.45 of the query's time at 10M events, one thread: docs/benchmarks.md).

It applies to a SELECT over the stored events table alone (lazy `pdi` only: no other FROM
entry, join, DISTINCT, HAVING, WITH, ARRAY JOIN, LIMIT BY or window) whose aggregates are all
`uniq`/`uniqExact`/`uniqHLL12`/`uniqTheta`/`count(DISTINCT …)` of its `person_id`, whose other
columns are GROUP BY keys as written (or named by one), and whose ORDER BY names a column or a
key. The decision reads what the resolver recorded and the query's text (a key and a column
are the same when written the same in this one SELECT).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from gateway.hogql import ast
from gateway.hogql.grouping import children
from gateway.hogql.resolution import Column, Resolution, SelectAlias, Source

_COUNTS = frozenset({"uniq", "uniqExact", "uniqHLL12", "uniqTheta"})


@dataclass(frozen=True)
class PersonBitmaps:
    """How to print one SELECT: its events source, the GROUP BY keys to compute (expressions),
    and for each select item (by node id) the key it is or None for a count; ORDER BY items
    (by node id) that are keys, by key index."""

    source: Source
    keys: list[ast.Expr]
    items: dict[int, int | None]
    order: dict[int, int]


def _aggregated(r: Resolution, node: ast.Node) -> bool:
    """Whether an aggregate or a window function sits anywhere in `node`."""
    if isinstance(node, ast.WindowFunction | ast.SelectQuery | ast.SelectSetQuery):
        return True
    if isinstance(node, ast.Call):
        call = r.calls.get(id(node))
        if call is None or call[1].aggregate:
            return True
    return any(_aggregated(r, child) for child in children(node))


def _names_a_column(r: Resolution, node: ast.Node) -> bool:
    """Whether `node` names a select column (the inner query, where keys print, has none)."""
    if isinstance(r.fields.get(id(node)), SelectAlias):
        return True
    return any(_names_a_column(r, child) for child in children(node))


def _is_count(r: Resolution, node: ast.Expr, alias: str) -> bool:
    if not isinstance(node, ast.Call) or len(node.args) != 1 or node.params:
        return False
    name = r.calls[id(node)][0] if id(node) in r.calls else ""
    if not (name in _COUNTS or (name == "count" and node.distinct)):
        return False
    return r.fields.get(id(node.args[0])) == Column(alias=alias, name="person_id")


def _source(r: Resolution, query: ast.SelectQuery) -> Source | None:
    join = query.select_from
    if join is None or join.next_join is not None or join.constraint is not None:
        return None
    source = r.sources.get(id(join))
    if source is None or source.table is None or source.table.name != "events":
        return None
    return source if source.lazy <= {"pdi"} else None


def _keys(r: Resolution, query: ast.SelectQuery) -> list[ast.Expr] | None:
    """The GROUP BY keys as expressions (a select alias as what it names)."""
    named = {i.alias: i.expr for i in query.select if isinstance(i, ast.Alias)}
    keys: list[ast.Expr] = []
    for g in query.group_by or []:
        meaning = r.fields.get(id(g))
        key = named.get(meaning.name) if isinstance(meaning, SelectAlias) else g
        if key is None or _aggregated(r, key) or _names_a_column(r, key):
            return None
        keys.append(key)
    return keys


def person_bitmaps(
    r: Resolution, query: ast.Expr, text: Callable[[ast.Node], str]
) -> PersonBitmaps | None:
    """The bitmap form for `query`, or None where it does not apply."""
    if not isinstance(query, ast.SelectQuery) or not query.group_by:
        return None
    if query.distinct or query.array_join or query.limit_by or query.column_ctes:
        return None
    if query.having is not None or query.ctes:
        return None
    source = _source(r, query)
    keys = _keys(r, query)
    if source is None or keys is None:
        return None
    written = {text(k): i for i, k in enumerate(keys)}
    items: dict[int, int | None] = {}
    for item in query.select:
        inner = item.expr if isinstance(item, ast.Alias) else item
        if _is_count(r, inner, source.alias):
            items[id(item)] = None
        elif text(inner) in written and not _aggregated(r, inner):
            items[id(item)] = written[text(inner)]
        else:
            return None
    if None not in items.values():
        return None
    order: dict[int, int] = {}
    for o in query.order_by or []:
        if isinstance(r.fields.get(id(o.expr)), SelectAlias):
            continue
        if text(o.expr) not in written:
            return None
        order[id(o.expr)] = written[text(o.expr)]
    return PersonBitmaps(source=source, keys=keys, items=items, order=order)
