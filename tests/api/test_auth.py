"""The scope matrix of API.md §1 and the 401/403/404 rules of §0, over every route."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.auth import SCOPES, scope_allows
from gateway.openapi import api_routes
from gateway.settings import Settings
from tests.conftest import create_notebook

# API.md §1, route name → scope. The test below checks the app agrees for every named route.
EXPECTED_SCOPES = {
    "list_notebooks": "notebook:read",
    "get_notebook": "notebook:read",
    "get_notebook_markdown": "notebook:read",
    "create_notebook": "notebook:write",
    "update_notebook": "notebook:write",
    "replace_notebook": "notebook:write",
    "delete_notebook": "notebook:write",
    "list_project_activity": "activity_log:read",
    "list_notebook_activity": "activity_log:read",
    "get_sharing": "sharing_configuration:read",
    "update_sharing": "sharing_configuration:write",
    "refresh_sharing": "sharing_configuration:write",
    "create_share_password": "sharing_configuration:write",
    "delete_share_password": "sharing_configuration:write",
    "save_collab": "notebook:write",
    "post_collab_presence": "notebook:write",
    "stream_collab": "notebook:read",
    "start_kernel": "notebook:write",
    "stop_kernel": "notebook:write",
    "restart_kernel": "notebook:write",
    "configure_kernel": "notebook:write",
    "execute_code": "notebook:write",
    "execute_code_stream": "notebook:write",
    "get_kernel_status": "notebook:read",
    "get_kernel_dataframe": "notebook:read",
    "execute_hogql": "query:read",
}
PUBLIC = {
    "health",
    "get_schema",
    "view_shared",
    "unlock_shared",
    "capture_batch",
    "capture_event",
    "capture_e",
    "capture_i_v0_e",
    # SDK endpoints: the project token (or none, for CORS preflights) is their only key
    "decide",
    "evaluate_flags",
    "remote_config",
    "remote_config_js",
    "preflight_batch",
    "preflight_capture",
    "preflight_decide",
    "preflight_e",
    "preflight_flags",
    "preflight_i_v0_e",
}


def _api_routes():
    return [
        (name, method, path)
        for name, method, path, _ in api_routes(create_app(Settings()))
        if name not in PUBLIC
    ]


API_ROUTES = _api_routes()


def test_every_route_is_in_the_scope_table():
    names = {name for name, _, _ in API_ROUTES}
    assert names == set(EXPECTED_SCOPES)


def test_declared_scopes_match_the_table():
    for name, _, _, route in api_routes(create_app(Settings())):
        if name in EXPECTED_SCOPES:
            assert getattr(route.handler, "required_scope", None) == EXPECTED_SCOPES[name], name


def _fill(path: str, short_id: str, project_id: int = 1) -> str:
    return (
        path.replace("{project_id}", str(project_id))
        .replace("{short_id}", short_id)
        .replace("{notebook_id}", short_id)
        .replace("{password_id}", "1")
    )


@pytest.mark.parametrize(("name", "method", "path"), API_ROUTES, ids=[r[0] for r in API_ROUTES])
async def test_route_needs_a_key_its_scope_and_the_project(client, accounts, name, method, path):
    owner = await accounts.make("owner@example.com")
    nb = await create_notebook(client, owner, short_id="target")
    url = _fill(path, nb["short_id"])

    resp = await client.request(method, url, json={})
    assert resp.status == 401
    assert (await resp.json())["code"] == "not_authenticated"

    resp = await client.request(method, url, json={}, headers={"Authorization": "Bearer phx_nope"})
    assert resp.status == 401
    assert (await resp.json())["code"] == "authentication_failed"

    needed = EXPECTED_SCOPES[name]
    others = [s for s in SCOPES if not scope_allows((s,), needed)]
    lacking = await accounts.make("lacking@example.com", scopes=others)
    resp = await client.request(method, url, json={}, headers=lacking.headers)
    assert resp.status == 403
    body = await resp.json()
    assert body["code"] == "permission_denied"
    assert needed in body["detail"]

    outsider = await accounts.make("outsider@example.com", project_id=2, scopes=[needed])
    resp = await client.request(method, url, json={}, headers=outsider.headers)
    assert resp.status == 404, "another project's notebook must look absent"
    resp = await client.request(
        method, _fill(path, "target", 999), json={}, headers=outsider.headers
    )
    assert resp.status == 404

    exact = await accounts.make("exact@example.com", scopes=[needed])
    resp = await client.request(method, url, json={}, headers=exact.headers)
    assert resp.status not in {401, 403}, await resp.text()


def test_write_scope_implies_read():
    assert scope_allows(("notebook:write",), "notebook:read")
    assert not scope_allows(("notebook:read",), "notebook:write")
    assert not scope_allows(("notebook:write",), "activity_log:read")
    assert scope_allows(("*",), "sharing_configuration:write")


async def test_projects_are_isolated(client, accounts):
    jane = await accounts.make("jane@example.com", project_id=1)
    bob = await accounts.make("bob@example.com", project_id=2)
    await create_notebook(client, jane, short_id="secret")
    listing = await (await client.get(bob.url(), headers=bob.headers)).json()
    assert listing["count"] == 0
    resp = await client.get("/api/projects/1/notebooks/secret", headers=bob.headers)
    assert resp.status == 404
    resp = await client.get("/api/projects/abc/notebooks/", headers=jane.headers)
    assert resp.status == 404


async def test_cached_key_still_checks_scope(client, accounts):
    reader = await accounts.make("reader@example.com", scopes=["notebook:read"])
    assert (await client.get(reader.url(), headers=reader.headers)).status == 200
    assert (await client.get(reader.url(), headers=reader.headers)).status == 200
    assert (await client.post(reader.url(), json={}, headers=reader.headers)).status == 403


async def test_removed_membership_stops_working_after_the_cache_ttl(
    client, accounts, clock, settings
):
    jane = await accounts.make("jane@example.com")
    assert (await client.get(jane.url(), headers=jane.headers)).status == 200
    accounts.store._conn.execute("DELETE FROM memberships WHERE user_id = ?", (jane.user.id,))
    assert (await client.get(jane.url(), headers=jane.headers)).status == 200, "cached"
    clock.advance(settings.auth_cache_s + 0.001)
    assert (await client.get(jane.url(), headers=jane.headers)).status == 404
