"""Kernel-side helpers of Notebook Gateway, imported when the kernel starts.

- `describe(value)`: what the gateway reports for a variable (type; shape and columns of
  data frames), returned as JSON through `_repr_json_` so user_expressions carry it structured.
- Output caps: stdout/stderr keep the first `HEAD` and last `TAIL` characters of each cell's
  output, with a marker in between, so a cell that prints gigabytes never ships them.
- `hogql_execute(query, placeholders=None, timeout=30)`: HogQL for this notebook's project, as a
  pandas DataFrame, through the gateway's bridge channel; the Arrow result comes back in the
  reply itself.
- `export_frame(...)`: a slice of a data frame sent as an Arrow IPC stream over the gateway's
  frames channel (in chunks, no faster than the gateway takes them), for
  `GET kernel/dataframe`. The gateway calls it from a silent execution: the execution count
  does not move and nothing is printed into the notebook.

Channels (`GATEWAY_TRANSPORT`): with `ipc` the gateway binds `gateway/bridge` and
`gateway/frames` in the run directory and these helpers connect; with `tcp` the kernel can
reach nothing, so it listens on both ports itself at start-up and the gateway connects: the
bridge as a CurveZMQ server with the kernel's own key from its connection file; the frames
port as plain TCP, one connection per export, on which the kernel sends a challenge and the
gateway answers `[name, N, proof]`, then every message sealed with AES-256-GCM under a key
derived from the kernel's Curve secret (the gateway's gateway/kernels/frames_seal.py says how,
and these rules must match it); there TCP's flow control is the credit.
`python -m gateway_kernel` starts a tcp kernel: it writes the connection info from
`GATEWAY_CONNECTION` into the tmpfs and starts ipykernel on it (no file is shared with the
host).
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import sys
import uuid
from collections.abc import Iterator
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


CHUNK = 4 << 20  # bytes of Arrow stream per message (ipc: the gateway grants 4 at a time)
BATCH_BYTES = 16 << 20  # aim of an exported record batch: few, large writes, bounded for readers
_BOUND: dict[str, Any] = {}  # tcp: the sockets this kernel bound at start-up, by channel
_SEAL_LABEL = b"notebook-gateway frames key 1\x00"  # as gateway/kernels/frames_seal.py
_TAG = 16
_CONNECTED: dict[tuple[str, int], Any] = {}  # ipc: one connected socket per channel and process


def _channel(name: str, timeout: float) -> tuple[Any, bool]:
    """A DEALER socket on the gateway's channel `name` (tcp frames: the `_SealedFrames`
    listener), and whether the caller closes it. Sockets are kept for the next call (no
    connect per request; callers drain what an abandoned request left), one per process: a
    forked child makes its own."""
    import zmq  # noqa: PLC0415

    if name in _BOUND:
        return _BOUND[name], False
    key = (name, os.getpid())
    socket = _CONNECTED.get(key)
    if socket is None or socket.closed:
        run_dir = os.environ.get("GATEWAY_RUN_DIR", "/run/kernel")
        socket = zmq.Context.instance().socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 1000)
        socket.connect(f"ipc://{run_dir}/gateway/{name}")
        _CONNECTED[key] = socket
    socket.setsockopt(zmq.SNDTIMEO, int(timeout * 1000))
    return socket, False


def _bind_channels() -> None:
    """tcp: listen on the bridge port (a CurveZMQ server) and the frames port (sealed
    messages); the gateway connects to both."""
    if os.environ.get("GATEWAY_TRANSPORT") != "tcp" or _BOUND:
        return
    import zmq  # noqa: PLC0415
    from ipykernel.kernelapp import IPKernelApp  # noqa: PLC0415

    app = IPKernelApp.instance()
    ports = json.loads(os.environ.get("GATEWAY_CHANNEL_PORTS", "{}"))
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 1000)
    if app.curve_secretkey is not None:
        socket.curve_secretkey = app.curve_secretkey
        socket.curve_publickey = app.curve_publickey
        socket.curve_server = True
    socket.bind(f"tcp://0.0.0.0:{int(ports['bridge'])}")
    _BOUND["bridge"] = socket
    _BOUND["frames"] = _SealedFrames(int(ports["frames"]), app.curve_secretkey or b"")


class _SealedFrames:
    """tcp: the frames port; `link(name)` is export `name`'s connection, sealed.

    A thread of its own takes every connection as it arrives (so none waits in the queue: a
    gateway that gave up an export, or whose export never reached this helper, leaves its
    connection behind) and challenges it; the gateway's answer names its export and proves
    the frames key for this connection only. Answered connections wait for their export's
    helper, the first per name and a few at most (the oldest goes first); anything else is
    closed. Keys are derived as gateway/kernels/frames_seal.py derives them."""

    HELD = 4
    ANSWER_S = 3.0  # one connection's time to answer (the gateway's thread waits for it)

    def __init__(self, port: int, curve_secret: bytes) -> None:
        import hashlib  # noqa: PLC0415
        import socket  # noqa: PLC0415
        import threading  # noqa: PLC0415

        if not curve_secret:
            raise RuntimeError("a tcp kernel without its Curve secret")
        self._key = hashlib.sha256(_SEAL_LABEL + curve_secret).digest()
        self._listener = socket.create_server(("0.0.0.0", port), backlog=16)
        self._held: collections.OrderedDict[bytes, _SealedLink] = collections.OrderedDict()
        self._arrived = threading.Condition()
        threading.Thread(target=self._take, name="gateway-frames", daemon=True).start()

    def _derive(self, purpose: bytes, *parts: bytes) -> bytes:
        import hmac  # noqa: PLC0415

        return hmac.digest(self._key, purpose + b"\x00" + b"\x00".join(parts), "sha256")

    def _take(self) -> None:
        import time  # noqa: PLC0415

        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                found = self._greet(raw, time.monotonic() + self.ANSWER_S)
            except (OSError, ValueError, EOFError):
                found = None
            if found is None:
                raw.close()
                continue
            link = _SealedLink(raw, found[1])
            with self._arrived:
                if found[0] in self._held:  # the first connection of a name is the one kept
                    link.close()
                    continue
                self._held[found[0]] = link
                while len(self._held) > self.HELD:
                    self._held.popitem(last=False)[1].close()
                self._arrived.notify_all()

    def link(self, name: bytes, timeout: float) -> _SealedLink | None:
        """Export `name`'s connection, or None when it is not there within `timeout`."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: name in self._held, timeout):
                return None
            link = self._held.pop(name)
        link.settimeout(timeout)  # per piece sent: a gateway that stops reading
        return link

    def close(self) -> None:
        """Stop listening (its thread ends) and close what waits."""
        import socket  # noqa: PLC0415

        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._arrived:
            for link in self._held.values():
                link.close()
            self._held.clear()

    def _greet(self, raw: Any, deadline: float) -> tuple[bytes, bytes] | None:
        """Challenge `raw`; its export's name and data key when the answer proves the frames
        key, else None."""
        import hmac  # noqa: PLC0415
        import time  # noqa: PLC0415

        challenge = os.urandom(16)
        raw.settimeout(max(0.001, deadline - time.monotonic()))
        raw.sendall(challenge)
        answer = _read_answer(raw, deadline)
        if len(answer) != 3 or answer[1] != b"N":
            return None
        name = answer[0]
        proof = hmac.digest(self._derive(b"open", name), challenge, "sha256")
        if not hmac.compare_digest(proof, answer[2]):
            return None
        return name, self._derive(b"data", name, challenge)


