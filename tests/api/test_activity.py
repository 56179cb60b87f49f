"""Activity entries for every change, per notebook and per project, paginated by page."""

from __future__ import annotations

from tests.conftest import create_notebook


async def test_update_records_before_and_after(client, jane):
    nb = await create_notebook(client, jane, short_id="nb", title="Before")
    await client.patch(
        jane.url("nb"),
        json={"title": "After", "content": {"a": 1}, "version": 0},
        headers=jane.headers,
    )
    log = await (await client.get(jane.url("nb/activity"), headers=jane.headers)).json()
    assert log["total_count"] == 2
    updated, created = log["results"]
    assert created["activity"] == "created"
    assert updated == {
        "id": updated["id"],
        "user": {"first_name": "jane", "email": "jane@example.com"},
        "activity": "updated",
        "scope": "Notebook",
        "item_id": "nb",
        "detail": {
            "id": None,
            "name": "After",
            "short_id": "nb",
            "type": None,
            "changes": [
                {
                    "type": "Notebook",
                    "action": "changed",
                    "field": "title",
                    "before": "Before",
                    "after": "After",
                },
                {
                    "type": "Notebook",
                    "action": "changed",
                    "field": "content",
                    "before": None,
                    "after": {"a": 1},
                },
            ],
            "merge": None,
            "trigger": None,
        },
        "created_at": updated["created_at"],
    }
    assert nb["short_id"] == "nb"


async def test_delete_and_restore_entries(client, jane):
    await create_notebook(client, jane, short_id="nb")
    await client.patch(jane.url("nb"), json={"deleted": True}, headers=jane.headers)
    await client.patch(jane.url("nb"), json={"deleted": False}, headers=jane.headers)
    log = await (await client.get(jane.url("nb/activity"), headers=jane.headers)).json()
    assert [e["activity"] for e in log["results"]] == ["restored", "deleted", "created"]


async def test_rejected_update_writes_no_entry(client, jane):
    await create_notebook(client, jane, short_id="nb")
    resp = await client.patch(
        jane.url("nb"), json={"content": {}, "version": 5}, headers=jane.headers
    )
    assert resp.status == 409
    log = await (await client.get(jane.url("nb/activity"), headers=jane.headers)).json()
    assert log["total_count"] == 1


async def test_project_activity_pages(client, jane, accounts):
    other = await accounts.make("x@example.com", project_id=2)
    await create_notebook(client, other, short_id="elsewhere")
    for i in range(3):
        await create_notebook(client, jane, short_id=f"n{i}")
    page1 = await (await client.get(jane.url("activity?limit=2"), headers=jane.headers)).json()
    assert page1["total_count"] == 3
    assert [e["item_id"] for e in page1["results"]] == ["n2", "n1"]
    assert page1["previous"] is None
    assert "page=2" in page1["next"] and page1["next"].startswith("http")
    page2 = await (
        await client.get(jane.url("activity?limit=2&page=2"), headers=jane.headers)
    ).json()
    assert [e["item_id"] for e in page2["results"]] == ["n0"]
    assert page2["next"] is None
    assert "page=1" in page2["previous"]
    resp = await client.get(jane.url("activity?page=0"), headers=jane.headers)
    assert resp.status == 400
