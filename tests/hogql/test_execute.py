"""HogQL run on DuckDB, asserting on rows: PostHog's semantics, not SQL strings."""

from __future__ import annotations

import asyncio

import pytest

from gateway.hogql import HogQLQueryError


async def test_property_semantics(run):
    result = await run(
        "select properties.$browser, properties.price, properties.ok, properties.nothing,"
        " properties.obj, properties.empty, properties.missing, properties['$browser'],"
        " properties.obj.a from events where distinct_id = 'alice' and event = '$pageview'"
    )
    assert result.rows == [
        ["Chrome", "49.5", "true", None, '{"a":[1,2]}', "", None, "Chrome", "[1,2]"]
    ]
    assert result.types[0] == "Nullable(String)"  # a property may be missing


async def test_null_safe_comparisons(run):
    result = await run(
        "select null = null, 1 != null, null < 1, null not in (1, 2), "
        "null in (1), 1 between null and 3"
    )
    assert result.rows == [[True, True, False, True, False, False]]


async def test_clickhouse_function_semantics(run):
    result = await run(
        "select length('é'), toDayOfWeek(toDate('2026-11-29')), 1 / 2, intDiv(7, 2),"
        " concat('a', null, 'b'), toInt('x'), toFloat('1.5'), if(1 > 2, 'y', 'n'),"
        " toStartOfMonth(toDate('2026-11-26'))"
    )
    assert result.rows == [[2, 7, 0.5, 3, "ab", None, 1.5, "n", "2026-11-01"]]
    assert result.types[-1] == "Date"


async def test_aggregates_group_by_properties(run):
    result = await run(
        "select properties.$browser as b, count() as c, uniq(distinct_id)"
        " from events group by properties.$browser order by b"
    )
    assert result.columns == ["b", "c", "uniq(distinct_id)"]
    assert result.rows == [["Chrome", 2, 1], ["Firefox", 1, 1]]
    assert result.types == ["Nullable(String)", "UInt64", "UInt64"]


async def test_date_buckets_and_timestamps(run):
    result = await run(
        "select toStartOfDay(timestamp) as day, count() from events group by day order by day"
    )
    assert result.rows == [
        ["2026-11-23T00:00:00Z", 1],
        ["2026-11-24T00:00:00Z", 1],
        ["2026-11-25T00:00:00Z", 1],
    ]
    assert result.types[0] == "DateTime64(6, 'UTC')"


async def test_unaliased_columns_are_named_as_written(run):
    result = await run("select count(), event from events group by event order by event")
    assert result.columns == ["count()", "event"]


async def test_limit_defaults_caps_and_has_more(run):
    result = await run("select number from numbers(250)")
    assert (len(result.rows), result.has_more) == (100, True)
    result = await run("select number from numbers(100)")
    assert (len(result.rows), result.has_more) == (100, False)
    result = await run("select number from numbers(120) limit 110")
    assert len(result.rows) == 110
    result = await run("select number from numbers(60000) limit 55000")
    assert len(result.rows) == 50_000, "explicit limits are capped at 50000"


async def test_union_members_each_get_the_default_limit(run):
    result = await run("select number from numbers(150) union all select number from numbers(150)")
    assert len(result.rows) == 200, "100 from each member"
    result = await run(
        "select number from numbers(150) union all select number from numbers(150) limit 1000"
    )
    assert len(result.rows) == 250, "100 from the first, the second's own LIMIT applies"


async def test_joins_and_subqueries(run):
    result = await run(
        "select e.distinct_id, s.n from events e"
        " inner join (select distinct_id, count() as n from events group by distinct_id) s"
        " on e.distinct_id = s.distinct_id where e.event = 'signed_up'"
    )
    assert result.rows == [["alice", 2]]


async def test_placeholders_are_bound_values(run):
    result = await run("select count() from events where event = {name}", name="$pageview")
    assert result.rows == [[2]]


async def test_query_errors_from_duckdb_are_400_without_internals(run):
    with pytest.raises(HogQLQueryError) as info:
        await run("select toDate(1) + 'x'")
    assert "could not be run" in info.value.detail


async def test_a_slow_query_is_stopped_at_the_timeout():
    from gateway.analytics.store import AnalyticsStore
    from gateway.hogql import translate

    store = AnalyticsStore(None, timeout_s=0.5)
    try:
        with pytest.raises(HogQLQueryError, match=r"longer than 0\.5 s"):
            await store.run(
                translate(
                    "select count() from numbers(100000000) a cross join numbers(100000000) b",
                    project_id=1,
                )
            )
        fast = await store.run(translate("select 1", project_id=1))
        assert fast.rows == [[1]], "the store still answers"
    finally:
        store.close()


async def test_a_cancelled_query_is_stopped_and_frees_its_thread():
    """A caller that goes away mid-query (a kernel stopped during `hogql_execute()`) stops
    its query at once: the store's thread is free for the next project, not held until the
    query ends on its own."""
    from gateway.analytics.store import AnalyticsStore
    from gateway.hogql import translate

    store = AnalyticsStore(None, timeout_s=60, max_queries=1)
    slow = "select count() from numbers(100000000) a cross join numbers(100000000) b"
    try:
        running = asyncio.ensure_future(store.run(translate(slow, project_id=1), project_id=1))
        await asyncio.sleep(0.5)  # the query is running on the store's only thread
        running.cancel()
        loop = asyncio.get_running_loop()
        begin = loop.time()
        async with asyncio.timeout(20):
            fast = await store.run(translate("select 1", project_id=2), project_id=2)
        assert fast.rows == [[1]]
        assert loop.time() - begin < 3
        with pytest.raises(asyncio.CancelledError):
            await running
    finally:
        store.close()


