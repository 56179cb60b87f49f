"""A failed connect to the Docker engine leaves no socket open: the SDK's unix-socket connection
loses its socket when connect() fails, and the gateway closes it at once instead of leaving an
open descriptor (and a ResourceWarning) to the garbage collector. No engine is needed: these run
against a socket path where nothing listens."""

from __future__ import annotations

import gc
import os
import socket
from pathlib import Path

import docker
import docker.errors
import pytest
import requests.exceptions

from gateway.kernels.docker import DockerEngine
from gateway.kernels.errors import SandboxError
from gateway.kernels.stranded import close_stranded
from gateway.settings import Settings


def _open_sockets() -> set[int]:
    """The descriptors of this process that are sockets."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                fds.add(int(name))
        except OSError:
            continue
    return fds


def test_close_stranded_closes_the_sdk_socket_of_a_failed_connect(tmp_path: Path) -> None:
    gc.disable()  # only close_stranded() may close it here
    try:
        before = _open_sockets()
        try:
            docker.DockerClient(
                base_url=f"unix://{tmp_path / 'missing.sock'}", version="1.43"
            ).ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as err:
            assert close_stranded(err) >= 1
            assert close_stranded(err) == 0  # closed once
        else:
            pytest.fail("nothing listens there")
        assert _open_sockets() == before
    finally:
        gc.enable()


def test_close_stranded_leaves_other_sockets_alone() -> None:
    mine = socket.socket(socket.AF_UNIX)
    try:
        try:
            raise ValueError("not about sockets")
        except ValueError as err:
            assert close_stranded(err) == 0  # `mine` is not a local of any frame in it
        assert mine.fileno() != -1
    finally:
        mine.close()


async def test_an_unreachable_engine_costs_no_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'missing.sock'}")
    engine = DockerEngine(Settings())
    gc.disable()
    try:
        before = _open_sockets()
        for _ in range(3):
            with pytest.raises(SandboxError, match="Docker engine unreachable"):
                await engine.client()
        assert _open_sockets() == before
    finally:
        gc.enable()
        engine.close()
