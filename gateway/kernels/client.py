"""The ZMQ side: jupyter_client's asyncio client, one execution at a time.

`KernelConnection.execute()` sends an execute_request and gathers its iopub output until the
kernel reports idle, capping stdout/stderr (head and tail kept) so gateway memory stays bounded,
and racing every wait against the sandbox's death.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final

import orjson
import zmq
from jupyter_client.asynchronous.client import AsyncKernelClient

from gateway.kernels.channels import CurveKeys
from gateway.kernels.errors import KernelDied
from gateway.kernels.provisioner import ExitStatus
from gateway.kernels.relay import JUPYTER_QUEUE, KernelRelay, gateway_side, jupyter_routes
from gateway.kernels.types import ConnectionInfo, ExecutionResult
from gateway.kernels.unpack import StreamPieces, unpack_in_pieces

_log = logging.getLogger(__name__)
MEDIA_TYPES: Final = ("image/png", "image/jpeg", "image/svg+xml")
# Messages buffered per channel while nobody collects (e.g. output of a background thread).
_QUEUE_LIMIT: Final = 10_000
# iopub messages kept that belong to no running execution (kernel_info's status, a thread's
# output between cells): a few, and small; `idle_output_bytes` bounds their bytes.
_IDLE_LIMIT: Final = 100
# Smaller messages of the running execution are always queued (status, execute_input, a line of
# output): they carry the control flow. Larger ones count against the busy byte budget.
_SMALL_MESSAGE: Final = 4096
# iopub messages at least this large are verified and unpacked in a worker thread
_THREAD_DESERIALIZE: Final = 256 * 1024
# a parent header (msg_id, session, username, date, msg_type, version) is a few hundred bytes
_MAX_PARENT_HEADER: Final = 16 * 1024
_DIED: Final = object()  # sentinel the death watcher puts in every queue

type OnEvent = Callable[[str, dict[str, Any]], Awaitable[None]]


def _deserialize_large(session: Any, parts: list[Any]) -> dict[str, Any]:
    """A large iopub message, verified and unpacked (in a worker thread), its long strings
    decoded a piece at a time (`unpack_in_pieces`: the GIL is never held for long); a stream
    message's text stays in pieces. Content it cannot take apart, and messages of another
    protocol version (adapted by jupyter_client), are unpacked whole as before."""
    if len(parts[1]) > _MAX_PARENT_HEADER or not _is_v5(session.unpack(parts[1].bytes)):
        whole: dict[str, Any] = session.deserialize(parts, content=True, copy=False)
        return whole
    msg: dict[str, Any] = session.deserialize(parts, content=False, copy=False)
    raw = msg["content"]
    try:
        content = unpack_in_pieces(raw, stream=msg["msg_type"] == "stream")
    except orjson.JSONDecodeError:
        content = None  # jupyter_client's unpacker falls back to json (NaN, say): so do we
    msg["content"] = session.unpack(raw) if content is None else content
    if session.auth is not None:  # replay protection, as deserialize(content=True) keeps it
        session._add_digest(bytes(parts[0]))
    return msg


def _well_formed(msg: Any) -> bool:
    """A message the gateway can read: its header, parent header and content are objects (the
    kernel signs whatever it likes, and jupyter_client passes any JSON through)."""
    return isinstance(msg, dict) and all(
        isinstance(msg.get(part), dict) for part in ("header", "parent_header", "content")
    )


def _is_v5(header: Any) -> bool:
    """A protocol 5 header (others are adapted by `Session.deserialize`)."""
    return isinstance(header, dict) and str(header.get("version", "")).startswith("5.")


class _RelayedClient(AsyncKernelClient):
    """A client of the kernel's message relay (relay.py), never of the kernel itself: each
    channel's url is the relay's private socket, never a path in a directory the kernel can
    write, nor the kernel's address."""

    relay: KernelRelay | None = None
    max_message: int = 0

    def _make_url(self, channel: str) -> str:
        assert self.relay is not None
        return self.relay.url(channel)

    def _create_connected_socket(self, channel: str, identity: bytes | None = None) -> Any:
        """The relay's end of each channel is a DEALER (iopub: PUSH, so the gateway's is a
        PULL: no subscription), without Curve (the relay speaks it to the kernel), with the
        relay's options (`relay.gateway_side`)."""
        sock = self.context.socket(zmq.PULL if channel == "iopub" else zmq.DEALER)
        gateway_side(sock, queue=JUPYTER_QUEUE, max_message=self.max_message)
        if identity:
            sock.setsockopt(zmq.IDENTITY, identity)
        sock.connect(self._make_url(channel))
        return sock

    def connect_iopub(self, identity: bytes | None = None) -> Any:
        return self._create_connected_socket("iopub", identity)

    def stop_channels(self) -> None:
        """Stop the channels that were started. jupyter_client's own would first make (and
        connect) the stdin and heartbeat channels, just to ask whether they run."""
        for channel in (
            self._shell_channel,
            self._iopub_channel,
            self._stdin_channel,
            self._hb_channel,
            self._control_channel,
        ):
            if channel is not None and channel.is_alive():
                channel.stop()
        if self._created_context and not self.context.closed:
            self.context.destroy(linger=100)


