"""The wider function list, ARRAY JOIN, LIMIT BY, lambdas, `WITH expr AS name` and named
windows, run on DuckDB and checked against ClickHouse's answers."""

from __future__ import annotations

import pytest

from gateway.hogql import HogQLQueryError, HogQLUnsupported


async def _one(run, expressions):
    return (await run(f"select {expressions}")).rows[0]


async def test_parametric_aggregates_and_combinators(run):
    result = await run(
        "select quantile(0.5)(number), quantiles(0.1, 0.9)(number), topK(1)(number % 3),"
        " sumIf(number, number > 5), uniqIf(number % 4, number < 6), countIf(number > 7),"
        " argMaxIf(number, number, number < 5), groupArrayIf(number, number < 3),"
        " quantileIf(0.5)(number, number < 5), groupUniqArray(number % 2)"
        " from numbers(10)"
    )
    row = result.rows[0]
    assert row[0] == 4.5
    assert [round(v, 1) for v in row[1]] == [0.9, 8.1]
    assert row[2] == [0]
    assert row[3:9] == [30, 4, 2, 4, [0, 1, 2], 2.0]
    assert sorted(row[9]) == [0, 1]


async def test_parametric_errors(run):
    for query, message in (
        ("select quantile(2)(number) from numbers(3)", "between 0 and 1"),
        ("select quantile(number) from numbers(3)", "parameters"),
        ("select sum(1)(number) from numbers(3)", "takes no parameters"),
        ("select topK('a')(number) from numbers(3)", "must be numbers"),
    ):
        with pytest.raises(HogQLQueryError, match=message):
            await run(query)


async def test_arrays_and_lambdas(run):
    row = await _one(
        run,
        "arrayMap(x -> x * 2, [1, 2, 3]), arrayFilter(x -> x > 1, [1, 2, 3]),"
        " has([1, 2], 2), indexOf(['a', 'b'], 'b'), indexOf(['a'], 'z'), length([1, 2]),"
        " length('é'), arraySort([3, 1, 2]), arrayReverse([1, 2]),"
        " arrayStringConcat(['a', 'b'], '-'), range(3), [10, 20, 30][2],"
        " arrayExists(x -> x = 'b', ['a', 'b']), empty([]), notEmpty('x'),"
        " arrayMap((x) -> arrayMap(y -> x * y, [1, 2]), [1, 10])",
    )
    assert row[:15] == [
        [2, 4, 6],
        [2, 3],
        True,
        2,
        0,
        2,
        2,
        [1, 2, 3],
        [2, 1],
        "a-b",
        [0, 1, 2],
        20,
        True,
        True,
        True,
    ]
    assert row[15] == [[1, 2], [10, 20]], "a lambda inside a lambda sees the outer argument"


async def test_array_join_and_array_join_function(run):
    result = await run(
        "select event, tag from events array join ['x', 'y'] as tag"
        " where distinct_id = 'bob' order by tag"
    )
    assert result.rows == [["$pageview", "x"], ["$pageview", "y"]]
    result = await run("select arrayJoin([1, 2, 3]) as n order by n")
    assert result.rows == [[1], [2], [3]]
    result = await run(
        "select number, x from numbers(2) left array join"
        " arrayFilter(v -> v > number, [1]) as x order by number"
    )
    assert result.rows == [[0, 1], [1, None]]


async def test_limit_by(run):
    result = await run(
        "select number % 2 as parity, number from numbers(6) order by number desc limit 2 by parity"
    )
    assert result.rows == [[1, 5], [0, 4], [1, 3], [0, 2]]


async def test_column_ctes_and_named_windows(run):
    result = await run("with 5 as n, ['a', 'b'] as names select n + 1, has(names, 'b')")
    assert result.rows == [[6, True]]
    result = await run(
        "select number, sum(number) over w as running from numbers(4)"
        " window w as (order by number rows between unbounded preceding and current row)"
        " order by number"
    )
    assert [r[1] for r in result.rows] == [0, 1, 3, 6]
    with pytest.raises(HogQLQueryError, match="not defined"):
        await run("select row_number() over nope from numbers(2)")


