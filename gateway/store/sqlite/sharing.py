"""Sharing configurations and their passwords.

A notebook has at most one *current* config (expires_at NULL). Rotating the token copies the
current row, with its active password hashes, to a new row and gives the old one an expiry.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from gateway.clock import isoformat, parse_iso
from gateway.errors import NotFound
from gateway.store.records import (
    UNSET,
    Notebook,
    SharePassword,
    SharingConfig,
    SharingPatch,
    User,
    notebook_detail,
)
from gateway.store.sqlite.activity import insert_activity
from gateway.store.sqlite.connection import dump_json, load_json, opt_time, transaction
from gateway.store.sqlite.notebooks import NotebooksMixin


def _sharing_change(field: str, before: Any, after: Any) -> dict[str, Any]:
    return {
        "type": "Notebook",
        "action": "changed",
        "field": field,
        "before": before,
        "after": after,
    }


class SharingMixin(NotebooksMixin):
    """The `Store` methods for sharing configs and their passwords; each change logs its activity in
    the same transaction.
    """

    _conn: sqlite3.Connection

    def _passwords(self, config_id: int) -> tuple[SharePassword, ...]:
        rows = self._conn.execute(
            "SELECT p.*, u.email AS creator_email FROM share_passwords p"
            " LEFT JOIN users u ON u.id = p.created_by"
            " WHERE p.sharing_config_id = ? AND p.is_active = 1 ORDER BY p.id",
            (config_id,),
        ).fetchall()
        return tuple(
            SharePassword(
                id=r["id"],
                created_at=parse_iso(r["created_at"]),
                note=r["note"],
                created_by_email=r["creator_email"] or "deleted user",
                password_hash=r["password_hash"],
            )
            for r in rows
        )

    def _config(self, row: sqlite3.Row | None) -> SharingConfig | None:
        if row is None:
            return None
        return SharingConfig(
            id=row["id"],
            project_id=row["project_id"],
            notebook_id=row["notebook_id"],
            created_at=parse_iso(row["created_at"]),
            enabled=bool(row["enabled"]),
            access_token=row["access_token"],
            expires_at=opt_time(row["expires_at"]),
            settings=load_json(row["settings"]),
            password_required=bool(row["password_required"]),
            passwords=self._passwords(row["id"]),
        )

    def _current(self, notebook: Notebook) -> SharingConfig | None:
        row = self._conn.execute(
            "SELECT * FROM sharing_configs WHERE notebook_id = ? AND expires_at IS NULL"
            " ORDER BY id DESC LIMIT 1",
            (notebook.id,),
        ).fetchone()
        return self._config(row)

    def _log(
        self,
        notebook: Notebook,
        user: User | None,
        activity: str,
        now: datetime,
        changes: list[dict[str, Any]] | None = None,
    ) -> None:
        insert_activity(
            self._conn,
            notebook.project_id,
            user=user,
            activity=activity,
            item_id=notebook.short_id,
            detail=notebook_detail(
                title=notebook.title, short_id=notebook.short_id, changes=changes
            ),
            now=now,
        )

    def _insert_config(self, notebook: Notebook, token: str, now: datetime) -> int:
        cur = self._conn.execute(
            "INSERT INTO sharing_configs (project_id, notebook_id, created_at, access_token)"
            " VALUES (?, ?, ?, ?)",
            (notebook.project_id, notebook.id, isoformat(now), token),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    async def get_sharing(self, notebook: Notebook, *, now: datetime) -> SharingConfig | None:
        """`Store.get_sharing`: the newest config without an expiry (`now` is not used here)."""
        return self._current(notebook)

    async def update_sharing(
        self,
        notebook: Notebook,
        patch: SharingPatch,
        *,
        new_token: str,
        user: User,
        now: datetime,
    ) -> SharingConfig:
        """`Store.update_sharing` in one transaction: the current config (created with `new_token`
        when there is none), the fields the patch sets, and one activity listing the changes.
        """
        with transaction(self._conn):
            before = self._current(notebook)
            config_id = (
                before.id
                if before is not None and before.id is not None
                else self._insert_config(notebook, new_token, now)
            )
            changes = []
            for name in ("enabled", "settings", "password_required"):
                value = getattr(patch, name)
                if value is UNSET:
                    continue
                old = getattr(before, name) if before is not None else None
                stored = dump_json(value) if name == "settings" else int(value)
                self._conn.execute(
                    f"UPDATE sharing_configs SET {name} = ? WHERE id = ?", (stored, config_id)
                )
                if old != value:
                    changes.append(_sharing_change(f"sharing.{name}", old, value))
            activity = "sharing_updated"
            if patch.enabled is True and not (before and before.enabled):
                activity = "sharing_enabled"
            elif patch.enabled is False and before is not None and before.enabled:
                activity = "sharing_disabled"
            self._log(notebook, user, activity, now, changes)
            after = self._current(notebook)
        assert after is not None
        return after

    async def rotate_sharing(
        self, notebook: Notebook, *, new_token: str, grace_s: float, user: User, now: datetime
    ) -> SharingConfig:
        """`Store.rotate_sharing` in one transaction: a new config with `new_token`, the old one's
        enabled flag, settings and active passwords copied to it, the old one expiring `grace_s`
        after `now`, and a sharing_token_refreshed activity.
        """
        with transaction(self._conn) as conn:
            old = self._current(notebook)
            new_id = self._insert_config(notebook, new_token, now)
            if old is not None:
                conn.execute(
                    "UPDATE sharing_configs SET enabled = ?, settings = ?, password_required = ?"
                    " WHERE id = ?",
                    (
                        int(old.enabled),
                        dump_json(old.settings) if old.settings is not None else None,
                        int(old.password_required),
                        new_id,
                    ),
                )
                conn.execute(
                    "INSERT INTO share_passwords (sharing_config_id, password_hash, created_by,"
                    " created_at, note, is_active) SELECT ?, password_hash, created_by,"
                    " created_at, note, 1 FROM share_passwords"
                    " WHERE sharing_config_id = ? AND is_active = 1 ORDER BY id",
                    (new_id, old.id),
                )
                conn.execute(
                    "UPDATE sharing_configs SET expires_at = ? WHERE id = ?",
                    (isoformat(now + timedelta(seconds=grace_s)), old.id),
                )
            self._log(notebook, user, "sharing_token_refreshed", now)
            after = self._current(notebook)
        assert after is not None
        return after

    async def add_share_password(
        self,
        config: SharingConfig,
        *,
        password_hash: str,
        note: str | None,
        user: User,
        now: datetime,
    ) -> SharePassword:
        """`Store.add_share_password`: the hash and a share_password_created activity, in one
        transaction.
        """
        assert config.id is not None
        with transaction(self._conn) as conn:
            cur = conn.execute(
                "INSERT INTO share_passwords (sharing_config_id, password_hash, created_by,"
                " created_at, note) VALUES (?, ?, ?, ?, ?)",
                (config.id, password_hash, user.id, isoformat(now), note),
            )
            notebook = self._notebook_by_id(config.notebook_id)
            self._log(notebook, user, "share_password_created", now)
        assert cur.lastrowid is not None
        return SharePassword(
            id=cur.lastrowid,
            created_at=now,
            note=note,
            created_by_email=user.email,
            password_hash=password_hash,
        )

    async def deactivate_share_password(
        self, config: SharingConfig, password_id: int, *, user: User, now: datetime
    ) -> None:
        """`Store.deactivate_share_password`: the row is kept, marked inactive, and
        share_password_deleted logged. NotFound unless the password is active on `config`.
        """
        with transaction(self._conn) as conn:
            cur = conn.execute(
                "UPDATE share_passwords SET is_active = 0"
                " WHERE id = ? AND sharing_config_id = ? AND is_active = 1",
                (password_id, config.id),
            )
            if cur.rowcount != 1:
                msg = "Password not found"
                raise NotFound(msg)
            self._log(self._notebook_by_id(config.notebook_id), user, "share_password_deleted", now)

    async def find_shared(
        self, access_token: str, *, now: datetime
    ) -> tuple[SharingConfig, Notebook] | None:
        """`Store.find_shared`: the config with `access_token` when enabled, unexpired at `now` and
        its notebook not deleted, so a rotated-away token works until its grace ends.
        """
        row = self._conn.execute(
            "SELECT s.* FROM sharing_configs s JOIN notebooks n ON n.id = s.notebook_id"
            " WHERE s.access_token = ? AND s.enabled = 1 AND n.deleted = 0"
            " AND (s.expires_at IS NULL OR s.expires_at > ?)",
            (access_token, isoformat(now)),
        ).fetchone()
        config = self._config(row)
        if config is None:
            return None
        return config, self._notebook_by_id(config.notebook_id)

    def _notebook_by_id(self, notebook_id: str) -> Notebook:
        row = self._conn.execute(
            "SELECT project_id, short_id FROM notebooks WHERE id = ?", (notebook_id,)
        ).fetchone()
        notebook = self._fetch(row["project_id"], row["short_id"])
        assert notebook is not None
        return notebook
