"""The tables HogQL may read. Each is stored with a `project_id` column that queries never see:
the printer renders every table reference as a subquery filtered on the caller's project."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


@dataclass(frozen=True, kw_only=True)
class Table:
    name: str
    # column → ClickHouse type name (what `types` reports)
    columns: dict[str, str]
    json_columns: frozenset[str] = frozenset()
    # HogQL field → (json column, key): `$session_id` is `properties.$session_id`
    virtual: dict[str, tuple[str, str]] = field(default_factory=dict)


EVENTS: Final = Table(
    name="events",
    columns={
        "uuid": "UUID",
        "event": "String",
        "properties": "String",
        "timestamp": "DateTime64(6, 'UTC')",
        "distinct_id": "String",
        "elements_chain": "String",
        "created_at": "DateTime64(6, 'UTC')",
        "person_id": "UUID",
    },
    json_columns=frozenset({"properties"}),
    virtual={
        "$session_id": ("properties", "$session_id"),
        "$window_id": ("properties", "$window_id"),
    },
)
PERSONS: Final = Table(
    name="persons",
    columns={
        "id": "UUID",
        "created_at": "DateTime64(6, 'UTC')",
        "properties": "String",
        "is_identified": "Bool",
    },
    json_columns=frozenset({"properties"}),
)
TABLES: Final = {t.name: t for t in (EVENTS, PERSONS)}
RESERVED: Final = frozenset({"team_id", "project_id"})
