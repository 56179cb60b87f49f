"""ORDER BY and LIMIT as PostHog's ClickHouse answers them, asserted on rows: where NULLs go
(last in either direction unless NULLS FIRST / NULLS LAST says), WITH FILL refused rather than
dropped, and LIMIT kept over a LEFT JOIN whose other side is empty (docs/hogql.md)."""

from __future__ import annotations

import pytest

from gateway.hogql import HogQLUnsupported, translate

_XS = "(select arrayJoin([2, NULL, 1, 3]) as x)"


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        # ClickHouse's default: NULLs last, ascending and descending alike
        ("x", [1, 2, 3, None]),
        ("x asc", [1, 2, 3, None]),
        ("x desc", [3, 2, 1, None]),
        ("x nulls first", [None, 1, 2, 3]),
        ("x asc nulls first", [None, 1, 2, 3]),
        ("x desc nulls first", [None, 3, 2, 1]),
        ("x DESC NULLS LAST", [3, 2, 1, None]),
        ("x nulls last", [1, 2, 3, None]),
        ("(x) nulls first", [None, 1, 2, 3]),
        ("x ascending nulls   first", [None, 1, 2, 3]),
        # a comment is not a modifier
        ("x desc /* nulls first */", [3, 2, 1, None]),
        ("x -- nulls first\n desc", [3, 2, 1, None]),
    ],
)
async def test_where_nulls_go(run, order, expected):
    result = await run(f"select x from {_XS} order by {order}")
    assert [r[0] for r in result.rows] == expected


async def test_nulls_first_on_one_key_of_several(run):
    result = await run(
        "select x, y from (select arrayJoin([(1, NULL), (1, 2), (NULL, 1)]) as t,"
        " t.1 as x, t.2 as y) order by x nulls first, y desc nulls first"
    )
    assert result.rows == [[None, 1], [1, None], [1, 2]]


async def test_nulls_first_in_a_window_and_in_limit_by(run):
    result = await run(
        f"select x, row_number() over (order by x desc nulls first) as n from {_XS} order by n"
    )
    assert result.rows == [[None, 1], [3, 2], [2, 3], [1, 4]]
    result = await run(f"select x from {_XS} order by x nulls first limit 2 by 1")
    assert result.rows == [[None], [1]]


def test_with_fill_is_refused_not_dropped():
    query = "select number from numbers(3) order by number with fill"
    with pytest.raises(HogQLUnsupported, match="WITH FILL") as caught:
        translate(query, project_id=1)
    assert caught.value.start == query.index("with fill")


@pytest.mark.parametrize(
    "query",
    [
        "select * from events limit 1",
        "select event from events where event = '$pageview' limit 1",
        "select e.event, p.id from events e left join persons p on p.id = e.person_id limit 1",
    ],
)
async def test_limit_holds_over_a_join_with_no_rows(run, query):
    """No persons exist here: DuckDB 2.0 dropped these LIMITs (every event came back)."""
    assert len((await run(query)).rows) == 1


async def test_limit_holds_in_each_union_member(run):
    result = await run(
        "select event from events limit 1 union all select event from events limit 2"
    )
    assert len(result.rows) == 3
