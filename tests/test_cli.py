"""The command line: create-key makes a working key; demo-key is stable across runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from gateway.analytics.store import AnalyticsStore
from gateway.app import create_app
from gateway.clock import FakeClock
from gateway.hogql import translate


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args], capture_output=True, text=True, check=False
    )


def _hogql(data_dir, query: str, project_id: int) -> list[list[object]]:
    """Rows of a HogQL query on the analytics store the CLI wrote into `data_dir`."""
    store = AnalyticsStore(data_dir / "analytics.duckdb")
    try:
        return asyncio.run(store.run(translate(query, project_id=project_id))).rows
    finally:
        store.close()


def test_help_for_each_command():
    for command in (
        "serve",
        "create-key",
        "demo-key",
        "load-events",
        "load-persons",
        "load-groups",
        "demo-data",
        "project-token",
        "project-timezone",
        "routes",
    ):
        result = _cli(command, "--help")
        assert result.returncode == 0
        assert "usage:" in result.stdout


def test_unknown_scope_is_refused(tmp_path):
    result = _cli(
        "create-key",
        "--data-dir",
        str(tmp_path),
        "--email",
        "a@b.c",
        "--project-id",
        "3",
        "--scopes",
        "notebook:read,root",
    )
    assert result.returncode == 2
    assert "root" in result.stderr


async def test_created_key_works_with_its_scopes_only(tmp_path, aiohttp_client, settings):
    result = _cli(
        "create-key",
        "--data-dir",
        str(tmp_path),
        "--email",
        "a@b.c",
        "--project-id",
        "3",
        "--scopes",
        "notebook:read",
    )
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert key.startswith("phx_")
    client = await aiohttp_client(
        create_app(settings.with_changes(data_dir=tmp_path), clock=FakeClock())
    )
    headers = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/api/projects/3/notebooks/", headers=headers)).status == 200
    assert (await client.post("/api/projects/3/notebooks/", headers=headers)).status == 403
    assert (await client.get("/api/projects/1/notebooks/", headers=headers)).status == 404
    stored = await asyncio.to_thread((tmp_path / "gateway.sqlite3").read_bytes)
    assert key.encode() not in stored, "keys are stored only as hashes"


def test_demo_key_is_created_once(tmp_path):
    first = _cli("demo-key", "--data-dir", str(tmp_path))
    second = _cli("demo-key", "--data-dir", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert (tmp_path / "demo-api-key").stat().st_mode & 0o077 == 0


def test_load_events_keeps_good_rows_and_reports_bad_ones(tmp_path):
    source = tmp_path / "events.jsonl"
    source.write_text(
        '{"event": "a", "distinct_id": "u1", "timestamp": "2026-01-01T00:00:00Z",'
        ' "properties": {"x": 1}}\n'
        "not json\n"
        '{"event": "b", "timestamp": "2026-01-01T00:00:00Z"}\n'
        '{"event": "c", "distinct_id": "u2", "timestamp": "2026-01-02T00:00:00"}\n'
    )
    result = _cli(
        "load-events", "--data-dir", str(tmp_path / "d"), "--project-id", "4", str(source)
    )
    assert result.returncode == 1, "bad rows make the exit code say so"
    assert "events.jsonl [##############################] 100% 2 events" in result.stderr
    assert "2 events loaded into project 4" in result.stderr
    assert "line 2:" in result.stderr
    assert "line 3: `distinct_id` must be a non-empty string" in result.stderr
    assert _hogql(tmp_path / "d", "select event from events order by event", 4) == [["a"], ["c"]]


def test_load_persons_keeps_good_rows_and_reports_bad_ones(tmp_path):
    source = tmp_path / "persons.jsonl"
    person = "00000000-0000-0000-0000-00000000000a"
    source.write_text(
        f'{{"id": "{person}", "distinct_ids": ["u1", "u2"], "created_at": "2026-01-01T00:00:00Z",'
        ' "properties": {"email": "a@example.com"}, "is_identified": true}\n'
        '{"id": "nope", "distinct_ids": ["u3"], "created_at": "2026-01-01T00:00:00Z"}\n'
        f'{{"id": "{person}", "distinct_ids": [], "created_at": "2026-01-01T00:00:00Z"}}\n'
    )
    result = _cli(
        "load-persons", "--data-dir", str(tmp_path / "d"), "--project-id", "4", str(source)
    )
    assert result.returncode == 1, "bad rows make the exit code say so"
    assert "1 persons loaded into project 4" in result.stderr
    assert "line 2: badly formed hexadecimal UUID string" in result.stderr
    assert "line 3: `distinct_ids` must be a non-empty list" in result.stderr
    data = tmp_path / "d"
    query = "select distinct_id, person_id from person_distinct_ids order by distinct_id"
    assert _hogql(data, query, 4) == [["u1", person], ["u2", person]]
    assert _hogql(data, "select properties.email from persons", 4) == [["a@example.com"]]


def test_loader_says_when_a_gateway_holds_the_store(tmp_path):
    (tmp_path / "d").mkdir()
    blocker = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('ready', flush=True);"
            " sys.stdin.read()",
            str(tmp_path / "d" / "analytics.duckdb"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert blocker.stdin is not None and blocker.stdout is not None  # both are PIPEs
    try:
        assert blocker.stdout.readline().strip() == "ready"
        result = _cli(
            "demo-data", "--data-dir", str(tmp_path / "d"), "--project-id", "1", "--events", "10"
        )
        assert result.returncode == 2
        assert "in use by another process" in result.stderr
    finally:
        blocker.stdin.close()
        blocker.wait()
        blocker.stdout.close()


def test_project_timezone(tmp_path):
    data = str(tmp_path / "d")
    (tmp_path / "d").mkdir()
    assert _cli("project-timezone", "--data-dir", data, "--project-id", "3").stdout == "UTC\n"
    bad = _cli("project-timezone", "--data-dir", data, "--project-id", "3", "--set", "Mars/Base")
    assert bad.returncode == 2
    assert "Unknown timezone 'Mars/Base'" in bad.stderr
    done = _cli(
        "project-timezone", "--data-dir", data, "--project-id", "3", "--set", "Europe/Berlin"
    )
    assert done.returncode == 0
    assert _cli("project-timezone", "--data-dir", data, "--project-id", "3").stdout == (
        "Europe/Berlin\n"
    )


def test_load_groups(tmp_path):
    source = tmp_path / "groups.jsonl"
    source.write_text(
        '{"index": 0, "key": "acme", "created_at": "2026-01-01T00:00:00Z",'
        ' "properties": {"name": "Acme"}}\n'
        '{"index": 9, "key": "x", "created_at": "2026-01-01T00:00:00Z"}\n'
        '{"index": 0, "key": "acme", "created_at": "2026-01-01T00:00:00Z",'
        ' "properties": {"name": "Acme Inc"}}\n'
    )
    result = _cli(
        "load-groups", "--data-dir", str(tmp_path / "d"), "--project-id", "4", str(source)
    )
    assert result.returncode == 1
    assert "line 2: `index` must be a group type index from 0 to 4" in result.stderr
    rows = _hogql(tmp_path / "d", "select index, key, properties.name from groups", 4)
    assert rows == [[0, "acme", "Acme Inc"]]


def test_demo_data_has_persons_for_its_users(tmp_path):
    result = _cli(
        "demo-data", "--data-dir", str(tmp_path / "d"), "--project-id", "2", "--events", "400"
    )
    assert result.returncode == 0, result.stderr
    assert "400 demo events and 10 persons loaded into project 2" in result.stdout
    query = "select countIf(person.properties.email like '%@%'), count() from events"
    assert _hogql(tmp_path / "d", query, 2) == [[400, 400]]
