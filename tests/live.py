"""A real gateway process for tests that drive it from outside (curl, schemathesis): the demo
key made by the CLI, `serve` on a free loopback port, ready once `/_health` answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.request import urlopen

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SERVE = (sys.executable, "-m", "gateway", "serve", "--host", "127.0.0.1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any GATEWAY_* variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return env | settings


def demo_key(data: Path, env: dict[str, str]) -> str:
    """`python -m gateway demo-key`: the key with every scope for project 1 (made once)."""
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "demo-key", "--data-dir", str(data)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    return done.stdout.strip().splitlines()[-1]


def serve(data: Path, env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m gateway serve` and wait (60 s at most) until it answers; the process
    and its base URL. Fails the test with the gateway's log when it does not come up."""
    port = free_port()
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*_SERVE, "--port", str(port), "--data-dir", str(data)],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urlopen(f"{base}/_health", timeout=2) as resp:
                if resp.status == 200:
                    return process, base
        except OSError:
            time.sleep(0.2)
    stop(process)
    pytest.fail(f"the gateway did not start:\n{log_path.read_text()}")


def stop(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Terminate, then kill if it does not end within `timeout`."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
