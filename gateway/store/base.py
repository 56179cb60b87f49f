"""The storage interface handlers and services see. SQLite implements it today.

Every mutating method is one transaction: the row change and its activity entry commit together
or not at all. Methods take `now` from the caller so a test clock drives every timestamp.
"""

from __future__ import annotations

import abc
from datetime import datetime
from typing import Any

from gateway.store.records import (
    ActivityEntry,
    ApiKey,
    ChangeListener,
    CollabEntry,
    CollabOutcome,
    CollabSave,
    CommitListener,
    KernelRecord,
    NewNotebook,
    Notebook,
    NotebookFilter,
    NotebookPatch,
    Page,
    Project,
    SharePassword,
    SharingConfig,
    SharingPatch,
    User,
)


class Store(abc.ABC):
    """Persistence for accounts, notebooks, activity and sharing."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the database; called once, at app cleanup."""

    # accounts
    @abc.abstractmethod
    async def ensure_user(self, email: str, *, first_name: str = "", now: datetime) -> User:
        """The user with `email`, created when missing (CLI `demo-key` / `create-key`, tests)."""

    @abc.abstractmethod
    async def ensure_project(self, project_id: int, *, now: datetime) -> Project:
        """Project `project_id`, created with a fresh capture token when missing."""

    @abc.abstractmethod
    async def add_member(self, user_id: int, project_id: int) -> None:
        """Make the user a member of the project; idempotent."""

    @abc.abstractmethod
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
        """Store a personal API key by its hash (the raw key is never stored)."""

    @abc.abstractmethod
    async def project_by_token(self, api_token: str) -> Project | None:
        """The project whose public capture token (`phc_…`) this is."""

    @abc.abstractmethod
    async def get_project(self, project_id: int) -> Project | None:
        """The project, or None when it does not exist."""

    @abc.abstractmethod
    async def set_project_timezone(self, project_id: int, timezone: str) -> None:
        """Set the IANA timezone HogQL reads and shows datetimes in (checked by the caller)."""

    @abc.abstractmethod
    async def find_principal(
        self, key_hash: str, project_id: int | None
    ) -> tuple[ApiKey, User, Project | None] | None:
        """The key and its user, plus the project when the user is a member of it.

        One lookup, because it runs on every API request. None for an unknown key.
        """

    # notebooks
    @abc.abstractmethod
    async def create_notebook(
        self, project_id: int, new: NewNotebook, *, user: User, now: datetime
    ) -> Notebook:
        """Insert a notebook and its `created` activity.

        Raises InvalidRequest when the short_id is taken in the project.
        """

    @abc.abstractmethod
    async def get_notebook(
        self, project_id: int, short_id: str, *, include_deleted: bool = False
    ) -> Notebook:
        """Raises NotFound when missing (or deleted, unless include_deleted)."""

    @abc.abstractmethod
    async def list_notebooks(
        self, project_id: int, flt: NotebookFilter, *, limit: int, offset: int
    ) -> Page[Notebook]:
        """One page of the project's notebooks matching `flt`, with the total count."""

    @abc.abstractmethod
    async def update_notebook(
        self, project_id: int, short_id: str, patch: NotebookPatch, *, user: User, now: datetime
    ) -> Notebook:
        """Apply a patch atomically (deleted notebooks included).

        When the patch sets `content`, `patch.version` must equal the stored version, else
        Conflict; on success the version becomes stored + 1. Writes one activity entry.
        """

    @abc.abstractmethod
    async def set_kernel_config(
        self, project_id: int, short_id: str, config: dict[str, Any]
    ) -> Notebook:
        """Merge `config` into the notebook's stored kernel config. Raises NotFound."""

    # activity
    @abc.abstractmethod
    async def list_activity(
        self, project_id: int, *, item_id: str | None, limit: int, offset: int
    ) -> Page[ActivityEntry]:
        """One page of the project's notebook activity, newest first (one notebook's with
        `item_id`), with the total count."""

    @abc.abstractmethod
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
        """Append one activity entry (for events the store's own writes do not log)."""

    # collaboration
    @abc.abstractmethod
    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call `listener` (synchronously, after COMMIT) with each commit's new log entries."""

    @abc.abstractmethod
    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call `listener(project_id, short_id)` after every commit that changes a notebook."""

    @abc.abstractmethod
    async def collab_save(
        self, project_id: int, short_id: str, save: CollabSave, *, user: User, now: datetime
    ) -> CollabOutcome:
        """Append steps if `save.version` is the current version (compare-and-swap).

        Accepted: the steps, the client's content and the new version commit together. Behind:
        the missed steps (conflict) or stale when they are trimmed or include a REST edit.
        Rejections are logged as activity with the attempted content. Raises NotFound.
        """

    @abc.abstractmethod
    async def collab_entries(
        self, notebook_id: str, *, after: tuple[int, int], limit: int = 1000
    ) -> list[CollabEntry]:
        """Kept log entries with an id after `after`, oldest first."""

    @abc.abstractmethod
    async def collab_top(self, notebook_id: str) -> tuple[int, int]:
        """The id of the newest kept entry, (0, 0) when the log is empty."""

    # live kernels
    @abc.abstractmethod
    async def save_kernel(self, record: KernelRecord) -> None:
        """Record (or re-record) a live, assigned kernel."""

    @abc.abstractmethod
    async def forget_kernel(self, runtime_id: str) -> None:
        """Drop a kernel's record once it is stopped; idempotent."""

    @abc.abstractmethod
    async def kernels_of(self, instance: str) -> list[KernelRecord]:
        """The recorded live kernels of one gateway instance (for re-attachment)."""

    # sharing
    @abc.abstractmethod
    async def get_sharing(self, notebook: Notebook, *, now: datetime) -> SharingConfig | None:
        """The notebook's current (non-expiring) config, or None when never saved."""

    @abc.abstractmethod
    async def update_sharing(
        self,
        notebook: Notebook,
        patch: SharingPatch,
        *,
        new_token: str,
        user: User,
        now: datetime,
    ) -> SharingConfig:
        """Apply a sharing patch, creating the config with `new_token` on first use; logs
        sharing_enabled, sharing_disabled or sharing_updated."""

    @abc.abstractmethod
    async def rotate_sharing(
        self, notebook: Notebook, *, new_token: str, grace_s: float, user: User, now: datetime
    ) -> SharingConfig:
        """Move sharing to `new_token` (settings and active passwords copied); the old link
        keeps working for `grace_s` seconds."""

    @abc.abstractmethod
    async def add_share_password(
        self,
        config: SharingConfig,
        *,
        password_hash: str,
        note: str | None,
        user: User,
        now: datetime,
    ) -> SharePassword:
        """Add an active password (stored as `password_hash`) to the config and log it."""

    @abc.abstractmethod
    async def deactivate_share_password(
        self, config: SharingConfig, password_id: int, *, user: User, now: datetime
    ) -> None:
        """Raises NotFound for an unknown or already inactive password."""

    @abc.abstractmethod
    async def find_shared(
        self, access_token: str, *, now: datetime
    ) -> tuple[SharingConfig, Notebook] | None:
        """An enabled, unexpired config and its live notebook, or None."""
