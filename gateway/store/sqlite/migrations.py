"""Schema migrations, applied in order; `PRAGMA user_version` records how many ran."""

from __future__ import annotations

from typing import Final

MIGRATIONS: Final[tuple[str, ...]] = (
    # 1: accounts, notebooks, activity, sharing
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        distinct_id TEXT NOT NULL,
        first_name TEXT NOT NULL DEFAULT '',
        last_name TEXT NOT NULL DEFAULT '',
        email TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        timezone TEXT NOT NULL DEFAULT 'UTC',
        api_token TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL
    );
    CREATE TABLE memberships (
        user_id INTEGER NOT NULL REFERENCES users(id),
        project_id INTEGER NOT NULL REFERENCES projects(id),
        PRIMARY KEY (user_id, project_id)
    );
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        label TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        mask TEXT NOT NULL,
        scopes TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE notebooks (
        id TEXT PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id),
        short_id TEXT NOT NULL,
        title TEXT,
        content TEXT,
        text_content TEXT,
        version INTEGER NOT NULL DEFAULT 0,
        deleted INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        created_by INTEGER REFERENCES users(id),
        last_modified_at TEXT NOT NULL,
        last_modified_by INTEGER REFERENCES users(id),
        create_in_folder TEXT,
        kernel_config TEXT NOT NULL DEFAULT '{}',
        UNIQUE (project_id, short_id)
    );
    CREATE INDEX notebooks_by_modified ON notebooks (project_id, deleted, last_modified_at);
    CREATE TABLE activity (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        project_id INTEGER NOT NULL,
        user_id INTEGER REFERENCES users(id),
        activity TEXT NOT NULL,
        scope TEXT NOT NULL,
        item_id TEXT NOT NULL,
        detail TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX activity_by_item ON activity (project_id, scope, item_id, seq);
    CREATE TABLE sharing_configs (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        notebook_id TEXT NOT NULL REFERENCES notebooks(id),
        created_at TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 0,
        access_token TEXT NOT NULL UNIQUE,
        expires_at TEXT,
        settings TEXT,
        password_required INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX sharing_by_notebook ON sharing_configs (notebook_id, expires_at);
    CREATE TABLE share_passwords (
        id INTEGER PRIMARY KEY,
        sharing_config_id INTEGER NOT NULL REFERENCES sharing_configs(id),
        password_hash TEXT NOT NULL,
        created_by INTEGER REFERENCES users(id),
        created_at TEXT NOT NULL,
        note TEXT,
        is_active INTEGER NOT NULL DEFAULT 1
    );
    """,
    # 2: the collaboration log. (version, sub) is the SSE id "version-sub": sub 0 is the step
    # that produced `version`, sub 1 a REST edit that produced it.
    """
    CREATE TABLE collab_log (
        notebook_id TEXT NOT NULL REFERENCES notebooks(id),
        version INTEGER NOT NULL,
        sub INTEGER NOT NULL,
        client_id TEXT,
        user_id INTEGER REFERENCES users(id),
        data TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (notebook_id, version, sub)
    ) WITHOUT ROWID;
    """,
    # 3: live kernels, so a restarted gateway can re-attach to them.
    """
    CREATE TABLE kernel_runtimes (
        id TEXT PRIMARY KEY,
        instance TEXT NOT NULL,
        project_id INTEGER NOT NULL,
        short_id TEXT NOT NULL,
        user_id INTEGER NOT NULL,
        sandbox_id TEXT NOT NULL,
        run_dir TEXT NOT NULL,
        cpu_cores REAL NOT NULL,
        memory_gb REAL NOT NULL,
        idle_timeout_s REAL NOT NULL,
        started_at TEXT NOT NULL
    );
    """,
    # 4: the connection key of a live kernel: re-attachment never reads the kernel's run dir.
    """
    ALTER TABLE kernel_runtimes ADD COLUMN connection_key TEXT NOT NULL DEFAULT '';
    """,
    # 5: tcp kernels: the transport and the kernel's CurveZMQ secret (its address is asked of
    # the engine again at re-attachment).
    """
    ALTER TABLE kernel_runtimes ADD COLUMN transport TEXT NOT NULL DEFAULT 'ipc';
    ALTER TABLE kernel_runtimes ADD COLUMN curve_secret TEXT NOT NULL DEFAULT '';
    """,
)
