"""Writing the collab log: one entry, the REST-edit entry's data, and trimming."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from gateway.clock import isoformat
from gateway.store.records import CollabEntry, User, user_name
from gateway.store.sqlite.connection import dump_json


def insert_entry(
    conn: sqlite3.Connection,
    notebook_id: str,
    *,
    version: int,
    sub: int,
    client_id: str | None,
    user: User | None,
    data: dict[str, Any],
    now: datetime,
) -> CollabEntry:
    """Insert one collab log row and return it as a CollabEntry. Called inside the caller's
    transaction by `collab_save` (steps) and `update_notebook` (a REST edit's update entry).
    """
    conn.execute(
        "INSERT INTO collab_log (notebook_id, version, sub, client_id, user_id, data, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            notebook_id,
            version,
            sub,
            client_id,
            None if user is None else user.id,
            dump_json(data),
            isoformat(now),
        ),
    )
    return CollabEntry(version=version, sub=sub, notebook_id=notebook_id, data=data)


def update_entry_data(user: User | None, version: int) -> dict[str, Any]:
    """What live clients get for a REST edit: reload, the document was replaced."""
    return {
        "type": "update",
        "version": version,
        "client_id": None,
        "user_id": None if user is None else user.id,
        "user_name": user_name(user),
    }


def trim_log(conn: sqlite3.Connection, notebook_id: str, *, top: int, keep: int) -> None:
    """Delete the notebook's entries at versions up to `top - keep`, so its last `keep` versions
    remain; called in the transaction that appended.
    """
    conn.execute(
        "DELETE FROM collab_log WHERE notebook_id = ? AND version <= ?", (notebook_id, top - keep)
    )
