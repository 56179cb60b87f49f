"""Notebook, sharing, activity and account persistence behind one interface."""

from __future__ import annotations

from gateway.store.base import Store
from gateway.store.records import (
    UNSET,
    ActivityEntry,
    ApiKey,
    ContainsTerm,
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
from gateway.store.sqlite import SQLiteStore

__all__ = [
    "UNSET",
    "ActivityEntry",
    "ApiKey",
    "ContainsTerm",
    "KernelRecord",
    "NewNotebook",
    "Notebook",
    "NotebookFilter",
    "NotebookPatch",
    "Page",
    "Project",
    "SQLiteStore",
    "SharePassword",
    "SharingConfig",
    "SharingPatch",
    "Store",
    "User",
]
