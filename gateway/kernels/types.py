"""Values shared by the kernel modules: connection info, launch specs, execution results."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NotRequired, TypedDict

if TYPE_CHECKING:
    from gateway.kernels.runtime import KernelRuntime


class ConnectionInfo(TypedDict):
    """jupyter_client's connection-file dict: `load_connection_info` takes it (tcp kernels
    also carry their CurveZMQ key pair, Z85)."""

    transport: str
    ip: str
    shell_port: int
    iopub_port: int
    stdin_port: int
    control_port: int
    hb_port: int
    key: str
    signature_scheme: str
    kernel_name: str
    curve_publickey: NotRequired[str]
    curve_secretkey: NotRequired[str]


def connection_info(
    *,
    transport: str,
    ip: str,
    ports: dict[str, int],
    key: str,
    curve: tuple[bytes, bytes] | None = None,
) -> ConnectionInfo:
    """A kernel's connection info: `ports` by channel name (shell, iopub, stdin, control, hb),
    HMAC-SHA256 signing with `key`, and for tcp its Curve key pair (public, secret; Z85)."""
    info = ConnectionInfo(
        transport=transport,
        ip=ip,
        shell_port=ports["shell"],
        iopub_port=ports["iopub"],
        stdin_port=ports["stdin"],
        control_port=ports["control"],
        hb_port=ports["hb"],
        key=key,
        signature_scheme="hmac-sha256",
        kernel_name="python3",
    )
    if curve is not None:
        info["curve_publickey"] = curve[0].decode("ascii")
        info["curve_secretkey"] = curve[1].decode("ascii")
    return info


@dataclass(frozen=True, kw_only=True)
class Resources:
    """CPU cores and memory (GB) of one kernel's sandbox, from the notebook's config or the
    defaults."""

    cpu_cores: float
    memory_gb: float


@dataclass(frozen=True, kw_only=True)
class KernelLaunchSpec:
    """What a provisioner needs to start one kernel."""

    runtime_id: str
    run_dir: Path
    resources: Resources
    labels: dict[str, str]
    env: dict[str, str]


@dataclass(kw_only=True)
class Timings:
    """Seconds since the start request, per phase."""

    created: float | None = None
    started: float | None = None
    ready: float | None = None


MARKER: Final = "\n[… {omitted} characters truncated by the gateway …]\n"


class CappedText:
    """Keeps the first and last `limit // 2` characters of a stream, counting what it drops."""

    def __init__(self, limit: int) -> None:
        self._half = max(1, limit // 2)
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.total = 0

    def add(self, text: str) -> None:
        """Append output, keeping only the head and the latest tail within the cap."""
        self.total += len(text)
        room = self._half - self._head_len
        if room > 0:
            self._head.append(text[:room])
            self._head_len += min(room, len(text))
            text = text[room:]
        if text:
            self._tail.append(text)
            self._tail_len += len(text)
            while self._tail and self._tail_len - len(self._tail[0]) >= self._half:
                self._tail_len -= len(self._tail.popleft())

    @property
    def truncated(self) -> bool:
        """Whether anything between the head and the tail was dropped."""
        return self.total > self._head_len + self._tail_len or self.total > 2 * self._half

    def text(self) -> str:
        """The kept head, a marker saying how many characters were dropped (if any), and the
        tail."""
        head = "".join(self._head)
        tail = "".join(self._tail)[-self._half :] if self._tail else ""
        omitted = self.total - len(head) - len(tail)
        return head + (MARKER.format(omitted=omitted) if omitted > 0 else "") + tail


@dataclass(kw_only=True)
class ExecutionResult:
    """One execution, the one type from request to response: the kernel connection collects
    the kernel's messages into it (`KernelConnection.execute`/`collect`; output in capped
    buffers), the cell runner finishes it (variables, a timeout's escalation, a death, the
    runtime and times), and the execute route renders it."""

    msg_id: str = ""
    output_cap: int = 1024 * 1024
    status: str = "ok"
    result: dict[str, Any] | None = None
    media: list[dict[str, str]] = field(default_factory=list)
    execution_count: int | None = None
    error_name: str | None = None
    error_value: str | None = None
    traceback: list[str] = field(default_factory=list)
    user_expressions: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    variables_survived: bool | None = None
    oom_killed: bool | None = None
    media_bytes: int = 0
    media_dropped: int = 0  # images left out: over kernel_max_media_(total_)bytes
    messages_dropped: int = 0  # output messages the gateway could not queue (byte bound)
    # collection state, for the connection
    idle: bool = False
    replied: bool = False
    # set when the cell runner finishes it
    runtime: KernelRuntime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    stdout_buffer: CappedText = field(init=False, repr=False)
    stderr_buffer: CappedText = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.stdout_buffer = CappedText(self.output_cap)
        self.stderr_buffer = CappedText(self.output_cap)

    @property
    def stdout(self) -> str:
        """stdout as kept: head, a marker for what was dropped, tail."""
        return self.stdout_buffer.text()

    @property
    def stderr(self) -> str:
        """stderr as kept: head, a marker for what was dropped, tail."""
        return self.stderr_buffer.text()

    @property
    def truncated(self) -> bool:
        """Whether either stream lost its middle to the cap."""
        return self.stdout_buffer.truncated or self.stderr_buffer.truncated
