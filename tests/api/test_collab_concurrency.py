"""Property: concurrent collab clients that rebase on 409 and retry lose and duplicate nothing."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.clock import FakeClock
from gateway.keys import STORE_KEY
from gateway.settings import Settings
from tests.conftest import Accounts, create_notebook
from tests.sse import read_frames


async def _client_loop(
    client, account, name: str, steps: list[dict[str, object]], batch: int, seen: list[int]
) -> None:
    version = 0
    pending = list(steps)
    while pending:
        chunk = pending[:batch]
        resp = await client.post(
            account.url("nb/collab/save"),
            json={
                "client_id": name,
                "version": version,
                "steps": chunk,
                "content": {"by": name, "version": version + len(chunk)},
            },
            headers=account.headers,
        )
        body = await resp.json()
        if resp.status == 200:
            version = body["version"]
            del pending[: len(chunk)]
        else:
            assert resp.status == 409, body
            # Rebase: the missed steps come first; ours stay pending at the new version.
            seen.append(len(body["steps"]))
            version = body["version"]


async def _scenario(per_client: list[int], batch: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            secret_key="k" * 32,
            kernel_backend="subprocess",  # no kernel is needed: nothing to check or pool
            kernel_pool_size=0,
        )
        app = create_app(settings, clock=FakeClock())
        async with TestClient(TestServer(app)) as client:
            jane = await Accounts(app[STORE_KEY], FakeClock()).make()
            await create_notebook(client, jane, short_id="nb")
            streams = [
                await client.get(jane.url("nb/collab/stream"), headers=jane.headers)
                for _ in range(2)
            ]
            plan = {
                f"c{n}": [{"client": f"c{n}", "i": i} for i in range(count)]
                for n, count in enumerate(per_client)
            }
            rebases: list[int] = []
            await asyncio.gather(
                *(
                    _client_loop(client, jane, name, steps, batch, rebases)
                    for name, steps in plan.items()
                )
            )
            total = sum(per_client)
            notebook = await (await client.get(jane.url("nb"), headers=jane.headers)).json()
            assert notebook["version"] == total

            sequences = []
            for stream in streams:
                frames = await read_frames(stream, total)
                sequences.append([(f.id, f.data["step"]) for f in frames])
                stream.close()
            replay = await client.get(
                jane.url("nb/collab/stream"), headers={**jane.headers, "Last-Event-ID": "0-0"}
            )
            sequences.append([(f.id, f.data["step"]) for f in await read_frames(replay, total)])
            replay.close()

            first = sequences[0]
            assert all(seq == first for seq in sequences), "every stream saw the same sequence"
            assert [i for i, _ in first] == [f"{v}-0" for v in range(1, total + 1)], "dense ids"
            delivered = [step for _, step in first]
            expected = [step for steps in plan.values() for step in steps]
            assert sorted(map(str, delivered)) == sorted(map(str, expected)), "each step once"
            for steps in plan.values():
                mine = [s for s in delivered if s["client"] == steps[0]["client"]]
                assert mine == steps, "a client's own steps keep their order"


@settings(max_examples=25, deadline=None)
@given(
    per_client=st.lists(st.integers(min_value=1, max_value=6), min_size=2, max_size=5),
    batch=st.integers(min_value=1, max_value=3),
)
def test_concurrent_clients_converge(per_client, batch):
    asyncio.run(_scenario(per_client, batch))
