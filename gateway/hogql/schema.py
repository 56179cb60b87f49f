"""The tables HogQL may read. Each is stored with a `project_id` column that queries never see:
the printer renders every table reference as a subquery filtered on the caller's project.

Lazy joins (`events.person.*`, `events.pdi.*`, `events.session.*`) are joined into that
subquery only when a query names them, as PostHog does; `sessions` is derived from events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

DATETIME: Final = "DateTime64(6, 'UTC')"


@dataclass(frozen=True, kw_only=True)
class Table:
    """A HogQL table the resolver knows: its stored columns and types, virtual fields, lazy
    joins and computed fields."""

    name: str
    # column → ClickHouse type name (what `types` reports)
    columns: dict[str, str]
    json_columns: frozenset[str] = frozenset()
    # HogQL field → (json column, key): `$session_id` is `properties.$session_id`
    virtual: dict[str, tuple[str, str]] = field(default_factory=dict)
    # lazy join name → the joined table (its fields become `name.field`)
    lazy: dict[str, Table] = field(default_factory=dict)
    # columns computed through a lazy join (`events.person_id` comes through `pdi`)
    computed: dict[str, str] = field(default_factory=dict)
    # stored in DuckDB under this name; None for derived tables (sessions)
    stored: bool = True

    def column_type(self, name: str) -> str:
        """The HogQL type of column `name`, or None when the table has no such stored column."""
        return self.columns[name]


PERSONS: Final = Table(
    name="persons",
    columns={
        "id": "UUID",
        "created_at": DATETIME,
        "properties": "String",
        "is_identified": "Bool",
    },
    json_columns=frozenset({"properties"}),
)
PERSON_DISTINCT_IDS: Final = Table(
    name="person_distinct_ids",
    columns={"distinct_id": "String", "person_id": "UUID"},
    lazy={"person": PERSONS},
)
SESSIONS: Final = Table(
    name="sessions",
    columns={
        "session_id": "String",
        "id": "String",
        "distinct_id": "String",
        "$start_timestamp": DATETIME,
        "$end_timestamp": DATETIME,
        "$session_duration": "Int64",
        "duration": "Int64",
        "$is_bounce": "Int64",
        "$entry_current_url": "String",
        "$end_current_url": "String",
        "$exit_current_url": "String",
        "$pageview_count": "Int64",
        "$autocapture_count": "Int64",
        "$event_count": "Int64",
    },
    stored=False,
)
GROUPS: Final = Table(
    name="groups",
    columns={
        "index": "Int64",
        "key": "String",
        "created_at": DATETIME,
        "updated_at": DATETIME,
        "properties": "String",
    },
    json_columns=frozenset({"properties"}),
)
EVENTS: Final = Table(
    name="events",
    columns={
        "uuid": "UUID",
        "event": "String",
        "properties": "String",
        "timestamp": DATETIME,
        "distinct_id": "String",
        "elements_chain": "String",
        "created_at": DATETIME,
        "person_id": "UUID",
    },
    json_columns=frozenset({"properties"}),
    virtual={
        "$session_id": ("properties", "$session_id"),
        "$window_id": ("properties", "$window_id"),
        # set by capture from `$groups` (gateway.ingestion), as PostHog's columns are
        **{f"$group_{i}": ("properties", f"$group_{i}") for i in range(5)},
    },
    lazy={
        "pdi": Table(name="pdi", columns={"distinct_id": "String", "person_id": "UUID"}),
        "person": PERSONS,
        "session": SESSIONS,
        **{f"group_{i}": GROUPS for i in range(5)},
    },
    computed={"person_id": "pdi"},
)
TABLES: Final = {t.name: t for t in (EVENTS, PERSONS, PERSON_DISTINCT_IDS, SESSIONS, GROUPS)}
RESERVED: Final = frozenset({"team_id", "project_id"})
