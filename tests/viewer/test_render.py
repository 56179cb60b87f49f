"""ProseMirror → HTML: structure, escaping, URL checks, query node shapes, cards, depth."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.viewer import QueryOutcome, hogql_queries, render_notebook
from gateway.viewer.render import hogql_of, safe_url
from tests.viewer.fixtures import heading, hogql_node, item, para, text


def _doc(*nodes):
    return {"type": "doc", "content": list(nodes)}


def _body(*nodes, outcomes=None, title="T"):
    html = render_notebook(title, _doc(*nodes), outcomes)
    prefix = f"<article><h1>{title}</h1>"
    assert html.startswith(prefix)
    assert html.endswith("</article>")
    return html[len(prefix) : -len("</article>")]


def test_marks_nest_in_order_and_text_is_escaped():
    assert _body(para(text("<b>&", "bold", "italic"))) == (
        "<p><em><strong>&lt;b&gt;&amp;</strong></em></p>"
    )
    assert _body(para(text("x", "code", "strike", "underline"))) == (
        "<p><u><s><code>x</code></s></u></p>"
    )


def test_links_open_safely():
    assert _body(para(text("go", "bold", href='https://e.com/?a=1&b="2"'))) == (
        '<p><a href="https://e.com/?a=1&amp;b=&quot;2&quot;" rel="noopener noreferrer"'
        ' target="_blank"><strong>go</strong></a></p>'
    )


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "//evil.example/x",
        "/relative",
        None,
        42,
    ],
)
def test_other_links_become_text(href):
    assert _body(para(text("go", href=href))) == "<p>go</p>"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://cdn.example/a.png", True),
        ("http://cdn.example/a.png", True),
        ("data:image/png;base64,iVBORw0KGgo=", True),
        ("data:image/svg+xml;base64,PHN2Zz4=", False),
        ('data:image/png;base64,AAA"onerror=x', False),
        ("javascript:alert(1)", False),
        ("mailto:a@b.c", False),
    ],
)
def test_image_urls(url, ok):
    assert (safe_url(url, image=True) is not None) is ok


def test_blocks():
    html = _body(
        heading(2, "Sub"),
        {"type": "bulletList", "content": [item(para(text("a"))), item(para(text("b")))]},
        {"type": "orderedList", "attrs": {"start": 4}, "content": [item(para(text("c")))]},
        {"type": "orderedList", "attrs": {"start": '1" onclick="x'}, "content": []},
        {"type": "blockquote", "content": [para(text("q"))]},
        {"type": "codeBlock", "attrs": {"language": "sql"}, "content": [text("a < b")]},
        {"type": "codeBlock", "attrs": {"language": '"><x'}, "content": [text("y")]},
        {"type": "horizontalRule"},
        para(text("a"), {"type": "hardBreak"}, text("b")),
    )
    assert html == (
        "<h2>Sub</h2><ul><li><p>a</p></li><li><p>b</p></li></ul>"
        '<ol start="4"><li><p>c</p></li></ol><ol></ol>'
        "<blockquote><p>q</p></blockquote>"
        '<pre><code class="language-sql">a &lt; b</code></pre><pre><code>y</code></pre>'
        "<hr><p>a<br>b</p>"
    )


def test_the_title_is_the_one_h1():
    assert _body(heading(1, "T"), heading(1, "Other"), title="T") == "<h2>Other</h2>"
    assert _body(heading(1, "Not the title"), title="T") == "<h2>Not the title</h2>"
    for level in (True, "3", 9, None):
        node = {"type": "heading", "attrs": {"level": level}, "content": [text("x")]}
        assert _body(node) == "<h2>x</h2>"
    assert render_notebook("<T>", None) == "<article><h1>&lt;T&gt;</h1></article>"
    assert render_notebook("T", ["not", "a", "doc"]) == "<article><h1>T</h1></article>"


def test_images():
    png = "data:image/png;base64,iVBORw0KGgo="
    assert _body({"type": "ph-image", "attrs": {"src": png}}) == (
        f'<figure><img src="{png}" alt="image" loading="lazy" referrerpolicy="no-referrer">'
        "</figure>"
    )
    html = _body({"type": "image", "attrs": {"src": "javascript:x", "alt": "<x>"}})
    assert "<img" not in html
    assert "The image is not available here." in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "DataTableNode", "source": {"kind": "HogQLQuery", "query": "select 1"}}, True),
        (
            {
                "kind": "DataVisualizationNode",
                "source": {"kind": "HogQLQuery", "query": "select 1"},
            },
            True,
        ),
        ({"kind": "HogQLQuery", "query": "select 1"}, True),
        ({"kind": "HogQLQuery", "query": "  "}, False),
        ({"kind": "HogQLQuery", "query": 5}, False),
        ({"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["*"]}}, False),
        ({"kind": "InsightVizNode", "source": {"kind": "TrendsQuery"}}, False),
        ({"kind": "SavedInsightNode", "shortId": "abc"}, False),
        ("select 1", False),
    ],
)
def test_which_query_nodes_run_hogql(query, expected):
    node = {"type": "ph-query", "attrs": {"query": query}}
    assert (hogql_of(node) == "select 1") is expected


def test_hogql_queries_in_document_order_once_each():
    doc = _doc(
        hogql_node("select 2"),
        {"type": "blockquote", "content": [hogql_node("select 1", wrapper=None)]},
        {"type": "ph-hogql-sql", "attrs": {"code": "select 3"}},
        hogql_node("select 2", wrapper="DataVisualizationNode"),
    )
    assert hogql_queries(doc) == ["select 2", "select 1", "select 3"]
    assert hogql_queries(None) == []


def test_query_results_and_errors_are_escaped():
    node = hogql_node("select '<x>'", title="<Mine>")
    table = QueryOutcome(columns=("<c>",), rows=(("<v>",), (None,)), has_more=True)
    html = _body(node, outcomes={"select '<x>'": table})
    assert '<h3 class="card-label">&lt;Mine&gt;</h3>' in html
    assert "<pre><code>select &#x27;&lt;x&gt;&#x27;</code></pre>" in html
    assert '<th scope="col">&lt;c&gt;</th>' in html
    assert "<tr><td>&lt;v&gt;</td></tr>" in html
    assert '<tr><td class="null">null</td></tr>' in html
    assert "First 2 rows." in html
    html = _body(node, outcomes={"select '<x>'": QueryOutcome(error="bad <thing>")})
    assert '<p class="error" role="alert">bad &lt;thing&gt;</p>' in html
    assert "This query was not run." in _body(node)


def test_cards_say_what_a_node_is():
    html = _body(
        {"type": "ph-recording", "attrs": {"id": "<r>", "title": "Demo", "nested": {"a": 1}}},
        {"type": "ph-<evil>", "attrs": {"id": True}},
        {"type": "ph-query", "attrs": {"query": {"kind": "SavedInsightNode", "shortId": "S1"}}},
    )
    assert html == (
        '<aside class="card" data-node="ph-recording"><p class="card-label">'
        "Session recording: Demo</p><dl><dt>id</dt><dd><code>&lt;r&gt;</code></dd></dl>"
        '<p class="card-note">Open this notebook in PostHog to see it.</p></aside>'
        '<aside class="card" data-node="ph-&lt;evil&gt;"><p class="card-label">'
        "PostHog node (&lt;evil&gt;)</p>"
        '<p class="card-note">Open this notebook in PostHog to see it.</p></aside>'
        '<aside class="card" data-node="ph-query"><p class="card-label">Insight</p>'
        "<dl><dt>shortId</dt><dd><code>S1</code></dd></dl>"
        '<p class="card-note">Open this notebook in PostHog to see it.</p></aside>'
    )


def test_inline_nodes():
    html = _body(
        para(
            {"type": "ph-replay-timestamp", "attrs": {"playbackTime": 61_500}},
            {"type": "ph-mention", "attrs": {"label": "<J>"}},
            {"type": "ph-backlink", "attrs": {"href": "javascript:x", "title": "t"}},
            {"type": "ph-backlink", "attrs": {"href": "https://e.com", "title": "e"}},
        )
    )
    assert html == (
        '<p><span class="timestamp">1:01</span><span class="mention">@&lt;J&gt;</span>'
        '<span class="backlink">t</span>'
        '<a href="https://e.com" rel="noopener noreferrer" target="_blank">e</a></p>'
    )


def test_deep_documents_are_cut_off_not_crashed():
    node: dict[str, Any] = para(text("bottom"))
    for _ in range(5_000):
        node = {"type": "blockquote", "content": [node]}
    html = render_notebook("T", _doc(node))
    assert "(nested too deeply to show)" in html
    assert "bottom" not in html
    deep_query = hogql_node("select 1")
    for _ in range(5_000):
        deep_query = {"type": "blockquote", "content": [deep_query]}
    assert hogql_queries(_doc(deep_query)) == []
