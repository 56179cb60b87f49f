"""HogQL constructs beyond the basics (tuples, CASE x WHEN, numbers() of constant arithmetic)
and the queries PostHog refuses, asserted on rows and errors."""

from __future__ import annotations

import pytest

from gateway.hogql import HogQLQueryError


async def test_tuples_and_their_elements(run):
    result = await run(
        "select (1, 'a').2, tuple(1, 2, 3).3, tupleElement((4, 5), 1), t.1"
        " from (select (number, toString(number)) as t from numbers(2)) order by t.1"
    )
    assert result.rows == [["a", 3, 4, 0], ["a", 3, 4, 1]]


@pytest.mark.parametrize(
    "query", ["select (1, 2).0", "select tupleElement((1, 2), number) from numbers(1)"]
)
async def test_tuple_indices_are_positive_constants(run, query):
    with pytest.raises(HogQLQueryError, match="index"):
        await run(query)


async def test_case_with_an_expression(run):
    result = await run(
        "select case number when 1 then 'one' when 2 then 'two' else 'many' end,"
        " case number % 2 when 0 then 'even' end from numbers(4) order by number"
    )
    assert result.rows == [["many", "even"], ["one", None], ["two", "even"], ["many", None]]


async def test_numbers_of_constant_arithmetic(run):
    result = await run("select count(), min(number), max(number) from numbers(2 * 5, 3 + 1)")
    assert result.rows == [[4, 10, 13]]
    result = await run("select count() from numbers(plus(1, intDiv(7, 2)))")
    assert result.rows == [[4]]
    with pytest.raises(HogQLQueryError, match="integer constants"):
        await run("select count() from numbers(7 / 2)")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "select event as `a%b` from events",
            'The HogQL identifier "a%b" is not permitted as it contains the "%" character',
        ),
        (
            "select e.event from events as `e%` ",
            'The HogQL identifier "e%" is not permitted',
        ),
        (
            "with `t%` as (select 1 as a) select a from `t%`",
            'The HogQL identifier "t%" is not permitted',
        ),
        (
            "select * from events e join events f on e.uuid = f.uuid",
            "Cannot use '\\*' without table name when there are multiple tables in the query",
        ),
        ("select *", "Cannot use '\\*' when there are no tables in the query"),
    ],
)
async def test_refusals_as_posthog(run, query, message):
    with pytest.raises(HogQLQueryError, match=message) as raised:
        await run(query)
    assert raised.value.start is not None