async def _noop(event: str, data: dict[str, Any]) -> None:
    return None


class KernelConnection:
    """A connected client for one kernel; `died` resolves when its sandbox exits."""

    def __init__(
        self,
        info: ConnectionInfo,
        *,
        urls: Callable[[], dict[str, str]],
        relay: KernelRelay,
        output_cap: int,
        max_media_bytes: int,
        max_message_bytes: int,
        max_media_total_bytes: int = 32 << 20,
        idle_output_bytes: int = 1 << 20,
    ) -> None:
        self._client = _RelayedClient()
        self._client.relay = relay
        self._client.max_message = max_message_bytes
        self._relay = relay
        self._kernel_urls = urls  # the kernel's own (and its Curve keys): the relay's business
        secret = dict(info).get("curve_secretkey")  # tcp kernels: the relay is a Curve client
        self._curve = CurveKeys.from_secret(str(secret)) if secret else None
        self._client.load_connection_info(dict(info))  # type: ignore[arg-type]
        self._output_cap = output_cap
        self._max_media = max_media_bytes
        self._max_message = max_message_bytes
        self._max_media_total = max_media_total_bytes
        self._idle_bytes = idle_output_bytes
        self._busy_bytes = max(2 * max_message_bytes, idle_output_bytes)
        self.died: asyncio.Future[ExitStatus] = asyncio.get_running_loop().create_future()
        self._iopub: asyncio.Queue[Any] = asyncio.Queue(maxsize=_QUEUE_LIMIT)
        # (bytes, belongs to the running execution) per queued iopub item, in queue order
        self._iopub_sizes: deque[tuple[int, bool]] = deque()
        self._iopub_bytes = 0
        self._idle_queued = 0
        self._current: ExecutionResult | None = None  # the execution whose output is kept
        self.idle_dropped = 0  # iopub messages of no running execution, dropped
        self._shell: asyncio.Queue[Any] = asyncio.Queue(maxsize=_QUEUE_LIMIT)
        self._control: asyncio.Queue[Any] = asyncio.Queue(maxsize=_QUEUE_LIMIT)
        self._readers: list[asyncio.Task[None]] = []

    async def start(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109 - bounds each wait inside (kernel replies race its death), not the caller
        """Open channels; ready once a kernel_info_reply arrives AND iopub carries its status.

        The iopub check matters: a SUB socket that has not finished subscribing silently drops
        what the kernel publishes (ZMQ's slow joiner), and the first cell would then wait out
        its whole timeout for an `idle` that never comes. jupyter_client's own wait_for_ready
        does the same.
        """
        client = self._client
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # the relay connects to the kernel's sockets (their urls are known by now)
        routes = jupyter_routes(
            self._kernel_urls(), max_message=self._max_message, curve=self._curve
        )
        await self._relay.open(routes, timeout)
        # no stdin (input is never allowed) and no heartbeat (the sandbox's exit is watched)
        client.start_channels(stdin=False, hb=False)
        self._readers = [
            asyncio.create_task(self._read_iopub()),
            asyncio.create_task(self._read(client.get_shell_msg, self._shell)),
            asyncio.create_task(self._read(client.get_control_msg, self._control)),
        ]
        self.died.add_done_callback(self._wake_readers)
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            msg_id = client.kernel_info()
            try:
                reply = await self._reply(self._shell, msg_id, min(1.0, remaining))
                await self._next(self._iopub, 0.5)
            except TimeoutError:
                continue  # not answering yet, or iopub not subscribed yet: ask again
            content: dict[str, Any] = reply["content"]
            return content

    def close(self) -> None:
        """Stop the channel readers and close the ZMQ sockets (the manager's release calls it
        once)."""
        for reader in self._readers:
            reader.cancel()
        self._client.stop_channels()

    def _put(
        self, queue: asyncio.Queue[Any], item: Any, size: int = 0, *, busy: bool = True
    ) -> None:
        if queue.full():
            queue.get_nowait()  # nobody is listening: drop the oldest, stay bounded
            self._removed(queue)
        queue.put_nowait(item)
        if queue is self._iopub:
            self._iopub_sizes.append((size, busy))
            self._iopub_bytes += size
            self._idle_queued += not busy

    def _removed(self, queue: asyncio.Queue[Any]) -> None:
        """Account for the item just taken from `queue` (the oldest)."""
        if queue is self._iopub:
            size, busy = self._iopub_sizes.popleft()
            self._iopub_bytes -= size
            self._idle_queued -= not busy

    def _admit(self, size: int, *, busy: bool) -> bool:
        """Whether an iopub message of `size` bytes may be queued. Messages of the running
        execution may use up to two of the largest messages' worth of queue; others get a
        few small places (`idle_output_bytes`), so a kernel thread publishing between cells
        cannot make the gateway hold its output until the next execute."""
        if busy:
            return size <= _SMALL_MESSAGE or self._iopub_bytes + size <= self._busy_bytes
        return self._idle_queued < _IDLE_LIMIT and self._iopub_bytes + size <= self._idle_bytes

    async def _read_iopub(self) -> None:
        """The iopub reader: peeks at each message's parent header before unpacking its content,
        so output nobody will collect is dropped (and counted) unparsed."""
        channel = self._client.iopub_channel
        session = self._client.session
        while True:
            try:
                frames = await channel.socket.recv_multipart(copy=False)
                size = sum(len(frame) for frame in frames)
                _, parts = session.feed_identities(frames, copy=False)
                if len(parts) < 5 or len(parts[2]) > _MAX_PARENT_HEADER:
                    # a real parent header is a few hundred bytes: never parse a huge one
                    self.idle_dropped += 1
                    continue
                parent = session.unpack(parts[2].bytes).get("msg_id")
                current = self._current
                busy = current is not None and not current.idle and parent == current.msg_id
                if not self._admit(size, busy=busy):
                    if busy:
                        assert current is not None
                        current.messages_dropped += 1
                    else:
                        self.idle_dropped += 1
                    continue
                if size > _THREAD_DESERIALIZE:
                    # Checking the signature of a large message (hashlib releases the GIL) and
                    # unpacking it would hold the event loop for tens of milliseconds.
                    msg = await asyncio.to_thread(_deserialize_large, session, parts)
                else:
                    msg = session.deserialize(parts, content=True, copy=False)
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.warning("dropped an unreadable kernel message", exc_info=True)
                continue
            if not _well_formed(msg):
                _log.warning("dropped a kernel message of the wrong shape")
                continue
            self._put(self._iopub, msg, size, busy=busy)

    async def _read(
        self, get: Callable[[], Awaitable[dict[str, Any]]], queue: asyncio.Queue[Any]
    ) -> None:
        """One long-lived reader per channel: no task per message, one place to stop."""
        while True:
            try:
                msg = await get()
            except asyncio.CancelledError:
                raise
            except Exception:
                _log.warning("dropped an unreadable kernel message", exc_info=True)
                continue
            if not _well_formed(msg):
                _log.warning("dropped a kernel message of the wrong shape")
                continue
            self._put(queue, msg)

    def _wake_readers(self, _: asyncio.Future[ExitStatus]) -> None:
        for queue in (self._iopub, self._shell, self._control):
            self._put(queue, _DIED)

    async def _next(self, queue: asyncio.Queue[Any], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109 - bounds each wait inside (kernel replies race its death), not the caller
        async with asyncio.timeout(timeout):
            item = await queue.get()
        self._removed(queue)
        if item is _DIED:
            self._put(queue, _DIED)  # every later reader sees it too
            status = self.died.result()
            raise KernelDied(exit_code=status.exit_code, oom_killed=status.oom_killed)
        msg: dict[str, Any] = item
        return msg

    async def _reply(
        self,
        queue: asyncio.Queue[Any],
        msg_id: str,
        timeout: float,  # noqa: ASYNC109 - bounds each wait inside (kernel replies race its death), not the caller
    ) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                msg = await self._next(queue, timeout)
                if msg["parent_header"].get("msg_id") == msg_id:
                    return msg

    def execute(self, code: str, user_expressions: dict[str, str]) -> ExecutionResult:
        """Send an execute_request for `code` (with `user_expressions`) and return the record
        its output is collected into; the reply is read by `collect()`."""
        msg_id = self._client.execute(
            code,
            silent=False,
            store_history=True,
            user_expressions=user_expressions,
            allow_stdin=False,
            stop_on_error=False,
        )
        run = ExecutionResult(msg_id=msg_id, output_cap=self._output_cap)
        self._current = run  # set before any reply can be read: this loop runs the reader
        return run

    async def collect(
        self, run: ExecutionResult, *, deadline: float, on_event: OnEvent = _noop
    ) -> ExecutionResult:
        """Read iopub until idle and the shell reply, or until `deadline` (loop time).

        Raises TimeoutError at the deadline (run keeps what arrived) and KernelDied.
        """
        loop = asyncio.get_running_loop()
        while not run.idle:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            msg = await self._next(self._iopub, remaining)
            if msg["parent_header"].get("msg_id") != run.msg_id:
                continue
            await self._handle(run, msg, on_event)
        if self._current is run:
            self._current = None  # after idle, output of this cell (a thread's) is not kept
        while not run.replied:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError
            reply = await self._reply(self._shell, run.msg_id, remaining)
            content = reply["content"]
            run.replied = True
            run.status = content.get("status", run.status)
            run.execution_count = content.get("execution_count", run.execution_count)
            run.user_expressions = content.get("user_expressions") or {}
        return run

    async def _handle(self, run: ExecutionResult, msg: dict[str, Any], on_event: OnEvent) -> None:
        kind = msg["msg_type"]
        content = msg["content"]
        if kind == "stream":
            name = "stderr" if content.get("name") == "stderr" else "stdout"
            raw = content.get("text", "")
            pieces = raw if isinstance(raw, StreamPieces) else (str(raw),)
            for text in pieces:  # a large message's text comes in pieces (unpack.py)
                (run.stderr_buffer if name == "stderr" else run.stdout_buffer).add(text)
                if text:
                    await on_event(name, {"text": text})
        elif kind in {"execute_result", "display_data"}:
            data = self._admit_media(run, content.get("data") or {})
            run.result = data
            if kind == "display_data":  # the cell's own value comes once, in the final result
                await on_event("display", {"data": data})
        elif kind == "error":
            run.status = "error"
            run.error_name = content.get("ename")
            run.error_value = content.get("evalue")
            run.traceback = list(content.get("traceback") or [])
        elif kind == "execute_input":
            run.execution_count = content.get("execution_count")
        elif kind == "status" and content.get("execution_state") == "idle":
            run.idle = True

    def _admit_media(self, run: ExecutionResult, data: dict[str, Any]) -> dict[str, Any]:
        """Keep each image while the execution's images stay within `max_media_total_bytes`
        (and it within `max_media_bytes`); the others are removed from `data` too (the result
        and the stream event) and counted in `run.media_dropped`."""
        kept = dict(data)
        for mime in MEDIA_TYPES:
            value = data.get(mime)
            if not isinstance(value, str):
                continue
            if len(value) > self._max_media or run.media_bytes + len(value) > self._max_media_total:
                del kept[mime]
                run.media_dropped += 1
                continue
            run.media_bytes += len(value)
            run.media.append({"mime_type": mime, "data": value})
        return kept

    async def evaluate(self, expressions: dict[str, str], timeout: float) -> dict[str, Any]:  # noqa: ASYNC109 - bounds each wait inside (kernel replies race its death), not the caller
        """Evaluate user_expressions in a silent execution (no count, no broadcast).

        IPython skips user_expressions when a cell fails; this gets them anyway.
        """
        msg_id = self._client.execute(
            "",
            silent=True,
            store_history=False,
            user_expressions=expressions,
            allow_stdin=False,
        )
        reply = await self._reply(self._shell, msg_id, timeout)
        found = reply["content"].get("user_expressions")  # content: a dict (_well_formed)
        return found if isinstance(found, dict) else {}

    async def interrupt(self, timeout: float) -> bool:  # noqa: ASYNC109 - bounds each wait inside (kernel replies race its death), not the caller
        """interrupt_request on the control channel; True when the kernel acknowledged."""
        msg = self._client.session.msg("interrupt_request", {})
        self._client.control_channel.send(msg)
        try:
            await self._reply(self._control, msg["header"]["msg_id"], timeout)
        except TimeoutError:
            return False
        return True
