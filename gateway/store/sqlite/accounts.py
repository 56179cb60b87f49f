"""Users, projects, memberships and personal API keys."""

from __future__ import annotations

import json
import secrets
import sqlite3
import uuid
from datetime import datetime

from gateway.clock import isoformat
from gateway.store.records import ApiKey, Project, User
from gateway.store.sqlite.connection import USER_COLUMNS, transaction, user_from_row


class AccountsMixin:
    """The `Store` methods for users, projects, memberships and personal API keys."""

    _conn: sqlite3.Connection

    async def ensure_user(self, email: str, *, first_name: str = "", now: datetime) -> User:
        """`Store.ensure_user` in one transaction: a new user gets a random uuid and distinct_id; an
        existing one is returned unchanged (`first_name` applies only on creation).
        """
        with transaction(self._conn) as conn:
            row = conn.execute(
                f"SELECT {USER_COLUMNS} FROM users WHERE email = ?", (email,)
            ).fetchone()
            if row is None:
                user_uuid = str(uuid.uuid4())
                conn.execute(
                    "INSERT INTO users (uuid, distinct_id, first_name, email, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (user_uuid, secrets.token_urlsafe(24), first_name, email, isoformat(now)),
                )
                row = conn.execute(
                    f"SELECT {USER_COLUMNS} FROM users WHERE email = ?", (email,)
                ).fetchone()
        user = user_from_row(row)
        assert user is not None
        return user

    async def ensure_project(self, project_id: int, *, now: datetime) -> Project:
        """`Store.ensure_project`: INSERT OR IGNORE, so an existing project keeps its name and
        token.
        """
        with transaction(self._conn) as conn:
            conn.execute(
                "INSERT OR IGNORE INTO projects (id, name, api_token, created_at)"
                " VALUES (?, ?, ?, ?)",
                (
                    project_id,
                    f"Project {project_id}",
                    "phc_" + secrets.token_urlsafe(32),
                    isoformat(now),
                ),
            )
            row = conn.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
        return Project(
            id=row["id"], name=row["name"], timezone=row["timezone"], api_token=row["api_token"]
        )

    async def add_member(self, user_id: int, project_id: int) -> None:
        """`Store.add_member`: one INSERT OR IGNORE, committed at once."""
        self._conn.execute(
            "INSERT OR IGNORE INTO memberships (user_id, project_id) VALUES (?, ?)",
            (user_id, project_id),
        )

    async def create_api_key(
        self,
        user_id: int,
        *,
        key_hash: str,
        mask: str,
        scopes: tuple[str, ...],
        label: str,
        now: datetime,
    ) -> ApiKey:
        """`Store.create_api_key`: one INSERT of the hash, mask, label and scopes, committed at
        once.
        """
        cur = self._conn.execute(
            "INSERT INTO api_keys (user_id, label, key_hash, mask, scopes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (user_id, label, key_hash, mask, json.dumps(list(scopes)), isoformat(now)),
        )
        assert cur.lastrowid is not None
        return ApiKey(id=cur.lastrowid, user_id=user_id, label=label, mask=mask, scopes=scopes)

    async def get_project(self, project_id: int) -> Project | None:
        """`Store.get_project`: one lookup by id."""
        row = self._conn.execute("SELECT * FROM projects WHERE id = ?", (project_id,)).fetchone()
        if row is None:
            return None
        return Project(
            id=row["id"], name=row["name"], timezone=row["timezone"], api_token=row["api_token"]
        )

    async def set_project_timezone(self, project_id: int, timezone: str) -> None:
        """`Store.set_project_timezone`: the value is not checked here, and a missing project is
        left as it is (no error).
        """
        with transaction(self._conn) as conn:
            conn.execute("UPDATE projects SET timezone = ? WHERE id = ?", (timezone, project_id))

    async def project_by_token(self, api_token: str) -> Project | None:
        """`Store.project_by_token`: one lookup by capture token, None when unknown."""
        row = self._conn.execute(
            "SELECT * FROM projects WHERE api_token = ?", (api_token,)
        ).fetchone()
        if row is None:
            return None
        return Project(
            id=row["id"], name=row["name"], timezone=row["timezone"], api_token=row["api_token"]
        )

    async def find_principal(
        self, key_hash: str, project_id: int | None
    ) -> tuple[ApiKey, User, Project | None] | None:
        """`Store.find_principal` in one query: the key joined to its user, left-joined to the
        user's membership of `project_id`, so the project is None for a non-member or a None
        `project_id`.
        """
        row = self._conn.execute(
            "SELECT k.id AS key_id, k.label, k.mask, k.scopes,"
            " u.id, u.uuid, u.distinct_id, u.first_name, u.last_name, u.email,"
            " p.id AS p_id, p.name AS p_name, p.timezone AS p_timezone,"
            " p.api_token AS p_api_token"
            " FROM api_keys k JOIN users u ON u.id = k.user_id"
            " LEFT JOIN memberships m ON m.user_id = u.id AND m.project_id = ?"
            " LEFT JOIN projects p ON p.id = m.project_id"
            " WHERE k.key_hash = ?",
            (project_id, key_hash),
        ).fetchone()
        if row is None:
            return None
        user = user_from_row(row)
        assert user is not None
        key = ApiKey(
            id=row["key_id"],
            user_id=user.id,
            label=row["label"],
            mask=row["mask"],
            scopes=tuple(json.loads(row["scopes"])),
        )
        project = None
        if row["p_id"] is not None:
            project = Project(
                id=row["p_id"],
                name=row["p_name"],
                timezone=row["p_timezone"],
                api_token=row["p_api_token"],
            )
        return key, user, project
