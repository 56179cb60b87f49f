"""Regenerate the generated parts of docs/: the route table and the settings table."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from gateway.app import create_app
from gateway.openapi import route_table
from gateway.settings import Settings

DOCS = Path(__file__).resolve().parent.parent / "docs"
START, END = "<!-- routes:start -->\n", "<!-- routes:end -->"


def settings_table() -> str:
    lines = [
        "# Settings",
        "",
        "Every setting is read once, at start, from an environment variable `GATEWAY_<NAME>`.",
        "A bad value stops the server with a message naming the variable.",
        "",
        "| variable | default | meaning |",
        "|---|---|---|",
    ]
    lines += [
        f"| `GATEWAY_{f.name.upper()}` | `{f.default}` | {f.metadata['help']} |"
        for f in fields(Settings)
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    api = DOCS / "api.md"
    text = api.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    api.write_text(head + START + route_table(create_app(Settings())) + END + tail)
    (DOCS / "settings.md").write_text(settings_table())


if __name__ == "__main__":
    main()
