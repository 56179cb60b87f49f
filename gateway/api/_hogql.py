"""Running a member's HogQL: the one path `hogql/execute` and kernels' `hogql_execute()` share.

Placeholder values are checked, the text is translated by the app's translator (text limits,
worker processes, time budget) for the project and its timezone, and the result is read by the
analytics store under its row, byte and time caps. Errors are the error tree's (4xx).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.errors import InvalidRequest
from gateway.hogql import Translation, placeholder_values
from gateway.keys import TRANSLATOR_KEY


def checked_values(raw: Any, *, attr: str) -> dict[str, Any]:
    """Placeholder values: strings, numbers, booleans, nulls or lists of them. Raises
    InvalidRequest naming `attr`."""
    values = placeholder_values(raw)
    if values is None:
        msg = "values must be an object of strings, numbers, booleans, nulls or lists of them."
        raise InvalidRequest(msg, attr=attr)
    return values


async def translate_for(
    app: web.Application, *, query: str, values: dict[str, Any], project_id: int, timezone: str
) -> Translation:
    """`query` as DuckDB SQL confined to `project_id`. Raises HogQLError (400)."""
    return await app[TRANSLATOR_KEY].translate(
        query, project_id=project_id, values=values, timezone=timezone
    )
