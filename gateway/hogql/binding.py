"""How text reaches SQL: quoted identifiers, JSON paths and bound parameters. Nothing a user
writes is inlined: names are quoted here, values are bound through a ValueSink."""

from __future__ import annotations

from typing import Any


def quote_identifier(name: str) -> str:
    """A DuckDB identifier for any text (double quotes, inner quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def json_path(path: tuple[str | int, ...]) -> str:
    """A DuckDB JSON path for keys and 1-based indices (the resolver has checked the indices)."""
    parts = ["$"]
    for key in path:
        if isinstance(key, int):
            parts.append(f"[{key - 1}]")
        else:
            parts.append('."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "".join(parts)


class ValueSink:
    """Bound parameters, deduplicated by (type, value).

    The printer and the table subqueries add every literal here and print the returned `$n`;
    identical values share one parameter, so equal expressions stay equal for DuckDB's GROUP BY
    checks. `values` is the parameter list handed to DuckDB, in `$n` order.
    """

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[tuple[type, Any], int] = {}  # lists keyed as tuples

    def add(self, value: Any) -> str:
        key = (type(value), tuple(value) if isinstance(value, list) else value)
        if key not in self._index:
            self.values.append(value)
            self._index[key] = len(self.values)
        return f"${self._index[key]}"
