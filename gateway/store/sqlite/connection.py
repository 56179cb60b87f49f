"""The SQLite connection: pragmas, migrations, transactions and row decoding helpers.

Queries run on the event loop thread. Each is an indexed lookup or a short write on a
WAL-mode database whose only writer is this process, so a thread hop would cost more than
the query itself (see docs/benchmarks.md). Slow work (password hashing) never happens here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from gateway.clock import parse_iso
from gateway.store.records import User
from gateway.store.sqlite.migrations import MIGRATIONS

USER_COLUMNS = "id, uuid, distinct_id, first_name, last_name, email"


def _icontains(haystack: str | None, needle: str) -> bool:
    return haystack is not None and needle.casefold() in haystack.casefold()


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database at `path`."""
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.create_function("icontains", 2, _icontains, deterministic=True)
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> None:
    """Apply the MIGRATIONS newer than `PRAGMA user_version`, each in its own transaction; called by
    `connect`. Raises RuntimeError for a database newer than this gateway.
    """
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > len(MIGRATIONS):
        msg = f"Database schema version {current} is newer than this gateway ({len(MIGRATIONS)})."
        raise RuntimeError(msg)
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        with transaction(conn):
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={version}")


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def user_from_row(row: sqlite3.Row | None, prefix: str = "") -> User | None:
    """A User from the row's user columns (named `<prefix>id`, …), or None when the row or that id
    is NULL (a LEFT JOIN without a user).
    """
    if row is None or row[f"{prefix}id"] is None:
        return None
    return User(
        id=row[f"{prefix}id"],
        uuid=row[f"{prefix}uuid"],
        distinct_id=row[f"{prefix}distinct_id"],
        first_name=row[f"{prefix}first_name"],
        last_name=row[f"{prefix}last_name"],
        email=row[f"{prefix}email"],
    )


class UserCache:
    """id → User. Users are created and never changed, so entries never go stale."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._users: dict[int, User] = {}

    def get(self, user_id: int | None) -> User | None:
        """The user with `user_id`, queried once and then served from memory; None for None or an
        unknown id.
        """
        if user_id is None:
            return None
        user = self._users.get(user_id)
        if user is None:
            row = self._conn.execute(
                f"SELECT {USER_COLUMNS} FROM users WHERE id = ?", (user_id,)
            ).fetchone()
            user = user_from_row(row)
            if user is not None:
                self._users[user_id] = user
        return user


def load_json(value: str | None) -> Any:
    """Decode a JSON column; NULL stays None."""
    return None if value is None else json.loads(value)


def dump_json(value: Any) -> str:
    """Encode a value for a JSON column, compactly (orjson)."""
    return orjson.dumps(value).decode()


def opt_time(value: str | None) -> Any:
    """Parse a nullable timestamp column written by `isoformat`; NULL stays None."""
    return None if value is None else parse_iso(value)
