"""One capture batch into DuckDB: read what the batch's ids already have, process persons and
groups in memory (`persons.BatchProcessor`), write events, persons, distinct ids and groups in
one transaction. `AnalyticsStore.ingest` is the caller; it holds the store's ingest lock, so
batches never interleave their read and their write.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import duckdb
import orjson
import pyarrow as pa

from gateway.ingestion.payload import CapturedEvent
from gateway.ingestion.persons import (
    BatchProcessor,
    Changes,
    Group,
    Known,
    Person,
    distinct_ids_named,
    group_keys_named,
)

_TS: Final = pa.timestamp("us", tz="UTC")


def _json(value: dict[str, Any]) -> str:
    return orjson.dumps(value).decode()


def _load(cursor: duckdb.DuckDBPyConnection, project_id: int, events: list[CapturedEvent]) -> Known:
    known = Known()
    cursor.register("wanted_ids", pa.table({"distinct_id": sorted(distinct_ids_named(events))}))
    rows = cursor.execute(
        "SELECT d.distinct_id, CAST(d.person_id AS VARCHAR), p.created_at, p.properties,"
        " p.is_identified FROM person_distinct_ids AS d LEFT JOIN persons AS p"
        " ON p.project_id = d.project_id AND p.id = d.person_id"
        " WHERE d.project_id = $1 AND d.distinct_id IN (SELECT distinct_id FROM wanted_ids)",
        [project_id],
    ).fetchall()
    for distinct_id, person_id, created_at, properties, is_identified in rows:
        known.person_of[distinct_id] = person_id
        if created_at is not None and person_id not in known.persons:
            known.persons[person_id] = Person(
                id=person_id,
                created_at=created_at,
                properties=_dict(properties),
                is_identified=bool(is_identified),
            )
    for group_type, index in cursor.execute(
        "SELECT group_type, group_type_index FROM group_type_mapping WHERE project_id = $1",
        [project_id],
    ).fetchall():
        known.group_types[group_type] = int(index)
    wanted = {
        (known.group_types[t], k) for t, k in group_keys_named(events) if t in known.group_types
    }
    if wanted:
        cursor.register("wanted_groups", pa.table({"key": sorted({k for _, k in wanted})}))
        for index, key, created, updated, properties in cursor.execute(
            'SELECT "index", key, created_at, updated_at, properties FROM groups'
            " WHERE project_id = $1 AND key IN (SELECT key FROM wanted_groups)",
            [project_id],
        ).fetchall():
            if (index, key) in wanted:
                known.groups[(index, key)] = Group(
                    index=int(index),
                    key=key,
                    created_at=created,
                    updated_at=updated,
                    properties=_dict(properties),
                )
    return known


def _dict(text: Any) -> dict[str, Any]:
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _events_table(events: list[CapturedEvent]) -> pa.Table:
    return pa.table(
        {
            "uuid": [e.uuid for e in events],
            "event": [e.event for e in events],
            "properties": [_json(e.properties) for e in events],
            "timestamp": pa.array([e.timestamp for e in events], _TS),
            "distinct_id": [e.distinct_id for e in events],
            "elements_chain": pa.array([e.elements_chain for e in events], pa.string()),
            "person_id": pa.array([e.person_id for e in events], pa.string()),
        }
    )


def _statements(changes: Changes) -> tuple[dict[str, pa.Table], list[str]]:
    tables: dict[str, pa.Table] = {}
    statements = [
        "INSERT INTO events_buffer SELECT $1, CAST(uuid AS UUID), event, properties, timestamp,"
        " distinct_id, elements_chain, $2, CAST(person_id AS UUID) FROM incoming_events"
    ]
    persons = list(changes.persons.values())
    gone = sorted(changes.deleted | set(changes.persons))
    if gone:
        tables["gone_persons"] = pa.table({"id": gone})
        statements.append(
            "DELETE FROM persons WHERE project_id = $1"
            " AND id IN (SELECT CAST(id AS UUID) FROM gone_persons)"
        )
    if persons:
        tables["new_persons"] = pa.table(
            {
                "id": [p.id for p in persons],
                "created_at": pa.array([p.created_at for p in persons], _TS),
                "properties": [_json(p.properties) for p in persons],
                "is_identified": pa.array([p.is_identified for p in persons], pa.bool_()),
            }
        )
        statements.append(
            "INSERT INTO persons SELECT $1, CAST(id AS UUID), created_at, properties,"
            " is_identified FROM new_persons"
        )
    if changes.links:
        tables["new_links"] = pa.table(
            {"distinct_id": list(changes.links), "person_id": list(changes.links.values())}
        )
        statements += [
            "DELETE FROM person_distinct_ids WHERE project_id = $1"
            " AND distinct_id IN (SELECT distinct_id FROM new_links)",
            "INSERT INTO person_distinct_ids SELECT $1, distinct_id, CAST(person_id AS UUID)"
            " FROM new_links",
        ]
    if changes.group_types:
        tables["new_group_types"] = pa.table(
            {
                "group_type": list(changes.group_types),
                "idx": pa.array(list(changes.group_types.values()), pa.int64()),
            }
        )
        statements.append(
            "INSERT INTO group_type_mapping SELECT $1, group_type, idx FROM new_group_types"
        )
    if changes.groups:
        groups = list(changes.groups.values())
        tables["new_groups"] = pa.table(
            {
                "idx": pa.array([g.index for g in groups], pa.int64()),
                "key": [g.key for g in groups],
                "created_at": pa.array([g.created_at for g in groups], _TS),
                "updated_at": pa.array([g.updated_at for g in groups], _TS),
                "properties": [_json(g.properties) for g in groups],
            }
        )
        statements += [
            'DELETE FROM groups WHERE project_id = $1 AND ("index", key) IN'
            " (SELECT (idx, key) FROM new_groups)",
            "INSERT INTO groups SELECT $1, idx, key, created_at, updated_at, properties"
            " FROM new_groups",
        ]
    return tables, statements


def _unseen(
    cursor: duckdb.DuckDBPyConnection, project_id: int, events: list[CapturedEvent]
) -> list[CapturedEvent]:
    """`events` without those whose uuid the project already has (or that came earlier in the
    batch): an SDK retrying a request whose answer it never saw resends the same events with
    the same uuids, and PostHog's events table keeps one row per uuid. Only the batch's own
    time span is searched (the events table is clustered by day). Callers hold the store's
    ingest lock, so no other batch lands between this check and the insert."""
    cursor.register("batch_uuids", pa.table({"uuid": [e.uuid for e in events]}))
    try:
        seen = {
            str(row[0])
            for row in cursor.execute(
                "SELECT uuid FROM events WHERE project_id = $1 AND timestamp BETWEEN $2 AND $3"
                " AND uuid IN (SELECT CAST(uuid AS UUID) FROM batch_uuids)",
                [
                    project_id,
                    min(e.timestamp for e in events),
                    max(e.timestamp for e in events),
                ],
            ).fetchall()
        }
    finally:
        cursor.unregister("batch_uuids")
    fresh = []
    for event in events:
        key = event.uuid.lower()
        if key not in seen:
            seen.add(key)
            fresh.append(event)
    return fresh


def ingest_batch(
    cursor: duckdb.DuckDBPyConnection,
    project_id: int,
    events: list[CapturedEvent],
    *,
    now: dt.datetime,
) -> int:
    """Process and store `events` (in order) for `project_id`; all of it lands, or none.
    Events whose uuid the project already has are dropped (a retried request)."""
    if not events:
        return 0
    events = _unseen(cursor, project_id, events)
    if not events:
        return 0
    processor = BatchProcessor(project_id, _load(cursor, project_id, events))
    processor.process(events)
    changes = processor.changes
    tables, statements = _statements(changes)
    cursor.register("incoming_events", _events_table(events))
    for name, table in tables.items():
        cursor.register(name, table)
    cursor.execute("BEGIN")
    try:
        for statement in statements:
            params: list[Any] = [project_id, now] if "$2" in statement else [project_id]
            cursor.execute(statement, params)
        for other, into in changes.moves:
            # every distinct id of a merged-away person, loaded in this batch or not
            cursor.execute(
                "UPDATE person_distinct_ids SET person_id = CAST($2 AS UUID)"
                " WHERE project_id = $1 AND person_id = CAST($3 AS UUID)",
                [project_id, into, other],
            )
        cursor.execute("COMMIT")
    except BaseException:
        cursor.execute("ROLLBACK")
        raise
    return len(events)
