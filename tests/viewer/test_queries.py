"""SharedQueries over a real analytics store and translator: limits, caching, one run per version."""

from __future__ import annotations

import asyncio

import pytest

from gateway.analytics.store import AnalyticsStore
from gateway.clock import FakeClock
from gateway.hogql.translator import Translator
from gateway.viewer import SharedQueries
from gateway.viewer.queries import MAX_CELL_CHARS
from tests.viewer.fixtures import HOGQL_ROWS, events

EVENTS = "select event, distinct_id from events order by timestamp"


class CountingStore(AnalyticsStore):
    """The real store, counting runs and how many overlap (a gate holds the first `hold`
    runs until that many are inside at once, so overlap shows if the limit lets it)."""

    def __init__(self, hold: int) -> None:
        super().__init__(None, timeout_s=5)
        self.hold = hold
        self.runs = 0
        self.active = 0
        self.most = 0
        self.gate = asyncio.Event()

    async def run(self, translation, *, project_id=None):
        self.runs += 1
        self.active += 1
        self.most = max(self.most, self.active)
        if self.active >= self.hold:
            self.gate.set()
        try:
            await asyncio.wait_for(self.gate.wait(), timeout=10)
            return await super().run(translation, project_id=project_id)
        finally:
            self.active -= 1


@pytest.fixture
async def translator():
    translator = Translator(workers=1)
    yield translator
    await translator.close()


@pytest.fixture
def store():
    store = CountingStore(hold=1)
    store.insert_events(1, events())
    store.insert_events(2, [{**e, "distinct_id": "other-project"} for e in events()])
    yield store
    store.close()


def _runner(store, translator, clock, **limits) -> SharedQueries:
    options = {"concurrency": 2, "max_nodes": 20, "max_bytes": 1 << 20, "ttl_s": 60.0} | limits
    return SharedQueries(store, translator, clock, **options)


async def _outcomes(runner, queries, *, version=1, link="link-a", notebook_id="nb"):
    return await runner.outcomes(
        link=link,
        notebook_id=notebook_id,
        version=version,
        project_id=1,
        timezone="UTC",
        queries=queries,
    )


async def test_rows_are_the_projects_own_as_text(store, translator):
    runner = _runner(store, translator, FakeClock())
    queries = [EVENTS, "select null as a, true as b, 1.5 as c, [1, 2] as d, repeat('x', 900) as e"]
    result = await _outcomes(runner, queries)
    events_outcome = result[EVENTS]
    assert events_outcome.columns == ("event", "distinct_id")
    assert [list(r) for r in events_outcome.rows] == HOGQL_ROWS
    assert events_outcome.error is None
    assert not events_outcome.has_more
    (row,) = result[queries[1]].rows
    assert row[:4] == (None, "true", "1.5", "[1,2]")
    assert len(row[4]) == MAX_CELL_CHARS
    assert row[4].endswith("…")


async def test_first_100_rows_then_has_more(store, translator):
    runner = _runner(store, translator, FakeClock())
    for query in ("select number from numbers(1000)", "select number from numbers(1000) limit 500"):
        outcome = (await _outcomes(runner, [query]))[query]
        assert len(outcome.rows) == 100
        assert outcome.has_more
        assert outcome.rows[-1] == ("99",)


async def test_errors_are_messages(store, translator):
    runner = _runner(store, translator, FakeClock())
    result = await _outcomes(runner, ["select nope from events", "select from where"])
    assert "nope" in result["select nope from events"].error
    assert result["select from where"].error
    assert not result["select from where"].rows


async def test_only_max_nodes_run(store, translator):
    runner = _runner(store, translator, FakeClock(), max_nodes=2)
    queries = ["select 1", "select 2", "select 3"]
    result = await _outcomes(runner, queries)
    assert result["select 2"].rows == (("2",),)
    assert result["select 3"].error == "Not run: this page runs at most 2 queries."
    assert store.runs == 2


async def test_a_link_runs_at_most_concurrency_queries_at_once(translator):
    store = CountingStore(hold=2)
    try:
        runner = _runner(store, translator, FakeClock(), concurrency=2)
        queries = [f"select {n}" for n in range(6)]
        result = await _outcomes(runner, queries)
        assert all(o.error is None for o in result.values())
        assert store.most == 2
        # control: with a higher limit, the same page does overlap more (the check can fail)
        store.gate.clear()
        wide = _runner(store, translator, FakeClock(), concurrency=6)
        store.hold = 6
        await _outcomes(wide, queries, notebook_id="other")
        assert store.most == 6
    finally:
        store.close()


async def test_results_are_kept_per_version_and_for_ttl(store, translator):
    clock = FakeClock()
    runner = _runner(store, translator, clock, ttl_s=60.0)
    count = "select count() from events"
    assert (await _outcomes(runner, [count]))[count].rows == (("3",),)
    store.insert_events(1, events())
    assert (await _outcomes(runner, [count]))[count].rows == (("3",),), "same version: kept"
    assert store.runs == 1
    assert (await _outcomes(runner, [count], version=2))[count].rows == (("6",),)
    clock.advance(61)
    store.insert_events(1, events())
    assert (await _outcomes(runner, [count], version=2))[count].rows == (("9",),), "expired"
    assert store.runs == 3


async def test_concurrent_views_of_a_version_share_one_run(store, translator):
    runner = _runner(store, translator, FakeClock())
    views = await asyncio.gather(*(_outcomes(runner, [EVENTS]) for _ in range(10)))
    assert store.runs == 1
    assert all(v == views[0] for v in views)


async def test_a_viewer_leaving_does_not_cancel_the_run(store, translator):
    store.hold = 99  # the run waits at the gate
    runner = _runner(store, translator, FakeClock())
    view = asyncio.create_task(_outcomes(runner, [EVENTS]))
    while store.runs == 0:  # noqa: ASYNC110 - polls a counter the code under test has no event for
        await asyncio.sleep(0.01)
    view.cancel()
    with pytest.raises(asyncio.CancelledError):
        await view
    store.gate.set()
    result = await _outcomes(runner, [EVENTS])
    assert [list(r) for r in result[EVENTS].rows] == HOGQL_ROWS
    assert store.runs == 1, "the second view joined the first run"


async def test_close_stops_runs(store, translator):
    store.hold = 99
    runner = _runner(store, translator, FakeClock())
    view = asyncio.create_task(_outcomes(runner, [EVENTS]))
    while store.runs == 0:  # noqa: ASYNC110 - polls a counter the code under test has no event for
        await asyncio.sleep(0.01)
    await runner.close()
    with pytest.raises(asyncio.CancelledError):
        await view
