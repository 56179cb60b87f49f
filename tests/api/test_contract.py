"""The contract (#14): the OpenAPI document validates and declares what the handlers do, and the
declarations drive the checks (DRF's integers, form bodies, Allow headers, resource numbers)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from aiohttp import FormData
from openapi_spec_validator import validate

from gateway.api.dataframe import json_value
from tests.conftest import create_notebook

NOTEBOOKS = "/api/projects/{project_id}/notebooks"
KERNEL = NOTEBOOKS + "/{short_id}/kernel"


@pytest.fixture
async def doc(client):
    return await (await client.get("/api/schema")).json()


async def test_the_document_is_valid_openapi_3_1(doc):
    validate(doc)
    assert doc["openapi"] == "3.1.0"


async def test_posthog_operation_ids(doc):
    ids = {
        (path, method): op["operationId"]
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method != "parameters"
    }
    assert ids[(NOTEBOOKS, "get")] == "notebooks_list"
    assert ids[(NOTEBOOKS + "/{short_id}", "patch")] == "notebooks_partial_update"
    assert ids[(NOTEBOOKS + "/{short_id}", "put")] == "notebooks_update"
    assert ids[(NOTEBOOKS + "/{short_id}", "delete")] == "notebooks_destroy"
    assert ids[(NOTEBOOKS + "/activity", "get")] == "notebooks_all_activity_retrieve"
    assert ids[(KERNEL + "/execute/stream", "post")] == "notebooks_kernel_execute_stream_create"
    assert ids[(NOTEBOOKS + "/{notebook_id}/sharing", "get")] == "notebooks_sharing_list"
    assert len(set(ids.values())) == len(ids), "operation ids are unique"


async def test_parameters_bodies_and_statuses_are_declared(doc):
    paths = doc["paths"]
    listing = paths[NOTEBOOKS]["get"]
    params = {p["name"]: p["schema"] for p in listing["parameters"]}
    assert params["limit"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}
    assert "-last_modified_at" in params["order"]["enum"]
    assert listing["security"] == [{"PersonalAPIKey": ["notebook:read"]}]
    assert set(listing["responses"]) >= {"200", "400", "401", "403", "404"}
    assert set(paths[NOTEBOOKS + "/{short_id}"]["get"]["responses"]) >= {"200", "304"}
    assert set(paths[NOTEBOOKS + "/{short_id}"]["patch"]["responses"]) >= {"200", "400", "409"}
    assert set(paths[NOTEBOOKS + "/{short_id}"]["delete"]["responses"]) == {
        "401",
        "403",
        "404",
        "405",
    }
    collab = paths[NOTEBOOKS + "/{short_id}/collab/save"]["post"]
    assert set(collab["responses"]) >= {"200", "409", "410"}
    config = paths[KERNEL + "/config"]["post"]["requestBody"]["content"]["application/json"]
    cpu = config["schema"]["properties"]["cpu_cores"]
    assert cpu["enum"][:3] == [0.125, 0.25, 0.5]
    execute = paths[KERNEL + "/execute"]["post"]
    assert execute["requestBody"]["required"] is True
    assert execute["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/KernelExecutionResult"
    }
    assert "503" in execute["responses"] and "429" in execute["responses"]
    # the refresh route takes no body (it used to be documented with PATCH's)
    assert "requestBody" not in paths[NOTEBOOKS + "/{notebook_id}/sharing/refresh"]["post"]
    assert "requestBody" not in paths[KERNEL + "/start"]["post"]
    schemas = doc["components"]["schemas"]
    assert {"Notebook", "PaginatedNotebookMinimalList", "ActivityLogPage", "Error"} <= set(schemas)
    assert schemas["Error"]["required"] == ["type", "code", "detail", "attr"]


async def test_version_as_a_whole_float_is_an_integer_as_in_drf(client, jane):
    await create_notebook(client, jane, short_id="nb")
    resp = await client.patch(
        jane.url("nb"), json={"content": {"type": "doc"}, "version": 0.0}, headers=jane.headers
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["version"] == 1
    resp = await client.patch(
        jane.url("nb"), json={"content": {"type": "doc"}, "version": 1.5}, headers=jane.headers
    )
    assert resp.status == 400
    assert (await resp.json())["attr"] == "version"


async def test_declared_query_parameters_are_checked(client, jane):
    for query, attr in (("limit=0", "limit"), ("limit=", "limit"), ("order=bogus", "order")):
        resp = await client.get(jane.url() + "?" + query, headers=jane.headers)
        assert resp.status == 400, query
        assert (await resp.json())["attr"] == attr
    resp = await client.get(jane.url() + "?date_from=-99999999999d", headers=jane.headers)
    assert resp.status == 400, "a date out of the calendar is a 400, not a 500"


async def test_allow_names_the_methods_of_the_resource_that_serves_the_path(client, jane):
    resp = await client.options(jane.url("activity"), headers=jane.headers)
    assert resp.status == 405
    assert resp.headers["Allow"] == "GET"


async def test_every_form_body_error_is_a_400(client, jane):
    await create_notebook(client, jane, short_id="nb")
    await client.patch(jane.url("nb/sharing"), json={"enabled": True}, headers=jane.headers)
    token = (await (await client.get(jane.url("nb/sharing"), headers=jane.headers)).json())[
        "access_token"
    ]
    boundary = "b0undary"
    broken = f"--{boundary}\r\n-3722--{boundary}--\r\n"  # a part whose headers do not parse
    resp = await client.post(
        f"/shared/{token}",
        data=broken,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert resp.status == 400, await resp.text()
    form = FormData()
    form.add_field("password", b"secret", filename="p.txt")  # a file, not a field
    resp = await client.post(f"/shared/{token}", data=form)
    assert resp.status == 400
    assert (await resp.json())["attr"] == "password"
    resp = await client.post(f"/shared/{token}.json", json={"password": 12345678})
    assert resp.status == 400
    many = "&".join(f"f{n}=1" for n in range(40))
    resp = await client.post(
        "/e", data=many, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert resp.status == 400, "a capture form with too many fields"


async def test_kernel_numbers_are_ints_where_posthog_sends_ints(client, jane):
    url = f"/api/projects/{jane.project.id}/notebooks/scratchpad/kernel"
    resp = await client.post(
        url + "/config", json={"idle_timeout_seconds": 3600.0, "cpu_cores": 2}, headers=jane.headers
    )
    assert resp.status == 200, await resp.text()
    raw = await resp.text()
    assert '"idle_timeout_seconds":3600' in raw and "3600.0" not in raw
    assert '"cpu_cores":2,' in raw
    resp = await client.post(url + "/config", json={"cpu_cores": 0.125}, headers=jane.headers)
    assert '"cpu_cores":0.125' in await resp.text()
    status = await (await client.get(url + "/status", headers=jane.headers)).text()
    body = json.loads(status)
    assert isinstance(body["idle_timeout_seconds"], int), status
    resp = await client.post(url + "/config", json={"cpu_cores": None}, headers=jane.headers)
    assert resp.status == 400, "null is not an option"
    resp = await client.post(url + "/config", json={}, headers=jane.headers)
    assert (await resp.json())["detail"] == "Provide at least one kernel configuration option."


def test_frame_datetimes_are_utc_milliseconds_with_z_like_posthog():
    plus_two = timezone(timedelta(hours=2))
    cells = [
        datetime(2026, 5, 1, 10, 0, 0, 123456),  # noqa: DTZ001 - naive: taken as UTC, as pandas does
        datetime(2026, 5, 1, 12, 0, tzinfo=plus_two),
        datetime(2026, 5, 1, 10, 0, tzinfo=UTC),
    ]
    out = orjson.loads(
        orjson.dumps(cells, default=json_value, option=orjson.OPT_PASSTHROUGH_DATETIME)
    )
    assert out == [
        "2026-05-01T10:00:00.123Z",
        "2026-05-01T10:00:00.000Z",
        "2026-05-01T10:00:00.000Z",
    ]


async def test_execute_stream_sends_the_cell_value_once_in_the_final_event(client, jane):
    url = f"/api/projects/{jane.project.id}/notebooks/scratchpad/kernel/execute/stream"
    code = "from IPython.display import display\ndisplay('shown')\n1 + 1"
    resp = await client.post(url, json={"code": code}, headers=jane.headers)
    assert resp.status == 200
    text = await resp.text()
    events = [line.split(": ", 1)[1] for line in text.splitlines() if line.startswith("event: ")]
    assert events.count("display") == 1, text  # display() output, streamed
    assert events[-1] == "result" and events.count("result") == 1
    final = json.loads(text.rsplit("data: ", 1)[1])
    assert final["result"]["text/plain"] == "2"
    await client.post(url.replace("execute/stream", "stop"), headers=jane.headers)
