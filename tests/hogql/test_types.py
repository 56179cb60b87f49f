"""Result `types` as PostHog reports them (ClickHouse's names for its printed SQL): UInt64
counts, Nullable(String) properties, UInt8 predicates (rendered 1/0), literal integer types,
Date vs DateTime64, arrays, tuples and maps."""

from __future__ import annotations

import pytest


async def test_types_of_aggregates_literals_and_predicates(run):
    result = await run(
        "select count(), uniq(number), countIf(number > 1), sum(number), avg(number), 1, -1,"
        " 300, 1.5, 'a', true, null, number = 1, toInt('3'), length('ab'), [1, 2], (1, 'a')"
        " from numbers(3) group by number = 1 order by number = 1"
    )
    assert result.types == [
        "UInt64",
        "UInt64",
        "UInt64",
        "Int64",
        "Float64",
        "UInt8",
        "Int8",
        "UInt16",
        "Float64",
        "String",
        "Bool",
        "Nullable(Nothing)",
        "UInt8",
        "Nullable(Int64)",
        "UInt64",
        "Array(Int64)",
        "Tuple(Int64, String)",
    ]
    # predicates are UInt8 in ClickHouse: 0 and 1, as PostHog returns them
    assert [row[12] for row in result.rows] == [0, 1]
    assert all(type(row[12]) is int for row in result.rows)


async def test_types_of_columns_properties_and_functions(run):
    result = await run(
        "select event, properties.$browser, lower(properties.$browser),"
        " coalesce(properties.$os, ''), timestamp, uuid, toDate(timestamp),"
        " toStartOfMonth(timestamp), concat(properties.$os, 'x'), properties.$os = 'Linux',"
        " toYear(timestamp), toDayOfWeek(timestamp), if(1 > 0, properties.$os, 'x'),"
        " ifNull(properties.$os, 'none'), isNull(properties.$os)"
        " from events where distinct_id = 'bob'"
    )
    assert result.types == [
        "String",
        "Nullable(String)",
        "Nullable(String)",
        "String",
        "DateTime64(6, 'UTC')",
        "UUID",
        "Date",
        "Date",
        "String",
        "UInt8",
        "UInt16",
        "UInt8",
        "Nullable(String)",
        "String",
        "UInt8",
    ]
    assert result.rows[0][9:] == [1, 2026, 2, "Linux", "Linux", 0]


async def test_types_from_duckdb_results_nested(run):
    result = await run("select [(1, [toDate('2026-01-02')])], [[1.5]]")
    # element types come from DuckDB's result: integers inside are Int64 (ClickHouse: UInt8)
    assert result.types == ["Array(Tuple(Int64, Array(Date)))", "Array(Array(Float64))"]


async def test_types_through_from_subqueries(run):
    result = await run(
        "select c, b, x from (select count() as c, properties.$browser as b, c > 1 as x"
        " from events group by b) order by b"
    )
    assert result.types == ["UInt64", "Nullable(String)", "UInt8"]
    assert result.rows == [[2, "Chrome", 1], [1, "Firefox", 0]]


async def test_types_through_ctes(run):
    result = await run(
        "with t as (select count() as c, toYear(timestamp) as y, properties.$os as os"
        " from events group by y, os), u as (select c from t)"
        " select t.c, t.y, t.os, (select max(c) from u) from t order by t.os nulls first"
    )
    assert result.types[:3] == ["UInt64", "UInt16", "Nullable(String)"]
    assert result.rows[0][:3] == [2, 2026, None]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # ClickHouse widens integer arithmetic from the operands' types (measured with chdb)
        ("1 + 1", "UInt16"),
        ("1 - 1", "Int16"),
        ("2 * 300", "UInt32"),
        ("-1 + 1", "Int16"),
        ("7 % 2", "UInt8"),
        ("-7 % 2", "Int16"),
        ("1 + 1.5", "Float64"),
        ("5 / 2", "Float64"),
        ("70000 * 70000", "UInt64"),
        ("multiply(2, 3)", "UInt16"),
        ("modulo(300, 7)", "UInt8"),
        ("plus(1, 2)", "UInt16"),
        ("toYear(toDate('2026-01-01')) - 2000", "Int32"),
        ("number + 1", "UInt64"),
        ("number", "UInt64"),
        ("null + 1", "Nullable(Nothing)"),
        ("toInt('1') + 1", "Nullable(Int64)"),
    ],
)
async def test_arithmetic_types_widen_as_clickhouse(run, expression, expected):
    result = await run(f"select {expression} from numbers(1)")
    assert result.types == [expected]


async def test_ranking_window_functions_are_unsigned(run):
    result = await run(
        "select row_number() over (order by number), rank() over (order by number),"
        " dense_rank() over (order by number) from numbers(2) order by number"
    )
    assert result.types == ["UInt64", "UInt64", "UInt64"]
    assert result.rows == [[1, 1, 1], [2, 2, 2]]


async def test_counted_arithmetic_keeps_unsigned(run):
    result = await run("select count() + 1, count() * 2, count() - 1 from events")
    assert result.types == ["UInt64", "UInt64", "Int64"]
    assert result.rows == [[4, 6, 2]]


async def test_predicate_functions_answer_one_and_zero(run):
    """DuckDB computes these as booleans; ClickHouse answers UInt8 1/0 (JSON 1, not true)."""
    result = await run(
        "select isNaN(1.0), xor(1, 0), arrayExists(x -> x > 1, [1, 2]), arrayAll(x -> x > 1, [1]),"
        " JSONExtractBool('{\"a\": true}', 'a'), mapContains(map('a', 1), 'a'),"
        " hasSubstr([1, 2, 3], [2, 3]), isValidJSON('{}')"
    )
    assert result.rows == [[0, 1, 1, 0, 1, 1, 1, 1]]
    assert result.types == ["UInt8"] * 8
