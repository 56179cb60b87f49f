"""Distinct counts per group with bitmaps of small numbers (issue #16).

`select toStartOfDay(timestamp) as d, uniq(person_id) from events group by d` (PostHog's daily
active users) is, in DuckDB, a hash table of every (day, person) pair: 6M pairs for 10M events,
~85 % of the query's time; stickiness (`uniq(toStartOfDay(timestamp))` per distinct id) is the
same 6M (id, day) pairs. When what is counted is a number, or has one, the query can instead
OR one bit per event into 64-bit words, grouped by (the query's keys, number >> 6), and add up
the words' set bits per group: the same count, exactly (a value is one number, a number one
bit), from a table of (group, word) pairs: 94k instead of 6M for daily active users, 200k for
stickiness (docs/benchmarks.md). The numbers:
- `person_id` of events: `"$person_index"` (gateway/hogql/tables.py), the person's number
  among the project's persons named by a distinct id or stored on an event, in UUID order;
- `toStartOfDay(column)`: the day's number since 1970 (handlers.day_number), one per bucket.

It applies to a SELECT over the stored events table alone (lazy `pdi` only: no other FROM
entry, join, DISTINCT, HAVING, WITH, ARRAY JOIN, LIMIT BY or window) whose aggregates are all
`uniq`/`uniqExact`/`uniqHLL12`/`uniqTheta`/`count(DISTINCT …)` of one such value, whose other
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
class Bitmaps:
    """How to print one SELECT: its events source; the GROUP BY items and the keys they
    compute (an alias as the expression it names); for each select item (by node id) the key
    it is or None for a count; ORDER BY items (by node id) that are keys, by key index; what
    is counted: the person's number (`day_of` None) or the day number of `day_of`."""

    source: Source
    groups: list[ast.Expr]
    keys: list[ast.Expr]
    items: dict[int, int | None]
    order: dict[int, int]
    day_of: ast.Expr | None


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


def _counted(r: Resolution, node: ast.Expr, alias: str) -> ast.Expr | None:
    """What `node` counts when it is a distinct count of a numbered value: its argument."""
    if not isinstance(node, ast.Call) or len(node.args) != 1 or node.params:
        return None
    name = r.calls[id(node)][0] if id(node) in r.calls else ""
    if not (name in _COUNTS or (name == "count" and node.distinct)):
        return None
    arg = node.args[0]
    if r.fields.get(id(arg)) == Column(alias=alias, name="person_id"):
        return arg
    if not isinstance(arg, ast.Call) or len(arg.args) != 1 or id(arg) not in r.calls:
        return None
    # the bucket printed from a column's microseconds (handlers.start_of), NULL for NULL
    day = r.calls[id(arg)][0] == "toStartOfDay" and isinstance(arg.args[0], ast.Field)
    return arg if day else None


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


def _plain_shape(r: Resolution, query: ast.SelectQuery) -> bool:
    """Grouped, and none of the clauses the two-level form does not print."""
    if not query.group_by or query.distinct or query.array_join or query.limit_by:
        return False
    if query.column_ctes or query.having is not None or query.ctes:
        return False
    # WHERE may name a select alias; the inner query, where it prints, has none
    return query.where is None or not _names_a_column(r, query.where)


def bitmaps(r: Resolution, query: ast.Expr, text: Callable[[ast.Node], str]) -> Bitmaps | None:
    """The bitmap form for `query`, or None where it does not apply."""
    if not isinstance(query, ast.SelectQuery) or not _plain_shape(r, query):
        return None
    source = _source(r, query)
    keys = _keys(r, query)
    if source is None or keys is None:
        return None
    written = {text(k): i for i, k in enumerate(keys)}
    items: dict[int, int | None] = {}
    counted: set[str] = set()
    day_of: ast.Expr | None = None
    for item in query.select:
        inner = item.expr if isinstance(item, ast.Alias) else item
        arg = _counted(r, inner, source.alias)
        if arg is not None:
            items[id(item)] = None
            counted.add(text(arg))
            day_of = arg.args[0] if isinstance(arg, ast.Call) else None
        elif text(inner) in written and not _aggregated(r, inner):
            items[id(item)] = written[text(inner)]
        else:
            return None
    if len(counted) != 1:
        return None  # no count, or counts of different values
    order: dict[int, int] = {}
    for o in query.order_by or []:
        if isinstance(r.fields.get(id(o.expr)), SelectAlias):
            continue
        if text(o.expr) not in written:
            return None
        order[id(o.expr)] = written[text(o.expr)]
    groups = list(query.group_by or [])
    return Bitmaps(source=source, groups=groups, keys=keys, items=items, order=order, day_of=day_of)
