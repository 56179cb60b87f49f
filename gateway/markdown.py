"""ProseMirror document JSON → Markdown, for `GET {short_id}/markdown` and the share page."""

from __future__ import annotations

import json
from typing import Any

_MARK_WRAP = {"bold": "**", "strong": "**", "italic": "_", "em": "_", "code": "`", "strike": "~~"}


def _text(node: dict[str, Any]) -> str:
    text = str(node.get("text", ""))
    link = None
    for mark in node.get("marks") or []:
        if not isinstance(mark, dict):
            continue
        kind = mark.get("type")
        if kind in _MARK_WRAP and text:
            wrap = _MARK_WRAP[kind]
            text = f"{wrap}{text}{wrap}"
        elif kind == "link":
            link = (mark.get("attrs") or {}).get("href")
    return f"[{text}]({link})" if link else text


def _inline(nodes: Any) -> str:
    out = []
    for node in nodes if isinstance(nodes, list) else []:
        if not isinstance(node, dict):
            continue
        if node.get("type") == "text":
            out.append(_text(node))
        elif node.get("type") == "hardBreak":
            out.append("  \n")
        else:
            out.append(_inline(node.get("content")))
    return "".join(out)


def _list(node: dict[str, Any], indent: str, *, ordered: bool) -> str:
    lines = []
    start = int((node.get("attrs") or {}).get("start", 1) or 1) if ordered else 1
    for index, item in enumerate(node.get("content") or []):
        if not isinstance(item, dict):
            continue
        bullet = f"{start + index}. " if ordered else "- "
        body = _blocks(item.get("content"), indent + " " * len(bullet)).strip("\n")
        lines.append(f"{indent}{bullet}{body.lstrip()}")
    return "\n".join(lines)


def _block(node: dict[str, Any], indent: str) -> str:
    kind = node.get("type")
    attrs = node.get("attrs") or {}
    content = node.get("content")
    if kind == "heading":
        level = max(1, min(6, int(attrs.get("level", 1) or 1)))
        return f"{'#' * level} {_inline(content)}"
    if kind == "paragraph":
        return indent + _inline(content)
    if kind == "bulletList":
        return _list(node, indent, ordered=False)
    if kind == "orderedList":
        return _list(node, indent, ordered=True)
    if kind == "codeBlock":
        language = attrs.get("language") or ""
        return f"```{language}\n{_inline(content)}\n```"
    if kind == "blockquote":
        inner = _blocks(content, "")
        return "\n".join(f"> {line}" if line else ">" for line in inner.splitlines())
    if kind == "horizontalRule":
        return "---"
    if isinstance(kind, str) and kind.startswith("ph-"):
        code = attrs.get("code")
        if kind == "ph-python" and isinstance(code, str):
            return f"```python\n{code}\n```"
        summary = json.dumps(attrs, sort_keys=True, default=str)[:200]
        return f"<!-- {kind} {summary} -->"
    return _blocks(content, indent) if isinstance(content, list) else _inline(content)


def _blocks(nodes: Any, indent: str) -> str:
    parts = [
        _block(node, indent)
        for node in (nodes if isinstance(nodes, list) else [])
        if isinstance(node, dict)
    ]
    return "\n\n".join(part for part in parts if part)


def to_markdown(content: Any, *, title: str | None = None) -> str:
    """Render a ProseMirror doc; unknown nodes degrade to their text, never fail."""
    body = _blocks(content.get("content"), "") if isinstance(content, dict) else ""
    if title and not body.lstrip().startswith("#"):
        body = f"# {title}\n\n{body}" if body else f"# {title}"
    return body + ("\n" if body else "")
