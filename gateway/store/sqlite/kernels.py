"""Records of live kernels (one row per assigned, running kernel of a gateway instance)."""

from __future__ import annotations

import sqlite3

from gateway.clock import isoformat, parse_iso
from gateway.store.records import KernelRecord

_COLUMNS = (
    "id, instance, project_id, short_id, user_id, sandbox_id, run_dir, cpu_cores, memory_gb,"
    " idle_timeout_s, started_at, connection_key, transport, curve_secret"
)


class KernelRecordsMixin:
    """The `Store` methods for live-kernel records, which the kernel manager writes and reads back
    to re-attach its kernels after a gateway restart.
    """

    _conn: sqlite3.Connection

    async def save_kernel(self, record: KernelRecord) -> None:
        """`Store.save_kernel`: INSERT OR REPLACE by kernel id, committed at once."""
        self._conn.execute(
            f"INSERT OR REPLACE INTO kernel_runtimes ({_COLUMNS})"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.instance,
                record.project_id,
                record.short_id,
                record.user_id,
                record.sandbox_id,
                record.run_dir,
                record.cpu_cores,
                record.memory_gb,
                record.idle_timeout_s,
                isoformat(record.started_at),
                record.connection_key,
                record.transport,
                record.curve_secret,
            ),
        )

    async def forget_kernel(self, runtime_id: str) -> None:
        """`Store.forget_kernel`: delete by id; no error when there is no such record."""
        self._conn.execute("DELETE FROM kernel_runtimes WHERE id = ?", (runtime_id,))

    async def kernels_of(self, instance: str) -> list[KernelRecord]:
        """`Store.kernels_of`: every record of `instance`, in no particular order."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM kernel_runtimes WHERE instance = ?", (instance,)
        ).fetchall()
        return [
            KernelRecord(
                id=r["id"],
                instance=r["instance"],
                project_id=r["project_id"],
                short_id=r["short_id"],
                user_id=r["user_id"],
                sandbox_id=r["sandbox_id"],
                run_dir=r["run_dir"],
                cpu_cores=r["cpu_cores"],
                memory_gb=r["memory_gb"],
                idle_timeout_s=r["idle_timeout_s"],
                started_at=parse_iso(r["started_at"]),
                connection_key=r["connection_key"],
                transport=r["transport"],
                curve_secret=r["curve_secret"],
            )
            for r in rows
        ]
