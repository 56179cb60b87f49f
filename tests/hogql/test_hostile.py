"""Hostile queries: refused before DuckDB (translation fails), and project isolation holds."""

from __future__ import annotations

import pytest

from gateway.hogql import HogQLError, translate

HOSTILE = [
    "select * from read_csv('/etc/passwd')",
    "select read_csv('/etc/passwd')",
    "select * from read_parquet('x.parquet')",
    "select * from glob('/*')",
    "select getenv('HOME')",
    "select current_setting('threads')",
    "select * from duckdb_tables()",
    "select * from information_schema.tables",
    "select * from system.tables",
    "select * from pg_catalog.pg_tables",
    "select * from sqlite_master",
    "select 1; drop table events",
    "attach '/tmp/x.db' as x",
    "copy events to '/tmp/x.csv'",
    "install httpfs",
    "pragma version",
    "select * from events settings max_threads=1",
    "select team_id from events",
    "select project_id from events",
    "select e.project_id from events e",
    "select 1 as team_id from events where team_id = 2",
    "select url('http://example.com')",
    "select file('/etc/passwd')",
    "with x as (select * from read_csv('/etc/passwd')) select * from x",
    "with read_csv('/etc/passwd') as n select n",
    "select arrayMap(x -> getenv('HOME'), [1])",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_refused_before_duckdb(query):
    with pytest.raises(HogQLError) as info:
        translate(query, project_id=1)
    assert info.value.status == 400
    assert info.value.code.startswith("hogql_")


async def test_project_isolation_through_every_path(run):
    queries = [
        "select count() from events",
        "select count() from events where event = 'secret'",
        "select count() from (select * from events) x where x.event = 'secret'",
        "select count() from events a join events b on a.uuid = b.uuid where b.event = 'secret'",
        "select count() from events where distinct_id in (select distinct_id from events"
        " where event = 'secret')",
        "select count() from (select event from events union all select event from events) u"
        " where u.event = 'secret'",
        "with x as (select * from events) select count() from x where x.event = 'secret'",
        "with events as (select * from events where event = 'secret') select count() from events",
    ]
    for query in queries:
        result = await run(query, project_id=1)
        assert "secret" not in str(result.rows)
        if "secret" in query:
            assert result.rows == [[0]], query
    assert (await run("select count() from events", project_id=2)).rows == [[1]]
    assert (await run("select event from events", project_id=2)).rows == [["secret"]]


def test_every_literal_is_bound():
    translation = translate(
        "select properties.$browser from events where event = 'x'' or 1=1 --'", project_id=9
    )
    assert "or 1=1" not in translation.sql
    assert "x' or 1=1 --" in translation.params
    assert '$."$browser"' in translation.params
    assert 9 in translation.params


def test_errors_carry_code_and_span():
    with pytest.raises(HogQLError) as info:
        translate("select cnt() from events", project_id=1)
    assert (info.value.code, info.value.start, info.value.end) == ("hogql_query_error", 7, 12)
    assert "Perhaps you meant 'count(...)'" in info.value.detail
    with pytest.raises(HogQLError) as info:
        translate("select from where", project_id=1)
    assert info.value.code == "hogql_syntax_error"
    with pytest.raises(HogQLError) as info:
        translate("select x from nope", project_id=1)
    assert info.value.detail == "Unknown table `nope`."
