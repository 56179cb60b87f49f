"""The activity log: one entry per notebook or sharing change, written inside its transaction."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import datetime
from typing import Any

from gateway.clock import isoformat, parse_iso
from gateway.store.records import ActivityEntry, Page, User
from gateway.store.sqlite.connection import dump_json, load_json, user_from_row

SCOPE = "Notebook"


def insert_activity(
    conn: sqlite3.Connection,
    project_id: int,
    *,
    user: User | None,
    activity: str,
    item_id: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    """Append one `Notebook`-scoped activity row with a fresh uuid. The store's writes call it
    inside their own transaction, so the entry commits (or rolls back) with the change.
    """
    conn.execute(
        "INSERT INTO activity (id, project_id, user_id, activity, scope, item_id, detail,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(uuid.uuid4()),
            project_id,
            None if user is None else user.id,
            activity,
            SCOPE,
            item_id,
            dump_json(detail),
            isoformat(now),
        ),
    )


class ActivityMixin:
    """The `Store` methods that read and append the activity log."""

    _conn: sqlite3.Connection

    async def log_activity(
        self,
        project_id: int,
        *,
        user: User | None,
        activity: str,
        item_id: str,
        detail: dict[str, Any],
        now: datetime,
    ) -> None:
        """`Store.log_activity`: one INSERT through `insert_activity`, committed at once."""
        insert_activity(
            self._conn,
            project_id,
            user=user,
            activity=activity,
            item_id=item_id,
            detail=detail,
            now=now,
        )

    async def list_activity(
        self, project_id: int, *, item_id: str | None, limit: int, offset: int
    ) -> Page[ActivityEntry]:
        """`Store.list_activity`: newest first (insertion order), each entry's user joined in; one
        count query and one page query.
        """
        where = "a.project_id = ? AND a.scope = ?"
        params: list[Any] = [project_id, SCOPE]
        if item_id is not None:
            where += " AND a.item_id = ?"
            params.append(item_id)
        total = self._conn.execute(
            f"SELECT count(*) FROM activity a WHERE {where}", params
        ).fetchone()[0]
        rows = self._conn.execute(
            "SELECT a.*, u.id AS u_id, u.uuid AS u_uuid, u.distinct_id AS u_distinct_id,"
            " u.first_name AS u_first_name, u.last_name AS u_last_name, u.email AS u_email"
            f" FROM activity a LEFT JOIN users u ON u.id = a.user_id WHERE {where}"
            " ORDER BY a.seq DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        items = [
            ActivityEntry(
                id=row["id"],
                project_id=row["project_id"],
                user=user_from_row(row, "u_"),
                activity=row["activity"],
                scope=row["scope"],
                item_id=row["item_id"],
                detail=load_json(row["detail"]),
                created_at=parse_iso(row["created_at"]),
            )
            for row in rows
        ]
        return Page(total=total, items=items)
