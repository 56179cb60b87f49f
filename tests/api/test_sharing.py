"""Sharing configuration, passwords and the public viewer, with an injectable clock."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from gateway.keys import SETTINGS_KEY
from tests.conftest import create_notebook

DOC = {
    "type": "doc",
    "content": [{"type": "paragraph", "content": [{"type": "text", "text": "</script>hi"}]}],
}


async def _shared_notebook(client, jane, **sharing):
    nb = await create_notebook(client, jane, short_id="shared1", title="Shared", content=DOC)
    resp = await client.patch(
        jane.url("shared1/sharing"), json={"enabled": True, **sharing}, headers=jane.headers
    )
    assert resp.status == 200, await resp.text()
    return nb, await resp.json()


async def test_unsaved_default_config(client, jane):
    await create_notebook(client, jane, short_id="nb")
    first = await (await client.get(jane.url("nb/sharing"), headers=jane.headers)).json()
    assert first["created_at"] is None
    assert first["enabled"] is False
    assert first["settings"] is None
    assert first["share_passwords"] == []
    assert len(first["access_token"]) >= 29
    second = await (await client.get(jane.url("nb/sharing"), headers=jane.headers)).json()
    assert second["access_token"] != first["access_token"], "unsaved token is not persisted"


async def test_patch_persists_and_filters_settings(client, jane):
    _, body = await _shared_notebook(client, jane, settings={"noHeader": True, "evil": 1})
    assert body["enabled"] is True
    assert body["settings"] == {"noHeader": True}
    assert body["created_at"] is not None
    again = await (await client.get(jane.url("shared1/sharing"), headers=jane.headers)).json()
    assert again == body


async def test_bad_settings_is_400(client, jane):
    await create_notebook(client, jane, short_id="nb")
    for bad in ([1], "x", 3):
        resp = await client.patch(
            jane.url("nb/sharing"), json={"settings": bad}, headers=jane.headers
        )
        assert resp.status == 400
        assert (await resp.json())["detail"] == "Invalid settings format"
    resp = await client.patch(jane.url("nb/sharing"), json={"enabled": "yes"}, headers=jane.headers)
    assert resp.status == 400


async def test_public_json_and_html(client, jane):
    _, config = await _shared_notebook(client, jane)
    token = config["access_token"]
    resp = await client.get(f"/shared/{token}.json")
    assert resp.status == 200
    assert await resp.json() == {
        "type": "scene",
        "notebook": {"short_id": "shared1", "title": "Shared", "content": DOC},
    }
    resp = await client.get(f"/shared/{token}")
    assert resp.status == 200
    page = await resp.text()
    assert "<title>Shared</title>" in page
    assert "</script>hi" not in page, "user text must not close the data script"


async def test_disabled_unknown_or_deleted_is_404(client, jane):
    _, config = await _shared_notebook(client, jane)
    token = config["access_token"]
    assert (await client.get("/shared/nope.json")).status == 404
    await client.patch(jane.url("shared1/sharing"), json={"enabled": False}, headers=jane.headers)
    assert (await client.get(f"/shared/{token}.json")).status == 404
    await client.patch(jane.url("shared1/sharing"), json={"enabled": True}, headers=jane.headers)
    assert (await client.get(f"/shared/{token}.json")).status == 200
    await client.patch(jane.url("shared1"), json={"deleted": True}, headers=jane.headers)
    assert (await client.get(f"/shared/{token}.json")).status == 404


async def test_refresh_keeps_old_token_for_grace_period(client, jane, clock):
    _, config = await _shared_notebook(client, jane)
    old = config["access_token"]
    resp = await client.post(jane.url("shared1/sharing/refresh"), headers=jane.headers)
    assert resp.status == 200
    new = (await resp.json())["access_token"]
    assert new != old
    assert (await resp.json())["enabled"] is True
    assert (await client.get(f"/shared/{new}.json")).status == 200
    clock.advance(299)
    assert (await client.get(f"/shared/{old}.json")).status == 200
    clock.advance(2)
    assert (await client.get(f"/shared/{old}.json")).status == 404
    assert (await client.get(f"/shared/{new}.json")).status == 200


async def test_password_needs_password_required(client, jane):
    await _shared_notebook(client, jane)
    resp = await client.post(jane.url("shared1/sharing/passwords"), json={}, headers=jane.headers)
    assert resp.status == 400
    assert await resp.json() == {
        "error": "Password protection must be enabled before creating passwords"
    }


async def test_password_validation(client, jane):
    await _shared_notebook(client, jane, password_required=True)
    url = jane.url("shared1/sharing/passwords")
    resp = await client.post(url, json={"raw_password": "short"}, headers=jane.headers)
    assert resp.status == 400
    assert (await resp.json())["attr"] == "raw_password"
    resp = await client.post(url, json={"note": "n" * 101}, headers=jane.headers)
    assert resp.status == 400
    assert (await resp.json())["attr"] == "note"


async def test_password_is_hashed_and_shown_once(client, jane, settings):
    await _shared_notebook(client, jane, password_required=True)
    resp = await client.post(
        jane.url("shared1/sharing/passwords"),
        json={"raw_password": "correct horse", "note": "investors"},
        headers=jane.headers,
    )
    assert resp.status == 201
    created = await resp.json()
    assert created["password"] == "correct horse"
    assert created["note"] == "investors"
    assert created["created_by_email"] == "jane@example.com"
    generated = await (
        await client.post(jane.url("shared1/sharing/passwords"), json={}, headers=jane.headers)
    ).json()
    assert len(generated["password"]) >= 16
    config = await (await client.get(jane.url("shared1/sharing"), headers=jane.headers)).json()
    assert [p["id"] for p in config["share_passwords"]] == [created["id"], generated["id"]]
    assert "password" not in config["share_passwords"][0]
    with contextlib.closing(sqlite3.connect(settings.database_path)) as db:
        hashes = [r[0] for r in db.execute("SELECT password_hash FROM share_passwords")]
    assert all(h.startswith("pbkdf2_sha256$600000$") for h in hashes)
    assert not any("correct horse" in h for h in hashes)


async def test_password_flow(client, jane, clock):
    _, config = await _shared_notebook(client, jane, password_required=True)
    token = config["access_token"]
    pw = await (
        await client.post(
            jane.url("shared1/sharing/passwords"),
            json={"raw_password": "open sesame"},
            headers=jane.headers,
        )
    ).json()
    resp = await client.get(f"/shared/{token}.json")
    assert resp.status == 401
    resp = await client.get(f"/shared/{token}")
    assert resp.status == 401
    assert "password" in (await resp.text()).lower()

    resp = await client.post(f"/shared/{token}.json", json={"password": "wrong one"})
    assert resp.status == 401
    assert await resp.json() == {"error": "Incorrect password"}

    resp = await client.post(f"/shared/{token}.json", json={"password": "open sesame"})
    assert resp.status == 200
    share_token = (await resp.json())["shareToken"]
    cookie = resp.cookies["posthog_sharing_token"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == f"/shared/{token}"

    resp = await client.get(
        f"/shared/{token}.json", headers={"Authorization": f"Bearer {share_token}"}
    )
    assert resp.status == 200
    assert (await resp.json())["notebook"]["short_id"] == "shared1"

    # The token dies with its password, and after 24 hours.
    clock.advance(24 * 3600 + 1)
    resp = await client.get(
        f"/shared/{token}.json", headers={"Authorization": f"Bearer {share_token}"}
    )
    assert resp.status == 401
    resp = await client.post(f"/shared/{token}.json", json={"password": "open sesame"})
    share_token = (await resp.json())["shareToken"]
    resp = await client.delete(
        jane.url(f"shared1/sharing/passwords/{pw['id']}"), headers=jane.headers
    )
    assert resp.status == 204
    resp = await client.get(
        f"/shared/{token}.json", headers={"Authorization": f"Bearer {share_token}"}
    )
    assert resp.status == 401


async def test_failed_logins_are_logged(client, jane):
    _, config = await _shared_notebook(client, jane, password_required=True)
    await client.post(f"/shared/{config['access_token']}.json", json={"password": "nope"})
    log = await (await client.get(jane.url("shared1/activity"), headers=jane.headers)).json()
    entry = log["results"][0]
    assert entry["activity"] == "share_login_failed"
    assert entry["user"] == {"first_name": "System", "email": None, "is_system": True}


async def test_share_token_is_bound_to_its_link(client, accounts, jane):
    _, config = await _shared_notebook(client, jane, password_required=True)
    await client.post(
        jane.url("shared1/sharing/passwords"),
        json={"raw_password": "password1"},
        headers=jane.headers,
    )
    share_token = (
        await (
            await client.post(
                f"/shared/{config['access_token']}.json", json={"password": "password1"}
            )
        ).json()
    )["shareToken"]
    await create_notebook(client, jane, short_id="other")
    other = await (
        await client.patch(
            jane.url("other/sharing"),
            json={"enabled": True, "password_required": True},
            headers=jane.headers,
        )
    ).json()
    resp = await client.get(
        f"/shared/{other['access_token']}.json", headers={"Authorization": f"Bearer {share_token}"}
    )
    assert resp.status == 401


async def test_failed_logins_are_throttled(client, jane, clock):
    _, config = await _shared_notebook(client, jane, password_required=True)
    await client.post(
        jane.url("shared1/sharing/passwords"),
        json={"raw_password": "password1"},
        headers=jane.headers,
    )
    url = f"/shared/{config['access_token']}.json"
    limit = client.server.app[SETTINGS_KEY].share_login_max_failures
    for _ in range(limit):
        assert (await client.post(url, json={"password": "bad"})).status == 401
    resp = await client.post(url, json={"password": "password1"})
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) > 0
    clock.advance(client.server.app[SETTINGS_KEY].share_login_window_s + 1)
    assert (await client.post(url, json={"password": "password1"})).status == 200


async def test_html_form_unlock_sets_cookie_and_redirects(client, jane):
    _, config = await _shared_notebook(client, jane, password_required=True)
    await client.post(
        jane.url("shared1/sharing/passwords"),
        json={"raw_password": "password1"},
        headers=jane.headers,
    )
    url = f"/shared/{config['access_token']}"
    resp = await client.post(url, data={"password": "password1"}, allow_redirects=False)
    assert resp.status == 303
    assert resp.headers["Location"] == url
    resp = await client.get(url)
    assert resp.status == 200
    assert "Shared" in await resp.text()


async def test_delete_unknown_password_is_404(client, jane):
    await _shared_notebook(client, jane, password_required=True)
    for pid in ("999", "abc"):
        resp = await client.delete(
            jane.url(f"shared1/sharing/passwords/{pid}"), headers=jane.headers
        )
        assert resp.status == 404


async def test_sharing_changes_write_activity(client, jane):
    await _shared_notebook(client, jane)
    await client.post(jane.url("shared1/sharing/refresh"), headers=jane.headers)
    log = await (await client.get(jane.url("shared1/activity"), headers=jane.headers)).json()
    assert [e["activity"] for e in log["results"]] == [
        "sharing_token_refreshed",
        "sharing_enabled",
        "created",
    ]
    change = log["results"][1]["detail"]["changes"][0]
    assert change == {
        "type": "Notebook",
        "action": "changed",
        "field": "sharing.enabled",
        "before": None,
        "after": True,
    }


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/x-www-form-urlencoded", b"password=\xff\xfe"),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name=\xff\r\n",
        ),
        ("multipart/form-data", b"no boundary at all"),
    ],
)
async def test_unreadable_form_bodies_are_400(client, jane, content_type, body):
    _, sharing = await _shared_notebook(client, jane)
    token = sharing["access_token"]
    resp = await client.post(f"/shared/{token}", data=body, headers={"Content-Type": content_type})
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["type"] == "validation_error"
