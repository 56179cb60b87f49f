"""Kernel-side helpers of Notebook Gateway, imported when the kernel starts.

- `describe(value)`: what the gateway reports for a variable (type; shape and columns of
  data frames), returned as JSON through `_repr_json_` so user_expressions carry it structured.
- Output caps: stdout/stderr keep the first `HEAD` and last `TAIL` characters of each cell's
  output, with a marker in between, so a cell that prints gigabytes never ships them.
- `hogql_execute(query, placeholders=None, timeout=30)`: HogQL for this notebook's project, as a
  pandas DataFrame, through a ZMQ socket the gateway binds in its part of the run directory
  (`gateway/bridge`); the Arrow result comes back in the reply itself.
- `export_frame(...)`: a slice of a data frame written as an Arrow IPC stream into a pipe in the
  kernel's run directory, for `GET kernel/dataframe`. The gateway calls it from a silent
  execution: the execution count does not move and nothing is printed into the notebook.
"""

from __future__ import annotations

import collections
import json
import os
import re
import struct
import sys
from typing import Any

HEAD = int(os.environ.get("GATEWAY_OUTPUT_HEAD_CHARS", str(512 * 1024)))
TAIL = int(os.environ.get("GATEWAY_OUTPUT_TAIL_CHARS", str(512 * 1024)))
TRUNCATION_MARKER = "\n[… {omitted} characters truncated by the gateway …]\n"


class _Description:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def _repr_json_(self) -> dict[str, Any]:
        return self.data

    def __repr__(self) -> str:
        return repr(self.data)


def _frame_shape(value: Any) -> tuple[list[int], list[str]] | None:
    module = type(value).__module__.split(".")[0]
    try:
        if module == "pandas" and hasattr(value, "columns"):
            return list(value.shape), [str(c) for c in value.columns]
        if module == "polars" and hasattr(value, "columns"):
            return list(value.shape), list(value.columns)
        if module == "pyarrow" and hasattr(value, "schema"):
            return [value.num_rows, value.num_columns], list(value.schema.names)
        if module == "duckdb" and hasattr(value, "columns"):
            return [len(value), len(value.columns)], list(value.columns)
    except Exception:
        return None
    return None


def describe(value: Any) -> _Description:
    data: dict[str, Any] = {"status": "ok", "type": type(value).__name__}
    shape = _frame_shape(value)
    if shape is not None:
        data["shape"], data["columns"] = shape
    return _Description(data)


FRAMES_DIR = "/run/kernel/gateway"  # the gateway's part of the run dir: read-only for us


def _as_arrow(value: Any) -> Any:
    """pandas, polars, pyarrow (Table, RecordBatch) and DuckDB relations → a pyarrow Table."""
    import pyarrow as pa  # noqa: PLC0415 - only when a frame is asked for

    module = type(value).__module__.split(".")[0]
    if isinstance(value, pa.Table):
        return value
    if isinstance(value, pa.RecordBatch):
        return pa.Table.from_batches([value])
    if module == "pandas" and hasattr(value, "columns"):
        return pa.Table.from_pandas(value, preserve_index=False)
    if module == "polars" and hasattr(value, "to_arrow"):
        return value.to_arrow()
    if module == "duckdb" and hasattr(value, "columns"):
        table = value.arrow()
        return table.read_all() if hasattr(table, "read_all") else table
    return None


def _frame_slice(
    value: Any, *, offset: int, limit: int, columns: list[str] | None, max_bytes: int
) -> tuple[dict[str, Any], Any]:
    """The slice to export and its header, or an error header and None."""
    table = _as_arrow(value)
    if table is None:
        return {"status": "error", "error": "not_a_frame", "type": type(value).__name__}, None
    total = table.num_rows
    if columns is not None:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            return {"status": "error", "error": "unknown_columns", "columns": missing}, None
        table = table.select(columns)
    page = table.slice(min(offset, total), limit)
    if page.nbytes > max_bytes:
        return {"status": "error", "error": "too_large", "bytes": page.nbytes}, None
    header = {"status": "ok", "total": total, "rows": page.num_rows, "columns": page.column_names}
    return header, page


