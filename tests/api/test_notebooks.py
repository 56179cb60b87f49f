"""Notebook CRUD against the real app and a real SQLite file."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import create_notebook

DOC = {
    "type": "doc",
    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "hi"}]}],
}


async def test_create_returns_full_object_with_version_zero(client, jane):
    body = await create_notebook(
        client, jane, title="T", content=DOC, text_content="hi", _create_in_folder="Team/Reports"
    )
    assert body["version"] == 0
    assert body["title"] == "T"
    assert body["content"] == DOC
    assert len(body["short_id"]) == 8 and body["short_id"].isalnum()
    assert body["created_by"]["email"] == "jane@example.com"
    assert body["last_modified_by"]["uuid"] == jane.user.uuid
    assert body["created_at"].endswith("Z")
    assert body["user_access_level"] == "editor"
    assert "_create_in_folder" not in body


async def test_create_with_short_id_and_duplicate_is_400(client, jane):
    body = await create_notebook(client, jane, short_id="Mine123")
    assert body["short_id"] == "Mine123"
    resp = await client.post(jane.url(), json={"short_id": "Mine123"}, headers=jane.headers)
    assert resp.status == 400
    assert (await resp.json())["attr"] == "short_id"


@pytest.mark.parametrize("short_id", ["has-dash", "a" * 13, "", 5, None])
async def test_create_rejects_bad_short_id(client, jane, short_id):
    resp = await client.post(jane.url(), json={"short_id": short_id}, headers=jane.headers)
    assert resp.status == 400
    assert (await resp.json())["attr"] == "short_id"


async def test_retrieve_and_if_none_match(client, jane):
    nb = await create_notebook(client, jane, title="x")
    resp = await client.get(jane.url(nb["short_id"]), headers=jane.headers)
    assert resp.status == 200
    assert (await resp.json())["id"] == nb["id"]
    resp = await client.get(
        jane.url(nb["short_id"]), headers={**jane.headers, "If-None-Match": "0"}
    )
    assert resp.status == 304
    assert await resp.read() == b""
    resp = await client.get(
        jane.url(nb["short_id"]), headers={**jane.headers, "If-None-Match": "7"}
    )
    assert resp.status == 200


async def test_routes_answer_with_and_without_trailing_slash(client, jane):
    nb = await create_notebook(client, jane)
    for path in (jane.url(nb["short_id"]), jane.url(nb["short_id"]) + "/"):
        assert (await client.get(path.replace("//", "/"), headers=jane.headers)).status == 200
    assert (await client.get(jane.url().rstrip("/"), headers=jane.headers)).status == 200


async def test_patch_content_bumps_version_and_checks_it(client, jane):
    nb = await create_notebook(client, jane, content=DOC)
    url = jane.url(nb["short_id"])
    resp = await client.patch(url, json={"content": DOC, "version": 0}, headers=jane.headers)
    assert resp.status == 200
    assert (await resp.json())["version"] == 1
    resp = await client.patch(url, json={"content": DOC, "version": 0}, headers=jane.headers)
    assert resp.status == 409
    assert await resp.json() == {
        "type": "server_error",
        "code": "conflict",
        "detail": "Someone else edited the Notebook",
        "attr": None,
    }
    resp = await client.patch(url, json={"content": DOC}, headers=jane.headers)
    assert resp.status == 409, "content without version is a conflict too"


async def test_title_only_patch_keeps_version_and_sets_modified(client, jane, clock):
    nb = await create_notebook(client, jane)
    clock.advance(60)
    resp = await client.patch(jane.url(nb["short_id"]), json={"title": "New"}, headers=jane.headers)
    body = await resp.json()
    assert body["version"] == 0
    assert body["title"] == "New"
    assert body["last_modified_at"] > nb["last_modified_at"]


async def test_put_updates_like_patch(client, jane):
    nb = await create_notebook(client, jane)
    resp = await client.put(
        jane.url(nb["short_id"]),
        json={"content": DOC, "version": 0, "title": "P"},
        headers=jane.headers,
    )
    assert resp.status == 200
    body = await resp.json()
    assert (body["version"], body["title"]) == (1, "P")


async def test_concurrent_patches_exactly_one_wins(client, jane):
    nb = await create_notebook(client, jane, content=DOC)
    url = jane.url(nb["short_id"])
    responses = await asyncio.gather(
        *(
            client.patch(url, json={"content": {"n": i}, "version": 0}, headers=jane.headers)
            for i in range(8)
        )
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [200] + [409] * 7
    final = await (await client.get(url, headers=jane.headers)).json()
    assert final["version"] == 1


async def test_delete_is_405_with_empty_body(client, jane):
    nb = await create_notebook(client, jane)
    resp = await client.delete(jane.url(nb["short_id"]), headers=jane.headers)
    assert resp.status == 405
    assert await resp.read() == b""
    assert (await client.get(jane.url(nb["short_id"]), headers=jane.headers)).status == 200


SUB_ROUTES = [
    ("GET", ""),
    ("GET", "/activity"),
    ("GET", "/markdown"),
    ("GET", "/sharing"),
    ("PATCH", "/sharing"),
    ("POST", "/sharing/refresh"),
    ("POST", "/sharing/passwords"),
    ("DELETE", "/sharing/passwords/1"),
]


async def test_soft_delete_hides_everywhere_but_patch_restores(client, jane):
    nb = await create_notebook(client, jane, title="gone")
    url = jane.url(nb["short_id"])
    resp = await client.patch(url, json={"deleted": True}, headers=jane.headers)
    assert resp.status == 200
    assert (await resp.json())["deleted"] is True
    for method, sub in SUB_ROUTES:
        resp = await client.request(method, url + sub, json={}, headers=jane.headers)
        assert resp.status == 404, (method, sub)
    listing = await (await client.get(jane.url(), headers=jane.headers)).json()
    assert listing["count"] == 0
    resp = await client.patch(url, json={"deleted": False}, headers=jane.headers)
    assert resp.status == 200
    assert (await client.get(url, headers=jane.headers)).status == 200


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"title": 5}, "title"),
        ({"title": "x" * 257}, "title"),
        ({"text_content": []}, "text_content"),
        ({"deleted": "yes"}, "deleted"),
        ({"version": "1", "content": {}}, "version"),
        ({"version": True, "content": {}}, "version"),
        ({"version": -1, "content": {}}, "version"),
        ({"_create_in_folder": 3}, "_create_in_folder"),
    ],
)
async def test_bad_field_types_are_400_and_write_nothing(client, jane, body, attr):
    nb = await create_notebook(client, jane, title="keep")
    resp = await client.patch(jane.url(nb["short_id"]), json=body, headers=jane.headers)
    assert resp.status == 400
    assert (await resp.json())["attr"] == attr
    after = await (await client.get(jane.url(nb["short_id"]), headers=jane.headers)).json()
    assert after == nb
    resp = await client.post(jane.url(), json=body, headers=jane.headers)
    assert resp.status == 400


async def test_deeply_nested_content_is_400(client, jane):
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(300):
        node["c"] = {}
        node = node["c"]
    resp = await client.post(jane.url(), json={"content": deep}, headers=jane.headers)
    assert resp.status == 400
    assert (await resp.json())["attr"] == "content"


async def test_markdown_renders_content(client, jane):
    content = {
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "Hello"}],
            },
            {
                "type": "bulletList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {
                                "type": "paragraph",
                                "content": [
                                    {"type": "text", "text": "bold", "marks": [{"type": "bold"}]}
                                ],
                            }
                        ],
                    }
                ],
            },
        ],
    }
    nb = await create_notebook(client, jane, content=content)
    resp = await client.get(jane.url(nb["short_id"] + "/markdown"), headers=jane.headers)
    assert await resp.json() == {"markdown": "## Hello\n\n- **bold**\n"}
