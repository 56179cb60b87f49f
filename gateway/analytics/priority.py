"""Where HogQL's threads stand: below the gateway's event loop.

Queries run `QUERY_NICENESS` nicer than the loop (like the translator's worker processes), so a
flood of HogQL never takes the CPU the loop needs to answer everyone else. Linux niceness is per
thread and inherited by the threads a thread starts: the store's query threads lower themselves
when they start, and the database is opened from a lowered thread so DuckDB's own worker
threads, which it starts at open, inherit it too.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Final

import duckdb

QUERY_NICENESS: Final = 10


def lower_priority() -> None:
    """Make the calling thread (only it: Linux niceness is per thread) QUERY_NICENESS nicer;
    threads it starts inherit that."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0) + QUERY_NICENESS)


def connect(path: Path | None) -> duckdb.DuckDBPyConnection:
    """Open the database from a thread at query priority, so DuckDB's worker threads, which it
    starts at open, inherit it rather than the event loop's priority."""
    box: list[duckdb.DuckDBPyConnection | BaseException] = []

    def run() -> None:
        lower_priority()
        try:
            box.append(duckdb.connect(":memory:" if path is None else str(path)))
        except BaseException as err:
            box.append(err)

    opener = threading.Thread(target=run, name="duckdb-open")
    opener.start()
    opener.join()
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]
