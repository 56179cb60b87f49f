"""ProseMirror notebook JSON → semantic HTML for the public viewer. Pure: no I/O, never fails.

Every string from the document is escaped; attribute values are escaped and URLs are checked
against an allow-list of schemes. HogQL query nodes become results tables from `outcomes`
(computed beforehand, see `viewer/queries.py`); other PostHog nodes become labelled cards.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any, Final

# Deeper documents are cut off (with a notice) rather than recursed into.
MAX_DEPTH: Final = 48
_SAFE_SCHEMES: Final = ("http://", "https://", "mailto:")
# Raster data URLs only: an SVG can carry script when opened on its own.
_DATA_IMAGE: Final = re.compile(r"data:image/(png|jpeg|gif|webp);base64,[A-Za-z0-9+/=\s]+\Z")
_LANGUAGE: Final = re.compile(r"[A-Za-z0-9_+#.-]{1,40}\Z")
_MARK_TAGS: Final = {
    "bold": "strong",
    "strong": "strong",
    "italic": "em",
    "em": "em",
    "code": "code",
    "strike": "s",
    "underline": "u",
}
_QUERY_WRAPPERS: Final = ("DataTableNode", "DataVisualizationNode")
# What a reader is told a PostHog node is; the keys are PostHog's NotebookNodeType values.
CARD_LABELS: Final = {
    "ph-insight": "Insight",
    "ph-recording": "Session recording",
    "ph-recording-playlist": "Recordings playlist",
    "ph-person": "Person",
    "ph-person-feed": "Person activity feed",
    "ph-person-properties": "Person properties",
    "ph-properties": "Properties",
    "ph-group": "Group",
    "ph-group-properties": "Group properties",
    "ph-related-groups": "Related groups",
    "ph-cohort": "Cohort",
    "ph-feature-flag": "Feature flag",
    "ph-feature-flag-code-example": "Feature flag code example",
    "ph-experiment": "Experiment",
    "ph-early-access-feature": "Early access feature",
    "ph-survey": "Survey",
    "ph-map": "Map",
    "ph-embed": "Embedded page",
    "ph-task-create": "Task",
    "ph-llm-trace": "LLM trace",
    "ph-issues": "Error tracking issues",
    "ph-usage-metrics": "Usage metrics",
    "ph-zendesk-tickets": "Zendesk tickets",
    "ph-image": "Image",
    "ph-query": "Query",
}
# Attributes shown on a card, in this order, when present and scalar.
_CARD_ATTRS: Final = ("id", "shortId", "sessionRecordingId", "distinctId", "key", "src")


@dataclass(frozen=True, kw_only=True)
class QueryOutcome:
    """One HogQL node's result as the page shows it: cells already text, or an error."""

    columns: tuple[str, ...] = ()
    rows: tuple[tuple[str | None, ...], ...] = ()
    has_more: bool = False
    error: str | None = None


def _attrs(node: Mapping[str, Any]) -> Mapping[str, Any]:
    attrs = node.get("attrs")
    return attrs if isinstance(attrs, dict) else {}


