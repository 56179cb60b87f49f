"""A data directory whose path is longer than a unix socket path may be (107 bytes): the gateway
binds and connects through directory and socket handles, so kernels still work."""

from __future__ import annotations

import pytest

from gateway.app import create_app
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers

pytestmark = pytest.mark.docker


async def test_kernels_work_under_a_long_data_directory(
    aiohttp_client, docker_settings, docker_engine, clock, tmp_path
):
    data_dir = tmp_path / ("d" * 60) / ("e" * 60)
    assert len(str(data_dir / "kernels" / ("0" * 16) / "gateway" / "bridge")) > 107
    app = create_app(docker_settings.with_changes(data_dir=data_dir), clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make()
    instance = app[KERNELS_KEY].instance_id
    try:
        resp = await client.post(
            owner.url("scratchpad/kernel/execute"),
            json={
                "code": "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2]})\n"
                "len(hogql_execute('select 1'))"
            },
            headers=owner.headers,
        )
        body = await resp.json()
        assert resp.status == 200 and body["status"] == "ok", body
        assert body["result"] == {"text/plain": "1"}
        resp = await client.get(
            owner.url("scratchpad/kernel/dataframe?variable_name=df"), headers=owner.headers
        )
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["rows"] == [{"a": 1}, {"a": 2}]
    finally:
        await client.close()
    assert_no_containers(docker_engine, instance)
