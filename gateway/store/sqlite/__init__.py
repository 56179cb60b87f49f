"""The embedded SQLite implementation of `Store` (WAL mode, versioned migrations)."""

from __future__ import annotations

from pathlib import Path

from gateway.store.base import Store
from gateway.store.records import ChangeListener, CommitListener
from gateway.store.sqlite.accounts import AccountsMixin
from gateway.store.sqlite.activity import ActivityMixin
from gateway.store.sqlite.collab import CollabMixin
from gateway.store.sqlite.connection import UserCache, connect
from gateway.store.sqlite.kernels import KernelRecordsMixin
from gateway.store.sqlite.sharing import SharingMixin


class SQLiteStore(
    AccountsMixin, ActivityMixin, SharingMixin, CollabMixin, KernelRecordsMixin, Store
):
    """One connection, owned by the gateway process; `open()` migrates the schema."""

    def __init__(self, path: Path | str, *, collab_keep: int = 5000) -> None:
        self._conn = connect(path)
        self._users = UserCache(self._conn)
        self._listeners: list[CommitListener] = []
        self._change_listeners: list[ChangeListener] = []
        self._collab_keep = collab_keep

    @classmethod
    def open(cls, path: Path | str, *, collab_keep: int = 5000) -> SQLiteStore:
        """Connect to (creating if needed) and migrate the database at `path`; called by
        `create_app` and the CLI. Each notebook's collab log keeps its last `collab_keep`
        versions.
        """
        return cls(path, collab_keep=collab_keep)

    async def close(self) -> None:
        """`Store.close`: close the connection; the store is unusable afterwards."""
        self._conn.close()


__all__ = ["SQLiteStore"]
