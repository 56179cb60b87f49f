"""HogQL on the gateway's analytics store vs the same queries in ClickHouse (issue #16).

The same generated rows (bench/hogql.py's generator: events, persons, distinct ids) go, through
one Parquet export, into
- the gateway's file-backed `AnalyticsStore` (DuckDB; events clustered by project, day, event;
  `$browser`, `$os`, `$pathname`, `$session_id` materialized), loaded as a bulk load is:
  into the write buffer, then `flush()` (clustering and materialized columns), then CHECKPOINT;
- ClickHouse (chdb, in-process ClickHouse, on disk) with PostHog's table layout: `events`
  MergeTree ordered by (team_id, toDate(timestamp), event, cityHash64(distinct_id),
  cityHash64(uuid)), properties as a JSON string column, PostHog-style materialized columns
  (`mat_$browser String MATERIALIZED replaceRegexpAll(JSONExtractRaw(properties, '$browser'),
  '^"|"$', '')`) for the same properties; `person_distinct_id2` and `person` as
  ReplacingMergeTree(version).
Each engine runs in its own process (so memory is measured apart), both at the niceness the
gateway gives its query threads (QUERY_NICENESS, gateway/analytics/priority.py); the driver
sends queries to one then the other, alternating which goes first each round, and asserts both
return the same rows (approximate ClickHouse aggregates within 2 %). Times are taken inside
each process: ours is translate + run + rows as JSON values (`AnalyticsStore.run`),
ClickHouse's is the query to an Arrow table and its rows as Python values.

    .venv/bin/python bench/hogql_vs_clickhouse.py [--events 1000000] [--rounds 5] [--exact]
        [--only NAME …]

Needs chdb 4.4.0: `make oracle` installs it (the `.[oracle]` extra of the HogQL work).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import decimal
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._clickhouse_queries import APPROX_TOLERANCE, APPROXIMATE, CLICKHOUSE, HOGQL, HOT
from bench.hogql import GENERATE, PERSONS

CH_SCHEMA = (
    """CREATE TABLE events (uuid UUID, event String, properties String,
        timestamp DateTime64(6, 'UTC'), team_id Int64, distinct_id String,
        elements_chain String, created_at DateTime64(6, 'UTC'), person_id UUID, {mat})
    ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp)
    ORDER BY (team_id, toDate(timestamp), event, cityHash64(distinct_id), cityHash64(uuid))""",
    """CREATE TABLE person_distinct_id2 (team_id Int64, distinct_id String, person_id UUID,
        is_deleted Int8, version Int64) ENGINE = ReplacingMergeTree(version)
    ORDER BY (team_id, distinct_id)""",
    """CREATE TABLE person (id UUID, created_at DateTime64(3, 'UTC'), team_id Int64,
        properties String, is_identified Int8, is_deleted Int8, version UInt64)
    ENGINE = ReplacingMergeTree(version) ORDER BY (team_id, id)""",
)


def _memory() -> dict[str, int]:
    """Resident and peak resident memory of this process, bytes."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            out[key] = int(value.split()[0]) * 1024
    if "VmHWM" not in out:
        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _plain(value: Any) -> Any:
    """Both engines' cells in one form: datetimes as UTC ISO text, numbers as floats."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None).isoformat()
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            return _plain(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | decimal.Decimal):
        return float(value)
    return value


def _same(name: str, ours: list[list[Any]], theirs: list[list[Any]]) -> str | None:
    """None when the rows agree (as multisets; approximate columns within the tolerance)."""
    approx = APPROXIMATE.get(name, set())

    def key(row: list[Any]) -> str:  # approximate columns cannot order the rows
        return repr([v for i, v in enumerate(row) if i not in approx])

    ours_sorted, theirs_sorted = sorted(ours, key=key), sorted(theirs, key=key)
    if len(ours_sorted) != len(theirs_sorted):
        return f"{len(ours_sorted)} rows vs {len(theirs_sorted)}"
    for a, b in zip(ours_sorted, theirs_sorted, strict=True):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if i in approx and isinstance(x, float) and isinstance(y, float):
                if abs(x - y) > APPROX_TOLERANCE * max(abs(x), abs(y), 1.0):
                    return f"column {i}: {x} vs {y} (beyond {APPROX_TOLERANCE:.0%})"
            elif isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return f"column {i}: {x} vs {y}"
            elif x != y:
                return f"column {i}: {x!r} vs {y!r} in {a} / {b}"
    return None


def generate(events: int, folder: Path) -> None:
    """bench/hogql.py's rows, made once in a scratch DuckDB and written as Parquet."""
    import duckdb

    from gateway.analytics.layout import BASE_COLUMNS
    from gateway.analytics.store import SCHEMA

    conn = duckdb.connect()
    conn.execute("SET TimeZone = 'UTC'")
    columns = ", ".join(f'"{c}" {t}' for c, t in BASE_COLUMNS)
    conn.execute(f"CREATE TABLE events ({columns})")
    for statement in SCHEMA:
        conn.execute(statement)
    users = max(1, events // 50)
    conn.execute(GENERATE.format(table="events", n=events, users=users))
    conn.execute(PERSONS.format(users=users))
    conn.execute(
        "COPY (SELECT project_id, CAST(uuid AS VARCHAR) AS uuid, event,"
        " CAST(properties AS VARCHAR) AS properties, timestamp, distinct_id, elements_chain,"
        " created_at, CAST(person_id AS VARCHAR) AS person_id FROM events)"
        f" TO '{folder / 'events.parquet'}' (FORMAT parquet, ROW_GROUP_SIZE 1000000)"
    )
    conn.execute(
        "COPY (SELECT project_id, CAST(id AS VARCHAR) AS id, created_at,"
        " CAST(properties AS VARCHAR) AS properties, is_identified FROM persons)"
        f" TO '{folder / 'persons.parquet'}' (FORMAT parquet)"
    )
    conn.execute(
        "COPY (SELECT project_id, distinct_id, CAST(person_id AS VARCHAR) AS person_id"
        f" FROM person_distinct_ids) TO '{folder / 'pdi.parquet'}' (FORMAT parquet)"
    )
    conn.close()


def _load_duckdb(data: Path, folder: Path) -> Any:
    import pyarrow.parquet as pq

    from gateway.analytics.store import AnalyticsStore

    store = AnalyticsStore(data / "analytics.duckdb", timeout_s=600, materialized=HOT)
    cursor = store._conn.cursor()
    inserts = {
        "events.parquet": "INSERT INTO events_buffer SELECT project_id, CAST(uuid AS UUID), event,"
        " properties, timestamp, distinct_id, elements_chain, created_at, CAST(person_id AS UUID)"
        " FROM incoming",
        "persons.parquet": "INSERT INTO persons SELECT project_id, CAST(id AS UUID), created_at,"
        " properties, is_identified FROM incoming",
        "pdi.parquet": "INSERT INTO person_distinct_ids SELECT project_id, distinct_id,"
        " CAST(person_id AS UUID) FROM incoming",
    }
    for name, insert in inserts.items():
        for batch in pq.ParquetFile(folder / name).iter_batches(1_000_000):
            cursor.register("incoming", batch)
            cursor.execute(insert)
            cursor.unregister("incoming")
    store.layout.flush()
    cursor.execute("CHECKPOINT")
    cursor.close()
    return store


def _load_clickhouse(data: Path, folder: Path) -> Any:
    from chdb import session

    sess = session.Session(str(data))
    mats = ", ".join(
        f"`mat_{k}` String MATERIALIZED replaceRegexpAll(JSONExtractRaw(properties, '{k}'),"
        " '^\"|\"$', '')"
        for k in HOT
    )
    for statement in CH_SCHEMA:
        sess.query(statement.format(mat=mats))
    sess.query(
        "INSERT INTO events (uuid, event, properties, timestamp, team_id, distinct_id,"
        " elements_chain, created_at, person_id) SELECT toUUID(uuid), event, properties,"
        " timestamp, project_id, distinct_id, ifNull(elements_chain, ''), created_at,"
        f" toUUIDOrZero(ifNull(person_id, '')) FROM file('{folder / 'events.parquet'}', Parquet)"
    )
    sess.query(
        "INSERT INTO person SELECT toUUID(id), created_at, project_id, properties,"
        f" toInt8(is_identified), 0, 0 FROM file('{folder / 'persons.parquet'}', Parquet)"
    )
    sess.query(
        "INSERT INTO person_distinct_id2 SELECT project_id, distinct_id, toUUID(person_id), 0, 0"
        f" FROM file('{folder / 'pdi.parquet'}', Parquet)"
    )
    return sess


def _duckdb_worker(pipe: Connection, data: str, folder: str, _aggregates: str) -> None:
    from gateway.hogql import translate

    begin = time.perf_counter()
    store = _load_duckdb(Path(data), Path(folder))
    pipe.send(("loaded", time.perf_counter() - begin, _du(Path(data)), _memory()))
    loop = asyncio.new_event_loop()
    while (name := pipe.recv()) is not None:
        begin = time.perf_counter()
        translation = translate(HOGQL[name], project_id=1, materialized=store.materialized)
        result = loop.run_until_complete(store.run(translation))
        elapsed = time.perf_counter() - begin
        pipe.send((elapsed, result.rows))
    pipe.send(_memory())
    store.close(flush=False)


def exact(sql: str) -> str:
    """ClickHouse's exact aggregates in place of PostHog's approximate ones (`--exact`)."""
    for approximate, precise in (
        ("uniq(", "uniqExact("),
        ("quantile(", "quantileExact("),
        ("median(", "medianExact("),
    ):
        sql = sql.replace(approximate, precise)
    return sql


def _clickhouse_worker(pipe: Connection, data: str, folder: str, aggregates: str) -> None:
    from gateway.analytics.priority import QUERY_NICENESS

    # the gateway runs its queries (and DuckDB's workers) QUERY_NICENESS nicer than its event
    # loop; ClickHouse's threads get the same niceness, so that on a shared machine neither
    # engine is favoured by the scheduler (set before chdb starts any thread, all inherit it)
    os.nice(QUERY_NICENESS)
    queries = {n: exact(q) if aggregates == "exact" else q for n, q in CLICKHOUSE.items()}
    begin = time.perf_counter()
    sess = _load_clickhouse(Path(data), Path(folder))
    pipe.send(("loaded", time.perf_counter() - begin, _du(Path(data)), _memory()))
    kinds: dict[str, list[str]] = {}
    while (name := pipe.recv()) is not None:
        begin = time.perf_counter()
        table = sess.query(queries[name], "ArrowTable")
        rows = [list(r.values()) for r in table.to_pylist()]
        elapsed = time.perf_counter() - begin
        if name not in kinds:  # ClickHouse's DateTime leaves as Arrow UInt32 (seconds)
            described = sess.query(f"DESCRIBE TABLE ({queries[name]})", "ArrowTable")
            kinds[name] = [str(t) for t in described.column("type").to_pylist()]
        for row in rows:
            for i, kind in enumerate(kinds[name]):
                if kind.startswith(("DateTime(", "Nullable(DateTime(")) and row[i] is not None:
                    row[i] = dt.datetime.fromtimestamp(row[i], dt.UTC)
        pipe.send((elapsed, rows))
    pipe.send(_memory())
    sess.close()


def _start(
    target: Any, data: Path, folder: Path, aggregates: str
) -> tuple[Any, Connection, tuple[Any, ...]]:
    ours, theirs = mp.Pipe()
    process = mp.get_context("spawn").Process(
        target=target, args=(theirs, str(data), str(folder), aggregates), daemon=True
    )
    process.start()
    loaded = ours.recv()
    return process, ours, loaded


def _rounds(
    engines: dict[str, Connection], names: list[str], rounds: int
) -> dict[str, dict[str, list[float]]]:
    times: dict[str, dict[str, list[float]]] = {e: {n: [] for n in names} for e in engines}
    order = list(engines)
    for r in range(rounds + 1):  # round 0 warms both up and is not counted
        for name in names:
            rows = {}
            for engine in order if r % 2 else reversed(order):
                engines[engine].send(name)
                elapsed, got = engines[engine].recv()
                rows[engine] = [[_plain(v) for v in row] for row in got]
                if r:
                    times[engine][name].append(elapsed * 1000)
            problem = _same(name, rows["gateway"], rows["clickhouse"])
            assert problem is None, f"{name}: the engines disagree: {problem}"
    return times


def _report(args: argparse.Namespace, loads: dict[str, Any], times: Any, memory: Any) -> None:
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    import chdb
    import duckdb

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python"
        f" {platform.python_version()}, DuckDB {duckdb.__version__}, chdb {chdb.__version__}"
        f" (ClickHouse {chdb.engine_version}); {args.events:,} events, {args.rounds} rounds;"
        f" load: {uptime.strip()}"
    )
    print("\n| query | ClickHouse ms | gateway ms | ratio |\n|---|---|---|---|")
    ratios = []
    for name in HOGQL:
        ch = statistics.median(times["clickhouse"][name])
        ours = statistics.median(times["gateway"][name])
        ratios.append(ours / ch)
        print(f"| {name} | {ch:.1f} | {ours:.1f} | {ours / ch:.2f} |")
    geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"\ngeometric mean of the ratios: {geo:.2f}; worst {max(ratios):.2f}")
    print("\n| engine | load s | on disk MiB | RSS after load MiB | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for engine in ("gateway", "clickhouse"):
        load_s, disk, after = loads[engine]
        print(
            f"| {engine} | {load_s:.1f} | {disk / 2**20:.0f} | {after['VmRSS'] / 2**20:.0f} |"
            f" {memory[engine]['VmHWM'] / 2**20:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", help="query names (default: all)")
    parser.add_argument(
        "--exact",
        action="store_true",
        help="ClickHouse runs uniqExact/quantileExact/medianExact instead of PostHog's"
        " approximate uniq/quantile/median (for context: the gateway's are exact)",
    )
    args = parser.parse_args()
    names = args.only or list(HOGQL)
    with tempfile.TemporaryDirectory(prefix="hogql-vs-ch-") as tmp:
        root = Path(tmp)
        begin = time.perf_counter()
        generate(args.events, root)
        print(f"generated {args.events:,} events in {time.perf_counter() - begin:.1f} s")
        workers = {"gateway": _duckdb_worker, "clickhouse": _clickhouse_worker}
        processes, pipes, loads = {}, {}, {}
        for engine, target in workers.items():  # one at a time: loads do not compete
            data = root / engine
            data.mkdir()
            processes[engine], pipes[engine], loaded = _start(
                target, data, root, "exact" if args.exact else "posthog"
            )
            loads[engine] = loaded[1:]
        times = _rounds(pipes, names, args.rounds)
        memory = {}
        for engine, pipe in pipes.items():
            pipe.send(None)
            memory[engine] = pipe.recv()
            processes[engine].join()
        shutil.rmtree(root / "clickhouse", ignore_errors=True)
    if names == list(HOGQL):
        _report(args, loads, times, memory)
    else:
        for name in names:
            ch = statistics.median(times["clickhouse"][name])
            ours = statistics.median(times["gateway"][name])
            print(f"{name}: clickhouse {ch:.1f} ms, gateway {ours:.1f} ms, {ours / ch:.2f}")


if __name__ == "__main__":
    main()
