"""HogQL's threads stand below the event loop (issue #10, `/_health` under floods): the store's
query threads and DuckDB's own workers are QUERY_NICENESS nicer than the thread that made the
store, read back from the kernel's per-thread scheduling data."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from gateway.analytics.priority import QUERY_NICENESS
from gateway.analytics.store import AnalyticsStore


def _nice(tid: int) -> int:
    stat = Path(f"/proc/{os.getpid()}/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[16])


def _threads() -> set[int]:
    return {int(tid) for tid in os.listdir(f"/proc/{os.getpid()}/task")}


async def test_queries_and_duckdb_workers_run_nicer_than_the_loop():
    loop_nice = _nice(threading.get_native_id())
    before = _threads()
    store = AnalyticsStore(None)
    try:
        rows = store._conn.execute("SELECT count(*) FROM range(20000000)").fetchall()
        assert rows == [(20_000_000,)]
        workers = _threads() - before
        setting = store._conn.execute("SELECT current_setting('threads')").fetchone()
        assert setting is not None
        threads = int(setting[0])
        assert threads > 1
        nicer = [tid for tid in workers if _nice(tid) == min(loop_nice + QUERY_NICENESS, 19)]
        assert len(nicer) >= threads - 1, "DuckDB's workers inherit the lower priority"
        assert not [tid for tid in workers if _nice(tid) <= loop_nice], "none at the loop's"
        seen: list[int] = []

        def probe() -> None:
            seen.append(_nice(threading.get_native_id()))

        store._executor.submit(probe).result()
        assert seen == [min(loop_nice + QUERY_NICENESS, 19)], "query threads run nicer"
    finally:
        store.close()
    assert _nice(threading.get_native_id()) == loop_nice, "the loop's own thread is untouched"