def _children(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    content = node.get("content")
    for child in content if isinstance(content, list) else ():
        if isinstance(child, dict):
            yield child


def safe_url(value: Any, *, image: bool = False) -> str | None:
    """`value` when it is a URL a reader may follow (or, with `image`, load), else None."""
    if not isinstance(value, str):
        return None
    url = value.strip()
    lowered = url.lower()
    if image and _DATA_IMAGE.match(url):
        return url
    if lowered.startswith(_SAFE_SCHEMES if not image else _SAFE_SCHEMES[:2]):
        return url
    return None


def hogql_of(node: Mapping[str, Any]) -> str | None:
    """The HogQL text a node runs, for `ph-query` over a HogQLQuery (bare or inside a
    DataTableNode / DataVisualizationNode) and `ph-hogql-sql`; else None."""
    attrs = _attrs(node)
    if node.get("type") == "ph-hogql-sql":
        code = attrs.get("code")
        return code if isinstance(code, str) and code.strip() else None
    if node.get("type") != "ph-query":
        return None
    query = attrs.get("query")
    if isinstance(query, dict) and query.get("kind") in _QUERY_WRAPPERS:
        query = query.get("source")
    if isinstance(query, dict) and query.get("kind") == "HogQLQuery":
        text = query.get("query")
        return text if isinstance(text, str) and text.strip() else None
    return None


def hogql_queries(content: Any) -> list[str]:
    """The distinct HogQL texts of a document's query nodes, in document order."""
    found: dict[str, None] = {}
    stack: list[tuple[Mapping[str, Any], int]] = [(content, 0)] if isinstance(content, dict) else []
    while stack:
        node, depth = stack.pop()
        text = hogql_of(node)
        if text is not None:
            found.setdefault(text, None)
        if depth < MAX_DEPTH:
            stack.extend((child, depth + 1) for child in reversed(list(_children(node))))
    return list(found)


def plain_text(node: Mapping[str, Any], depth: int = 0) -> str:
    """The text of `node` and its descendants, unescaped and without marks; anything nested deeper
    than MAX_DEPTH is left out. Used for code blocks and to spot a first heading that repeats the
    title.
    """
    if node.get("type") == "text":
        return str(node.get("text", ""))
    if depth >= MAX_DEPTH:
        return ""
    return "".join(plain_text(child, depth + 1) for child in _children(node))


class Renderer:
    """Renders one document; `outcomes` maps HogQL text to what running it gave."""

    def __init__(self, outcomes: Mapping[str, QueryOutcome]) -> None:
        self._outcomes = outcomes

    # inline content

    def _text(self, node: Mapping[str, Any]) -> str:
        out = escape(str(node.get("text", "")))
        href = None
        marks = node.get("marks")
        for mark in marks if isinstance(marks, list) else ():
            if not isinstance(mark, dict):
                continue
            tag = _MARK_TAGS.get(str(mark.get("type")))
            if tag is not None:
                out = f"<{tag}>{out}</{tag}>"
            elif mark.get("type") == "link":
                href = safe_url(_attrs(mark).get("href"))
        if href is not None:
            out = f'<a href="{escape(href)}" rel="noopener noreferrer" target="_blank">{out}</a>'
        return out

    def _inline_node(self, node: Mapping[str, Any], depth: int) -> str:
        kind = node.get("type")
        attrs = _attrs(node)
        if kind == "text":
            return self._text(node)
        if kind == "hardBreak":
            return "<br>"
        if kind in {"mention", "ph-mention"}:
            label = attrs.get("label") or attrs.get("id") or "someone"
            return f'<span class="mention">@{escape(str(label))}</span>'
        if kind == "ph-backlink":
            href = safe_url(attrs.get("href"))
            label = escape(str(attrs.get("title") or attrs.get("href") or "link"))
            if href is None:
                return f'<span class="backlink">{label}</span>'
            return f'<a href="{escape(href)}" rel="noopener noreferrer" target="_blank">{label}</a>'
        if kind == "ph-replay-timestamp":
            return f'<span class="timestamp">{escape(_clock(attrs.get("playbackTime")))}</span>'
        if kind == "image":
            return self._image(attrs, inline=True)
        return self._inline(node, depth + 1)

    def _inline(self, node: Mapping[str, Any], depth: int) -> str:
        if depth >= MAX_DEPTH:
            return ""
        return "".join(self._inline_node(child, depth) for child in _children(node))

    # blocks

    def _image(self, attrs: Mapping[str, Any], *, inline: bool = False) -> str:
        src = safe_url(attrs.get("src"), image=True)
        alt = escape(str(attrs.get("alt") or attrs.get("title") or "image"))
        if src is None:
            return "" if inline else _card("Image", "The image is not available here.", {})
        img = f'<img src="{escape(src)}" alt="{alt}" loading="lazy" referrerpolicy="no-referrer">'
        return img if inline else f"<figure>{img}</figure>"

    def _list(self, node: Mapping[str, Any], depth: int, *, ordered: bool) -> str:
        items = "".join(
            f"<li>{self.blocks(item, depth + 1)}</li>"
            if item.get("type") in {"listItem", "taskItem"}
            else f"<li>{self.block(item, depth + 1)}</li>"
            for item in _children(node)
        )
        if not ordered:
            return f"<ul>{items}</ul>"
        start = _attrs(node).get("start", 1)
        first = start if isinstance(start, int) and not isinstance(start, bool) else 1
        return f'<ol start="{first}">{items}</ol>' if first != 1 else f"<ol>{items}</ol>"

    def _query(self, node: Mapping[str, Any], text: str) -> str:
        title = _attrs(node).get("title")
        label = title if isinstance(title, str) and title.strip() else "SQL query"
        code = f"<details><summary>HogQL</summary><pre><code>{escape(text)}</code></pre></details>"
        outcome = self._outcomes.get(text)
        if outcome is None:
            result = '<p class="notice">This query was not run.</p>'
        elif outcome.error is not None:
            result = f'<p class="error" role="alert">{escape(outcome.error)}</p>'
        else:
            result = _table(outcome)
        return (
            f'<section class="query" data-node="{escape(str(node.get("type")))}">'
            f'<h3 class="card-label">{escape(label)}</h3>{code}{result}</section>'
        )

    def _ph_node(self, node: Mapping[str, Any], kind: str) -> str:
        attrs = _attrs(node)
        text = hogql_of(node)
        if text is not None:
            return self._query(node, text)
        if kind == "ph-image":
            return self._image(attrs)
        if kind in {"ph-python", "ph-duck-sql", "ph-hogql-sql", "ph-latex"}:
            language = {"ph-python": "Python", "ph-duck-sql": "DuckDB SQL"}.get(kind, "")
            language = language or ("HogQL" if kind == "ph-hogql-sql" else "LaTeX")
            code = attrs.get("code") if kind != "ph-latex" else attrs.get("content")
            body = f"<pre><code>{escape(str(code or ''))}</code></pre>"
            return _card(language, "", attrs, kind=kind, body=body)
        label = CARD_LABELS.get(kind, f"PostHog node ({kind.removeprefix('ph-')})")
        if kind == "ph-query":
            label = _query_label(attrs.get("query"))
        return _card(label, "Open this notebook in PostHog to see it.", attrs, kind=kind)

    def block(self, node: Mapping[str, Any], depth: int) -> str:
        """One block node as HTML."""
        if depth >= MAX_DEPTH:
            return '<p class="notice">(nested too deeply to show)</p>'
        kind = node.get("type")
        attrs = _attrs(node)
        if kind == "paragraph":
            return f"<p>{self._inline(node, depth)}</p>"
        if kind == "heading":
            level = attrs.get("level", 1)
            level = level if isinstance(level, int) and 1 <= level <= 6 else 1
            # The notebook title is the page's one h1: a level-1 heading in the content is an h2.
            tag = f"h{max(level, 2)}"
            return f"<{tag}>{self._inline(node, depth)}</{tag}>"
        if kind in {"bulletList", "taskList"}:
            return self._list(node, depth, ordered=False)
        if kind == "orderedList":
            return self._list(node, depth, ordered=True)
        if kind == "blockquote":
            return f"<blockquote>{self.blocks(node, depth + 1)}</blockquote>"
        if kind == "codeBlock":
            language = attrs.get("language")
            css = (
                f' class="language-{language}"'
                if isinstance(language, str) and _LANGUAGE.match(language)
                else ""
            )
            return f"<pre><code{css}>{escape(plain_text(node, depth))}</code></pre>"
        if kind == "horizontalRule":
            return "<hr>"
        if kind == "image":
            return self._image(attrs)
        if isinstance(kind, str) and kind.startswith("ph-"):
            return self._ph_node(node, kind)
        if kind == "text" or kind == "hardBreak":
            return f"<p>{self._inline_node(node, depth)}</p>"
        return self.blocks(node, depth + 1)

    def blocks(self, node: Mapping[str, Any], depth: int) -> str:
        """The children of `node`, each rendered as HTML by `block` at `depth`."""
        return "".join(self.block(child, depth) for child in _children(node))


def _clock(seconds_ms: Any) -> str:
    if not isinstance(seconds_ms, int | float) or isinstance(seconds_ms, bool):
        return "0:00"
    total = max(0, int(seconds_ms) // 1000)
    return f"{total // 60}:{total % 60:02d}"


def _query_label(query: Any) -> str:
    if not isinstance(query, dict):
        return "Query"
    kind = str(query.get("kind", ""))
    if kind == "SavedInsightNode":
        return "Insight"
    source = query.get("source")
    if kind == "InsightVizNode" and isinstance(source, dict):
        return f"Insight ({source.get('kind', 'query')})"
    if kind in _QUERY_WRAPPERS and isinstance(source, dict):
        return f"Query ({source.get('kind', 'query')})"
    return f"Query ({kind})" if kind else "Query"


def _card(
    label: str, note: str, attrs: Mapping[str, Any], *, kind: str = "", body: str = ""
) -> str:
    title = attrs.get("title")
    heading = escape(label)
    if isinstance(title, str) and title.strip() and title.strip() != label:
        heading += f": {escape(title.strip())}"
    query = attrs.get("query")
    facts = [
        f"<dt>{escape(name)}</dt><dd><code>{escape(str(value)[:200])}</code></dd>"
        for name, value in [
            *((n, attrs.get(n)) for n in _CARD_ATTRS),
            ("shortId", query.get("shortId") if isinstance(query, dict) else None),
        ]
        if isinstance(value, str | int | float) and not isinstance(value, bool) and value != ""
    ]
    details = f"<dl>{''.join(facts)}</dl>" if facts else ""
    text = f'<p class="card-note">{escape(note)}</p>' if note else ""
    return (
        f'<aside class="card" data-node="{escape(kind)}">'
        f'<p class="card-label">{heading}</p>{details}{body}{text}</aside>'
    )


def _table(outcome: QueryOutcome) -> str:
    head = "".join(f'<th scope="col">{escape(c)}</th>' for c in outcome.columns)
    body = "".join(
        "<tr>"
        + "".join(
            '<td class="null">null</td>' if cell is None else f"<td>{escape(cell)}</td>"
            for cell in row
        )
        + "</tr>"
        for row in outcome.rows
    )
    count = len(outcome.rows)
    note = (
        f"First {count} rows." if outcome.has_more else f"{count} row{'s' if count != 1 else ''}."
    )
    return (
        f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead>'
        f'<tbody>{body}</tbody></table></div><p class="table-note">{note}</p>'
    )


def render_notebook(
    title: str, content: Any, outcomes: Mapping[str, QueryOutcome] | None = None
) -> str:
    """The notebook as an `<article>`: the title as its h1, then the content.

    A first heading that repeats the title (PostHog takes titles from it) is not shown twice.
    """
    renderer = Renderer(outcomes or {})
    doc: Mapping[str, Any] = content if isinstance(content, dict) else {}
    nodes = list(_children(doc))
    if nodes and nodes[0].get("type") == "heading" and plain_text(nodes[0]).strip() == title:
        nodes = nodes[1:]
    body = "".join(renderer.block(node, 0) for node in nodes)
    return f"<article><h1>{escape(title)}</h1>{body}</article>"
