"""HogQL's own rules, as PostHog's printer applies them, asserted on rows (docs/hogql.md,
"Semantics"): NULL in comparisons, LIKE, regexes and IN; DISTINCT in combinators; functions
that keep ClickHouse's types and rounding."""

from __future__ import annotations

import pytest


async def _row(run, query):
    result = await run(query)
    assert len(result.rows) == 1
    return result.rows[0]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # LIKE / ILIKE: a NULL constant side is an IS NULL test; NULL against a pattern: false
        ("null like null", True),
        ("null like 'a%'", False),
        ("'a' like null", False),
        ("null ilike 'A%'", False),
        ("null not like 'a%'", True),
        ("null not ilike 'a%'", True),
        ("null not like null", False),
        ("'abc' not like null", True),
        # regexes, case-insensitive ones too (`~` and `~*` are `=~` and `=~*`)
        ("null =~ null", True),
        ("null =~ 'a'", False),
        ("null !~ 'a'", True),
        ("null !~ null", False),
        ("'ABC' =~* 'b'", True),
        ("'ABC' !~* 'b'", False),
        ("'ABC' =~ 'b'", False),
        ("'ABC' !~ 'b'", True),
        ("'abc' ~ 'b'", True),
        ("'ABC' ~* 'b'", True),
        ("null !~* 'a'", True),
        # IN as ClickHouse's transform_null_in: NULL matches NULL, never a NULL answer
        ("null in (null)", True),
        ("null in (1, 2)", False),
        ("null not in (1, 2)", True),
        ("2 not in (1, null)", True),
        ("1 in (1, null)", True),
        ("1 in (null)", False),
        ("null not in (1, null)", False),
        ("null in (select null)", True),
        ("null in (select 1)", False),
        ("2 in (select 2)", True),
        ("null not in (select number from numbers(2))", True),
    ],
)
async def test_null_rules_of_operators(run, expression, expected):
    assert await _row(run, f"select {expression}") == [expected]


async def test_null_rules_over_columns(run):
    """Both sides columns: NULL on both sides is a match, on one side not (negated: reverse)."""
    result = await run(
        "select a, b, a like b, a not like b, a =~ b, a !~ b, a =~* b, a !~* b from ("
        " select 'x' as a, 'x' as b union all select null, null"
        " union all select 'x', null union all select null, 'x'"
        ") order by coalesce(a, ''), coalesce(b, '')"
    )
    assert result.rows == [
        [None, None, True, False, True, False, True, False],
        [None, "x", False, True, False, True, False, True],
        ["x", None, False, True, False, True, False, True],
        ["x", "x", True, False, True, False, True, False],
    ]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # PostHog prints like(a, b) … notIn(a, b) as the operators themselves
        # (HOGQL_COMPARISON_MAPPING), so their NULL rules are the operators', never NULL
        ("like(null, 'a%')", 0),
        ("like('a', null)", 0),
        ("like(null, null)", 1),
        ("ilike(null, 'A%')", 0),
        ("notLike(null, 'a%')", 1),
        ("notLike('abc', null)", 1),
        ("notILike(null, 'A%')", 1),
        ("notILike(null, null)", 0),
        ("equals(1, null)", 0),
        ("equals(null, null)", 1),
        ("notEquals(1, null)", 1),
        ("less(null, 1)", 0),
        ("greaterOrEquals(2, 1)", 1),
        ("in(null, (1, null))", 1),
        ("notIn(null, (1, 2))", 1),
        # match() is a plain ClickHouse function: NULL in, NULL out
        ("match(null, 'a')", None),
        ("match('abc', null)", None),
        ("match('abc', 'b')", 1),
    ],
)
async def test_function_forms_of_operators(run, expression, expected):
    result = await run(f"select {expression}")
    assert result.rows == [[expected]]
    assert result.types == ["Nullable(UInt8)" if expected is None else "UInt8"]


async def test_function_forms_over_columns_match_the_operators(run):
    result = await run(
        "select like(a, b), notLike(a, b), ilike(a, b), notILike(a, b), equals(a, b) from ("
        " select 'x' as a, 'x' as b union all select null, null"
        " union all select 'x', null union all select null, 'x'"
        ") order by a nulls first, b nulls first"
    )
    assert result.rows == [
        [1, 0, 1, 0, 1],
        [0, 1, 0, 1, 0],
        [0, 1, 0, 1, 0],
        [1, 0, 1, 0, 1],
    ]


