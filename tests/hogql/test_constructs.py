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


async def test_a_dict_literal_is_posthogs_object_tuple(run):
    """PostHog prints {'a': 1} as tuple('__hx_tag', '__hx_obj', 'a', 1) (its UI shows an
    object); nested dicts nest."""
    result = await run("select {'a': 1, 'b': 'x'}, {}, {'n': {'m': null}}")
    assert result.rows == [  # tuples are JSON arrays in a response
        [
            ["__hx_tag", "__hx_obj", "a", 1, "b", "x"],
            ["__hx_tag", "__hx_obj"],
            ["__hx_tag", "__hx_obj", "n", ["__hx_tag", "__hx_obj", "m", None]],
        ]
    ]


async def test_a_table_qualified_star(run):
    result = await run(
        "select t.*, u.b from (select 1 as a, 2 as b) t join (select 1 as a, 3 as b) u on t.a = u.a"
    )
    assert result.columns[:2] == ["a", "b"]
    assert result.rows == [[1, 2, 3]]
    result = await run("select x.b from (select t.* from (select 1 as a, 2 as b) t) x")
    assert result.rows == [[2]]
    result = await run("select e.*, 1 as one from events e order by e.timestamp limit 1")
    assert result.columns == [*EVENTS_COLUMNS, "one"]
    assert result.rows[0][1] == "$pageview"
    assert result.rows[0][-1] == 1


EVENTS_COLUMNS = [
    "uuid",
    "event",
    "properties",
    "timestamp",
    "distinct_id",
    "elements_chain",
    "created_at",
    "person_id",
]


@pytest.mark.parametrize(
    "query", ["select * from events", "select e.* from events e", "select * from events e"]
)
async def test_a_star_over_a_table_shows_only_its_columns(run, query):
    """Not the store's internal columns (materialized properties, the distinct-id hash, the
    joined person ids) that the table's subquery carries."""
    result = await run(query + " order by timestamp limit 1")
    assert result.columns == EVENTS_COLUMNS
    assert len(result.rows[0]) == len(EVENTS_COLUMNS)
    result = await run("select * from persons limit 1")
    assert result.columns == ["id", "created_at", "properties", "is_identified"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("select q.* from events e", "Unable to resolve field: q"),
        ("select count() from events e where e.* = 1", "only allowed in SELECT"),
    ],
)
async def test_a_table_star_needs_a_table_and_a_select(run, query, message):
    with pytest.raises(HogQLQueryError, match=message):
        await run(query)


async def test_operator_calls_and_two_argument_date_add_keep_a_date(run):
    """plus(d, INTERVAL), PostHog's date_add(d, INTERVAL) and ClickHouse's dateAdd(d, INTERVAL)
    are d + INTERVAL: a Date stays a Date, as in ClickHouse."""
    result = await run(
        "select plus(toDate('2024-01-31'), interval 1 day),"
        " minus(toDate('2024-01-31'), toIntervalDay(1)),"
        " date_add(toDate('2024-01-31'), interval 1 month),"
        " date_subtract(toDate('2024-01-31'), interval 1 day),"
        " dateAdd(toDateTime('2024-01-01 10:00:00'), interval 1 hour),"
        " dateSub(toDate('2024-03-01'), interval 1 day), plus(1, 2)"
    )
    assert result.rows == [
        [
            "2024-02-01",
            "2024-01-30",
            "2024-02-29",
            "2024-01-30",
            "2024-01-01T11:00:00Z",
            "2024-02-29",
            3,
        ]
    ]
    assert result.types[:4] == ["Date", "Date", "Date", "Date"]
