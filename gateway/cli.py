"""`python -m gateway` / `notebook-gateway`: serve, and account administration."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gateway.analytics.load import (
    BadRow,
    Progress,
    demo_events,
    demo_persons,
    read_events,
    read_groups,
    read_persons,
)
from gateway.analytics.store import AnalyticsStore
from gateway.app import create_app, serve
from gateway.auth import SCOPES, new_api_key, parse_scopes
from gateway.clock import SystemClock
from gateway.hogql.functions import known_timezone
from gateway.openapi import route_table
from gateway.settings import Settings
from gateway.store import NewNotebook, SQLiteStore

_DEMO_EMAIL = "demo@example.com"
_DEMO_CONTENT = {
    "type": "doc",
    "content": [
        {
            "type": "heading",
            "attrs": {"level": 1},
            "content": [{"type": "text", "text": "Welcome to Notebook Gateway"}],
        },
        {
            "type": "paragraph",
            "content": [{"type": "text", "text": "This notebook was created by make run."}],
        },
    ],
}


@dataclass(frozen=True, kw_only=True)
class _Loader:
    what: str
    help: str
    read: Callable[[Path, list[BadRow], Progress], Iterator[dict[str, Any]]]
    insert: Callable[[AnalyticsStore, int, list[dict[str, Any]]], int]


_LOADERS: Final = {
    "load-events": _Loader(
        what="events",
        help="Load events (JSON Lines in PostHog's export shape, CSV or Parquet) into the "
        "analytics store. Bad rows are reported by line and skipped; good rows are kept.",
        read=read_events,
        insert=AnalyticsStore.insert_events,
    ),
    "load-persons": _Loader(
        what="persons",
        help="Load persons (JSON Lines: id, distinct_ids, created_at, is_identified, "
        "properties) into the analytics store. A person loaded again replaces the old one.",
        read=read_persons,
        insert=AnalyticsStore.insert_persons,
    ),
    "load-groups": _Loader(
        what="groups",
        help="Load groups (JSON Lines: index, key, created_at, updated_at?, properties) into "
        "the analytics store. A group loaded again replaces the old one.",
        read=read_groups,
        insert=AnalyticsStore.insert_groups,
    ),
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="notebook-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve_cmd = sub.add_parser("serve", help="Run the HTTP server.")
    serve_cmd.add_argument("--host", help="Bind address (default from GATEWAY_HOST).")
    serve_cmd.add_argument("--port", type=int, help="Port (default from GATEWAY_PORT).")
    serve_cmd.add_argument("--data-dir", type=Path, help="Data directory.")

    key_cmd = sub.add_parser(
        "create-key",
        help="Create a personal API key (and the user and project when missing); "
        "prints the key once.",
    )
    key_cmd.add_argument("--data-dir", type=Path, required=True)
    key_cmd.add_argument("--email", required=True)
    key_cmd.add_argument("--project-id", type=int, required=True)
    key_cmd.add_argument(
        "--scopes", required=True, help=f"Comma-separated, from: {', '.join(sorted(SCOPES))}."
    )
    key_cmd.add_argument("--label", default="cli")

    demo_cmd = sub.add_parser(
        "demo-key",
        help="Print the demo API key (all scopes, project 1), creating it and a welcome "
        "notebook on first use. Stored in <data-dir>/demo-api-key (mode 0600).",
    )
    demo_cmd.add_argument("--data-dir", type=Path, required=True)

    for command, loader in _LOADERS.items():
        load_cmd = sub.add_parser(command, help=loader.help)
        load_cmd.add_argument("--data-dir", type=Path, required=True)
        load_cmd.add_argument("--project-id", type=int, required=True)
        load_cmd.add_argument("files", nargs="+", type=Path)

    demo_data_cmd = sub.add_parser("demo-data", help="Generate synthetic product analytics.")
    demo_data_cmd.add_argument("--data-dir", type=Path, required=True)
    demo_data_cmd.add_argument("--project-id", type=int, required=True)
    demo_data_cmd.add_argument("--events", type=int, default=100_000)

    token_cmd = sub.add_parser(
        "project-token",
        help="Print a project's public capture token (phc_…) for PostHog SDKs.",
    )
    token_cmd.add_argument("--data-dir", type=Path, required=True)
    token_cmd.add_argument("--project-id", type=int, required=True)

    timezone_cmd = sub.add_parser(
        "project-timezone",
        help="Print a project's timezone (HogQL reads and shows datetimes in it), or --set it "
        "to an IANA name such as Europe/Berlin. A running gateway applies it within 5 s.",
    )
    timezone_cmd.add_argument("--data-dir", type=Path, required=True)
    timezone_cmd.add_argument("--project-id", type=int, required=True)
    timezone_cmd.add_argument("--set", dest="timezone")

    sub.add_parser("routes", help="Print the HTTP routes as a Markdown table.")
    return parser


async def _create_key(
    data_dir: Path, email: str, project_id: int, scopes: tuple[str, ...], label: str
) -> str:
    await asyncio.to_thread(data_dir.mkdir, parents=True, exist_ok=True)
    store = SQLiteStore.open(data_dir / "gateway.sqlite3")
    now = SystemClock().now()
    try:
        user = await store.ensure_user(email, first_name=email.split("@", maxsplit=1)[0], now=now)
        await store.ensure_project(project_id, now=now)
        await store.add_member(user.id, project_id)
        raw, key_hash, mask = new_api_key()
        await store.create_api_key(
            user.id, key_hash=key_hash, mask=mask, scopes=scopes, label=label, now=now
        )
    finally:
        await store.close()
    return raw


async def _demo_key(data_dir: Path) -> str:
    path = data_dir / "demo-api-key"
    if path.exists():
        return path.read_text().strip()
    raw = await _create_key(data_dir, _DEMO_EMAIL, 1, ("*",), "demo")
    store = SQLiteStore.open(data_dir / "gateway.sqlite3")
    try:
        now = SystemClock().now()
        user = await store.ensure_user(_DEMO_EMAIL, now=now)
        await store.create_notebook(
            1,
            NewNotebook(
                title="Welcome", content=_DEMO_CONTENT, text_content="Welcome to Notebook Gateway"
            ),
            user=user,
            now=now,
        )
    finally:
        await store.close()
    with _analytics(data_dir) as analytics:
        analytics.insert_events(1, demo_events(5_000))
        analytics.insert_persons(1, demo_persons(5_000))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(raw + "\n")
    return raw


@contextlib.contextmanager
def _analytics(data_dir: Path) -> Iterator[AnalyticsStore]:
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = AnalyticsStore(data_dir / "analytics.duckdb")
    except RuntimeError as err:
        print(
            f"error: {err} Stop the gateway, or send events to its capture endpoint.",
            file=sys.stderr,
        )
        raise SystemExit(2) from err
    try:
        yield store
    finally:
        store.close()


def _progress_bar(name: str, fraction: float, loaded: int, what: str) -> None:
    filled = int(fraction * 30)
    bar = "#" * filled + "." * (30 - filled)
    print(f"\r{name} [{bar}] {fraction:4.0%} {loaded:,} {what}", end="", file=sys.stderr)


def _load(data_dir: Path, project_id: int, files: list[Path], loader: _Loader) -> int:
    """Load files in batches of 10,000 with a progress bar; bad rows are reported by line
    and skipped, good rows kept. Exit status 1 when any row was bad."""
    what = loader.what
    bad: list[BadRow] = []
    loaded = 0
    with _analytics(data_dir) as analytics:
        for path in files:
            progress = Progress()
            batch: list[dict[str, Any]] = []
            for row in loader.read(path, bad, progress):
                batch.append(row)
                if len(batch) == 10_000:
                    loaded += loader.insert(analytics, project_id, batch)
                    batch = []
                    _progress_bar(path.name, progress.fraction, loaded, what)
            loaded += loader.insert(analytics, project_id, batch)
            _progress_bar(path.name, 1.0, loaded, what)
    print(f"\r\033[K{loaded} {what} loaded into project {project_id}", file=sys.stderr)
    for bad_row in bad[:100]:
        print(f"line {bad_row.line}: {bad_row.reason}", file=sys.stderr)
    if len(bad) > 100:
        print(f"… and {len(bad) - 100} more bad rows", file=sys.stderr)
    return 1 if bad else 0


async def _project_timezone(data_dir: Path, project_id: int, timezone: str | None) -> int:
    if timezone is not None and not known_timezone(timezone):
        print(
            f"Unknown timezone '{timezone}': use an IANA name such as Europe/Berlin.",
            file=sys.stderr,
        )
        return 2
    store = SQLiteStore.open(data_dir / "gateway.sqlite3")
    try:
        project = await store.ensure_project(project_id, now=SystemClock().now())
        if timezone is not None:
            await store.set_project_timezone(project_id, timezone)
    finally:
        await store.close()
    print(timezone or project.timezone)
    return 0


async def _project_token(data_dir: Path, project_id: int) -> int:
    store = SQLiteStore.open(data_dir / "gateway.sqlite3")
    try:
        project = await store.ensure_project(project_id, now=SystemClock().now())
    finally:
        await store.close()
    print(project.api_token)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The `notebook-gateway` / `python -m gateway` entry point: one subcommand, an exit code."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        try:
            settings = Settings.from_env()
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        overrides = {
            k: v
            for k, v in {"host": args.host, "port": args.port, "data_dir": args.data_dir}.items()
            if v is not None
        }
        serve(settings.with_changes(**overrides))
        return 0
    if args.command == "create-key":
        try:
            scopes = parse_scopes(args.scopes)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        raw = asyncio.run(
            _create_key(args.data_dir, args.email, args.project_id, scopes, args.label)
        )
        print(raw)
        return 0
    if args.command in _LOADERS:
        return _load(args.data_dir, args.project_id, args.files, _LOADERS[args.command])
    if args.command == "demo-data":
        with _analytics(args.data_dir) as analytics:
            loaded = analytics.insert_events(args.project_id, demo_events(args.events))
            people = analytics.insert_persons(args.project_id, demo_persons(args.events))
        print(f"{loaded} demo events and {people} persons loaded into project {args.project_id}")
        return 0
    if args.command == "project-timezone":
        return asyncio.run(_project_timezone(args.data_dir, args.project_id, args.timezone))
    if args.command == "project-token":
        return asyncio.run(_project_token(args.data_dir, args.project_id))
    if args.command == "routes":
        print(route_table(create_app(Settings())), end="")
        return 0
    if args.command == "demo-key":
        print(asyncio.run(_demo_key(args.data_dir)))
        return 0
    return 2