async def test_missing_properties_in_where(run):
    """A missing property: NOT LIKE / NOT ILIKE / !~ keep the row, LIKE / =~ drop it."""
    result = await run(
        "select distinct_id from events where properties.$os not like '%nux' order by distinct_id"
    )
    assert result.rows == [["alice"], ["alice"]]
    result = await run("select count() from events where properties.$os not ilike '%NUX'")
    assert result.rows == [[2]]
    result = await run("select count() from events where properties.$os =~* 'LIN'")
    assert result.rows == [[1]]
    result = await run("select count() from events where properties.$os in (null, 'Linux')")
    assert result.rows == [[3]]
    result = await run("select count() from events where properties.$os not in ('Linux')")
    assert result.rows == [[2]]


async def test_or_zero_and_or_null_of_null(run):
    assert await _row(
        run,
        "select toIntOrZero(null), toFloatOrZero(null), toIntOrNull(null), toIntOrZero('x'),"
        " toFloatOrZero('x'), toIntOrZero('7')",
    ) == [None, None, None, 0, 0.0, 7]


async def test_distinct_inside_combinators(run):
    assert await _row(
        run,
        "select countIf(distinct number % 3, number > 2), count(distinct number % 5),"
        " sum(distinct number % 3), sumIf(distinct number % 3, number < 2),"
        " uniqIf(number % 4, number > 5), avg(distinct number % 2) from numbers(10)",
    ) == [3, 5, 3, 1, 4, 0.5]


async def test_extract_returns_the_first_capture_group(run):
    assert await _row(
        run,
        "select extract('abc123def', '[0-9]+'), extract('abc123def', 'c([0-9])([0-9])'),"
        " extract('abc', '(?:b)c'), extract('abc', 'x(y)'), extract(null, '(a)')",
    ) == ["123", "1", "bc", "", None]


async def test_round_of_floats_is_half_to_even(run):
    assert await _row(
        run,
        "select round(2.5), round(3.5), round(-2.5), round(0.5), round(1.5), round(2.67, 1),"
        " round(toFloat('12.5'))",
    ) == [2.0, 4.0, -2.0, 0.0, 2.0, 2.7, 12.0]


async def test_date_trunc_keeps_a_date(run):
    result = await run(
        "select dateTrunc('month', toDate('2026-11-23')), date_trunc('year', toDate('2026-11-23')),"
        " dateTrunc('month', timestamp) from events where distinct_id = 'bob'"
    )
    # of a DateTime, to a week or longer, it is a Date too (ClickHouse; PostHog's test_mapping)
    assert result.rows == [["2026-11-01", "2026-01-01", "2026-11-01"]]
    assert result.types == ["Date", "Date", "Date"]


async def test_aggregate_window_functions(run):
    result = await run(
        "select number, groupArray(number) over (partition by number % 2 order by number),"
        " sumIf(number, number > 3) over (), uniq(number % 3) over (),"
        " groupUniqArray(number % 2) over (order by number) from numbers(5) order by number"
    )
    assert [r[:4] for r in result.rows] == [
        [0, [0], 4, 3],
        [1, [1], 4, 3],
        [2, [0, 2], 4, 3],
        [3, [1, 3], 4, 3],
        [4, [0, 2, 4], 4, 3],
    ]
    assert [sorted(r[4]) for r in result.rows] == [[0], [0, 1], [0, 1], [0, 1], [0, 1]]


@pytest.mark.parametrize(
    "expression",
    [
        "toYear(NULL)",
        "toStartOfDay(NULL)",
        "toStartOfWeek(NULL, 1)",
        "toStartOfMonth(NULL)",
        "toMonday(NULL)",
        "toYYYYMMDD(NULL)",
        "toHour(NULL)",
        "dateDiff('day', NULL, toDate('2024-01-01'))",
        "dateTrunc('month', NULL)",
        "addDays(NULL, 1)",
        "subtractHours(NULL, 2)",
        "age('day', toDate('2024-01-01'), NULL)",
    ],
)
async def test_a_bare_null_date_is_null(run, expression):
    """ClickHouse answers NULL (typed Nullable(Nothing)) where a date function gets a bare
    NULL; DuckDB cannot type it, so the call is printed as NULL."""
    result = await run(f"select {expression}")
    assert result.rows == [[None]]
    assert result.types == ["Nullable(Nothing)"]


async def test_null_dates_from_data_stay_typed(run):
    result = await run(
        "select toYear(toDate(NULL)), toStartOfDay(if(1 = 2, timestamp, NULL)) from events limit 1"
    )
    assert result.rows == [[None, None]]
