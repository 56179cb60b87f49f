"""collab/save, collab/stream and collab/presence against the real app and SQLite."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.keys import COLLAB_HUB_KEY, STORE_KEY
from tests.conftest import Accounts, create_notebook
from tests.sse import read_frame, read_frames

DOC = {"type": "doc", "content": []}


def _save(version, steps, client_id="c1", **extra):
    return {"client_id": client_id, "version": version, "steps": steps, "content": DOC, **extra}


async def test_accepted_save_bumps_version_and_stores_content(client, jane):
    await create_notebook(client, jane, short_id="nb", title="Keep")
    resp = await client.post(
        jane.url("nb/collab/save"),
        json=_save(0, [{"a": 1}, {"a": 2}], text_content="txt"),
        headers=jane.headers,
    )
    assert resp.status == 200
    body = await resp.json()
    assert (body["version"], body["content"], body["text_content"], body["title"]) == (
        2,
        DOC,
        "txt",
        "Keep",
    )
    resp = await client.post(
        jane.url("nb/collab/save"), json=_save(2, [], title=""), headers=jane.headers
    )
    body = await resp.json()
    assert body["version"] == 2, "no steps: version unchanged"
    assert body["title"] == "", "an empty title clears it"
    assert body["text_content"] == "", "text_content defaults to empty"


async def test_behind_gets_missed_steps(client, jane):
    await create_notebook(client, jane, short_id="nb")
    await client.post(
        jane.url("nb/collab/save"), json=_save(0, [{"a": 1}], "first"), headers=jane.headers
    )
    await client.post(
        jane.url("nb/collab/save"), json=_save(1, [{"a": 2}], "second"), headers=jane.headers
    )
    resp = await client.post(
        jane.url("nb/collab/save"), json=_save(0, [{"b": 1}], "late"), headers=jane.headers
    )
    assert resp.status == 409
    assert await resp.json() == {
        "code": "conflict",
        "steps": [{"a": 1}, {"a": 2}],
        "client_ids": ["first", "second"],
        "version": 2,
    }
    nb = await (await client.get(jane.url("nb"), headers=jane.headers)).json()
    assert nb["version"] == 2


async def test_trimmed_range_is_stale(aiohttp_client, settings, clock):
    client = await aiohttp_client(
        create_app(settings.with_changes(collab_max_steps=3), clock=clock)
    )
    jane = await Accounts(client.server.app[STORE_KEY], clock).make()
    await create_notebook(client, jane, short_id="nb")
    for version in range(5):
        resp = await client.post(
            jane.url("nb/collab/save"), json=_save(version, [{"v": version}]), headers=jane.headers
        )
        assert resp.status == 200
    resp = await client.post(
        jane.url("nb/collab/save"), json=_save(1, [{"x": 1}]), headers=jane.headers
    )
    assert resp.status == 410
    assert await resp.json() == {"code": "conflict_stale"}
    resp = await client.post(
        jane.url("nb/collab/save"), json=_save(2, [{"x": 1}]), headers=jane.headers
    )
    assert resp.status == 409, "versions 3..5 are still kept"


async def test_rest_edit_makes_older_clients_stale(client, jane):
    await create_notebook(client, jane, short_id="nb")
    await client.post(jane.url("nb/collab/save"), json=_save(0, [{"a": 1}]), headers=jane.headers)
    resp = await client.patch(
        jane.url("nb"), json={"content": {"x": 1}, "version": 1}, headers=jane.headers
    )
    assert (await resp.json())["version"] == 2
    resp = await client.post(
        jane.url("nb/collab/save"), json=_save(1, [{"b": 1}]), headers=jane.headers
    )
    assert resp.status == 410
    resp = await client.post(
        jane.url("nb/collab/save"), json=_save(2, [{"b": 1}]), headers=jane.headers
    )
    assert resp.status == 200


async def test_client_ahead_of_server_is_stale(client, jane):
    await create_notebook(client, jane, short_id="nb")
    resp = await client.post(jane.url("nb/collab/save"), json=_save(7, [{}]), headers=jane.headers)
    assert resp.status == 410


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({}, "client_id"),
        ({"client_id": "c", "steps": [], "content": {}}, "version"),
        ({"client_id": "c", "version": 0, "content": {}}, "steps"),
        ({"client_id": "c", "version": 0, "steps": []}, "content"),
        ({"client_id": "c", "version": "0", "steps": [], "content": {}}, "version"),
        ({"client_id": "c", "version": -1, "steps": [], "content": {}}, "version"),
        ({"client_id": "c", "version": 0, "steps": {}, "content": {}}, "steps"),
        ({"client_id": 5, "version": 0, "steps": [], "content": {}}, "client_id"),
        ({"client_id": "x" * 201, "version": 0, "steps": [], "content": {}}, "client_id"),
        (
            {"client_id": "c", "version": 0, "steps": [], "content": {}, "cursor_head": "1"},
            "cursor_head",
        ),
        ({"client_id": "c", "version": 0, "steps": [], "content": {}, "title": 3}, "title"),
    ],
)
async def test_bad_save_bodies_are_400(client, jane, body, attr):
    await create_notebook(client, jane, short_id="nb")
    resp = await client.post(jane.url("nb/collab/save"), json=body, headers=jane.headers)
    assert resp.status == 400
    assert (await resp.json())["attr"] == attr


async def test_activity_of_saves_and_rejections(client, jane):
    await create_notebook(client, jane, short_id="nb")
    await client.post(jane.url("nb/collab/save"), json=_save(0, [{"a": 1}]), headers=jane.headers)
    attempted = {"type": "doc", "content": [{"type": "paragraph"}]}
    await client.post(
        jane.url("nb/collab/save"),
        json={**_save(0, [{"b": 1}]), "content": attempted},
        headers=jane.headers,
    )
    await client.post(jane.url("nb/collab/save"), json=_save(9, []), headers=jane.headers)
    log = await (await client.get(jane.url("nb/activity"), headers=jane.headers)).json()
    stale, conflict, updated, _created = log["results"]
    assert stale["activity"] == "save_rejected_stale"
    assert conflict["activity"] == "save_rejected_conflict"
    assert conflict["detail"]["changes"][0]["after"] == attempted
    assert updated["activity"] == "updated"


async def test_deleted_notebook_is_404_on_collab_routes(client, jane):
    await create_notebook(client, jane, short_id="nb")
    await client.patch(jane.url("nb"), json={"deleted": True}, headers=jane.headers)
    for method, sub, body in (
        ("POST", "save", _save(0, [])),
        ("POST", "presence", {"client_id": "c", "version": 0}),
        ("GET", "stream", None),
    ):
        resp = await client.request(
            method, jane.url(f"nb/collab/{sub}"), json=body, headers=jane.headers
        )
        assert resp.status == 404, sub


async def _stream(client, account, short_id="nb", last_event_id=None):
    headers = dict(account.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    resp = await client.get(account.url(f"{short_id}/collab/stream"), headers=headers)
    assert resp.status == 200, await resp.text()
    return resp


async def test_stream_headers_and_replay_from_zero(client, jane):
    await create_notebook(client, jane, short_id="nb")
    await client.post(
        jane.url("nb/collab/save"),
        json=_save(0, [{"a": 1}, {"a": 2}], cursor_head=4),
        headers=jane.headers,
    )
    resp = await _stream(client, jane, last_event_id="0-0")
    assert resp.headers["Content-Type"] == "text/event-stream"
    assert resp.headers["Cache-Control"].startswith("no-cache")
    assert resp.headers["X-Accel-Buffering"] == "no"
    first, second = await read_frames(resp, 2)
    assert (first.id, first.event) == ("1-0", "step")
    assert first.data == {
        "step": {"a": 1},
        "client_id": "c1",
        "user_id": jane.user.id,
        "user_name": "jane",
        "cursor_head": 4,
    }
    assert second.id == "2-0"
    resp.close()


async def test_stream_resumes_after_last_event_id_and_tails_live(client, jane):
    await create_notebook(client, jane, short_id="nb")
    await client.post(
        jane.url("nb/collab/save"), json=_save(0, [{"a": 1}, {"a": 2}]), headers=jane.headers
    )
    resumed = await _stream(client, jane, last_event_id="1-0")
    tail = await _stream(client, jane)
    await client.post(jane.url("nb/collab/save"), json=_save(2, [{"a": 3}]), headers=jane.headers)
    assert [f.id for f in await read_frames(resumed, 2)] == ["2-0", "3-0"]
    assert [f.id for f in await read_frames(tail, 1)] == ["3-0"], "no header: only new entries"
    resumed.close()
    tail.close()


async def test_rest_patch_and_presence_reach_streams(client, jane):
    await create_notebook(client, jane, short_id="nb")
    stream = await _stream(client, jane)
    await client.patch(
        jane.url("nb"), json={"content": {"x": 1}, "version": 0}, headers=jane.headers
    )
    resp = await client.post(
        jane.url("nb/collab/presence"),
        json={"client_id": "c2", "version": 1, "cursor": {"head": 3}},
        headers=jane.headers,
    )
    assert resp.status == 204
    update, presence = await read_frames(stream, 2)
    assert (update.id, update.event) == ("1-1", "update")
    assert update.data["version"] == 1
    assert presence.id is None
    assert presence.event == "presence"
    assert presence.data == {
        "type": "presence",
        "client_id": "c2",
        "user_id": jane.user.id,
        "user_name": "jane",
        "version": 1,
        "cursor": {"head": 3},
    }
    stream.close()


async def test_presence_validation(client, jane):
    await create_notebook(client, jane, short_id="nb")
    for body, attr in (
        ({"version": 0}, "client_id"),
        ({"client_id": "c"}, "version"),
        ({"client_id": "c", "version": -2}, "version"),
    ):
        resp = await client.post(jane.url("nb/collab/presence"), json=body, headers=jane.headers)
        assert resp.status == 400
        assert (await resp.json())["attr"] == attr


async def test_streams_of_other_notebooks_stay_quiet(client, jane):
    await create_notebook(client, jane, short_id="nb")
    await create_notebook(client, jane, short_id="other")
    quiet = await _stream(client, jane, "other")
    loud = await _stream(client, jane, "nb")
    await client.post(jane.url("nb/collab/save"), json=_save(0, [{"a": 1}]), headers=jane.headers)
    await client.post(
        jane.url("other/collab/save"), json=_save(0, [{"z": 1}]), headers=jane.headers
    )
    assert [f.data["step"] for f in await read_frames(loud, 1)] == [{"a": 1}]
    assert [f.data["step"] for f in await read_frames(quiet, 1)] == [{"z": 1}]
    quiet.close()
    loud.close()


async def test_bad_last_event_id_is_400(client, jane):
    await create_notebook(client, jane, short_id="nb")
    resp = await client.get(
        jane.url("nb/collab/stream"), headers={**jane.headers, "Last-Event-ID": "banana"}
    )
    assert resp.status == 400


async def test_keepalive_and_bounded_lifetime(aiohttp_client, settings, clock):
    client = await aiohttp_client(
        create_app(
            settings.with_changes(collab_keepalive_s=0.05, collab_stream_lifetime_s=0.3),
            clock=clock,
        )
    )
    jane = await Accounts(client.server.app[STORE_KEY], clock).make()
    await create_notebook(client, jane, short_id="nb")
    stream = await _stream(client, jane)
    frame = await read_frame(stream)
    assert frame is not None and frame.comment == "keepalive"
    while (frame := await read_frame(stream)) is not None:
        assert frame.comment == "keepalive"
    assert client.server.app[COLLAB_HUB_KEY].open_streams == 0


async def test_stream_cap_answers_503_with_retry_after(aiohttp_client, settings, clock):
    client = await aiohttp_client(
        create_app(settings.with_changes(collab_max_streams=1), clock=clock)
    )
    jane = await Accounts(client.server.app[STORE_KEY], clock).make()
    await create_notebook(client, jane, short_id="nb")
    first = await _stream(client, jane)
    resp = await client.get(jane.url("nb/collab/stream"), headers=jane.headers)
    assert resp.status == 503
    assert resp.headers["Retry-After"]
    first.close()


async def test_slow_consumer_is_cut_off_and_can_resume(aiohttp_client, settings, clock):
    client = await aiohttp_client(
        create_app(settings.with_changes(collab_stream_buffer=3), clock=clock)
    )
    jane = await Accounts(client.server.app[STORE_KEY], clock).make()
    await create_notebook(client, jane, short_id="nb")
    stream = await _stream(client, jane)
    hub = client.server.app[COLLAB_HUB_KEY]
    # Five entries arrive before the stream's handler runs again: more than its buffer holds.
    from gateway.store.records import CollabEntry

    notebook_id = (await client.server.app[STORE_KEY].get_notebook(1, "nb")).id
    hub.publish_entries(
        [CollabEntry(version=v, sub=0, notebook_id=notebook_id, data={}) for v in range(1, 6)]
    )
    frames = []
    while (frame := await read_frame(stream)) is not None:
        frames.append(frame)
    assert frames[-1].event == "error"
    assert hub.open_streams == 0


async def test_shutdown_ends_open_streams(aiohttp_client, settings, clock):
    client = await aiohttp_client(create_app(settings, clock=clock))
    jane = await Accounts(client.server.app[STORE_KEY], clock).make()
    await create_notebook(client, jane, short_id="nb")
    stream = await _stream(client, jane)
    client.server.app[COLLAB_HUB_KEY].close_all()
    assert await asyncio.wait_for(read_frame(stream), 5) is None


async def test_streams_of_gone_clients_end_quietly(settings, clock, caplog):
    """With a real runner (no handler cancellation), a stream whose client left fails its next
    write; that must end the stream quietly, not as an unhandled error."""
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    jane = await Accounts(app[STORE_KEY], clock).make()
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(headers=jane.headers) as session:
        resp = await session.post(base + jane.url(), json={"short_id": "nb"})
        assert resp.status == 201
        streams = [await session.get(base + jane.url("nb/collab/stream")) for _ in range(3)]
        for stream in streams:
            stream.close()

        server = runner.server
        assert server is not None  # set by runner.setup()

        async def server_saw_them_go():
            while any(c.transport is not None for c in server.connections):  # noqa: ASYNC110 - aiohttp's connection list has no event
                await asyncio.sleep(0.01)

        await asyncio.wait_for(server_saw_them_go(), 5)
        with caplog.at_level(logging.ERROR):
            await runner.cleanup()  # wakes the streams, whose writes now fail
    assert "Unhandled error" not in caplog.text
    assert app[COLLAB_HUB_KEY].open_streams == 0
