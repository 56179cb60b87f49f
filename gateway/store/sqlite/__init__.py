"""The embedded SQLite implementation of `Store` (WAL mode, versioned migrations)."""

from __future__ import annotations

from pathlib import Path

from gateway.store.base import Store
from gateway.store.sqlite.accounts import AccountsMixin
from gateway.store.sqlite.activity import ActivityMixin
from gateway.store.sqlite.connection import UserCache, connect
from gateway.store.sqlite.sharing import SharingMixin


class SQLiteStore(AccountsMixin, ActivityMixin, SharingMixin, Store):
    """One connection, owned by the gateway process; `open()` migrates the schema."""

    def __init__(self, path: Path | str) -> None:
        self._conn = connect(path)
        self._users = UserCache(self._conn)

    @classmethod
    def open(cls, path: Path | str) -> SQLiteStore:
        return cls(path)

    async def close(self) -> None:
        self._conn.close()


__all__ = ["SQLiteStore"]