def _read_answer(raw: Any, deadline: float) -> list[bytes]:
    """The gateway's answer (a few short ZMTP frames), all of it before `deadline`."""
    import time  # noqa: PLC0415

    def exactly(size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            raw.settimeout(left)
            chunk = raw.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return bytes(data)

    frames: list[bytes] = []
    while True:
        flags, size = exactly(2)
        if flags & ~0x01 or len(frames) >= 4:  # short frames only, no commands
            raise ValueError("not an answer")
        frames.append(exactly(size))
        if not flags & 0x01:
            return frames


class _SealedLink:
    """One export's connection, with the call `_send_frame` makes of a ZMQ socket: each
    message `[name, kind, payload]` goes out as `[name, kind, sealed payload]` under the
    connection's data key, numbered from 0 (the nonce; the gateway counts too), with
    `name + NUL + kind` authenticated."""

    PIECE = 1 << 20  # sent a piece at a time: the timeout is per piece, not per 4 MiB chunk

    credit = float("inf")  # TCP's flow control stands for the gateway's credit

    def __init__(self, raw: Any, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

        self._raw = raw
        self._aead = AESGCM(key)
        self._count = 0
        self._sealed = bytearray()  # reused: a chunk is sent before the next is sealed

    def settimeout(self, timeout: float) -> None:
        self._raw.settimeout(timeout)

    def send_multipart(self, frames: list[Any], *, copy: bool = True, flags: int = 0) -> None:
        import struct  # noqa: PLC0415

        name, kind = bytes(frames[0]), bytes(frames[1])
        payload = memoryview(frames[2] if len(frames) > 2 else b"").cast("B")
        size = len(payload) + _TAG
        if len(self._sealed) < size:
            self._sealed = bytearray(size)
        sealed = memoryview(self._sealed)[:size]
        nonce = self._count.to_bytes(12, "big")
        self._aead.encrypt_into(nonce, payload, name + b"\x00" + kind, sealed)
        self._count += 1
        head = bytearray()
        for frame in (name, kind):
            head += bytes((0x01, len(frame))) + frame
        if size < 256:
            self._raw.sendall(head + bytes((0, size)) + sealed)
            return
        self._raw.sendall(head + bytes((0x02,)) + struct.pack(">Q", size))
        for start in range(0, size, self.PIECE):
            self._raw.sendall(sealed[start : start + self.PIECE])

    def close(self) -> None:
        self._raw.close()


@contextlib.contextmanager
def _frames_link(name: bytes, timeout: float) -> Iterator[Any]:
    """Export `name`'s way to the gateway: ipc the frames channel's DEALER (emptied of what an
    abandoned export left), tcp the export's own sealed connection (closed after; None when the
    gateway's connection did not come)."""
    socket, _ = _channel("frames", timeout)
    if not isinstance(socket, _SealedFrames):
        _drain(socket)
        yield socket
        return
    link = socket.link(name, timeout)
    try:
        yield link
    finally:
        if link is not None:
            link.close()


def _drain(socket: Any) -> None:
    """Drop what an earlier, abandoned request left on a long-lived socket."""
    while socket.poll(0):
        socket.recv_multipart()


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


def _numeric_pandas_page(
    value: Any, *, offset: int, limit: int, columns: list[str] | None
) -> tuple[int, Any] | None:
    """(total rows, the page as a pyarrow Table) for a pandas frame whose exported columns are
    all numpy numbers or booleans, converting only the page's rows; None when that does not
    apply (the general path then converts the whole frame). The same table as the general
    path's, cell for cell and type for type: a float column goes through pandas' NaN-as-null
    conversion only when it has a NaN, otherwise Arrow shares its memory."""
    if type(value).__module__.split(".")[0] != "pandas" or not hasattr(value, "iloc"):
        return None
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415

    if not isinstance(value, pd.DataFrame) or type(value.columns) is not pd.Index:
        return None
    names = list(value.columns)
    if not all(type(n) is str for n in names) or len(set(names)) != len(names):
        return None
    if columns is None:
        positions = list(range(len(names)))
    elif len(set(columns)) != len(columns) or not set(columns) <= set(names):
        return None
    else:
        positions = [names.index(c) for c in columns]
    dtypes = list(value.dtypes)
    for i in positions:
        dtype = dtypes[i]
        if not isinstance(dtype, np.dtype) or dtype.kind not in "biuf" or not dtype.isnative:
            return None
    total = len(value)
    start = min(offset, total)
    stop = min(total, start + limit)
    schema = pa.Schema.from_pandas(value.iloc[:0, positions], preserve_index=False)
    arrays = []
    for i in positions:
        values = value.iloc[:, i].to_numpy()[start:stop]
        # a float column's max is NaN exactly when it holds one (np.max propagates NaN; half
        # the time of a sum, which inf - inf also makes NaN)
        has_nan = values.dtype.kind == "f" and len(values) > 0 and bool(np.isnan(values.max()))
        arrays.append(pa.array(values, from_pandas=has_nan))
    return total, pa.Table.from_arrays(arrays, schema=schema)


def _frame_slice(
    value: Any, *, offset: int, limit: int, columns: list[str] | None, max_bytes: int
) -> tuple[dict[str, Any], Any]:
    """The slice to export and its header, or an error header and None."""
    fast = _numeric_pandas_page(value, offset=offset, limit=limit, columns=columns)
    if fast is not None:
        total, page = fast
    else:
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
    # the cap is on the Arrow stream as sent (the gateway holds the stream to it too)
    size = page.nbytes if page.nbytes > max_bytes else stream_size(page)
    if size > max_bytes:
        return {"status": "error", "error": "too_large", "bytes": size}, None
    header = {
        "status": "ok",
        "total": total,
        "rows": page.num_rows,
        "columns": page.column_names,
        "stream_bytes": size,
    }
    return header, page


def export_frame(
    value: Any,
    *,
    offset: int,
    limit: int,
    columns: list[str] | None,
    max_bytes: int,
    name: str,
    timeout: float = 30.0,
) -> _Description:
    """Send `value[offset:offset+limit]` (and `columns`) as export `name` on the frames channel:
    a JSON header, then the Arrow IPC stream in chunks (ipc: each on the gateway's credit;
    tcp: as fast as the gateway reads)."""
    header, page = _frame_slice(
        value, offset=offset, limit=limit, columns=columns, max_bytes=max_bytes
    )
    with _frames_link(name.encode(), timeout) as socket:
        sent = _send_frame(socket, name.encode(), header, page, timeout)
    if not sent:
        return _Description({"status": "error", "error": "reader_gone"})
    return _Description(header)


class _Stopped(Exception):
    """The gateway stopped granting credit (it went away, or said stop)."""


class _CreditSink:
    """A file for pyarrow's IPC writer that sends what it is given as `D` messages of up to
    CHUNK bytes, each only on the gateway's credit: the kernel never holds the whole stream."""

    def __init__(self, socket: Any, name: bytes, wait_ms: int) -> None:
        self._socket = socket
        self._name = name
        self._wait_ms = wait_ms
        self._credit = getattr(socket, "credit", 0)
        self._pending = bytearray()
        self.closed = False

    def _send(self, data: Any, *, copy: bool) -> None:
        while self._credit <= 0:
            if not self._socket.poll(self._wait_ms):
                raise _Stopped
            message = self._socket.recv_multipart()
            if len(message) < 2 or message[0] != self._name:
                continue
            if message[1] == b"S":
                raise _Stopped
            if message[1] == b"C" and len(message) > 2:
                self._credit += int(message[2])
        self._socket.send_multipart([self._name, b"D", data], copy=copy)
        self._credit -= 1

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if len(view) < CHUNK // 4:
            if len(self._pending) + len(view) > CHUNK:
                self.flush()
            self._pending += view
            return len(view)
        self.flush()
        for start in range(0, len(view), CHUNK):
            # Arrow's buffers are immutable: sent without a copy
            self._send(view[start : start + CHUNK], copy=False)
        return len(view)

    def flush(self) -> None:
        if self._pending:
            self._send(bytes(self._pending), copy=True)
            self._pending = bytearray()

    def tell(self) -> int:
        return 0

    def close(self) -> None:
        self.closed = True


def _batch_rows(page: Any) -> int:
    """Rows per record batch: about BATCH_BYTES of the page each (at least 1,024 rows)."""
    per_row = max(1, page.nbytes // max(1, page.num_rows))
    return max(1024, BATCH_BYTES // per_row)


def _write_stream(sink: Any, page: Any) -> None:
    import pyarrow as pa  # noqa: PLC0415

    with pa.ipc.new_stream(sink, page.schema) as writer:
        writer.write_table(page, max_chunksize=_batch_rows(page))


def stream_size(page: Any) -> int:
    """The exact length of the Arrow IPC stream `_write_stream` writes for `page`, from a dry
    run that copies no data; the header carries it so the gateway can send a Content-Length."""
    import pyarrow as pa  # noqa: PLC0415

    counter = pa.MockOutputStream()
    _write_stream(counter, page)
    return int(counter.size())


def _send_frame(
    socket: Any, name: bytes, header: dict[str, Any], page: Any, timeout: float
) -> bool:
    import pyarrow as pa  # noqa: PLC0415
    import zmq  # noqa: PLC0415

    if socket is None:
        return False
    try:
        socket.send_multipart([name, b"H", json.dumps(header).encode()])
        if page is None:
            return True
        sink = _CreditSink(socket, name, int(timeout * 1000))
        _write_stream(pa.PythonFile(sink, mode="w"), page)
        sink.flush()
        socket.send_multipart([name, b"E"])
    except (zmq.Again, _Stopped, OSError):  # OSError: a tcp gateway hung up or stopped reading
        return False
    return True


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
    result travel over the bridge channel (ipc: a unix socket in the run directory; tcp: the
    bridge port, CurveZMQ): the sandbox reaches nothing else.
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
    request_id = uuid.uuid4().hex
    socket, owned = _channel("bridge", timeout)
    try:
        _drain(socket)
        payload = {"query": query, "placeholders": values, "id": request_id}
        socket.send_multipart([b"", json.dumps(payload).encode()])
        frames = _bridge_reply(socket, request_id, timeout)
    except zmq.Again:
        msg = f"hogql_execute: the gateway did not take the query within {timeout:g} s"
        raise TimeoutError(msg) from None
    finally:
        if owned:
            socket.close(linger=0)
    reply = json.loads(frames[0].bytes)
    if not reply.get("ok") or len(frames) < 2:
        raise HogQLError(reply.get("error", "HogQL query failed"))
    table = pa.ipc.open_stream(pa.py_buffer(frames[1].buffer)).read_all()
    return table.to_pandas()


def _bridge_reply(socket: Any, request_id: str, timeout: float) -> list[Any]:
    """The reply frames (JSON, then Arrow) to request `request_id`; earlier ones are dropped."""
    import time  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not socket.poll(int(remaining * 1000)):
            msg = f"hogql_execute: no answer from the gateway within {timeout:g} s"
            raise TimeoutError(msg)
        frames = socket.recv_multipart(copy=False)
        if frames and not frames[0].bytes:
            frames = frames[1:]  # the envelope's empty delimiter
        try:
            found = json.loads(frames[0].bytes).get("id")
        except (ValueError, IndexError, AttributeError):
            continue
        if found in (None, request_id):
            return list(frames)


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
    _bind_channels()


def launch() -> None:
    """tcp kernels: write `GATEWAY_CONNECTION` into the tmpfs (0600) and exec ipykernel on it."""
    info = os.environ.pop("GATEWAY_CONNECTION")
    folder = "/tmp/gateway"  # the container's own size-limited tmpfs
    os.makedirs(folder, mode=0o700, exist_ok=True)
    path = os.path.join(folder, "connection.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(info)
    argv = [
        sys.executable,
        "-m",
        "ipykernel_launcher",
        "--IPKernelApp.exec_lines=import gateway_kernel",
        "--HistoryManager.enabled=False",
        "-f",
        path,
    ]
    os.execv(sys.executable, argv)


if __name__ == "__main__":
    launch()
else:
    setup()
