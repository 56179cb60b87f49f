"""The notebook list: filters, ordering and pagination."""

from __future__ import annotations

from tests.conftest import create_notebook


def _doc(*nodes):
    return {"type": "doc", "content": list(nodes)}


async def _short_ids(client, account, query: str = "") -> list[str]:
    resp = await client.get(account.url() + query, headers=account.headers)
    assert resp.status == 200, await resp.text()
    return [r["short_id"] for r in (await resp.json())["results"]]


async def test_list_is_minimal_and_newest_first(client, jane, clock):
    await create_notebook(client, jane, short_id="old", content=_doc())
    clock.advance(10)
    await create_notebook(client, jane, short_id="new")
    resp = await client.get(jane.url(), headers=jane.headers)
    body = await resp.json()
    assert [r["short_id"] for r in body["results"]] == ["new", "old"]
    assert not {"content", "text_content", "version"} & set(body["results"][0])
    assert await _short_ids(client, jane, "?order=short_id") == ["new", "old"]
    assert await _short_ids(client, jane, "?order=-short_id") == ["old", "new"]


async def test_order_outside_whitelist_is_400(client, jane):
    resp = await client.get(jane.url() + "?order=content", headers=jane.headers)
    assert resp.status == 400
    assert (await resp.json())["attr"] == "order"


async def test_pagination_links_are_absolute(client, jane, clock):
    for i in range(5):
        clock.advance(1)
        await create_notebook(client, jane, short_id=f"n{i}")
    body = await (await client.get(jane.url() + "?limit=2&offset=2", headers=jane.headers)).json()
    assert body["count"] == 5
    assert [r["short_id"] for r in body["results"]] == ["n2", "n1"]
    assert body["next"].startswith("http://") and "offset=4" in body["next"]
    assert "offset=0" in body["previous"]
    last = await (await client.get(jane.url() + "?limit=2&offset=4", headers=jane.headers)).json()
    assert last["next"] is None


async def test_bad_limit_is_400(client, jane):
    for query in ("?limit=0", "?limit=abc", "?offset=-1", "?limit=100000"):
        resp = await client.get(jane.url() + query, headers=jane.headers)
        assert resp.status == 400, query


async def test_user_and_created_by_filters(client, accounts, jane):
    bob = await accounts.make("bob@example.com")
    await create_notebook(client, jane, short_id="janes")
    await create_notebook(client, bob, short_id="bobs")
    assert await _short_ids(client, jane, "?user=false") == ["janes"]
    assert await _short_ids(client, jane, f"?created_by={bob.user.uuid}") == ["bobs"]


async def test_date_filters_are_strict_and_accept_relative(client, jane, clock):
    await create_notebook(client, jane, short_id="early")
    clock.advance(3 * 86400)
    await create_notebook(client, jane, short_id="late")
    assert await _short_ids(client, jane, "?date_from=-1d") == ["late"]
    assert await _short_ids(client, jane, "?date_to=-1d") == ["early"]
    assert await _short_ids(client, jane, "?date_from=2026-01-01T00:00:00") == ["late"]
    resp = await client.get(jane.url() + "?date_from=yesterdayish", headers=jane.headers)
    assert resp.status == 400
    assert (await resp.json())["attr"] == "date_from"


async def test_search_matches_title_or_text_case_insensitively(client, jane):
    await create_notebook(client, jane, short_id="a", title="Weekly Review")
    await create_notebook(client, jane, short_id="b", text_content="the WEEKLY numbers")
    await create_notebook(client, jane, short_id="c", title="Other")
    assert sorted(await _short_ids(client, jane, "?search=weekly")) == ["a", "b"]


async def test_contains_node_type_search(client, jane):
    await create_notebook(
        client, jane, short_id="rec", content=_doc({"type": "ph-recording", "attrs": {"id": 42}})
    )
    await create_notebook(
        client,
        jane,
        short_id="query",
        content=_doc(
            {"type": "ph-query", "attrs": {"query": {"kind": "SavedInsightNode", "shortId": "ab1"}}}
        ),
    )
    await create_notebook(
        client,
        jane,
        short_id="replay",
        content=_doc(
            {
                "type": "paragraph",
                "content": [
                    {"type": "ph-replay-timestamp", "attrs": {"sessionRecordingId": "s-1"}}
                ],
            }
        ),
    )
    await create_notebook(client, jane, short_id="plain", content="not a doc")
    assert await _short_ids(client, jane, "?contains=recording") == ["rec"]
    assert await _short_ids(client, jane, "?contains=recordings:true") == ["rec"]
    assert await _short_ids(client, jane, "?contains=recording:42") == ["rec"]
    assert await _short_ids(client, jane, "?contains=recording:41") == []
    assert sorted(await _short_ids(client, jane, "?contains=recording:false")) == [
        "plain",
        "query",
        "replay",
    ]
    assert await _short_ids(client, jane, "?contains=queries:ab1") == ["query"]
    assert await _short_ids(client, jane, "?contains=replay-timestamp:s-1") == ["replay"]
    assert await _short_ids(client, jane, "?contains=recording:false,query:ab1") == ["query"]
