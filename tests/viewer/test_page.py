"""The viewer's pages over HTTP: headers (CSP) on the notebook and password pages, inert JSON."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from gateway.viewer.page import CONTENT_SECURITY_POLICY, script_json
from tests.conftest import create_notebook
from tests.viewer import fixtures


async def _share(client, jane, content, **sharing) -> str:
    await create_notebook(
        client, jane, short_id="nb", title=fixtures.HOSTILE_TITLE, content=content
    )
    resp = await client.patch(
        jane.url("nb/sharing"), json={"enabled": True, **sharing}, headers=jane.headers
    )
    return f"/shared/{(await resp.json())['access_token']}"


def _assert_headers(resp) -> None:
    csp = resp.headers["Content-Security-Policy"]
    assert csp == CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in csp.split("; "))
    assert directives["default-src"] == "'none'", "no script source at all"
    assert "script-src" not in directives
    assert "unsafe" not in csp
    assert directives["form-action"] == "'self'"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.content_type == "text/html"


def _assert_style_allowed(page: str) -> None:
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY


async def test_notebook_page_headers_and_markup(client, jane):
    url = await _share(client, jane, fixtures.HOSTILE)
    resp = await client.get(url)
    assert resp.status == 200
    _assert_headers(resp)
    page = await resp.text()
    _assert_style_allowed(page)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert page.count("<script") == 1
    assert '<script type="application/json" id="exported-data">' in page
    assert "<!--" not in page
    assert "javascript:" not in page.split("<script", 1)[0]


async def test_password_pages_have_the_same_policy(client, jane):
    url = await _share(client, jane, fixtures.EVERYTHING, password_required=True)
    resp = await client.get(url)
    assert resp.status == 401
    _assert_headers(resp)
    _assert_style_allowed(await resp.text())
    resp = await client.post(url, data={"password": "wrong"})
    assert resp.status == 401
    _assert_headers(resp)
    assert "Incorrect password" in await resp.text()


def test_script_json_cannot_close_or_comment():
    data = {"t": "</script><!--<script>\u2028\u2029&", "n": [1, None]}
    text = script_json(data)
    for bad in ("<", ">", "&", "\u2028", "\u2029"):
        assert bad not in text
    assert json.loads(text) == data
