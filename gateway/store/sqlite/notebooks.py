"""Notebook rows: create, fetch, filtered listing, and the atomic versioned update."""

from __future__ import annotations

import secrets
import sqlite3
import string
import uuid
from datetime import datetime
from typing import Any, Final

from gateway.clock import isoformat, parse_iso
from gateway.errors import Conflict, InvalidRequest, NotFound
from gateway.store.records import (
    ORDERABLE_FIELDS,
    UNSET,
    UPDATE,
    ChangeListener,
    CollabEntry,
    CommitListener,
    ContainsTerm,
    NewNotebook,
    Notebook,
    NotebookFilter,
    NotebookPatch,
    Page,
    User,
    notebook_detail,
)
from gateway.store.sqlite.activity import insert_activity
from gateway.store.sqlite.collab_log import insert_entry, trim_log, update_entry_data
from gateway.store.sqlite.connection import (
    UserCache,
    dump_json,
    transaction,
)

_SHORT_ID_ALPHABET: Final = string.ascii_letters + string.digits
_SELECT: Final = "SELECT n.* FROM notebooks n"
_TOP_NODES: Final = "json_each(CASE WHEN json_valid(n.content) THEN n.content END, '$.content')"
_CONFLICT_DETAIL: Final = "Someone else edited the Notebook"


def _new_short_id() -> str:
    return "".join(secrets.choice(_SHORT_ID_ALPHABET) for _ in range(8))


def _notebook(row: sqlite3.Row, users: UserCache) -> Notebook:
    return Notebook(
        id=row["id"],
        project_id=row["project_id"],
        short_id=row["short_id"],
        title=row["title"],
        content_json=row["content"] or "null",
        text_content=row["text_content"],
        version=row["version"],
        deleted=bool(row["deleted"]),
        created_at=parse_iso(row["created_at"]),
        created_by=users.get(row["created_by"]),
        last_modified_at=parse_iso(row["last_modified_at"]),
        last_modified_by=users.get(row["last_modified_by"]),
        kernel_config_json=row["kernel_config"],
    )


def _contains_sql(term: ContainsTerm) -> tuple[str, list[Any]]:
    """SQL for one `contains` term over the top-level content nodes (PostHog's semantics)."""
    node_type = f"ph-{term.target}"
    has_type = f"EXISTS (SELECT 1 FROM {_TOP_NODES} WHERE json_extract(value, '$.type') = ?)"
    if term.value is None or term.value is True:
        return has_type, [node_type]
    if term.value is False:
        return f"NOT {has_type}", [node_type]
    if term.target == "query":
        return (
            f"EXISTS (SELECT 1 FROM {_TOP_NODES} WHERE json_extract(value, '$.type') = ?"
            " AND json_extract(value, '$.attrs.query.kind') = 'SavedInsightNode'"
            " AND json_extract(value, '$.attrs.query.shortId') = ?)",
            [node_type, term.value],
        )
    if term.target == "replay-timestamp":
        return (
            f"EXISTS (SELECT 1 FROM {_TOP_NODES} AS top,"
            " json_each(CASE WHEN json_type(top.value, '$.content') = 'array'"
            " THEN top.value END, '$.content') AS inner_node"
            " WHERE json_extract(inner_node.value, '$.type') = ?"
            " AND json_extract(inner_node.value, '$.attrs.sessionRecordingId') = ?)",
            [node_type, term.value],
        )
    return (
        f"{has_type} AND EXISTS (SELECT 1 FROM {_TOP_NODES}"
        " WHERE json_extract(value, '$.attrs.id') = ?)",
        [node_type, term.value],
    )


def _changes(before: Notebook, patch: NotebookPatch) -> list[dict[str, Any]]:
    changes = []
    for name in ("title", "content", "text_content", "deleted"):
        after = getattr(patch, name)
        if after is UNSET:
            continue
        old = getattr(before, name)
        if old != after:
            changes.append(
                {
                    "type": "Notebook",
                    "action": "changed",
                    "field": name,
                    "before": old,
                    "after": after,
                }
            )
    return changes


