"""`python -m gateway` / `notebook-gateway`: serve, and account administration."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from gateway.app import create_app, serve
from gateway.auth import SCOPES, new_api_key, parse_scopes
from gateway.clock import SystemClock
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

    sub.add_parser("routes", help="Print the HTTP routes as a Markdown table.")
    return parser


async def _create_key(
    data_dir: Path, email: str, project_id: int, scopes: tuple[str, ...], label: str
) -> str:
    data_dir.mkdir(parents=True, exist_ok=True)
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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(raw + "\n")
    return raw


def run(argv: Sequence[str] | None = None) -> int:
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
    if args.command == "routes":
        print(route_table(create_app(Settings())), end="")
        return 0
    if args.command == "demo-key":
        print(asyncio.run(_demo_key(args.data_dir)))
        return 0
    return 2
