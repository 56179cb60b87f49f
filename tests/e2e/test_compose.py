"""End to end: the gateway's own image, run by compose against the host's engine (pytest-docker),
executes a cell in a sandboxed kernel, and leaves nothing behind when brought down."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_no_containers

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def gateway_image(docker_engine) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "images" / "gateway" / "build.py")],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"gateway image build failed:\n{result.stderr[-3000:]}")
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def e2e(gateway_image, kernel_image, tmp_path_factory):
    """The compose environment: a data dir (same path inside and out) and a free port."""
    data_dir = tmp_path_factory.mktemp("e2e") / "data"
    data_dir.mkdir()
    port = _free_port()
    env = {
        "GATEWAY_IMAGE": gateway_image,
        "GATEWAY_KERNEL_IMAGE": kernel_image,
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_PUBLISH": f"127.0.0.1:{port}",
        "GATEWAY_KERNEL_POOL_SIZE": "0",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield {"data_dir": data_dir, "port": port}
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    return "docker-compose" if shutil.which("docker-compose") else "docker compose"


@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(ROOT / "images" / "gateway" / "compose.yaml")


@pytest.fixture(scope="session")
def docker_setup(e2e):
    return ["up -d"]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            status: int = resp.status
            return status == 200
    except (urllib.error.URLError, OSError):
        return False


def _post(url: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as resp:
        reply: dict[str, Any] = json.loads(resp.read())
        return reply


def test_containerized_gateway_runs_a_cell(
    e2e, docker_services, docker_engine, docker_compose_project_name
):
    base = f"http://127.0.0.1:{e2e['port']}"
    docker_services.wait_until_responsive(
        check=lambda: _healthy(base + "/_health"), timeout=60.0, pause=0.2
    )
    key = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "create-key",
            "--data-dir",
            str(e2e["data_dir"]),
            "--email",
            "e2e@example.com",
            "--project-id",
            "1",
            "--scopes",
            "*",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    body = _post(
        f"{base}/api/projects/1/notebooks/scratchpad/kernel/execute",
        key,
        {"code": "import platform\nx = 6 * 7\nprint(x)\nplatform.python_version()"},
    )
    assert body["status"] == "ok", body
    assert body["stdout"] == "42\n"
    assert body["result"]["text/plain"].startswith("'3.11"), "ran in the kernel image"
    instance = (e2e["data_dir"] / "instance-id").read_text().strip()
    running = docker_engine.containers.list(filters={"label": f"gateway.instance={instance}"})
    assert len(running) == 1, "one sandboxed kernel, started by the containerized gateway"
    # Bring it down the way an operator would; the gateway's shutdown removes its kernels.
    subprocess.run(
        [
            *_compose(),
            "-f",
            str(ROOT / "images" / "gateway" / "compose.yaml"),
            "-p",
            docker_compose_project_name,
            "stop",
        ],
        check=True,
        capture_output=True,
    )
    assert_no_containers(docker_engine, instance)


def _compose() -> list[str]:
    return ["docker-compose"] if shutil.which("docker-compose") else ["docker", "compose"]
