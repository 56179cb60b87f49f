"""Start a throw-away gateway subprocess with a demo key, for benchmarks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server on {port} did not start")


@dataclass
class Gateway:
    port: int
    key: str
    short_id: str
    data_dir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"}


@contextlib.contextmanager
def gateway(env: dict[str, str] | None = None) -> Iterator[Gateway]:
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    data = tmp / "data"
    key = subprocess.run(
        [sys.executable, "-m", "gateway", "demo-key", "--data-dir", str(data)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--port", str(port), "--data-dir", str(data)],
        env={**os.environ, "GATEWAY_LOG_LEVEL": "WARNING", **(env or {})},
    )
    try:
        wait_for_port(port)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/projects/1/notebooks/",
            headers={"Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request) as resp:
            short_id = json.load(resp)["results"][0]["short_id"]
        yield Gateway(port=port, key=key, short_id=short_id, data_dir=data)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


_LOAD = (sys.executable, "-m", "gateway", "load-events")


def load_events_rate(source: Path, data_dir: str, count: int) -> float:
    """Events per second of `python -m gateway load-events` reading `source` into project 1
    of `data_dir` (process start included)."""
    begin = time.perf_counter()
    subprocess.run(
        [*_LOAD, "--data-dir", data_dir, "--project-id", "1", str(source)],
        check=True,
        capture_output=True,
    )
    return count / (time.perf_counter() - begin)
