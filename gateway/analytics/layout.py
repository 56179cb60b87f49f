"""The physical layout of `events` (issue #16): clustered like ClickHouse's primary key, with hot
properties as real columns.

Three objects:

- `events_main`: the clustered part. Rows sorted by (project_id, UTC day, event, timestamp), so
  DuckDB's zone maps (min/max per row group and column segment) skip row groups for project,
  time-range and event filters, as ClickHouse's sort key skips granules. It also holds one
  VARCHAR column per materialized property (`"mat_$browser"`), filled with exactly what
  `json_extract_string(properties, '$."$browser"')` returns (NULL for a missing key or JSON
  null, `""` kept, numbers and objects as JSON text): HogQL's own property semantics; and
  `"$distinct_id_hash"`, DuckDB's 64-bit `hash(distinct_id)`, which `uniq(distinct_id)` counts
  (docs/hogql.md, Storage layout). `events_layout.hash_probe` records the hash of a fixed value
  when the column was filled: a DuckDB whose `hash()` differs refills it at start-up, so the
  stored hashes always equal the ones computed for buffered rows.
- `events_buffer`: where every write lands (capture batches, bulk loads, `insert_events`), as
  they come, in the base columns only; writers never touch `events_main`.
- `events`: a view, `events_main UNION ALL events_buffer` (the buffer's materialized columns
  and distinct id hashes computed on the fly). Everything reads `events`; the HogQL printer
  reads the `mat_` columns instead of parsing JSON when a property is materialized
  (`gateway/hogql/tables.py`).

Background work (`EventsLayout.maintain`, a thread of the store, never on a request path):
- **merge**: in one transaction, the buffer's rows visible to it are appended to `events_main`
  sorted by the cluster key, with their materialized columns, and deleted from the buffer.
  Rows a writer commits meanwhile are not visible to it and stay in the buffer for the next
  merge; a crash before COMMIT leaves both tables as they were (DuckDB's WAL), after it both
  changed: no row is lost or doubled. Readers see the snapshot before or after, never between.
- **recluster**: merged runs are each sorted but interleave; once the rows merged since the
  last full sort pass `recluster_fraction` of `events_main` (and at least `recluster_min_rows`),
  `events_main` is rewritten whole in cluster order in one transaction (a new table, swapped in
  by name). Like ClickHouse's part merges, it costs a rewrite now and then.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Final

import duckdb

from gateway.hogql.binding import json_path, quote_identifier
from gateway.hogql.tables import DISTINCT_ID_HASH, materialized_column

_log = logging.getLogger(__name__)

BASE_COLUMNS: Final = (
    ("project_id", "BIGINT NOT NULL"),
    ("uuid", "UUID NOT NULL"),
    ("event", "VARCHAR NOT NULL"),
    ("properties", "JSON"),
    ("timestamp", "TIMESTAMPTZ NOT NULL"),
    ("distinct_id", "VARCHAR NOT NULL"),
    ("elements_chain", "VARCHAR"),
    ("created_at", "TIMESTAMPTZ NOT NULL"),
    ("person_id", "UUID"),
)
# ClickHouse's events: ORDER BY (team_id, toDate(timestamp), event, …)
CLUSTER_KEY: Final = "project_id, CAST(timezone('UTC', timestamp) AS DATE), event, timestamp"
# a property name that may become a column: what SDKs and PostHog use for property keys
_PROPERTY: Final = re.compile(r"[A-Za-z0-9_$][A-Za-z0-9_$.\-]{0,63}")
_MAT_PREFIX: Final = "mat_"
_HASH: Final = quote_identifier(DISTINCT_ID_HASH)
_HASHED: Final = f"hash(distinct_id) AS {_HASH}"
# hash() of fixed values: if this DuckDB's differs from the one that filled `$distinct_id_hash`
# (another version), the column is refilled before anything reads it
_PROBE: Final = "hash('d', 'a distinct id longer than twelve bytes', 7)"


def check_properties(names: Sequence[str]) -> tuple[str, ...]:
    """Materializable property names, deduplicated in order; ValueError for any other."""
    out: list[str] = []
    for name in names:
        if not _PROPERTY.fullmatch(name):
            msg = f"{name!r} cannot be a materialized property (letters, digits, $ _ . -)"
            raise ValueError(msg)
        if name not in out:
            out.append(name)
    return tuple(out)


def _extract(key: str, column: str = "properties") -> str:
    path = json_path((key,)).replace("'", "''")
    return f"json_extract_string({column}, '{path}')"


def _count(cursor: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(cursor.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _base() -> str:
    return ", ".join(quote_identifier(c) for c, _ in BASE_COLUMNS)


class EventsLayout:
    """Creates, migrates and maintains the layout on one DuckDB database.

    `materialized` is the set of properties to keep as columns; None keeps what the database
    has (a loader must not drop the gateway's columns). Changes (set-up, merge, recluster) take
    the lock: one at a time. Writers to the buffer and readers do not wait for their work, only
    for DuckDB's own brief commit (and, after a large change, checkpoint) locks.
    """

    def __init__(
        self,
        conn: duckdb.DuckDBPyConnection,
        materialized: Sequence[str] | None = None,
        *,
        recluster_fraction: float = 0.25,
        recluster_min_rows: int = 1_000_000,
    ) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._fraction = recluster_fraction
        self._min_rows = recluster_min_rows
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        with self._lock:
            self.materialized = self._setup(
                None if materialized is None else check_properties(materialized)
            )

    # -- set-up ---------------------------------------------------------------------------------

    def _setup(self, wanted: tuple[str, ...] | None) -> tuple[str, ...]:
        cursor = self._conn.cursor()
        try:
            cursor.execute("BEGIN")
            kinds = dict(
                cursor.execute(
                    "SELECT table_name, table_type FROM information_schema.tables"
                    " WHERE table_schema = 'main' AND table_name LIKE 'events%'"
                ).fetchall()
            )
            columns = ", ".join(f"{quote_identifier(c)} {t}" for c, t in BASE_COLUMNS)
            if kinds.get("events") == "BASE TABLE":
                # a store from before the layout: its rows become the buffer, merged later
                cursor.execute("ALTER TABLE events RENAME TO events_buffer")
            else:
                cursor.execute(f"CREATE TABLE IF NOT EXISTS events_buffer ({columns})")
            cursor.execute(f"CREATE TABLE IF NOT EXISTS events_main ({columns})")
            cursor.execute("CREATE TABLE IF NOT EXISTS events_layout (merged_rows BIGINT NOT NULL)")
            if not cursor.execute("SELECT count(*) FROM events_layout").fetchall()[0][0]:
                cursor.execute("INSERT INTO events_layout VALUES (0)")
            self._hash_column(cursor)
            have = self._materialized_now(cursor)
            keep = have if wanted is None else wanted
            for key in keep:
                if key not in have:
                    self._add_column(cursor, key)
            for key in have:
                if key not in keep:
                    cursor.execute(
                        f"ALTER TABLE events_main DROP COLUMN"
                        f" {quote_identifier(materialized_column(key))}"
                    )
            self._create_view(cursor, keep)
            cursor.execute("COMMIT")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        finally:
            cursor.close()
        return keep

    @staticmethod
    def _hash_column(cursor: duckdb.DuckDBPyConnection) -> None:
        """`$distinct_id_hash` added (a file from before it) and filled, or refilled when this
        DuckDB's `hash()` is not the one that filled it."""
        cursor.execute("ALTER TABLE events_layout ADD COLUMN IF NOT EXISTS hash_probe UBIGINT")
        cursor.execute(f"ALTER TABLE events_main ADD COLUMN IF NOT EXISTS {_HASH} UBIGINT")
        stale = cursor.execute(
            f"SELECT hash_probe IS DISTINCT FROM {_PROBE} FROM events_layout"
        ).fetchall()[0][0]
        if stale:
            cursor.execute(f"UPDATE events_main SET {_HASH} = hash(distinct_id)")
            cursor.execute(f"UPDATE events_layout SET hash_probe = {_PROBE}")

    @staticmethod
    def _materialized_now(cursor: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
        rows = cursor.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'main'"
            " AND table_name = 'events_main' ORDER BY ordinal_position"
        ).fetchall()
        return tuple(
            str(r[0]).removeprefix(_MAT_PREFIX) for r in rows if str(r[0]).startswith(_MAT_PREFIX)
        )

    @staticmethod
    def _add_column(cursor: duckdb.DuckDBPyConnection, key: str) -> None:
        name = quote_identifier(materialized_column(key))
        cursor.execute(f"ALTER TABLE events_main ADD COLUMN {name} VARCHAR")
        cursor.execute(f"UPDATE events_main SET {name} = {_extract(key)}")

    @staticmethod
    def _create_view(cursor: duckdb.DuckDBPyConnection, keys: tuple[str, ...]) -> None:
        mats = [quote_identifier(materialized_column(k)) for k in keys]
        main = ", ".join([_base(), *mats, _HASH])
        computed = ", ".join(
            [
                _base(),
                *(f"{_extract(k)} AS {m}" for k, m in zip(keys, mats, strict=True)),
                _HASHED,
            ]
        )
        cursor.execute(
            f"CREATE OR REPLACE VIEW events AS SELECT {main} FROM events_main"
            f" UNION ALL SELECT {computed} FROM events_buffer"
        )

    # -- background work ------------------------------------------------------------------------

    def _columns(self) -> str:
        """`events_main`'s columns, named: INSERTs list them (the table's own order depends on
        when each was added)."""
        mats = (quote_identifier(materialized_column(k)) for k in self.materialized)
        return ", ".join([_base(), *mats, _HASH])

    def _select_sorted(self, source: str) -> str:
        """`source`'s rows in cluster order with their materialized columns (each document
        parsed once: the list form of json_extract_string gives the same values) and distinct
        id hashes, in `_columns()` order."""
        if not self.materialized:
            return f"SELECT {_base()}, {_HASHED} FROM {source} ORDER BY {CLUSTER_KEY}"
        paths = ", ".join("'" + json_path((k,)).replace("'", "''") + "'" for k in self.materialized)
        mats = [
            f"__mat[{i}] AS {quote_identifier(materialized_column(k))}"
            for i, k in enumerate(self.materialized, start=1)
        ]
        return (
            f"SELECT {', '.join([_base(), *mats, _HASHED])} FROM (SELECT *,"
            f" json_extract_string(properties, [{paths}]) AS __mat FROM {source})"
            f" ORDER BY {CLUSTER_KEY}"
        )

    def merge(self) -> int:
        """Move the buffer's committed rows into `events_main`, sorted, in one transaction;
        returns how many moved. Safe beside writers and readers (see the module docstring)."""
        with self._lock:
            cursor = self._conn.cursor()
            try:
                cursor.execute("BEGIN")
                try:
                    moved = _count(cursor, "events_buffer")
                    # a merge into an empty table is a full sort: no run to recluster
                    runs = moved if _count(cursor, "events_main") else 0
                    if moved:
                        cursor.execute(
                            f"INSERT INTO events_main ({self._columns()})"
                            f" {self._select_sorted('events_buffer')}"
                        )
                        # deletes exactly the rows this transaction saw (and copied)
                        cursor.execute("DELETE FROM events_buffer")
                        cursor.execute(
                            "UPDATE events_layout SET merged_rows = merged_rows + $1", [runs]
                        )
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            finally:
                cursor.close()
        return moved

    def _merged(self) -> tuple[int, int]:
        """(rows merged since the last full sort, rows of `events_main`)."""
        cursor = self._conn.cursor()
        try:
            merged = int(cursor.execute("SELECT merged_rows FROM events_layout").fetchall()[0][0])
            return merged, _count(cursor, "events_main")
        finally:
            cursor.close()

    def needs_recluster(self) -> bool:
        merged, total = self._merged()
        return merged >= self._min_rows and merged >= self._fraction * total

    def recluster(self) -> None:
        """Rewrite `events_main` whole in cluster order, in one transaction (a crash leaves
        the old table); readers keep the snapshot they started with."""
        with self._lock:
            cursor = self._conn.cursor()
            try:
                cursor.execute("BEGIN")
                try:
                    cursor.execute("DROP TABLE IF EXISTS events_main_sorting")
                    cursor.execute(
                        f"CREATE TABLE events_main_sorting AS SELECT {self._columns()}"
                        f" FROM events_main ORDER BY {CLUSTER_KEY}"
                    )
                    cursor.execute("DROP VIEW events")
                    cursor.execute("DROP TABLE events_main")
                    cursor.execute("ALTER TABLE events_main_sorting RENAME TO events_main")
                    self._create_view(cursor, self.materialized)
                    cursor.execute("UPDATE events_layout SET merged_rows = 0")
                    cursor.execute("COMMIT")
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
            finally:
                cursor.close()

    def maintain(self) -> None:
        """One round of background work: merge the buffer, then recluster if due."""
        self.merge()
        if self.needs_recluster():
            self.recluster()

    def flush(self) -> None:
        """Everything clustered now (bulk loads end with it): merge, then a full sort if any
        merged run is not yet part of it."""
        self.merge()
        if self._merged()[0]:
            self.recluster()

    def start(self, interval_s: float) -> None:
        """Run `maintain()` every `interval_s` in a daemon thread until `stop()`."""
        if self._thread is not None or interval_s <= 0:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                started = time.monotonic()
                try:
                    self.maintain()
                except Exception:  # a bug or a conflict must not end the thread silently
                    _log.exception("events layout maintenance failed; retried next round")
                _log.debug("events layout round took %.3f s", time.monotonic() - started)

        self._thread = threading.Thread(target=loop, name="events-layout", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
