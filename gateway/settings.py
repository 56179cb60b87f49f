"""Settings: every knob of the gateway, read from the environment in one place.

Each field's help text lives in its metadata; `docs/settings.md` lists every field and a test keeps
the two in step. No other module reads `os.environ`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

_ENV_PREFIX = "GATEWAY_"


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Configuration of one gateway process. Build directly in tests; `from_env()` in `main`."""

    host: str = field(default="127.0.0.1", metadata=_help("Address the HTTP server binds to."))
    port: int = field(default=8000, metadata=_help("TCP port of the HTTP server."))
    data_dir: Path = field(
        default=Path("data"),
        metadata=_help(
            "Directory holding the SQLite database, the secret key and kernel run dirs."
        ),
    )
    public_url: str = field(
        default="",
        metadata=_help(
            "Base URL for absolute `next`/`previous` links; empty: the request's own host."
        ),
    )
    render_cache_mb: int = field(
        default=64, metadata=_help("Memory for rendered notebook bodies served to GET (MB).")
    )
    max_body_bytes: int = field(
        default=10 * 1024 * 1024,
        metadata=_help("Largest accepted request body, in bytes (413 above)."),
    )
    capture_cors_origins: str = field(
        default="*",
        metadata=_help(
            "Browser origins allowed to call capture, `/flags` and `/decide` (comma-separated;"
            " `*`: any, as PostHog's capture)."
        ),
    )
    body_read_timeout_s: float = field(
        default=30.0,
        metadata=_help(
            "Seconds a client has to send a request's whole body, from its headers on (408 after)."
        ),
    )
    header_read_timeout_s: float = field(
        default=75.0,
        metadata=_help(
            "Seconds a connection may sit idle or take to send a request's headers"
            " (aiohttp's keep-alive timeout; the connection is closed after)."
        ),
    )
    secret_key: str = field(
        default="",
        metadata=_help(
            "Key that signs share tokens. Empty: a random key made once in the data directory."
        ),
    )
    share_password_iterations: int = field(
        default=600_000, metadata=_help("PBKDF2-SHA256 iterations for share passwords (≥ 600000).")
    )
    share_token_grace_s: float = field(
        default=300.0, metadata=_help("Seconds an old share link keeps working after a refresh.")
    )
    share_login_max_failures: int = field(
        default=5, metadata=_help("Failed share-password attempts allowed per client and link, ...")
    )
    share_login_window_s: float = field(
        default=300.0, metadata=_help("... within this many seconds; further attempts get 429.")
    )
    shared_query_concurrency: int = field(
        default=2, metadata=_help("HogQL queries one public share link runs at once.")
    )
    shared_query_nodes: int = field(
        default=20,
        metadata=_help("HogQL query nodes a shared page runs; later ones say they were not run."),
    )
    shared_cache_mb: int = field(
        default=32,
        metadata=_help("Memory for shared pages' query results (kept per notebook version), MB."),
    )
    shared_cache_ttl_s: float = field(
        default=300.0,
        metadata=_help("Seconds a shared page's query results are reused before they run again."),
    )
    auth_cache_s: float = field(
        default=5.0,
        metadata=_help(
            "Seconds a verified API key is trusted before it is looked up again (0: off)."
        ),
    )
    collab_max_steps: int = field(
        default=5000, metadata=_help("Collab log entries kept per notebook (older saves get 410).")
    )
    collab_max_streams: int = field(
        default=1000, metadata=_help("Open collab/stream connections per process (503 above).")
    )
    collab_max_streams_per_user: int = field(
        default=20,
        metadata=_help("Open collab/stream connections one user may hold (429 above)."),
    )
    collab_stream_lifetime_s: float = field(
        default=300.0, metadata=_help("Seconds a collab stream stays open; clients then resume.")
    )
    collab_keepalive_s: float = field(
        default=15.0, metadata=_help("Seconds of silence before a `: keepalive` comment.")
    )
    collab_stream_buffer: int = field(
        default=1000,
        metadata=_help("Entries buffered per stream; a consumer further behind is disconnected."),
    )
    kernel_backend: str = field(
        default="docker",
        metadata=_help("`docker` (sandboxed), or `subprocess` (NOT sandboxed; development only)."),
    )
    kernel_image: str = field(
        default="gateway-kernel:latest", metadata=_help("Kernel image (`make image` builds it).")
    )
    kernel_runtime: str = field(
        default="runc",
        metadata=_help(
            "Container runtime: `runc`, or `runsc` (gVisor; `scripts/ensure-gvisor` registers it"
            " with `--network=none --host-uds=all`). Checked at start-up: never a silent fallback."
        ),
    )
    kernel_transport: str = field(
        default="tcp",
        metadata=_help(
            "`tcp` (no shared directory: CurveZMQ, and sealed data frames, over an internal"
            " kernel network the kernel cannot leave; Docker backend, runc; the gateway installs"
            " host firewall rules as root) or `ipc` (ZMQ unix sockets in the kernel's"
            " gateway-owned run directory; needed for gVisor here). See docs/kernels.md."
        ),
    )
    kernel_network: str = field(
        default="gateway-kernels",
        metadata=_help(
            "tcp: the Docker network kernels join (made at start-up: internal, no"
            " inter-container traffic)."
        ),
    )
    kernel_network_bridge: str = field(
        default="gw-kernels",
        metadata=_help("tcp: the host interface name of that network's bridge (≤ 15 chars)."),
    )
    kernel_firewall: str = field(
        default="iptables",
        metadata=_help(
            "tcp: `iptables` (the gateway installs host rules dropping every packet a kernel"
            " sends to the host itself, replies excepted) or `external` (you installed the same"
            " rules where the engine runs, e.g. a remote DOCKER_HOST; docs/kernels.md)."
        ),
    )
    kernel_uid: int = field(default=1000, metadata=_help("Uid/gid kernels run as (never 0)."))
    kernel_cpu_cores: float = field(
        default=1.0, metadata=_help("Default CPU cores of a kernel (notebook config overrides).")
    )
    kernel_cpu_shares: int = field(
        default=256,
        metadata=_help(
            "CPU weight of each kernel among the kernels (Docker's default is 1024); against"
            " the gateway and the host, all kernels together weigh kernel_cgroup_cpu_shares."
            " 2-262144."
        ),
    )
    kernel_cgroup_parent: str = field(
        default="/notebook-kernels",
        metadata=_help(
            "The cgroup every kernel's cgroup goes under (Docker's cgroup_parent; a slice such"
            " as notebook-kernels.slice with systemd's cgroup driver; empty: Docker's own)."
        ),
    )
    kernel_cgroup_cpu_shares: int = field(
        default=512,
        metadata=_help(
            "CPU weight of that parent, i.e. of all kernels together (1024: a default task),"
            " set by the gateway where the engine runs (cgroupfs driver; v2: weight 100 per"
            " 1024); under contention tenants yield to the gateway. 0: left as it is. 2-262144."
        ),
    )
    kernel_memory_gb: float = field(
        default=1.0, metadata=_help("Default memory of a kernel in GB; swap is not allowed.")
    )
    kernel_idle_timeout_s: float = field(
        default=1800.0, metadata=_help("Default seconds without execution before a kernel stops.")
    )
    kernel_max_lifetime_s: float = field(
        default=43200.0, metadata=_help("Hard cap on a kernel's age, in seconds.")
    )
    kernel_cull_interval_s: float = field(
        default=5.0, metadata=_help("How often idle and over-age kernels are looked for.")
    )
    kernel_startup_timeout_s: float = field(
        default=60.0, metadata=_help("Seconds a new kernel has to answer kernel_info.")
    )
    kernel_pool_size: int = field(
        default=1,
        metadata=_help(
            "Ready kernels kept with the default config; `start` takes one (never reused)."
        ),
    )
    kernel_pool_fill_parallel: int = field(
        default=2,
        metadata=_help(
            "Pool kernels started at once while refilling (in the background): a burst of"
            " takes never turns into a burst of starts competing with running kernels."
        ),
    )
    kernel_pool_refill_delay_s: float = field(
        default=1.0,
        metadata=_help(
            "Seconds a refill waits after a start took a pooled kernel: the new owner's first"
            " cells do not share the CPU with the refill's starts (0: at once)."
        ),
    )
    kernel_pids_limit: int = field(default=256, metadata=_help("Processes per kernel container."))
    kernel_run_dir_mb: int = field(
        default=16,
        metadata=_help(
            "Size of each kernel's run directory, its own tmpfs (needs root), in MB; 0: a plain"
            " directory on the data disk, with no quota."
        ),
    )
    kernel_run_dir_inodes: int = field(
        default=1024, metadata=_help("Files and directories a kernel's run directory may hold.")
    )
    kernel_tmpfs_mb: int = field(
        default=256, metadata=_help("Size of each kernel's /tmp and home (tmpfs), in MB.")
    )
    kernel_max_count: int = field(
        default=64, metadata=_help("Kernels this gateway runs at once (503 beyond).")
    )
    kernel_max_per_user: int = field(
        default=4, metadata=_help("Kernels one user may run at once, all projects (429 beyond).")
    )
    kernel_max_per_project: int = field(
        default=16, metadata=_help("Kernels one project's members may run at once (429 beyond).")
    )
    kernel_max_cpu_cores: float = field(
        default=2.0, metadata=_help("Largest `cpu_cores` a `kernel/config` may set (403 above).")
    )
    kernel_max_memory_gb: float = field(
        default=4.0, metadata=_help("Largest `memory_gb` a `kernel/config` may set (403 above).")
    )
    kernel_max_idle_timeout_s: float = field(
        default=10800.0,
        metadata=_help("Largest `idle_timeout_seconds` a `kernel/config` may set (403 above)."),
    )
    kernel_max_cell_bytes: int = field(
        default=1024 * 1024,
        metadata=_help("Largest cell `execute` accepts, UTF-8 bytes (413 above)."),
    )
    kernel_queue_size: int = field(
        default=16, metadata=_help("Executions waiting per kernel before 429.")
    )
    kernel_output_cap_chars: int = field(
        default=1024 * 1024,
        metadata=_help("stdout/stderr kept per execution, head and tail halves, in characters."),
    )
    kernel_max_media_bytes: int = field(
        default=8 * 1024 * 1024, metadata=_help("Largest image (base64) kept in `media`.")
    )
    kernel_max_media_total_bytes: int = field(
        default=32 * 1024 * 1024,
        metadata=_help(
            "Sum of images (base64) kept per execution; further images are dropped and counted."
        ),
    )
    kernel_idle_output_bytes: int = field(
        default=1024 * 1024,
        metadata=_help(
            "Kernel messages outside a running execution held at most, bytes (more are dropped)."
        ),
    )
    kernel_max_message_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_help(
            "Largest ZMQ message (all its frames) a kernel's relay passes on to the gateway;"
            " larger ones are dropped and counted."
        ),
    )
    kernel_relay_memory_mb: int = field(
        default=512,
        metadata=_help(
            "Memory cap of each kernel's message relay process, MiB (its data segment; at least"
            " 6 x the larger of kernel_max_message_bytes and hogql_max_result_bytes + 64 MiB)."
            " A kernel whose messages need more dies."
        ),
    )
    kernel_max_frame_bytes: int = field(
        default=512 * 1024 * 1024,
        metadata=_help("Largest data-frame slice `kernel/dataframe` serves (413 above), bytes."),
    )
    kernel_max_frame_json_bytes: int = field(
        default=8 * 1024 * 1024,
        metadata=_help("Largest slice a JSON `kernel/dataframe` page reads (413 above), bytes."),
    )
    kernel_interrupt_grace_s: float = field(
        default=3.0,
        metadata=_help("Seconds each interrupt step (control message, SIGINT) gets to work."),
    )
    hogql_timeout_s: float = field(
        default=30.0, metadata=_help("Seconds a HogQL query may run before it is stopped.")
    )
    hogql_memory_mb: int = field(
        default=4096,
        metadata=_help(
            "Memory the analytics store (DuckDB, in the gateway process) may use, MiB; a query"
            " needing more fails with a clear error instead of starving the gateway."
        ),
    )
    hogql_max_query_chars: int = field(
        default=100_000, metadata=_help("Longest HogQL query accepted, in characters (400 above).")
    )
    hogql_max_tokens: int = field(
        default=10_000,
        metadata=_help("Most lexical tokens in a HogQL query, counted before parsing (400 above)."),
    )
    hogql_max_depth: int = field(
        default=64,
        metadata=_help("Deepest nesting of brackets in a HogQL query, before parsing (400 above)."),
    )
    hogql_translate_timeout_s: float = field(
        default=3.0,
        metadata=_help(
            "Seconds a HogQL query may take to translate, in a worker process killed after (400)."
        ),
    )
    hogql_translate_workers: int = field(
        default=2, metadata=_help("Worker processes that translate HogQL (started on first use).")
    )
    hogql_translations_per_project: int = field(
        default=1,
        metadata=_help(
            "HogQL translations one project runs at once; more wait their turn (429 after 10 s)."
        ),
    )
    hogql_max_concurrent_queries: int = field(
        default=4,
        metadata=_help("HogQL queries the analytics store runs at once, on threads of its own."),
    )
    hogql_queries_per_project: int = field(
        default=2,
        metadata=_help(
            "HogQL queries one project runs at once; more wait their turn (429 after 10 s)."
        ),
    )
    hogql_max_result_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata=_help(
            "Largest HogQL result the gateway reads, in bytes (Arrow size, or JSON estimate);"
            " reading stops there and the query gets a 400."
        ),
    )
    hogql_materialized_properties: str = field(
        default="$session_id,$window_id,$browser,$os,$device_type,$pathname,$current_url,$host",
        metadata=_help(
            "Events properties kept as typed columns (comma-separated; PostHog's materialized"
            " columns): HogQL reads them without parsing JSON, with the same values. Changing it"
            " adds or drops the columns at the next start."
        ),
    )
    analytics_layout_interval_s: float = field(
        default=30.0,
        metadata=_help(
            "Seconds between background merges of newly written events into the clustered"
            " events table (docs/hogql.md, Storage layout); 0 turns the background work off."
        ),
    )
    process_nice: int = field(
        default=-5,
        metadata=_help(
            "Niceness `serve` gives the gateway (below 0 needs root): its event loop outranks"
            " kernels and HogQL workers for the CPU."
        ),
    )
    process_switch_interval_ms: float = field(
        default=1.0,
        metadata=_help(
            "Python's GIL switch interval that `serve` sets, ms (Python's default is 5): how long"
            " a gateway thread running Python code (HogQL result rows, say) may keep the GIL"
            " while the event loop waits for it, each of the times a request needs it back."
        ),
    )
    log_level: str = field(default="INFO", metadata=_help("Python logging level."))

    @property
    def database_path(self) -> Path:
        """The SQLite database file, `gateway.sqlite3` in `data_dir`."""
        return self.data_dir / "gateway.sqlite3"

    @property
    def kernel_run_root(self) -> Path:
        """Where each kernel's run directory lives (absolute: it is bind-mounted)."""
        return (self.data_dir / "kernels").resolve()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Read `GATEWAY_<FIELD>` variables; a bad value raises ValueError naming the variable."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = _ENV_PREFIX + f.name.upper()
            if key not in environ:
                continue
            raw = environ[key]
            values[f.name] = _cast(key, raw, f.type)
        settings = cls(**values)
        settings.validate()
        return settings

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with `changes` applied (the CLI's `serve` flags); unlike `from_env`, it does not
        call `validate`.
        """
        return replace(self, **changes)

    def validate(self) -> None:
        """Refuse values that would weaken the gateway silently."""
        if self.share_password_iterations < 600_000:
            msg = "GATEWAY_SHARE_PASSWORD_ITERATIONS must be at least 600000."
            raise ValueError(msg)
        if self.kernel_uid == 0:
            msg = "GATEWAY_KERNEL_UID must not be 0: kernels never run as root."
            raise ValueError(msg)
        if self.kernel_backend not in {"docker", "subprocess"}:
            msg = "GATEWAY_KERNEL_BACKEND must be `docker` or `subprocess`."
            raise ValueError(msg)
        self._validate_transport()
        if not 2 <= self.kernel_cpu_shares <= 262_144:
            msg = "GATEWAY_KERNEL_CPU_SHARES must be between 2 and 262144."
            raise ValueError(msg)
        if self.kernel_cgroup_cpu_shares != 0 and not 2 <= self.kernel_cgroup_cpu_shares <= 262_144:
            msg = "GATEWAY_KERNEL_CGROUP_CPU_SHARES must be 0 or between 2 and 262144."
            raise ValueError(msg)
        parent = self.kernel_cgroup_parent
        path = re.fullmatch(r"(/[A-Za-z0-9_.-]{1,64}){1,8}", parent) and not any(
            part in {".", ".."} for part in parent.split("/")
        )
        if (
            parent
            and not path
            and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.slice", parent)
        ):
            msg = (
                "GATEWAY_KERNEL_CGROUP_PARENT must be empty, an absolute cgroup path (/name,"
                " letters, digits, '.', '_', '-'), or a systemd slice (name.slice)."
            )
            raise ValueError(msg)
        self._validate_pool()
        # a relay holds kernel messages and, on the way back, the bridge's HogQL results
        largest = max(self.kernel_max_message_bytes, self.hogql_max_result_bytes)
        if self.kernel_relay_memory_mb << 20 < 6 * largest + (64 << 20):
            msg = (
                "GATEWAY_KERNEL_RELAY_MEMORY_MB must be at least 6 x the larger of"
                " GATEWAY_KERNEL_MAX_MESSAGE_BYTES and GATEWAY_HOGQL_MAX_RESULT_BYTES + 64 MiB"
                " (the messages a relay may hold: a kernel's, and HogQL results for it)."
            )
            raise ValueError(msg)
        if self.max_body_bytes < 1024:
            msg = "GATEWAY_MAX_BODY_BYTES must be at least 1024."
            raise ValueError(msg)
        if self.shared_query_concurrency < 1:
            msg = "GATEWAY_SHARED_QUERY_CONCURRENCY must be at least 1."
            raise ValueError(msg)
        if not 0.05 <= self.process_switch_interval_ms <= 100:
            msg = "GATEWAY_PROCESS_SWITCH_INTERVAL_MS must be between 0.05 and 100."
            raise ValueError(msg)

    def _validate_pool(self) -> None:
        if self.kernel_pool_fill_parallel < 1:
            msg = "GATEWAY_KERNEL_POOL_FILL_PARALLEL must be at least 1."
            raise ValueError(msg)
        if not 0 <= self.kernel_pool_refill_delay_s <= 600:
            msg = "GATEWAY_KERNEL_POOL_REFILL_DELAY_S must be between 0 and 600."
            raise ValueError(msg)

    def _validate_transport(self) -> None:
        """The transport and, for tcp, the names the gateway hands to Docker and iptables (and
        uses in its network lock file's name)."""
        if self.kernel_transport not in {"ipc", "tcp"}:
            msg = "GATEWAY_KERNEL_TRANSPORT must be `ipc` or `tcp`."
            raise ValueError(msg)
        if self.kernel_firewall not in {"iptables", "external"}:
            msg = "GATEWAY_KERNEL_FIREWALL must be `iptables` or `external`."
            raise ValueError(msg)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", self.kernel_network):
            msg = "GATEWAY_KERNEL_NETWORK must be 1-63 letters, digits, '.', '_' or '-'."
            raise ValueError(msg)
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", self.kernel_network_bridge):
            msg = "GATEWAY_KERNEL_NETWORK_BRIDGE must be 1-15 letters, digits, '.', '_' or '-'."
            raise ValueError(msg)


def _cast(key: str, raw: str, type_name: object) -> object:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind == "Path":
            return Path(raw)
    except ValueError as err:
        msg = f"Config '{key}' has value '{raw}'. Not a valid {kind}."
        raise ValueError(msg) from err
    return raw
