"""The collaboration log: compare-and-swap step appends, REST update entries, trimming, reads.

The log and the notebook row change in one transaction, so the notebook's version is always
the log's top. Listeners hear about new entries only after COMMIT.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from gateway.clock import isoformat
from gateway.errors import NotFound
from gateway.store.records import (
    STEP,
    CollabAccepted,
    CollabConflict,
    CollabEntry,
    CollabOutcome,
    CollabSave,
    CollabStale,
    Notebook,
    User,
    notebook_detail,
    user_name,
)
from gateway.store.sqlite.activity import insert_activity
from gateway.store.sqlite.collab_log import insert_entry, trim_log
from gateway.store.sqlite.connection import dump_json, load_json, transaction
from gateway.store.sqlite.notebooks import NotebooksMixin


class CollabMixin(NotebooksMixin):
    """`Store.collab_save` and the collab log reads, over the notebook rows of `NotebooksMixin`."""

    _conn: sqlite3.Connection

    def _reject(
        self, notebook: Notebook, save: CollabSave, activity: str, user: User, now: datetime
    ) -> None:
        # The attempted content is kept in the activity log so the user can recover it.
        change = {
            "type": "Notebook",
            "action": "changed",
            "field": "content",
            "before": None,
            "after": save.content,
        }
        insert_activity(
            self._conn,
            notebook.project_id,
            user=user,
            activity=activity,
            item_id=notebook.short_id,
            detail=notebook_detail(
                title=notebook.title, short_id=notebook.short_id, changes=[change]
            ),
            now=now,
        )

    async def collab_save(
        self,
        project_id: int,
        short_id: str,
        save: CollabSave,
        *,
        user: User,
        now: datetime,
    ) -> CollabOutcome:
        """`Store.collab_save` in one transaction: the steps as log entries, the client's content,
        title and new version, the log trim and an `updated` activity. A rejection logs
        save_rejected_conflict or save_rejected_stale with the attempted content instead; change and
        commit listeners run only after an accepted COMMIT.
        """
        entries: list[CollabEntry] = []
        with transaction(self._conn) as conn:
            notebook = self._fetch(project_id, short_id)
            if notebook is None or notebook.deleted:
                msg = "Not found."
                raise NotFound(msg)
            top = notebook.version
            if save.version != top:
                outcome = self._missed(notebook, save.version)
                activity = (
                    "save_rejected_conflict"
                    if isinstance(outcome, CollabConflict)
                    else "save_rejected_stale"
                )
                self._reject(notebook, save, activity, user, now)
                return outcome
            for offset, step in enumerate(save.steps, start=1):
                data = {
                    "step": step,
                    "client_id": save.client_id,
                    "user_id": user.id,
                    "user_name": user_name(user),
                    "cursor_head": save.cursor_head,
                }
                entries.append(
                    insert_entry(
                        conn,
                        notebook.id,
                        version=top + offset,
                        sub=STEP,
                        client_id=save.client_id,
                        user=user,
                        data=data,
                        now=now,
                    )
                )
            new_version = top + len(save.steps)
            title = save.title if isinstance(save.title, str) else notebook.title
            conn.execute(
                "UPDATE notebooks SET content = ?, text_content = ?, title = ?, version = ?,"
                " last_modified_at = ?, last_modified_by = ? WHERE id = ? AND version = ?",
                (
                    dump_json(save.content),
                    save.text_content,
                    title,
                    new_version,
                    isoformat(now),
                    user.id,
                    notebook.id,
                    top,
                ),
            )
            trim_log(conn, notebook.id, top=new_version, keep=self._collab_keep)
            change = {
                "type": "Notebook",
                "action": "changed",
                "field": "version",
                "before": top,
                "after": new_version,
            }
            insert_activity(
                conn,
                project_id,
                user=user,
                activity="updated",
                item_id=short_id,
                detail=notebook_detail(title=title, short_id=short_id, changes=[change]),
                now=now,
            )
            saved = self._fetch(project_id, short_id)
        self._changed(project_id, short_id)
        if entries:
            self._notify(entries)
        assert saved is not None
        return CollabAccepted(notebook=saved)

    def _missed(self, notebook: Notebook, since: int) -> CollabConflict | CollabStale:
        """What a client at `since` missed: steps to rebase over, or stale when it can't."""
        top = notebook.version
        if since > top:
            return CollabStale(version=top)
        rows = self._conn.execute(
            "SELECT sub, client_id, data FROM collab_log"
            " WHERE notebook_id = ? AND version > ? AND version <= ? ORDER BY version, sub",
            (notebook.id, since, top),
        ).fetchall()
        steps = [r for r in rows if r["sub"] == STEP]
        # Every missed version must come from a kept step; a trimmed range or a REST edit
        # (which replaced the document) cannot be rebased over.
        if len(steps) != top - since or len(rows) != len(steps):
            return CollabStale(version=top)
        return CollabConflict(
            steps=[load_json(r["data"])["step"] for r in steps],
            client_ids=[r["client_id"] for r in steps],
            version=top,
        )

    async def collab_entries(
        self, notebook_id: str, *, after: tuple[int, int], limit: int = 1000
    ) -> list[CollabEntry]:
        """`Store.collab_entries`: at most `limit` entries, ordered by (version, sub)."""
        rows = self._conn.execute(
            "SELECT version, sub, data FROM collab_log WHERE notebook_id = ?"
            " AND (version > ? OR (version = ? AND sub > ?)) ORDER BY version, sub LIMIT ?",
            (notebook_id, after[0], after[0], after[1], limit),
        ).fetchall()
        return [
            CollabEntry(
                version=r["version"],
                sub=r["sub"],
                notebook_id=notebook_id,
                data=load_json(r["data"]),
            )
            for r in rows
        ]

    async def collab_top(self, notebook_id: str) -> tuple[int, int]:
        """`Store.collab_top`: the largest kept (version, sub), (0, 0) for an empty log."""
        row = self._conn.execute(
            "SELECT version, sub FROM collab_log WHERE notebook_id = ?"
            " ORDER BY version DESC, sub DESC LIMIT 1",
            (notebook_id,),
        ).fetchone()
        return (0, 0) if row is None else (row["version"], row["sub"])


__all__ = ["CollabMixin"]
