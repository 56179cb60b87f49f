"""GET serves cached bodies, and every change to a notebook drops its entry at once."""

from __future__ import annotations

from gateway.render_cache import RenderCache, Rendered
from tests.conftest import create_notebook


async def _get(client, account, short_id):
    return await client.get(account.url(short_id), headers=account.headers)


async def test_every_write_path_invalidates(client, jane):
    await create_notebook(client, jane, short_id="nb", title="one")
    assert (await (await _get(client, jane, "nb")).json())["title"] == "one"
    await client.patch(jane.url("nb"), json={"title": "two"}, headers=jane.headers)
    assert (await (await _get(client, jane, "nb")).json())["title"] == "two"
    await client.post(
        jane.url("nb/collab/save"),
        json={"client_id": "c", "version": 0, "steps": [{}], "content": {"k": 1}},
        headers=jane.headers,
    )
    body = await (await _get(client, jane, "nb")).json()
    assert (body["version"], body["content"]) == (1, {"k": 1})
    resp = await client.get(jane.url("nb"), headers={**jane.headers, "If-None-Match": "1"})
    assert resp.status == 304
    await client.patch(jane.url("nb"), json={"deleted": True}, headers=jane.headers)
    assert (await _get(client, jane, "nb")).status == 404
    await client.patch(jane.url("nb"), json={"deleted": False}, headers=jane.headers)
    assert (await _get(client, jane, "nb")).status == 200


async def test_cache_is_per_project(client, accounts):
    jane = await accounts.make("jane@example.com", project_id=1)
    bob = await accounts.make("bob@example.com", project_id=2)
    await create_notebook(client, jane, short_id="same", title="jane's")
    await create_notebook(client, bob, short_id="same", title="bob's")
    assert (await (await _get(client, jane, "same")).json())["title"] == "jane's"
    assert (await (await _get(client, bob, "same")).json())["title"] == "bob's"
    assert (await (await _get(client, jane, "same")).json())["title"] == "jane's"


def test_a_read_that_raced_a_write_is_not_cached():
    cache = RenderCache(max_bytes=1024)
    generation = cache.generation((1, "nb"))
    cache.invalidate(1, "nb")  # a write commits while the read renders
    cache.put((1, "nb"), Rendered(version=0, body=b"stale"), generation=generation)
    assert cache.get((1, "nb")) is None


def test_budget_evicts_least_recently_used():
    cache = RenderCache(max_bytes=800)
    for name in ("a", "b", "c"):
        cache.put((1, name), Rendered(version=0, body=b"x" * 100), generation=0)
    cache.get((1, "a"))
    for name in ("d", "e", "f", "g", "h", "i"):  # 9 x 100 bytes > 800
        cache.put((1, name), Rendered(version=0, body=b"x" * 100), generation=0)
    assert cache.get((1, "a")) is not None, "recently used stays"
    assert cache.get((1, "b")) is None, "least recently used goes"