def export_frame(
    value: Any,
    *,
    offset: int,
    limit: int,
    columns: list[str] | None,
    max_bytes: int,
    name: str,
    frames_dir: str = FRAMES_DIR,
) -> _Description:
    """Write `value[offset:offset+limit]` (and `columns`) to the pipe `frames_dir/name`, which
    the gateway made and is reading: a 4-byte length, a JSON header, then Arrow IPC."""
    import pyarrow as pa  # noqa: PLC0415

    header, page = _frame_slice(
        value, offset=offset, limit=limit, columns=columns, max_bytes=max_bytes
    )
    encoded = json.dumps(header).encode()
    try:
        # O_WRONLY without O_CREAT: only the gateway's pipe, never a new file
        fd = os.open(os.path.join(frames_dir, name), os.O_WRONLY)
        with os.fdopen(fd, "wb", buffering=1 << 20) as sink:
            sink.write(struct.pack("<I", len(encoded)) + encoded)
            if page is not None:
                with pa.ipc.new_stream(sink, page.schema) as writer:
                    writer.write_table(page, max_chunksize=65536)
    except (BrokenPipeError, FileNotFoundError):
        return _Description({"status": "error", "error": "reader_gone"})
    return _Description(header)


class HogQLError(Exception):
    """A HogQL query the gateway refused or could not run (the message says why)."""


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SCALARS = (str, int, float, bool, type(None))


def hogql_execute(
    query: str, placeholders: dict[str, Any] | None = None, timeout: float = 30
) -> Any:
    """Run HogQL for this notebook's project through the gateway; a pandas DataFrame back.

    `{name}` placeholders not given in `placeholders` are taken from the notebook's globals
    (strings, numbers, booleans, and lists, tuples or sets of them). The request and the Arrow
    result travel over a unix socket in the run directory: the sandbox has no network.
    """
    import pyarrow as pa  # noqa: PLC0415
    import zmq  # noqa: PLC0415

    values = dict(placeholders or {})
    caller = sys._getframe(1).f_globals
    for name in _PLACEHOLDER.findall(query):
        if name in values or name not in caller:
            continue
        value = caller[name]
        if isinstance(value, _SCALARS):
            values[name] = value
        elif isinstance(value, list | tuple | set) and all(isinstance(v, _SCALARS) for v in value):
            values[name] = list(value)
    run_dir = os.environ.get("GATEWAY_RUN_DIR", "/run/kernel")
    socket = zmq.Context.instance().socket(zmq.REQ)
    socket.setsockopt(zmq.LINGER, 0)
    try:
        socket.connect(f"ipc://{run_dir}/gateway/bridge")
        socket.send_json({"query": query, "placeholders": values})
        if not socket.poll(int(timeout * 1000)):
            msg = f"hogql_execute: no answer from the gateway within {timeout:g} s"
            raise TimeoutError(msg)
        frames = socket.recv_multipart(copy=False)
    finally:
        socket.close()
    reply = json.loads(frames[0].bytes)
    if not reply.get("ok") or len(frames) < 2:
        raise HogQLError(reply.get("error", "HogQL query failed"))
    table = pa.ipc.open_stream(pa.py_buffer(frames[1].buffer)).read_all()
    return table.to_pandas()


class _CappedStream:
    """Wraps ipykernel's OutStream: passes the head through, keeps a tail, drops the middle."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._reset()

    def _reset(self) -> None:
        self._written = 0
        self._tail: collections.deque[str] = collections.deque()
        self._tail_len = 0

    def write(self, text: str) -> int:
        length = len(text)
        room = HEAD - self._written
        if room > 0:
            self._stream.write(text[:room])
            text = text[room:]
        if text:
            self._tail.append(text)
            self._tail_len += len(text)
            while self._tail and self._tail_len - len(self._tail[0]) >= TAIL:
                self._tail_len -= len(self._tail.popleft())
        self._written += length
        return length

    def finish_cell(self) -> None:
        if self._tail:
            tail = "".join(self._tail)[-TAIL:]
            omitted = self._written - HEAD - len(tail)
            if omitted > 0:
                self._stream.write(TRUNCATION_MARKER.format(omitted=omitted))
            self._stream.write(tail)
        self._reset()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def setup() -> None:
    """Install the output caps (called once, from the kernel's exec_lines)."""
    try:
        shell = get_ipython()  # type: ignore[name-defined]
    except NameError:
        return
    capped = []
    for name in ("stdout", "stderr"):
        stream = _CappedStream(getattr(sys, name))
        setattr(sys, name, stream)
        capped.append(stream)

    def finish(*_: Any) -> None:
        for stream in capped:
            stream.finish_cell()
            stream.flush()

    shell.events.register("post_execute", finish)
    shell.user_ns["hogql_execute"] = hogql_execute
    shell.user_ns["HogQLError"] = HogQLError


setup()
