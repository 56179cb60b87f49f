"""Fixture notebooks for the viewer: every node and mark, known HogQL rows, hostile text."""

from __future__ import annotations

import base64
import datetime as dt
import json
import struct
import uuid
import zlib
from typing import Any

# Running this in a page sets data-pwned on <html>: the browser tests look for it.
PWN = "document.documentElement.setAttribute('data-pwned','1')"
QUOTED_PWN = PWN.replace("'", "\\'")  # inside a HogQL string literal
HOSTILE_TITLE = f"</script><!--<script>alert(1);{PWN}</script>"
T0 = dt.datetime(2026, 11, 23, 10, 30, tzinfo=dt.UTC)


def png(width: int, height: int, rgb: tuple[int, int, int]) -> str:
    """A solid-colour PNG as a data URL (no files, no network)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    body = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return "data:image/png;base64," + base64.b64encode(body).decode()


def text(value: str, *marks: str, href: str | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": value}
    mark_list: list[dict[str, Any]] = [{"type": m} for m in marks]
    if href is not None:
        mark_list.append({"type": "link", "attrs": {"href": href}})
    if mark_list:
        node["marks"] = mark_list
    return node


def para(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(children)}


def heading(level: int, value: str) -> dict[str, Any]:
    return {"type": "heading", "attrs": {"level": level}, "content": [text(value)]}


def item(*children: dict[str, Any]) -> dict[str, Any]:
    return {"type": "listItem", "content": list(children)}


def hogql_node(
    query: str, *, wrapper: str | None = "DataTableNode", title: str = ""
) -> dict[str, Any]:
    source: dict[str, Any] = {"kind": "HogQLQuery", "query": query}
    attrs: dict[str, Any] = {
        "query": source if wrapper is None else {"kind": wrapper, "source": source}
    }
    if title:
        attrs["title"] = title
    attrs["nodeId"] = str(uuid.uuid4())
    return {"type": "ph-query", "attrs": attrs}


EVERYTHING_TITLE = "Every node type"
EVERYTHING = {
    "type": "doc",
    "content": [
        heading(1, EVERYTHING_TITLE),  # PostHog's title heading: shown once, as the h1
        heading(2, "Marks"),
        para(
            text("Plain, "),
            text("bold", "bold"),
            text(", "),
            text("italic", "italic"),
            text(", "),
            text("code", "code"),
            text(", "),
            text("struck", "strike"),
            text(", "),
            text("underlined", "underline"),
            text(" and "),
            text("a link", href="https://posthog.com/docs"),
            text("."),
            {"type": "hardBreak"},
            text("After a hard break, "),
            text("bold italic", "bold", "italic"),
            text("."),
        ),
        heading(3, "Lists"),
        {
            "type": "bulletList",
            "content": [
                item(para(text("First bullet"))),
                item(
                    para(text("Second bullet, with a numbered list")),
                    {
                        "type": "orderedList",
                        "attrs": {"start": 3},
                        "content": [item(para(text("three"))), item(para(text("four")))],
                    },
                ),
            ],
        },
        {"type": "blockquote", "content": [para(text("A quotation, in a blockquote."))]},
        {
            "type": "codeBlock",
            "attrs": {"language": "python"},
            "content": [text("def answer():\n    return 42")],
        },
        {"type": "horizontalRule"},
        {"type": "ph-image", "attrs": {"src": png(160, 60, (29, 74, 255)), "height": 60}},
        para(
            text("At "),
            {
                "type": "ph-replay-timestamp",
                "attrs": {"playbackTime": 83_000, "sessionRecordingId": "0190-rec"},
            },
            text(" "),
            {"type": "ph-mention", "attrs": {"id": 7, "label": "Jane"}},
            text(" clicked."),
        ),
        {"type": "ph-query", "attrs": {"query": {"kind": "SavedInsightNode", "shortId": "AbC12"}}},
        {
            "type": "ph-query",
            "attrs": {"query": {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery"}}},
        },
        {"type": "ph-recording", "attrs": {"id": "0190-rec", "title": "Checkout session"}},
        {"type": "ph-person", "attrs": {"id": "alice"}},
        {"type": "ph-feature-flag", "attrs": {"id": 12}},
        {"type": "ph-python", "attrs": {"code": "df = hogql_execute('select 1')\ndf"}},
        {"type": "ph-something-new", "attrs": {"id": "x1"}},
        para(text("The end.")),
    ],
}

HOGQL_TITLE = "Known rows"
HOGQL = {
    "type": "doc",
    "content": [
        para(text("Events, oldest first:")),
        hogql_node("select event, distinct_id from events order by timestamp", title="Event list"),
        hogql_node("select count() as n from events", wrapper="DataVisualizationNode"),
        hogql_node("select number from numbers(150)", wrapper=None),
        hogql_node("select nope from where", title="Broken"),
    ],
}
HOGQL_ROWS = [
    ["$pageview", "alice"],
    ["$pageview", "bob"],
    ["signed_up", "alice"],
]

HOSTILE = {
    "type": "doc",
    "content": [
        heading(1, f'<img src=x onerror="{PWN}">'),
        para(text(HOSTILE_TITLE, "bold"), text(" click", href=f"javascript:{PWN}")),
        para(text("data", href="data:text/html,<script>alert(1)</script>")),
        {"type": "image", "attrs": {"src": f"javascript:{PWN}", "alt": '"><script>x</script>'}},
        {"type": "ph-image", "attrs": {"src": "data:image/svg+xml,<svg onload=alert(1)>"}},
        {
            "type": "codeBlock",
            "attrs": {"language": '"><script>alert(1)</script>'},
            "content": [text("</code></pre><script>alert(1)</script>")],
        },
        {"type": "ph-recording", "attrs": {"id": f'"><script>{PWN}</script>', "title": "<b>t"}},
        hogql_node(f"select '</script><script>{QUOTED_PWN}</script>' as `<th onclick=x>`"),
        {"type": f"ph-<script>{PWN}</script>", "attrs": {}},
    ],
}


def events() -> list[dict[str, Any]]:
    """The three events HOGQL_ROWS lists, in project 1."""
    return [
        {
            "uuid": str(uuid.uuid4()),
            "event": event,
            "distinct_id": who,
            "properties": json.dumps({}),
            "timestamp": T0 + dt.timedelta(hours=hours),
        }
        for hours, (event, who) in enumerate(HOGQL_ROWS)
    ]