async def test_list_placeholders(run):
    result = await run("select number from numbers(6) where number in {xs}", xs=[1, 3, 9])
    assert result.rows == [[1], [3]]
    result = await run("select number from numbers(4) where number not in {xs}", xs=[1])
    assert result.rows == [[0], [2], [3]]
    result = await run("select null not in {xs}, null in {xs}", xs=[1, 2])
    assert result.rows == [[True, False]], "NOT IN keeps NULL, IN does not"


async def test_date_functions(run):
    result = await run(
        "select toMonday(toDate('2026-11-26')), toStartOfWeek(toDate('2026-11-26')),"
        " toStartOfQuarter(toDate('2026-11-26')), toYYYYMM(toDate('2026-11-26')),"
        " toDayOfMonth(toDate('2026-11-26')),"
        " dateDiff('day', toDateTime('2026-11-25 23:59:00'), toDateTime('2026-11-26 00:01:00')),"
        " dateDiff('month', toDate('2026-01-31'), toDate('2026-02-01')),"
        " addHours(toDateTime('2026-11-26 23:00:00'), 2)"
    )
    assert result.rows == [
        ["2026-11-23", "2026-11-22", "2026-10-01", 202611, 26, 1, 1, "2026-11-27T01:00:00Z"]
    ]
    assert result.types[:3] == ["Date", "Date", "Date"]


async def test_aggregate_functions(run):
    result = await run(
        "select argMax(event, timestamp), argMin(event, timestamp), groupArray(properties.$os),"
        " median(toFloat(properties.price)), uniqIf(distinct_id, event = '$pageview')"
        " from events"
    )
    assert result.rows == [["signed_up", "$pageview", ["Linux"], 49.5, 2]]


async def test_string_and_conversion_functions(run):
    result = await run(
        "select splitByChar(',', 'a,b,c'), match('abc', '^a.c$'),"
        " replaceRegexpAll('a1b22', '[0-9]+', '#'), toIntOrZero('x'), toUUID('nope')"
    )
    assert result.rows == [[["a", "b", "c"], True, "a#b#", 0, None]]


def test_date_diff_unit_is_checked():
    from gateway.hogql import HogQLQueryError, translate

    with pytest.raises(HogQLQueryError) as info:
        translate("select dateDiff('fortnight', now(), now())", project_id=1)
    assert info.value.start == 16
    with pytest.raises(HogQLQueryError):
        translate("select dateDiff(event, now(), now()) from events", project_id=1)


async def test_ctes(run):
    result = await run(
        "with a as (select number as x from numbers(5)),"
        " b as (select x * 2 as y from a) select sum(y) from b"
    )
    assert result.rows == [[20]]
    result = await run(
        "with e as (select * from events) select count(), uniq(e.distinct_id)"
        " from e where e.event = '$pageview'"
    )
    assert result.rows == [[2, 2]]


def test_cte_errors():
    from gateway.hogql import HogQLError, translate

    for query in (
        "with a as (select 1), a as (select 2) select * from a",
        "select * from missing_cte",
    ):
        with pytest.raises(HogQLError):
            translate(query, project_id=1)


async def test_window_functions(run):
    result = await run(
        "select number, row_number() over (order by number desc) as rn,"
        " lag(number, 1) over (order by number) as prev,"
        " sum(number) over (order by number rows between unbounded preceding and current row)"
        " as running from numbers(4) order by number"
    )
    assert result.rows == [[0, 4, None, 0], [1, 3, 0, 1], [2, 2, 1, 3], [3, 1, 2, 6]]
    result = await run(
        "select distinct_id, count() over (partition by distinct_id) as n from events"
        " order by distinct_id"
    )
    assert result.rows == [["alice", 2], ["alice", 2], ["bob", 1]]


def test_window_errors():
    from gateway.hogql import HogQLError, translate

    for query in (
        "select lower('a') over (order by 1)",
        "select row_number() over w from numbers(2) window v as (order by number)",
        "select row_number(1) over (order by number) from numbers(2)",
    ):
        with pytest.raises(HogQLError):
            translate(query, project_id=1)


async def test_null_semantics_hold_in_where_having_and_if_combinators(run):
    """WHERE drops NULL like FALSE, so guards are left out there, but never under NOT."""
    count = "select count() from events where "
    assert (await run(count + "properties.$os = 'Linux'")).rows == [[1]]
    assert (await run(count + "not (properties.$os = 'Linux')")).rows == [[2]]
    assert (await run(count + "properties.$os != 'Linux'")).rows == [[2]]
    assert (await run(count + "not (properties.$os > 'A') or properties.plan = 'pro'")).rows == [
        [2]
    ]
    assert (await run(count + "properties.$os = null")).rows == [[2]]
    result = await run(
        "select countIf(not (properties.$os = 'Linux')), sumIf(1, properties.$os = 'Linux'),"
        " quantilesIf(0.5)(toFloat(properties.price), isNotNull(properties.price)) from events"
    )
    assert result.rows == [[2, 1, [49.5]]]