def _patched_columns(
    patch: NotebookPatch, *, version: int, user: User, now: datetime
) -> dict[str, Any]:
    """Column → new value for an UPDATE: the version and modification stamp, then each field
    the patch sets."""
    sets: dict[str, Any] = {
        "version": version,
        "last_modified_at": isoformat(now),
        "last_modified_by": user.id,
    }
    if patch.title is not UNSET:
        sets["title"] = patch.title
    if patch.content is not UNSET:
        sets["content"] = dump_json(patch.content)
    if patch.text_content is not UNSET:
        sets["text_content"] = patch.text_content
    if patch.deleted is not UNSET:
        sets["deleted"] = int(patch.deleted)
    if patch.create_in_folder is not UNSET:
        sets["create_in_folder"] = patch.create_in_folder
    return sets


def _patch_activity(before: Notebook, patch: NotebookPatch) -> str:
    """The activity a patch logs: deleted or restored when it flips `deleted`, else updated."""
    if patch.deleted is True and not before.deleted:
        return "deleted"
    if patch.deleted is False and before.deleted:
        return "restored"
    return "updated"


class NotebooksMixin:
    """The `Store` methods for notebook rows, and the commit and change listeners they notify after
    COMMIT.
    """

    _conn: sqlite3.Connection
    _users: UserCache
    _listeners: list[CommitListener]
    _change_listeners: list[ChangeListener]
    _collab_keep: int

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call `listener` with the collab entries of every commit that adds some."""
        self._listeners.append(listener)

    def _notify(self, entries: list[CollabEntry]) -> None:
        for listener in self._listeners:
            listener(entries)

    def add_change_listener(self, listener: ChangeListener) -> None:
        """`Store.add_change_listener`: the listener runs synchronously after COMMIT of an update, a
        kernel-config change or an accepted collab save (not of a creation).
        """
        self._change_listeners.append(listener)

    def _changed(self, project_id: int, short_id: str) -> None:
        """Called after COMMIT of any change to a notebook row."""
        for listener in self._change_listeners:
            listener(project_id, short_id)

    def _fetch(self, project_id: int, short_id: str) -> Notebook | None:
        row = self._conn.execute(
            f"{_SELECT} WHERE n.project_id = ? AND n.short_id = ?", (project_id, short_id)
        ).fetchone()
        return None if row is None else _notebook(row, self._users)

    async def create_notebook(
        self, project_id: int, new: NewNotebook, *, user: User, now: datetime
    ) -> Notebook:
        """`Store.create_notebook` in one transaction: the row at version 0 and its `created`
        activity. A generated short_id is redrawn until unused; a taken explicit one raises
        InvalidRequest (attr `short_id`).
        """
        stamp = isoformat(now)
        with transaction(self._conn) as conn:
            short_id = new.short_id
            if short_id is None:
                short_id = _new_short_id()
                while self._fetch(project_id, short_id) is not None:
                    short_id = _new_short_id()
            elif self._fetch(project_id, short_id) is not None:
                msg = f"A notebook with short_id '{short_id}' already exists in this project."
                raise InvalidRequest(msg, attr="short_id")
            conn.execute(
                "INSERT INTO notebooks (id, project_id, short_id, title, content, text_content,"
                " version, deleted, created_at, created_by, last_modified_at, last_modified_by,"
                " create_in_folder) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?)",
                (
                    str(uuid.uuid4()),
                    project_id,
                    short_id,
                    new.title,
                    dump_json(new.content),
                    new.text_content,
                    int(new.deleted),
                    stamp,
                    user.id,
                    stamp,
                    user.id,
                    new.create_in_folder,
                ),
            )
            insert_activity(
                conn,
                project_id,
                user=user,
                activity="created",
                item_id=short_id,
                detail=notebook_detail(title=new.title, short_id=short_id, changes=None),
                now=now,
            )
            created = self._fetch(project_id, short_id)
        assert created is not None
        return created

    async def get_notebook(
        self, project_id: int, short_id: str, *, include_deleted: bool = False
    ) -> Notebook:
        """`Store.get_notebook`: one lookup; NotFound for a missing notebook, or a deleted one
        unless `include_deleted`.
        """
        notebook = self._fetch(project_id, short_id)
        if notebook is None or (notebook.deleted and not include_deleted):
            msg = "Not found."
            raise NotFound(msg)
        return notebook

    async def list_notebooks(
        self, project_id: int, flt: NotebookFilter, *, limit: int, offset: int
    ) -> Page[Notebook]:
        """`Store.list_notebooks`: deleted notebooks left out, every filter value a bound parameter,
        ties broken by insertion order in the same direction.
        """
        where = ["n.project_id = ?", "n.deleted = 0"]
        params: list[Any] = [project_id]
        if flt.created_by_user_id is not None:
            where.append("n.created_by = ?")
            params.append(flt.created_by_user_id)
        if flt.created_by_uuid is not None:
            where.append("n.created_by IN (SELECT id FROM users WHERE uuid = ?)")
            params.append(flt.created_by_uuid)
        if flt.last_modified_by_uuid is not None:
            where.append("n.last_modified_by IN (SELECT id FROM users WHERE uuid = ?)")
            params.append(flt.last_modified_by_uuid)
        if flt.date_from is not None:
            where.append("n.last_modified_at > ?")
            params.append(isoformat(flt.date_from))
        if flt.date_to is not None:
            where.append("n.last_modified_at < ?")
            params.append(isoformat(flt.date_to))
        if flt.search:
            where.append("(icontains(n.title, ?) OR icontains(n.text_content, ?))")
            params += [flt.search, flt.search]
        if flt.short_id is not None:
            where.append("n.short_id = ?")
            params.append(flt.short_id)
        for term in flt.contains:
            clause, values = _contains_sql(term)
            where.append(f"({clause})")
            params += values
        assert flt.order_field in ORDERABLE_FIELDS
        direction = "DESC" if flt.order_desc else "ASC"
        sql_where = " AND ".join(where)
        total = self._conn.execute(
            f"SELECT count(*) FROM notebooks n WHERE {sql_where}", params
        ).fetchone()[0]
        rows = self._conn.execute(
            f"{_SELECT} WHERE {sql_where}"
            f" ORDER BY n.{flt.order_field} {direction}, n.rowid {direction} LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return Page(total=total, items=[_notebook(r, self._users) for r in rows])

    async def set_kernel_config(
        self, project_id: int, short_id: str, config: dict[str, Any]
    ) -> Notebook:
        """`Store.set_kernel_config`: a shallow merge over the stored config in one transaction,
        with no version bump and no activity. NotFound for a missing or deleted notebook; change
        listeners are told.
        """
        with transaction(self._conn) as conn:
            notebook = self._fetch(project_id, short_id)
            if notebook is None or notebook.deleted:
                msg = "Not found."
                raise NotFound(msg)
            merged = {**notebook.kernel_config, **config}
            conn.execute(
                "UPDATE notebooks SET kernel_config = ? WHERE id = ?",
                (dump_json(merged), notebook.id),
            )
            updated = self._fetch(project_id, short_id)
        self._changed(project_id, short_id)
        assert updated is not None
        return updated

    async def update_notebook(
        self, project_id: int, short_id: str, patch: NotebookPatch, *, user: User, now: datetime
    ) -> Notebook:
        """`Store.update_notebook` in one transaction: the versioned UPDATE, its activity (updated,
        deleted or restored) and, for a content change, an `update` collab entry that tells live
        clients to reload. Conflict when `patch.version` is stale; listeners run after COMMIT.
        """
        with transaction(self._conn) as conn:
            before = self._fetch(project_id, short_id)
            if before is None:
                msg = "Not found."
                raise NotFound(msg)
            if patch.is_empty():
                return before
            version = before.version
            if patch.content is not UNSET:
                if patch.version != before.version:
                    raise Conflict(_CONFLICT_DETAIL)
                version += 1
            sets = _patched_columns(patch, version=version, user=user, now=now)
            assignments = ", ".join(f"{column} = ?" for column in sets)
            cur = conn.execute(
                f"UPDATE notebooks SET {assignments} WHERE id = ? AND version = ?",
                [*sets.values(), before.id, before.version],
            )
            if cur.rowcount != 1:
                raise Conflict(_CONFLICT_DETAIL)
            title = before.title if patch.title is UNSET else patch.title
            insert_activity(
                conn,
                project_id,
                user=user,
                activity=_patch_activity(before, patch),
                item_id=short_id,
                detail=notebook_detail(
                    title=title, short_id=short_id, changes=_changes(before, patch)
                ),
                now=now,
            )
            entries = []
            if version != before.version:
                # Live collab clients learn of a REST edit from an `update` entry at N-1.
                entries.append(
                    insert_entry(
                        conn,
                        before.id,
                        version=version,
                        sub=UPDATE,
                        client_id=None,
                        user=user,
                        data=update_entry_data(user, version),
                        now=now,
                    )
                )
                trim_log(conn, before.id, top=version, keep=self._collab_keep)
            after = self._fetch(project_id, short_id)
        self._changed(project_id, short_id)
        if entries:
            self._notify(entries)
        assert after is not None
        return after
