"""The analytics store (DuckDB) and the one place HogQL translations run. The only hogql module
that imports duckdb.

Defence in depth behind the allow-list: the connection refuses external access (files, URLs),
never installs or loads extensions, and its configuration is locked; each query runs on its own
cursor in a worker thread, is interrupted at its timeout, and returns at most a row cap and at
most `max_result_bytes`: results are read in batches, counted as they come, and reading stops
(HogQLResultTooLarge) as soon as the count passes the cap, so a wide result never sits whole in
the gateway's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc
import pytz

from gateway.analytics.layout import EventsLayout
from gateway.analytics.priority import connect, lower_priority
from gateway.errors import ServiceUnavailable
from gateway.fairness import ProjectGate
from gateway.hogql import Translation
from gateway.hogql.errors import HogQLQueryError, HogQLResultTooLarge
from gateway.hogql.types import type_name

# `events` is a view over a clustered table and a write buffer: gateway/analytics/layout.py
SCHEMA: Final = (
    """CREATE TABLE IF NOT EXISTS persons (
        project_id BIGINT NOT NULL, id UUID NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        properties JSON, is_identified BOOLEAN NOT NULL DEFAULT FALSE)""",
    """CREATE TABLE IF NOT EXISTS person_distinct_ids (
        project_id BIGINT NOT NULL, distinct_id VARCHAR NOT NULL, person_id UUID NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS groups (
        project_id BIGINT NOT NULL, "index" BIGINT NOT NULL, key VARCHAR NOT NULL,
        created_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ NOT NULL, properties JSON)""",
    # capture's group types: `$groups` keys → the index of `$group_0`…`$group_4`
    """CREATE TABLE IF NOT EXISTS group_type_mapping (
        project_id BIGINT NOT NULL, group_type VARCHAR NOT NULL,
        group_type_index BIGINT NOT NULL)""",
)
HARDENING: Final = (
    "SET TimeZone = 'UTC'",
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET lock_configuration = true",
)
# DuckDB result type → ClickHouse type name (what PostHog reports in `types`)
_TYPES: Final = {
    "BIGINT": "Int64",
    "INTEGER": "Int64",
    "HUGEINT": "Int64",
    "SMALLINT": "Int64",
    "TINYINT": "Int64",
    "UBIGINT": "UInt64",
    "DOUBLE": "Float64",
    "FLOAT": "Float64",
    "VARCHAR": "String",
    "JSON": "String",
    "BOOLEAN": "Bool",
    "DATE": "Date",
    "UUID": "UUID",
    "TIMESTAMP WITH TIME ZONE": "DateTime64(6, 'UTC')",
    "TIMESTAMP": "DateTime64(6, 'UTC')",
}
# Rows per Arrow batch read from DuckDB: the cap is checked after each batch.
_ARROW_BATCH_ROWS: Final = 1024
# Rows per fetch on the JSON path: the first fetch, then sized to about _FETCH_BYTES each.
_FIRST_FETCH_ROWS: Final = 64
_FETCH_BYTES: Final = 4 * 1024 * 1024


def _type_arguments(inner: str) -> list[str]:
    """`INTEGER, MAP(INTEGER, VARCHAR)` → its top-level parts."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    return [*parts, inner[start:].strip()]


def clickhouse_type(duckdb_type: str, timezone: str = "UTC") -> str:
    """The ClickHouse type name PostHog reports (a HogQL response's `types`) for a DuckDB column
    type: arrays element-wise, DECIMAL as Float64, timestamps as `DateTime64(6, '<timezone>')`,
    tuples and maps element-wise, anything unknown as String (`gateway.hogql.types.type_name`
    adds what the resolver knows better: UInt64 counts, Nullable).
    """
    if duckdb_type.endswith("[]"):
        return f"Array({clickhouse_type(duckdb_type[:-2], timezone)})"
    for duck, click in (("TUPLE(", "Tuple"), ("MAP(", "Map")):
        if duckdb_type.startswith(duck) and duckdb_type.endswith(")"):
            parts = _type_arguments(duckdb_type[len(duck) : -1])
            return f"{click}({', '.join(clickhouse_type(p, timezone) for p in parts)})"
    if duckdb_type.startswith("DECIMAL"):
        return "Float64"
    if duckdb_type.startswith("TIMESTAMP"):
        return f"DateTime64(6, '{timezone}')"
    return _TYPES.get(duckdb_type, "String")


def _cell(value: Any, zone: dt.tzinfo = dt.UTC) -> Any:
    """A DuckDB value as JSON: datetimes in ISO 8601 in `zone` (a naive one is a time in
    `zone`), `Z` for a zero offset, as PostHog's API renders them."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = _localize(value, zone)
        return value.astimezone(zone).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, list | tuple):  # arrays, and tuples (rendered as lists)
        return [_cell(v, zone) for v in value]
    if isinstance(value, dict):  # maps
        return {k: _cell(v, zone) for k, v in value.items()}
    return value


def _json_size(value: Any) -> int:
    """About how many bytes `value` (a converted cell) takes as JSON: strings by length,
    containers by their items, anything else 8."""
    if isinstance(value, str | bytes):
        return len(value) + 2
    if isinstance(value, list | tuple):
        return 2 + sum(_json_size(v) + 1 for v in value)
    if isinstance(value, dict):
        return 2 + sum(len(str(k)) + 4 + _json_size(v) for k, v in value.items())
    return 8


def _too_large(cap: int) -> HogQLResultTooLarge:
    msg = (
        f"The query's result is over {cap:,} bytes (hogql_max_result_bytes); select fewer"
        " rows or columns, or aggregate."
    )
    return HogQLResultTooLarge(msg)


def _localize(value: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    localize = getattr(zone, "localize", None)  # pytz zones: the right offset at DST edges
    return localize(value) if localize is not None else value.replace(tzinfo=zone)


def _zones(translation: Translation, width: int) -> list[str]:
    given = translation.column_timezones
    return [
        given[i] or translation.timezone if i < len(given) else translation.timezone
        for i in range(width)
    ]


def _types(translation: Translation, duckdb_types: list[str], zones: list[str]) -> list[str]:
    """ClickHouse type names of the result columns: what the resolver knows (`count()` is
    UInt64, a property Nullable(String)), else DuckDB's result type mapped."""
    known = translation.column_types
    return [
        type_name(*(known[i] if i < len(known) else (None, False)), clickhouse_type(t, zone))
        for i, (t, zone) in enumerate(zip(duckdb_types, zones, strict=True))
    ]


@dataclass(frozen=True, kw_only=True)
class QueryResult:
    """A HogQL query's result as `AnalyticsStore.run` returns it: column names, ClickHouse type
    names and JSON-ready rows; `has_more` when rows beyond the row cap were left out.
    """

    columns: list[str]
    types: list[str]
    rows: list[list[Any]]
    has_more: bool


def _zoned(table: pa.Table, translation: Translation) -> pa.Table:
    """Arrow results carry each datetime column's zone: naive local times are labelled with
    it (the same instants as the JSON), instants are shown in it."""
    zones = _zones(translation, table.num_columns)
    columns = []
    for column, zone in zip(table.columns, zones, strict=True):
        zoned = column
        if pa.types.is_timestamp(column.type) and column.type.tz is None:
            zoned = pc.assume_timezone(column, zone, ambiguous="earliest", nonexistent="earliest")
        elif pa.types.is_timestamp(column.type):
            zoned = column.cast(pa.timestamp(column.type.unit, tz=zone))
        columns.append(zoned)
    return pa.table(columns, names=table.column_names)


_QUEUE_WAIT_S: Final = 10.0  # a query waits at most this long for one of the store's threads


class AnalyticsStore:
    """One DuckDB database (a file in the data directory, or in memory for tests)."""

    def __init__(
        self,
        path: Path | None,
        *,
        timeout_s: float = 30.0,
        max_rows: int = 50_000,
        memory_mb: int = 4096,
        max_result_bytes: int = 64 * 1024 * 1024,
        materialized: Sequence[str] | None = None,
        max_queries: int = 4,
        queries_per_project: int = 2,
    ) -> None:
        """`materialized`: events properties kept as columns (None: those the file has).
        `max_queries` run at once on the store's own threads (never asyncio's default pool,
        which capture and share logins use); one project may hold `queries_per_project`."""
        try:
            self._conn = connect(path)
        except duckdb.IOException as err:
            msg = f"The analytics store {path} is in use by another process ({err})."
            raise RuntimeError(msg) from err
        for statement in SCHEMA:
            self._conn.execute(statement)
        self.layout = EventsLayout(self._conn, materialized)
        # DuckDB shares one database instance per file within a process: a second store on the
        # same file finds it already hardened and locked; it checks rather than re-applies.
        locked = self._conn.execute("SELECT current_setting('lock_configuration')").fetchone()
        if not (locked and locked[0]):
            self._conn.execute(f"SET memory_limit = '{int(memory_mb)}MiB'")
            for statement in HARDENING:
                self._conn.execute(statement)
        external = self._conn.execute("SELECT current_setting('enable_external_access')").fetchone()
        assert external is not None and external[0] is False, "analytics store not hardened"
        self._timeout = timeout_s
        self._max_rows = max_rows
        self._ingest_lock = threading.Lock()  # capture batches: read persons, then write
        self._max_bytes = max_result_bytes
        self._executor = ThreadPoolExecutor(
            max_workers=max_queries, thread_name_prefix="hogql", initializer=lower_priority
        )
        self._slots = asyncio.Semaphore(max_queries)
        self._projects = ProjectGate(
            per_project=queries_per_project,
            what="queries",
            setting="hogql_queries_per_project",
            wait_s=_QUEUE_WAIT_S,
        )

    @property
    def materialized(self) -> tuple[str, ...]:
        """The events properties stored as columns: translate with these (`materialized=`)."""
        return self.layout.materialized

    def close(self, *, flush: bool = True) -> None:
        """Close the DuckDB connection; called once, at app cleanup (`analytics_ctx`) or when a CLI
        loader is done. The background layout work stops first; with `flush`, what is buffered
        is clustered before (a bulk load ends sorted).
        """
        self.layout.stop()
        if flush:
            self.layout.flush()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._conn.close()

    def _write(self, project_id: int, incoming: dict[str, pa.Table], statements: list[str]) -> None:
        """Run `statements` (`$1` is the project) in one transaction on a cursor where the
        `incoming` Arrow tables are registered by name: all of a batch lands, or none."""
        cursor = self._conn.cursor()
        try:
            for name, table in incoming.items():
                cursor.register(name, table)
            cursor.execute("BEGIN")
            try:
                for statement in statements:
                    cursor.execute(statement, [project_id])
                cursor.execute("COMMIT")
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
        finally:
            cursor.close()

    def insert_events(self, project_id: int, events: Iterable[dict[str, Any]]) -> int:
        """Append events (PostHog's export shape, parsed) as one columnar batch."""
        rows = list(events)
        if not rows:
            return 0
        batch = pa.table(
            {
                "uuid": [str(e["uuid"]) for e in rows],
                "event": [e["event"] for e in rows],
                "properties": [e["properties"] for e in rows],
                "timestamp": pa.array([e["timestamp"] for e in rows], pa.timestamp("us", tz="UTC")),
                "distinct_id": [e["distinct_id"] for e in rows],
                "elements_chain": pa.array([e.get("elements_chain") for e in rows], pa.string()),
                "created_at": pa.array(
                    [e.get("created_at") or e["timestamp"] for e in rows],
                    pa.timestamp("us", tz="UTC"),
                ),
                "person_id": pa.array([e.get("person_id") for e in rows], pa.string()),
            }
        )
        self._write(
            project_id,
            {"incoming_events": batch},
            [
                "INSERT INTO events_buffer SELECT $1, CAST(uuid AS UUID), event, properties,"
                " timestamp, distinct_id, elements_chain, created_at, CAST(person_id AS UUID)"
                " FROM incoming_events"
            ],
        )
        return len(rows)

    def insert_persons(self, project_id: int, persons: Iterable[dict[str, Any]]) -> int:
        """Upsert persons (PostHog's export shape, parsed) and their distinct ids: a person
        loaded again replaces the old row; a distinct id moves to the person loaded last."""
        rows = list(persons)
        if not rows:
            return 0
        people = pa.table(
            {
                "id": [str(p["id"]) for p in rows],
                "created_at": pa.array(
                    [p["created_at"] for p in rows], pa.timestamp("us", tz="UTC")
                ),
                "properties": [p["properties"] for p in rows],
                "is_identified": pa.array([bool(p["is_identified"]) for p in rows], pa.bool_()),
                "ord": pa.array(range(len(rows)), pa.int64()),
            }
        )
        links = pa.table(
            {
                "distinct_id": [d for p in rows for d in p["distinct_ids"]],
                "person_id": [str(p["id"]) for p in rows for _ in p["distinct_ids"]],
                "ord": pa.array(range(sum(len(p["distinct_ids"]) for p in rows)), pa.int64()),
            }
        )
        self._write(
            project_id,
            {"incoming_persons": people, "incoming_links": links},
            [
                "DELETE FROM persons WHERE project_id = $1"
                " AND id IN (SELECT CAST(id AS UUID) FROM incoming_persons)",
                # one row per person: within a batch, the one listed last wins
                "INSERT INTO persons SELECT $1, CAST(id AS UUID), arg_max(created_at, ord),"
                " arg_max(properties, ord), arg_max(is_identified, ord) FROM incoming_persons"
                " GROUP BY id",
                "DELETE FROM person_distinct_ids WHERE project_id = $1"
                " AND distinct_id IN (SELECT distinct_id FROM incoming_links)",
                # one row per distinct id: within a batch, the person listed last wins
                "INSERT INTO person_distinct_ids SELECT $1, distinct_id,"
                " CAST(arg_max(person_id, ord) AS UUID) FROM incoming_links GROUP BY distinct_id",
            ],
        )
        return len(rows)

    def insert_groups(self, project_id: int, groups: Iterable[dict[str, Any]]) -> int:
        """Upsert groups by (index, key): a group loaded again replaces the old row."""
        rows = list(groups)
        if not rows:
            return 0
        batch = pa.table(
            {
                "index": pa.array([g["index"] for g in rows], pa.int64()),
                "key": [g["key"] for g in rows],
                "created_at": pa.array(
                    [g["created_at"] for g in rows], pa.timestamp("us", tz="UTC")
                ),
                "updated_at": pa.array(
                    [g["updated_at"] for g in rows], pa.timestamp("us", tz="UTC")
                ),
                "properties": [g["properties"] for g in rows],
                "ord": pa.array(range(len(rows)), pa.int64()),
            }
        )
        self._write(
            project_id,
            {"incoming_groups": batch},
            [
                'DELETE FROM groups WHERE project_id = $1 AND ("index", key) IN'
                ' (SELECT ("index", key) FROM incoming_groups)',
                'INSERT INTO groups SELECT $1, "index", key, arg_max(created_at, ord),'
                " arg_max(updated_at, ord), arg_max(properties, ord) FROM incoming_groups"
                ' GROUP BY "index", key',
            ],
        )
        return len(rows)

    def ingest(self, project_id: int, events: list[Any], *, now: dt.datetime) -> int:
        """Captured events (`gateway.ingestion.CapturedEvent`) with their persons and groups,
        one batch in one transaction, one batch at a time. Called from a worker thread."""
        from gateway.ingestion.store import ingest_batch  # noqa: PLC0415 - capture's code, loaded on first use

        with self._ingest_lock:
            cursor = self._conn.cursor()
            try:
                return ingest_batch(cursor, project_id, events, now=now)
            finally:
                cursor.close()

    @contextlib.contextmanager
    def _query_errors(self, cursor: duckdb.DuckDBPyConnection) -> Iterator[None]:
        """DuckDB's refusals as HogQL errors (no internals), and the cursor closed after."""
        try:
            yield
        except duckdb.InterruptException as err:
            msg = f"The query took longer than {self._timeout:g} s and was stopped."
            raise HogQLQueryError(msg) from err
        except duckdb.Error as err:
            # Translation errors are caught before; what DuckDB still refuses (types, overflow)
            # is the query's fault, reported without internals.
            msg = f"The query could not be run: {str(err).splitlines()[0][:300]}"
            raise HogQLQueryError(msg) from err
        finally:
            cursor.close()

    def _rows(self, translation: Translation, cursor: duckdb.DuckDBPyConnection) -> QueryResult:
        """Fetch in rounds of about _FETCH_BYTES, converting as it goes: at most one round's raw
        rows exist beside the converted ones, and reading stops once they pass the byte cap."""
        limit = min(translation.row_cap, self._max_rows)
        rows: list[list[Any]] = []
        size = 0
        more = False
        with self._query_errors(cursor):
            cursor.execute(translation.sql, translation.params)
            description = cursor.description or []
            names = _zones(translation, len(description))
            zones = [pytz.timezone(name) for name in names]
            types = _types(translation, [str(d[1]) for d in description], names)
            # ClickHouse's predicates are UInt8: 1 and 0, not true and false
            numeric = [t.removeprefix("Nullable(").startswith("UInt8") for t in types]
            step = _FIRST_FETCH_ROWS
            while True:
                want = min(step, limit + 1 - len(rows))
                fetched = cursor.fetchmany(want)
                for row in fetched:
                    if len(rows) == limit:
                        more = True
                        break
                    cells = [
                        int(v) if flag and isinstance(v, bool) else _cell(v, zone)
                        for v, zone, flag in zip(row, zones, numeric, strict=True)
                    ]
                    size += sum(_json_size(c) + 1 for c in cells)
                    if size > self._max_bytes:
                        raise _too_large(self._max_bytes)
                    rows.append(cells)
                if more or len(fetched) < want:
                    break
                step = max(1, min(10_000, _FETCH_BYTES * len(rows) // max(size, 1)))
        return QueryResult(
            columns=[d[0] for d in description],
            types=types,
            rows=rows,
            has_more=more,
        )

    def _arrow_table(self, translation: Translation, cursor: duckdb.DuckDBPyConnection) -> pa.Table:
        """The result as an Arrow table of at most the row cap, read in batches and refused
        (HogQLResultTooLarge) once their bytes pass the cap; datetimes zoned."""
        limit = min(translation.row_cap, self._max_rows)
        batches: list[pa.RecordBatch] = []
        rows = size = 0
        with self._query_errors(cursor):
            relation = cursor.sql(translation.sql, params=translation.params)
            if relation is None:
                return pa.table({})
            reader = relation.to_arrow_reader(_ARROW_BATCH_ROWS)
            try:
                while rows < limit:
                    try:
                        batch = reader.read_next_batch().slice(0, limit - rows)
                    except StopIteration:
                        break
                    size += batch.nbytes
                    if size > self._max_bytes:
                        raise _too_large(self._max_bytes)
                    batches.append(batch)
                    rows += batch.num_rows
            finally:
                reader.close()
            table = pa.Table.from_batches(batches, schema=reader.schema)
        return _zoned(table, translation)

    def _arrow_file(
        self,
        translation: Translation,
        cursor: duckdb.DuckDBPyConnection,
        *,
        path: Path,
        uid: int | None,
    ) -> int:
        table = self._arrow_table(translation, cursor)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        if uid is not None and os.geteuid() == 0:
            os.chown(path.parent, uid, uid)
            os.chown(path, uid, uid)
        return int(table.num_rows)

    async def _in_thread[T](
        self, work: Callable[[duckdb.DuckDBPyConnection], T], project_id: int | None
    ) -> T:
        """Run `work` on a fresh cursor on one of the store's threads; interrupt it at the
        timeout. TooManyRequests (429) when `project_id`'s share of the threads stays busy
        (fairness.py), ServiceUnavailable (503) when no thread frees up within `_QUEUE_WAIT_S`."""
        if project_id is None:
            return await self._on_a_thread(work)
        async with self._projects.turn(project_id):
            return await self._on_a_thread(work)

    async def _on_a_thread[T](self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        try:
            async with asyncio.timeout(_QUEUE_WAIT_S):
                await self._slots.acquire()
        except TimeoutError:
            msg = "The analytics store is busy with other queries; retry shortly."
            raise ServiceUnavailable(msg, headers={"Retry-After": "5"}) from None
        try:
            return await self._run_on_thread(work)
        finally:
            self._slots.release()

    async def _run_on_thread[T](self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`work` on one of the store's threads, interrupted at the timeout. A caller that
        is cancelled (a kernel stopped mid-query) interrupts it at once and returns only when
        the thread is free again, so its slot is never given back while the query runs."""
        loop = asyncio.get_running_loop()
        cursor = self._conn.cursor()  # its own connection: the timer interrupts only this query
        timer = loop.call_later(self._timeout, cursor.interrupt)
        running = loop.run_in_executor(self._executor, work, cursor)
        try:
            return await asyncio.shield(running)
        except asyncio.CancelledError:
            cursor.interrupt()  # (a query not started yet still has the timer)
            await asyncio.wait({running})
            raise
        finally:
            timer.cancel()
            if running.done() and not running.cancelled():
                running.exception()  # retrieved: the caller was told why, or has gone

    async def run(self, translation: Translation, *, project_id: int | None = None) -> QueryResult:
        """Run `translation`; rows as JSON-ready values. `project_id`: whose query (its share
        of the store's threads is capped)."""
        return await self._in_thread(functools.partial(self._rows, translation), project_id)

    def _arrow_bytes(
        self, translation: Translation, cursor: duckdb.DuckDBPyConnection
    ) -> tuple[bytes, int]:
        table = self._arrow_table(translation, cursor)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes(), int(table.num_rows)

    async def run_arrow(
        self, translation: Translation, *, project_id: int | None = None
    ) -> tuple[bytes, int]:
        """Run `translation`; the rows as Arrow IPC stream bytes, and their count."""
        return await self._in_thread(functools.partial(self._arrow_bytes, translation), project_id)

    async def run_to_file(
        self,
        translation: Translation,
        path: Path,
        *,
        uid: int | None,
        project_id: int | None = None,
    ) -> int:
        """Run `translation` and write the rows to `path` as an Arrow IPC stream."""
        return await self._in_thread(
            functools.partial(self._arrow_file, translation, path=path, uid=uid), project_id
        )
