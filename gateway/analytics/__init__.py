"""The analytics store: DuckDB tables of events, persons and groups, loaders that fill them, and
the one place HogQL translations run (row, byte, memory and time caps)."""

from __future__ import annotations

from gateway.analytics.store import AnalyticsStore, QueryResult

__all__ = ["AnalyticsStore", "QueryResult"]
