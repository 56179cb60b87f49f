"""README's shell examples, run as written against a live gateway.

Every ```sh block preceded by `<!-- readme-test -->` runs, in order, in one bash session (so
variables carry over), against a gateway started here with `python -m gateway serve` and the
key `demo-key` prints in `$KEY`; `http://127.0.0.1:8000` is replaced by that gateway's address.
Blocks marked `<!-- readme-test: docker -->` run too when the Docker engine and kernel image are
there (the `docker` test); `<!-- readme-test: make -->` blocks are checked with `make -n`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.live import clean_env, demo_key, serve, stop

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DEFAULT_BASE = "http://127.0.0.1:8000"
_BLOCK = re.compile(r"<!-- readme-test(?:: (\w+))? -->\n```sh\n(.*?)```", re.DOTALL)


def blocks(kinds: set[str]) -> list[str]:
    return [body for kind, body in _BLOCK.findall(README.read_text()) if (kind or "") in kinds]


@pytest.fixture
def gateway(tmp_path):
    """Starts a gateway process on a free port over a fresh data directory; gives its address
    and the demo key. Stopped (terminate, then kill) after the test."""
    if shutil.which("curl") is None:
        pytest.fail("README examples use curl; install it (apt-get install curl)")
    data = tmp_path / "data"
    env = clean_env(GATEWAY_SECRET_KEY="readme-test-secret-0123456789abcdef")
    key = demo_key(data, env)
    processes: list[subprocess.Popen[bytes]] = []

    def start(**settings: str) -> tuple[str, str]:
        process, base = serve(data, env | settings, tmp_path / "gateway.log")
        processes.append(process)
        return base, key

    yield start
    for process in processes:
        stop(process, timeout=20)


def _run(script_blocks: list[str], base: str, key: str, tmp_path: Path) -> str:
    marked = [
        f'echo "::readme block {n}::"\n{body.replace(DEFAULT_BASE, base)}'
        for n, body in enumerate(script_blocks, 1)
    ]
    script = "set -euo pipefail\n" + "\n".join(marked)
    result = subprocess.run(
        ["bash", "-c", script],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KEY": key},
    )
    assert result.returncode == 0, (
        f"README example failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def test_readme_examples_run(gateway, tmp_path):
    examples = blocks({""})
    assert len(examples) >= 3, "the notebook, sharing and password examples are marked"
    base, key = gateway()
    out = _run(examples, base, key, tmp_path)
    assert "<h1>Weekly numbers</h1>" in out
    assert f"{base}/shared/" in out
    assert '{"type":"scene","notebook":' in out
    assert "\n401\n" in out


def test_readme_port_example_reaches_the_server():
    (example,) = blocks({"make"})
    assert example.startswith("make run PORT=8001")
    dry = subprocess.run(
        ["make", "-n", *example.split()[1:]], capture_output=True, text=True, cwd=ROOT, check=True
    )
    serve_line = [line for line in dry.stdout.splitlines() if " -m gateway serve " in line]
    assert serve_line, dry.stdout
    assert "--port 8001" in serve_line[-1]


@pytest.mark.docker
def test_readme_kernel_examples_run(gateway, kernel_image, tmp_path):
    base, key = gateway(GATEWAY_KERNEL_IMAGE=kernel_image, GATEWAY_KERNEL_POOL_SIZE="0")
    out = _run(blocks({"", "docker"}), base, key, tmp_path)
    assert 'event: stdout\ndata: {"text":"0\\n"}' in out
    assert out.count("event: result\n") == 1
    assert '"status":"ok"' in out
