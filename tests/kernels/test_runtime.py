"""The container runtime is checked at start-up and reported; a runtime that cannot run here
is a clear refusal, never a silent fallback to another sandbox (issue #15)."""

from __future__ import annotations

import os

import pytest

from gateway.kernels.runtimes import runtime_problem
from tests.conftest import Accounts

GVISOR = {"path": "/usr/bin/runsc", "runtimeArgs": ["--network=none", "--host-uds=all"]}


def test_registered_runtimes_are_accepted():
    assert runtime_problem("runc", {"runc": {"path": "runc"}}) is None
    assert runtime_problem("runsc", {"runc": {"path": "runc"}, "runsc": GVISOR}) is None


def test_a_missing_runtime_names_the_fix():
    problem = runtime_problem("runsc", {"runc": {"path": "runc"}})
    assert problem is not None
    assert "not registered" in problem and "ensure-gvisor" in problem and "runc" in problem


def test_runsc_without_its_arguments_is_refused():
    problem = runtime_problem("runsc", {"runsc": {"path": "/usr/bin/runsc"}})
    assert problem is not None
    assert "--network=none" in problem and "--host-uds=all" in problem


@pytest.mark.docker
async def test_status_reports_the_sandbox_and_a_bad_runtime_refuses(
    aiohttp_client, docker_settings, clock
):
    from gateway.app import create_app
    from gateway.keys import STORE_KEY

    app = create_app(docker_settings.with_changes(kernel_runtime="no-such-runtime"), clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make()
    status = await (
        await client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
    ).json()
    assert status["sandbox"]["runtime"] == "no-such-runtime"
    assert "not registered" in status["sandbox"]["problem"]
    resp = await client.post(owner.url("scratchpad/kernel/start"), json={}, headers=owner.headers)
    assert resp.status == 503
    assert "no-such-runtime" in (await resp.json())["reason"]


@pytest.mark.docker
async def test_status_reports_the_configured_runtime(kernel_client, owner):
    status = await (
        await kernel_client.get(owner.url("scratchpad/kernel/status"), headers=owner.headers)
    ).json()
    expected = os.environ.get("KERNEL_TEST_RUNTIME", "runc")
    transport = os.environ.get("KERNEL_TEST_TRANSPORT", "ipc")
    if status["backend"] == "docker":
        assert status["sandbox"] == {
            "runtime": expected,
            "transport": transport,
            "firewall": "iptables" if transport == "tcp" else None,
            "cgroup": {"parent": "/notebook-kernels", "cpu_shares": 512, "problem": None},
            "problem": None,
        }
    else:
        assert status["sandbox"]["runtime"] is None
        assert status["sandbox"]["cgroup"] is None
