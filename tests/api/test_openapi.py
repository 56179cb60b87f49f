"""The OpenAPI document matches the router, and no generated body makes the server fail."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from gateway.openapi import api_routes
from tests.conftest import create_notebook

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_FIELDS = [
    "title",
    "content",
    "text_content",
    "version",
    "deleted",
    "_create_in_folder",
    "short_id",
    "enabled",
    "settings",
    "password_required",
    "raw_password",
    "note",
    "password",
    "client_id",
    "steps",
    "cursor_head",
    "cursor",
    "code",
    "timeout",
    "return_variables",
    "cpu_cores",
    "memory_gb",
    "idle_timeout_seconds",
    "query",
    "values",
]
# These read no body; fuzzing them would only start and stop kernels.
_BODILESS = ("/kernel/start", "/kernel/restart", "/kernel/stop")
_bodies = st.one_of(
    _json,
    st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=5),
)


async def test_schema_lists_exactly_the_routes(client):
    doc = await (await client.get("/api/schema/")).json()
    assert doc["openapi"].startswith("3.")
    documented = {
        (op["x-handler"], method.upper(), path)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method != "parameters"
    }
    routed = {(name, method, path) for name, method, path, _ in api_routes(client.server.app)}
    assert documented == routed
    list_op = doc["paths"]["/api/projects/{project_id}/notebooks"]["get"]
    assert list_op["x-required-scope"] == "notebook:read"
    assert doc["paths"]["/api/projects/{project_id}/notebooks"]["post"]["requestBody"]


async def test_fuzzed_bodies_never_cause_a_server_error(client, jane):
    nb = await create_notebook(client, jane, short_id="fuzz")
    await client.patch(jane.url("fuzz/sharing"), json={"enabled": True}, headers=jane.headers)
    token = (await (await client.get(jane.url("fuzz/sharing"), headers=jane.headers)).json())[
        "access_token"
    ]
    doc = await (await client.get("/api/schema")).json()
    targets = []
    for path, item in doc["paths"].items():
        for method in item:
            if method in {"post", "patch", "put"} and not path.endswith(_BODILESS):
                url = (
                    path.replace("{project_id}", "1")
                    .replace("{short_id}", nb["short_id"])
                    .replace("{notebook_id}", nb["short_id"])
                    .replace("{token}", token)
                )
                targets.append((method.upper(), url))
    assert len(targets) == 19  # with capture's /flags and /decide

    @hsettings(
        max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(target=st.sampled_from(targets), body=_bodies)
    def check(target, body):
        method, url = target
        # Passwords are hashed slowly on purpose: keep them out of the fuzz loop.
        if (url.endswith("/passwords") or url.startswith("/shared/")) and isinstance(body, dict):
            body.pop("raw_password", None)
            body.pop("password", None)
        results.append((method, url, json.dumps(body)))

    results: list[tuple[str, str, str]] = []
    check()
    for method, url, raw in results:
        resp = await client.request(method, url, data=raw, headers=jane.headers)
        assert resp.status < 500, (method, url, raw, await resp.text())