async def test_dates(run):
    row = await _one(
        run,
        "addDays(toDate('2026-11-26'), 7), addHours(toDateTime('2026-11-26 10:00:00'), 2),"
        " dateAdd('month', 1, toDate('2026-01-31')), dateSub('day', 1, toDate('2026-03-01')),"
        " toDate('2026-11-26') - interval 1 week, subtractMonths(toStartOfMonth(toDate('2026-03-15')), 1),"
        " formatDateTime(toDateTime('2026-11-26 09:05:03'), '%Y-%m-%d %H:%i:%S %M'),"
        " toStartOfWeek(toDate('2026-11-26')), toStartOfWeek(toDate('2026-11-26'), 1),"
        " parseDateTimeBestEffort('2026-11-26T10:00:00Z'), toUnixTimestamp(toDateTime('1970-01-02 00:00:00')),"
        " dateDiff('day', toDate('2026-11-01'), toDate('2026-11-26'))",
    )
    assert row == [
        "2026-12-03",
        "2026-11-26T12:00:00Z",
        "2026-02-28",
        "2026-02-28",
        "2026-11-19",
        "2026-02-01",
        "2026-11-26 09:05:03 November",
        "2026-11-22",
        "2026-11-23",
        "2026-11-26T10:00:00Z",
        86400,
        25,
    ]
    with pytest.raises(HogQLUnsupported, match="%Q"):
        await run("select formatDateTime(now(), '%Q')")
    with pytest.raises(HogQLQueryError, match="unit must be one of"):
        await run("select dateAdd('fortnight', 1, today())")


async def test_strings_json_urls(run):
    row = await _one(
        run,
        "substring('hello', 2, 3), replaceOne('a.a.a', '.', '-'), replaceAll('a.a', '.', '-'),"
        " extract('order-42', '[0-9]+'), position('hello', 'l'), splitByString(', ', 'a, b'),"
        " JSONExtractString('{\"a\": {\"b\": \"x\"}}', 'a', 'b'), JSONExtractInt('{\"n\": 7}', 'n'),"
        " JSONExtractInt('not json', 'n'), JSONHas('{\"a\": 1}', 'a'), JSONExtractString('{}', 'a'),"
        " domain('https://www.example.com:8080/a/b?c=1#d'), path('https://example.com/a/b?c=1'),"
        " extractURLParameter('https://x.io/?utm_source=news&b=2', 'utm_source'),"
        " domainWithoutWWW('http://www.posthog.com/x'), extractURLParameter('https://x.io/', 'a'),"
        " multiIf(1 > 2, 'a', 2 > 1, 'b', 'c'), pow(2, 10), sqrt(16), round(log(exp(2)), 6)",
    )
    assert row == [
        "ell",
        "a-a.a",
        "a-a",
        "42",
        3,
        ["a", "b"],
        "x",
        7,
        0,
        True,
        "",
        "www.example.com",
        "/a/b",
        "news",
        "posthog.com",
        "",
        "b",
        1024.0,
        4.0,
        2.0,
    ]


async def test_property_arrays_and_indexing(run):
    result = await run(
        "select properties.obj.a[2], properties['obj']['a'][1] from events where isNotNull(properties.obj)"
    )
    assert result.rows == [["2", "1"]]
    with pytest.raises(HogQLQueryError, match="start from one, not from zero"):
        await run("select [1, 2][0]")


@pytest.mark.parametrize(
    "query",
    [
        "select range(1000000000)",
        "select length(range(5, 100000000))",
        "select repeat('abc', 10000000000)",
        "select leftPad('a', 1000000000000, 'b')",
        "select arrayJoin(range(20000000))",
    ],
)
async def test_values_built_by_a_query_are_capped(run, query):
    with pytest.raises(HogQLQueryError, match="limited to 10000000"):
        await run(query)


async def test_range_and_repeat_within_the_cap(run):
    assert (await _one(run, "range(2, 5), repeat('ab', 3), leftPad('7', 3, '0')")) == [
        [2, 3, 4],
        "ababab",
        "007",
    ]


async def test_lambdas_over_several_arrays(run):
    row = await _one(
        run,
        "arrayMap((x, y) -> x + y, [1, 2], [10, 20]),"
        " arrayFilter((x, keep) -> keep, ['a', 'b', 'c'], [true, false, true]),"
        " arrayCount((x, y) -> x < y, [1, 5], [2, 3])",
    )
    assert row == [[11, 22], ["a", "c"], 1]
    with pytest.raises(HogQLQueryError, match="lambda of 2 arguments"):
        await run("select arrayMap(x -> x, [1], [2])")
