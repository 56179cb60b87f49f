"""The shared viewer in headless Chromium (Debian's `chromium`) at a phone's width.

Each fixture notebook is opened by the browser from a live gateway: its DOM (after the browser
parsed it and ran whatever it would run) is asserted on, and a 390x844 screenshot is taken
(kept in $GATEWAY_SCREENSHOT_DIR when set). Without a browser these tests skip, except in CI
(`CI=true`) or with GATEWAY_REQUIRE_BROWSER=1, where that is a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import struct
from pathlib import Path

import pytest

from gateway.keys import ANALYTICS_KEY
from tests.conftest import create_notebook
from tests.viewer import fixtures
from tests.viewer.dom import Element, parse

# Read at import: the autouse fixture in conftest clears GATEWAY_* before each test.
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("GATEWAY_REQUIRE_BROWSER") == "1"
SCREENSHOTS = os.environ.get("GATEWAY_SCREENSHOT_DIR")
WIDTH, HEIGHT = 390, 844


class Chromium:
    def __init__(self, path: str, profile: Path) -> None:
        self.path = path
        self.profile = profile

    async def _run(self, url: str, *flags: str) -> str:
        proc = await asyncio.create_subprocess_exec(
            self.path,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={self.profile}",
            f"--window-size={WIDTH},{HEIGHT}",
            "--virtual-time-budget=5000",
            *flags,
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout=90)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
        return out.decode()

    async def dom(self, url: str) -> Element:
        return parse(await self._run(url, "--dump-dom"))

    async def screenshot(self, url: str, name: str, tmp_path: Path) -> Path:
        target = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        path.unlink(missing_ok=True)
        await self._run(url, f"--screenshot={path}")
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert struct.unpack(">II", data[16:24]) == (WIDTH, HEIGHT)
        assert len(data) > 5_000, "a blank screenshot compresses to almost nothing"
        return path


@pytest.fixture(scope="session")
def browser_path() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    reason = "no chromium on PATH (scripts/ensure-browser installs it)"
    if REQUIRED:
        pytest.fail(f"browser tests are required here but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def chromium(browser_path, tmp_path) -> Chromium:
    return Chromium(browser_path, tmp_path / "profile")


async def _share(client, account, short_id, title, content, **sharing) -> str:
    await create_notebook(client, account, short_id=short_id, title=title, content=content)
    resp = await client.patch(
        account.url(f"{short_id}/sharing"),
        json={"enabled": True, **sharing},
        headers=account.headers,
    )
    assert resp.status == 200, await resp.text()
    return str(client.make_url(f"/shared/{(await resp.json())['access_token']}"))


def _texts(elements: list[Element]) -> list[str]:
    return [e.text().strip() for e in elements]


def _not_pwned(dom: Element) -> None:
    html = dom.find("html")
    assert html is not None
    assert "data-pwned" not in html.attrs, "a script from the notebook ran"


async def test_every_node_and_mark(client, jane, chromium, tmp_path):
    url = await _share(client, jane, "every", fixtures.EVERYTHING_TITLE, fixtures.EVERYTHING)
    dom = await chromium.dom(url)
    _not_pwned(dom)
    assert _texts(dom.find_all("h1")) == [fixtures.EVERYTHING_TITLE]
    assert _texts(dom.find_all("h2")) == ["Marks"]
    assert _texts(dom.find_all("h3")) == ["Lists"]
    for tag, text in [("strong", "bold"), ("em", "italic"), ("code", "code"), ("s", "struck")]:
        assert text in _texts(dom.find_all(tag)), tag
    assert _texts(dom.find_all("u")) == ["underlined"]
    assert dom.find("strong").find("em") or dom.find_all("em")[-1].find("strong")
    (link,) = [a for a in dom.find_all("a") if a.text() == "a link"]
    assert link.attrs["href"] == "https://posthog.com/docs"
    assert set(link.attrs["rel"].split()) >= {"noopener", "noreferrer"}
    assert dom.find("main").find("br") is not None
    (bullets,) = dom.find_all("ul")
    assert len([c for c in bullets.children if isinstance(c, Element)]) == 2
    (numbered,) = dom.find_all("ol")
    assert numbered.attrs["start"] == "3"
    assert _texts(numbered.find_all("li")) == ["three", "four"]
    assert _texts(dom.find_all("blockquote")) == ["A quotation, in a blockquote."]
    code = dom.find("pre").find("code")
    assert code.attrs["class"] == "language-python"
    assert code.text() == "def answer():\n    return 42"
    assert dom.find("hr") is not None
    (img,) = dom.find("main").find_all("img")
    assert img.attrs["src"].startswith("data:image/png;base64,")
    cards = _texts([c.by_class("card-label")[0] for c in dom.by_class("card")])
    assert cards == [
        "Insight",
        "Insight (TrendsQuery)",
        "Session recording: Checkout session",
        "Person",
        "Feature flag",
        "Python",
        "PostHog node (something-new)",
    ]
    assert _texts(dom.by_class("timestamp")) == ["1:23"]
    assert _texts(dom.by_class("mention")) == ["@Jane"]
    await chromium.screenshot(url, "every-node", tmp_path)


async def test_hogql_nodes_show_their_rows(client, jane, chromium, tmp_path):
    client.server.app[ANALYTICS_KEY].insert_events(1, fixtures.events())
    url = await _share(client, jane, "rows", fixtures.HOGQL_TITLE, fixtures.HOGQL)
    dom = await chromium.dom(url)
    _not_pwned(dom)
    assert _texts(dom.find_all("h1")) == [fixtures.HOGQL_TITLE]
    events, count, numbers = dom.find_all("table")
    assert _texts(events.find_all("th")) == ["event", "distinct_id"]
    rows = [_texts(tr.find_all("td")) for tr in events.find("tbody").find_all("tr")]
    assert rows == fixtures.HOGQL_ROWS
    assert [_texts(tr.find_all("td")) for tr in count.find("tbody").find_all("tr")] == [["3"]]
    assert len(numbers.find("tbody").find_all("tr")) == 100
    assert "First 100 rows." in _texts(dom.by_class("table-note"))
    queries = dom.by_class("query")
    assert _texts([q.by_class("card-label")[0] for q in queries]) == [
        "Event list",
        "SQL query",
        "SQL query",
        "Broken",
    ]
    (error,) = [e for e in dom.find_all("p") if e.attrs.get("role") == "alert"]
    assert error.text().strip()
    await chromium.screenshot(url, "hogql-rows", tmp_path)


async def test_hostile_text_stays_text(client, jane, chromium, tmp_path):
    url = await _share(client, jane, "hostile", fixtures.HOSTILE_TITLE, fixtures.HOSTILE)
    dom = await chromium.dom(url)
    _not_pwned(dom)
    assert dom.find("title").text() == fixtures.HOSTILE_TITLE
    assert _texts(dom.find_all("h1")) == [fixtures.HOSTILE_TITLE]
    scripts = dom.find_all("script")
    assert [s.attrs.get("type") for s in scripts] == ["application/json"], "no executable script"
    scene = json.loads(scripts[0].text())
    assert scene["notebook"]["title"] == fixtures.HOSTILE_TITLE, "the data block is intact"
    assert scene["notebook"]["content"] == fixtures.HOSTILE
    for a in dom.find_all("a"):
        assert a.attrs["href"].startswith(("http://", "https://", "mailto:")), a.attrs
    assert not dom.find("main").find_all("img"), "javascript:/SVG images are not loaded"
    table = dom.find("table")
    assert _texts(table.find_all("th")) == ["<th onclick=x>"]
    assert _texts(table.find_all("td")) == [f"</script><script>{fixtures.PWN}</script>"]
    await chromium.screenshot(url, "hostile", tmp_path)


async def test_the_pwn_detector_sees_a_script_that_runs(chromium, tmp_path):
    """Control: the check above can fail. The same payload, unescaped, does run."""
    page = tmp_path / "control.html"
    page.write_text(f"<html><body><h1>x</h1><script>{fixtures.PWN}</script></body></html>")
    dom = await chromium.dom(page.as_uri())
    assert dom.find("html").attrs.get("data-pwned") == "1"


def _launcher(tmp_path: Path, url: str, password: str) -> str:
    """A local page that submits the unlock form to the gateway, as a person would."""
    page = tmp_path / f"unlock-{len(password)}.html"
    page.write_text(
        f'<html><body><form method="post" action="{url}">'
        f'<input name="password" value="{password}"></form>'
        "<script>document.forms[0].submit()</script></body></html>"
    )
    return page.as_uri()


async def test_password_page(client, jane, chromium, tmp_path):
    url = await _share(
        client, jane, "locked", "Locked", fixtures.EVERYTHING, password_required=True
    )
    resp = await client.post(
        jane.url("locked/sharing/passwords"),
        json={"raw_password": "open sesame"},
        headers=jane.headers,
    )
    assert resp.status == 201, await resp.text()
    dom = await chromium.dom(url)
    assert _texts(dom.find_all("h1")) == ["This notebook is password protected"]
    (form,) = dom.find_all("form")
    assert form.attrs["method"] == "post"
    assert [i.attrs["type"] for i in form.find_all("input")] == ["password"]
    await chromium.screenshot(url, "password", tmp_path)

    wrong = await chromium.dom(_launcher(tmp_path, url, "not it"))
    assert _texts(wrong.find_all("h1")) == ["This notebook is password protected"]
    alerts = [e for e in wrong.find_all("p") if e.attrs.get("role") == "alert"]
    assert _texts(alerts) == ["Incorrect password"]

    right = await chromium.dom(_launcher(tmp_path, url, "open sesame"))
    assert _texts(right.find_all("h1")) == ["Locked"]
    assert "Marks" in _texts(right.find_all("h2"))
    # the cookie from the unlock is in the profile: the link itself opens now
    again = await chromium.dom(url)
    assert _texts(again.find_all("h1")) == ["Locked"]
