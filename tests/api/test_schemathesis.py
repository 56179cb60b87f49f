"""Schemathesis against a live gateway: every check, positive and negative data, a fixed seed.

The gateway runs as a process (`python -m gateway serve`, subprocess kernels) over a fresh data
directory; the run fuzzes the document it serves at `/api/schema`, with every path parameter
pinned to something that exists (project 1, the notebook `fuzz01`, its sharing token) so the
cases reach the handlers, and the kernel and HogQL routes on `scratchpad` with a small budget.
Zero failures is the bar. Where PostHog's own behaviour is what a check calls a failure, the
operation's expected statuses say so below (and docs/api.md explains each).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.request import Request, urlopen

import pytest

from tests.live import clean_env, demo_key, serve, stop

ROOT = Path(__file__).resolve().parents[2]
SEED = 14
MAX_EXAMPLES = 12
KERNEL_MAX_EXAMPLES = 3
_POSITIVE_ALSO = {
    # PostHog answers DELETE with 405 always: notebooks are soft-deleted (PATCH `deleted`).
    "notebooks_destroy": ["405"],
    # A short_id already taken is 400, as in PostHog: validity depends on what exists.
    "notebooks_create": ["400"],
    # 400 {"error"} while the link's password protection is off (PostHog's rule); another
    # request of the run may switch it off.
    "notebooks_sharing_passwords_create": ["400"],
    # 410: the client's version is from a range no longer kept (or the future): reload.
    "notebooks_collab_save_create": ["410"],
    # A body schema cannot hold HogQL's grammar: a string that does not parse is a 400.
    "notebooks_hogql_execute_create": ["400"],
    # A cell's bytes are capped by a setting (kernel_max_cell_bytes): 413 over it.
    "notebooks_kernel_execute_create": ["413"],
    "notebooks_kernel_execute_stream_create": ["413"],
    # A variable name that is a keyword (`class`) matches the identifier pattern: 400.
    "notebooks_kernel_dataframe_retrieve": ["400"],
}
_DEFAULT_POSITIVE = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def _call(
    base: str, method: str, path: str, key: str, body: dict[str, object]
) -> dict[str, object]:
    request = Request(
        base + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urlopen(request, timeout=30) as resp:
        result: dict[str, object] = json.loads(resp.read())
        return result


@pytest.fixture
def live_gateway(tmp_path):
    data = tmp_path / "data"
    env = clean_env(
        GATEWAY_SECRET_KEY="schemathesis-secret-0123456789abcdef",
        GATEWAY_KERNEL_BACKEND="subprocess",
        GATEWAY_KERNEL_POOL_SIZE="0",
        GATEWAY_COLLAB_STREAM_LIFETIME_S="1",
    )
    key = demo_key(data, env)
    process, base = serve(data, env, tmp_path / "gateway.log")
    try:
        yield base, key, env
    finally:
        stop(process)


def _config(token: str) -> str:
    lines = [
        "[parameters]",
        '"path.project_id" = 1',
        '"path.short_id" = "fuzz01"',
        '"path.notebook_id" = "fuzz01"',
        f'"path.token" = "{token}"',
        "",
        "[[operations]]",
        'include-path-regex = "/(kernel|hogql)/"',
        f"generation.max-examples = {KERNEL_MAX_EXAMPLES}",
        'parameters = { "path.project_id" = 1, "path.short_id" = "scratchpad" }',
    ]
    for operation_id, statuses in _POSITIVE_ALSO.items():
        expected = json.dumps([*_DEFAULT_POSITIVE, *statuses])
        lines += [
            "",
            "[[operations]]",
            f'include-operation-id = "{operation_id}"',
            f"checks.positive_data_acceptance.expected-statuses = {expected}",
        ]
    return "\n".join(lines) + "\n"


def test_schemathesis_finds_no_failure(live_gateway, tmp_path):
    base, key, env = live_gateway
    _call(base, "POST", "/api/projects/1/notebooks/", key, {"short_id": "fuzz01", "title": "F"})
    sharing = _call(
        base, "PATCH", "/api/projects/1/notebooks/fuzz01/sharing", key, {"enabled": True}
    )
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(str(sharing["access_token"])))
    report = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{base}/api/schema",
            "-H",
            f"Authorization: Bearer {key}",
            "--checks",
            "all",
            "--mode",
            "all",
            "--seed",
            str(SEED),
            "-n",
            str(MAX_EXAMPLES),
            "--workers",
            "1",
            "--request-timeout",
            "60",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=env | {"NO_COLOR": "1"},
        timeout=900,
    )
    summary = result.stdout[result.stdout.find("SUMMARY") :]
    print(summary)  # noqa: T201 - the numbers for docs/api.md, shown with -s
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-3000:]
    assert "generated" in summary
