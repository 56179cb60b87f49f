"""`GET kernel/dataframe` on real kernels: JSON pages and Arrow streams of the same slices."""

from __future__ import annotations

import asyncio
import datetime as dt
import io

import aiohttp
import pyarrow as pa
import pyarrow.ipc
import pytest

from gateway.app import create_app
from gateway.keys import KERNELS_KEY, STORE_KEY
from tests.conftest import Accounts, assert_no_containers

pytestmark = pytest.mark.docker
ARROW = "application/vnd.apache.arrow.stream"

FRAMES = """
import datetime as dt
import pandas as pd, polars as pl, pyarrow as pa, duckdb
df = pd.DataFrame({
    "i": [1, 2, 3, 4],
    "n": pd.array([1, None, 3, None], dtype="Int64"),
    "f": [0.5, None, 2.5, 3.5],
    "s": ["a", "b", None, "d"],
    "c": pd.Categorical(["x", "y", "x", "z"]),
    "t": pd.to_datetime(["2026-01-01 10:00", "2026-01-02 00:00", "2026-01-03 00:00", "2026-01-04 00:00"]).tz_localize("Europe/Berlin"),
    "l": [[1, 2], [], None, [3]],
    "b": [True, False, None, True],
})
plf = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
tbl = pa.table({"a": [1, 2, 3]})
batch = pa.RecordBatch.from_pydict({"a": [4, 5]})
rel = duckdb.sql("select range as a, range * 2 as b from range(5)")
empty = pd.DataFrame({"a": pd.Series([], dtype="int64")})
big = pd.DataFrame({"x": range(100_000)})
import numpy as np
nums = pd.DataFrame({
    "f": [0.5, float("nan"), 2.5, 3.5],
    "g": np.array([1, 2, 3, 4], dtype="float32"),
    "u": np.array([1, 2, 3, 2**63], dtype="uint64"),
    "b": [True, False, False, True],
})
not_a_frame = [1, 2, 3]
far = pa.table({"t": pa.array([2**62], pa.timestamp("s")), "d": pa.array([1], pa.int8())})
mid = pa.table({"a": range(5000)})
"""


@pytest.fixture
async def gw(aiohttp_client, docker_settings, docker_engine, clock):
    app = create_app(docker_settings.with_changes(kernel_max_frame_bytes=200_000), clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make()
    body = await _execute(client, owner, FRAMES)
    assert body["status"] == "ok", (body["error_name"], body["error_value"], body["traceback"][-3:])
    yield client, owner
    instance = app[KERNELS_KEY].instance_id
    await client.close()
    assert_no_containers(docker_engine, instance)


async def _execute(client, owner, code):
    resp = await client.post(
        owner.url("scratchpad/kernel/execute"),
        json={"code": code, "timeout": 60},
        headers=owner.headers,
    )
    return await resp.json()


async def _frame(client, owner, query, *, arrow=False):
    headers = {**owner.headers, **({"Accept": ARROW} if arrow else {})}
    return await client.get(owner.url("scratchpad/kernel/dataframe") + query, headers=headers)


async def _arrow(client, owner, query) -> tuple[pa.Table, int]:
    resp = await _frame(client, owner, query, arrow=True)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == ARROW
    data = await resp.read()
    return pyarrow.ipc.open_stream(io.BytesIO(data)).read_all(), int(resp.headers["X-Total-Count"])


async def test_dtypes_survive_the_arrow_stream(gw):
    client, owner = gw
    table, total = await _arrow(client, owner, "?variable_name=df&limit=10")
    assert total == 4
    schema = table.schema
    assert schema.field("i").type == pa.int64()
    assert schema.field("n").type == pa.int64() and table["n"].null_count == 2, "nullable ints"
    assert pa.types.is_dictionary(schema.field("c").type), "categoricals stay dictionaries"
    assert pa.types.is_timestamp(schema.field("t").type)
    assert schema.field("t").type.tz == "Europe/Berlin", "zones kept"
    assert pa.types.is_list(schema.field("l").type)
    assert table["l"].to_pylist() == [[1, 2], [], None, [3]]
    assert table["b"].to_pylist() == [True, False, None, True]


async def test_polars_and_duckdb_read_the_stream(gw):
    import duckdb
    import polars as pl

    client, owner = gw
    resp = await _frame(client, owner, "?variable_name=df&limit=10", arrow=True)
    data = await resp.read()
    frame = pl.read_ipc_stream(io.BytesIO(data))
    assert frame.shape == (4, 8)
    assert frame["n"].to_list() == [1, None, 3, None]
    t_type = frame["t"].dtype
    assert isinstance(t_type, pl.Datetime), t_type
    assert t_type.time_zone == "Europe/Berlin"
    table = pyarrow.ipc.open_stream(io.BytesIO(data)).read_all()
    connection = duckdb.connect()
    connection.register("frame", table)
    assert connection.execute("select sum(i), count(s) from frame").fetchone() == (10, 3)
    connection.close()


async def test_json_page_and_arrow_agree_cell_for_cell(gw):
    client, owner = gw
    resp = await _frame(client, owner, "?variable_name=df&offset=1&limit=3")
    page = await resp.json()
    assert page["row_count"] == 4
    assert page["columns"] == ["i", "n", "f", "s", "c", "t", "l", "b"]
    table, _ = await _arrow(client, owner, "?variable_name=df&offset=1&limit=3")
    arrow_rows = table.to_pylist()
    assert len(page["rows"]) == len(arrow_rows) == 3
    for json_row, arrow_row in zip(page["rows"], arrow_rows, strict=True):
        for column, value in arrow_row.items():
            assert json_row[column] == _as_json(value), column


async def test_numeric_frames_page_without_converting_the_rest(gw):
    """Frames of numpy numbers take the helper's page-only path: same cells, NaN as null."""
    client, owner = gw
    table, total = await _arrow(client, owner, "?variable_name=nums&offset=1&limit=3")
    assert total == 4
    assert table.schema.types == [pa.float64(), pa.float32(), pa.uint64(), pa.bool_()]
    assert table.to_pydict() == {
        "f": [None, 2.5, 3.5],
        "g": [2.0, 3.0, 4.0],
        "u": [2, 3, 2**63],
        "b": [False, False, True],
    }
    page = await (await _frame(client, owner, "?variable_name=nums&offset=1&limit=3")).json()
    assert page["rows"] == table.to_pylist()
    assert table.to_pandas()["g"].dtype == "float32", "pandas metadata kept"


async def test_the_arrow_stream_has_a_content_length(gw):
    client, owner = gw
    for query in ("?variable_name=df", "?variable_name=big&limit=20000", "?variable_name=plf"):
        resp = await _frame(client, owner, query, arrow=True)
        assert resp.status == 200
        data = await resp.read()
        assert int(resp.headers["Content-Length"]) == len(data), query
        assert "Transfer-Encoding" not in resp.headers
        pyarrow.ipc.open_stream(io.BytesIO(data)).read_all()


LYING = """
import gateway_kernel, json
def export_frame(value, *, offset, limit, columns, max_bytes, name, timeout=30.0):
    # a whole, valid stream, announced as {claim} bytes
    page = gateway_kernel._as_arrow(value)
    real = gateway_kernel.stream_size(page)
    header = {{"status": "ok", "total": 4, "rows": 4, "columns": ["a"], "stream_bytes": {claim}}}
    with gateway_kernel._frames_link(name.encode(), timeout) as socket:
        socket.send_multipart([name.encode(), b"H", json.dumps(header).encode()])
        sink = gateway_kernel._CreditSink(socket, name.encode(), int(timeout * 1000))
        gateway_kernel._write_stream(gateway_kernel.pa_file(sink), page)
        sink.flush()
        socket.send_multipart([name.encode(), b"E"])
    return gateway_kernel._Description(header)
import pyarrow as _pa
gateway_kernel.pa_file = lambda sink: _pa.PythonFile(sink, mode="w")
gateway_kernel.export_frame = export_frame
"""


@pytest.mark.parametrize("claim", ["real - 1", "real + 1", "real - 8", "0", "'1'"])
async def test_a_stream_longer_or_shorter_than_announced_is_cut(gw, claim):
    """Never a body that looks whole: the last bytes wait for the end of a stream of exactly
    the announced length, so over or short of it the connection is cut (the client's read
    fails); a length that is no length is refused before any header goes out."""
    client, owner = gw
    body = await _execute(client, owner, LYING.format(claim=claim))
    assert body["status"] == "ok", body["traceback"][-3:]
    resp = await _frame(client, owner, "?variable_name=tbl", arrow=True)
    if claim in ("0", "'1'"):
        assert resp.status == 503
        assert "header is invalid" in (await resp.json())["reason"]
    else:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await asyncio.wait_for(resp.read(), 30)
    after = await _execute(client, owner, "1 + 1")
    assert after["result"] == {"text/plain": "2"}, "the kernel is free again"


UNANNOUNCED = """
import gateway_kernel, json
def export_frame(value, *, offset, limit, columns, max_bytes, name, timeout=30.0):
    # no stream_bytes, then 4 MiB: twenty times the gateway's cap, which it never asked about
    header = {"status": "ok", "total": 4, "rows": 4, "columns": ["a"]}
    with gateway_kernel._frames_link(name.encode(), timeout) as socket:
        socket.send_multipart([name.encode(), b"H", json.dumps(header).encode()])
        sink = gateway_kernel._CreditSink(socket, name.encode(), int(timeout * 1000))
        try:
            for _ in range(64):
                sink.write(bytes(64 * 1024))
            sink.flush()
            socket.send_multipart([name.encode(), b"E"])
        except Exception:
            return gateway_kernel._Description({"status": "error", "error": "reader_gone"})
    return gateway_kernel._Description(header)
gateway_kernel.export_frame = export_frame
"""


async def test_an_unannounced_stream_is_held_to_the_cap(gw):
    """A kernel that announces no length still cannot send past kernel_max_frame_bytes: the
    transfer is cut at the cap (never a whole-looking chunked body), and the kernel is free."""
    client, owner = gw
    body = await _execute(client, owner, UNANNOUNCED)
    assert body["status"] == "ok", body["traceback"][-3:]
    resp = await _frame(client, owner, "?variable_name=tbl", arrow=True)
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(resp.read(), 30)
    after = await _execute(client, owner, "1 + 1")
    assert after["result"] == {"text/plain": "2"}, "the kernel is free again"


@pytest.mark.parametrize(
    "make",
    [
        "pa.array([2**62], pa.timestamp('us'))",  # past year 9999
        "pa.array([0], pa.timestamp('us', tz='Nowhere/Special'))",  # a time zone nobody knows
    ],
    ids=["past-9999", "unknown-zone"],
)
async def test_values_a_json_page_cannot_show_are_a_400_and_arrow_serves_them(gw, make):
    client, owner = gw
    body = await _execute(client, owner, f"import pyarrow as pa\nodd = pa.table({{'t': {make}}})")
    assert body["status"] == "ok", body["traceback"][-3:]
    resp = await _frame(client, owner, "?variable_name=odd")
    assert resp.status == 400, await resp.text()
    refused = await resp.json()
    assert refused["attr"] == "variable_name"
    assert "ask for it as Arrow" in refused["detail"]
    table, total = await _arrow(client, owner, "?variable_name=odd")
    assert (table.num_rows, total) == (1, 1)


def _as_json(value):
    """PostHog's JSON for a cell: datetimes in UTC with milliseconds and `Z`, dates ISO."""
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


@pytest.mark.parametrize(("variable", "rows"), [("plf", 3), ("tbl", 3), ("batch", 2), ("rel", 5)])
async def test_every_frame_kind(gw, variable, rows):
    client, owner = gw
    table, total = await _arrow(client, owner, f"?variable_name={variable}&limit=100")
    assert total == rows
    assert table.num_rows == rows


async def test_slices_at_the_edges(gw):
    client, owner = gw
    table, total = await _arrow(client, owner, "?variable_name=df&offset=10&limit=5")
    assert (table.num_rows, total) == (0, 4), "offset past the end: empty slice, same schema"
    assert table.schema.names[0] == "i"
    table, _ = await _arrow(client, owner, "?variable_name=df&offset=3&limit=1")
    assert table["i"].to_pylist() == [4]
    table, total = await _arrow(client, owner, "?variable_name=empty")
    assert (table.num_rows, total) == (0, 0)
    page = await (await _frame(client, owner, "?variable_name=empty")).json()
    assert page == {"columns": ["a"], "rows": [], "row_count": 0}


async def test_column_selection(gw):
    client, owner = gw
    table, _ = await _arrow(client, owner, "?variable_name=df&columns=s,i")
    assert table.schema.names == ["s", "i"]
    resp = await _frame(client, owner, "?variable_name=df&columns=nope", arrow=True)
    assert resp.status == 400
    assert (await resp.json())["attr"] == "columns"


async def test_errors(gw):
    client, owner = gw
    resp = await _frame(client, owner, "?variable_name=missing")
    assert resp.status == 404
    resp = await _frame(client, owner, "?variable_name=not_a_frame")
    assert resp.status == 400
    assert await resp.json() == {"detail": "Invalid dataframe request."}
    for bad in ("1abc", "a-b", "import", ""):
        resp = await _frame(client, owner, f"?variable_name={bad}")
        assert resp.status == 400, bad
    resp = await _frame(client, owner, "?variable_name=df&limit=501")
    assert resp.status == 400, "JSON pages stop at 500 rows"
    resp = await _frame(client, owner, "?variable_name=big&limit=100000", arrow=True)
    assert resp.status == 413
    assert "200000" in (await resp.json())["detail"], "names the cap"


async def test_many_failed_requests_leave_the_channel_working(gw):
    """Requests that fail before the kernel's helper runs (an unknown variable) or inside it
    (not a frame) leave nothing behind: over tcp each left a connection at the kernel's
    frames port, whose queue holds 16."""
    client, owner = gw
    for n in range(20):
        resp = await _frame(client, owner, f"?variable_name=missing_{n}")
        assert resp.status == 404
    for _ in range(4):
        resp = await _frame(client, owner, "?variable_name=not_a_frame")
        assert resp.status == 400
    table, _ = await _arrow(client, owner, "?variable_name=df")
    assert table.num_rows > 0


async def test_values_json_cannot_show_are_a_400_not_a_500(gw):
    client, owner = gw
    resp = await _frame(client, owner, "?variable_name=far")
    assert resp.status == 400, await resp.text()
    assert "ask for it as Arrow" in (await resp.json())["detail"]
    table, _ = await _arrow(client, owner, "?variable_name=far")
    assert table.column("t").cast(pa.int64()).to_pylist() == [2**62]


TRUNCATED = """
import gateway_kernel, json, io
def export_frame(value, *, offset, limit, columns, max_bytes, name, timeout=30.0):
    # a valid header, then only the first half of the stream, then the end
    written = io.BytesIO()
    gateway_kernel._write_stream(written, gateway_kernel._as_arrow(value))
    data = written.getvalue()
    header = {"status": "ok", "total": 3, "rows": 3, "columns": ["a"]}
    with gateway_kernel._frames_link(name.encode(), timeout) as socket:
        socket.send_multipart([name.encode(), b"H", json.dumps(header).encode()])
        sink = gateway_kernel._CreditSink(socket, name.encode(), int(timeout * 1000))
        sink.write(data[: len(data) // 2])
        sink.flush()
        socket.send_multipart([name.encode(), b"E"])
    return gateway_kernel._Description(header)
gateway_kernel.export_frame = export_frame
"""


@pytest.mark.parametrize("variable", ["tbl", "mid"])  # cut in a message's metadata, in a body
async def test_a_truncated_stream_is_a_503_for_json_pages(gw, variable):
    client, owner = gw
    body = await _execute(client, owner, TRUNCATED)
    assert body["status"] == "ok", body["traceback"][-3:]
    resp = await _frame(client, owner, f"?variable_name={variable}")
    assert resp.status == 503, await resp.text()
    assert "not a valid Arrow stream" in (await resp.json())["reason"]


async def test_fetching_does_not_touch_the_notebook(gw, docker_settings):
    client, owner = gw
    before = (await _execute(client, owner, "1"))["execution_count"]
    for _ in range(3):
        assert (await _frame(client, owner, "?variable_name=df")).status == 200
    after = await _execute(client, owner, "2")
    assert after["execution_count"] == before + 1
    assert after["stdout"] == ""
    frames = list((docker_settings.kernel_run_root).glob("*/gateway/frame-*"))
    assert frames == [], "every exported file is removed once served"


async def test_no_kernel_is_404(aiohttp_client, docker_settings, clock):
    app = create_app(docker_settings.with_changes(kernel_pool_size=0), clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make()
    resp = await _frame(client, owner, "?variable_name=df")
    assert resp.status == 404
    assert "execute a cell first" in (await resp.json())["detail"]


async def test_kernel_killed_mid_export_is_a_clean_error(gw):
    client, owner = gw
    body = await _execute(
        client,
        owner,
        "slow = duckdb.sql('select sum(a.range * b.range) as s "
        "from range(100000) a, range(100000) b')",
    )
    assert body["status"] == "ok", (body["error_name"], body["error_value"], body["traceback"][-3:])
    fetch = asyncio.ensure_future(_frame(client, owner, "?variable_name=slow", arrow=True))
    status_url = owner.url("scratchpad/kernel/status")
    while (await (await client.get(status_url, headers=owner.headers)).json())[  # noqa: ASYNC110 - polls the kernel's state through the API
        "execution_state"
    ] != "busy":
        await asyncio.sleep(0.02)
    await client.post(owner.url("scratchpad/kernel/stop"), headers=owner.headers)
    resp = await asyncio.wait_for(fetch, 30)
    assert resp.status == 503
    assert "died" in (await resp.json())["reason"]


async def test_kernel_killed_mid_transfer_cuts_the_stream(
    aiohttp_client, docker_settings, docker_engine, clock
):
    """Headers are out when the kernel dies: the client sees a broken transfer, not a hang and
    not a short stream that parses as whole; no pipe is left behind."""
    app = create_app(docker_settings.with_changes(kernel_max_frame_bytes=1 << 30), clock=clock)
    client = await aiohttp_client(app)
    owner = await Accounts(app[STORE_KEY], clock).make()
    body = await _execute(
        client,
        owner,
        "import numpy as np, pyarrow as pa\nz = np.zeros(1_000_000)\nhuge = pa.table({f'c{i}': z for i in range(50)})",
    )
    assert body["status"] == "ok", body["error_value"]
    resp = await _frame(client, owner, "?variable_name=huge&limit=1000000", arrow=True)
    assert resp.status == 200
    # 400 MB to send (8 MB in the kernel: the columns share one buffer); the pipe and the
    # socket buffers hold a few MB, so the kernel is still writing when it is stopped
    first = await resp.content.readexactly(1 << 20)
    assert first
    stop = await client.post(owner.url("scratchpad/kernel/stop"), headers=owner.headers)
    assert stop.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await asyncio.wait_for(resp.read(), 30)
    assert list(docker_settings.kernel_run_root.glob("*/gateway/frame-*")) == []
    instance = app[KERNELS_KEY].instance_id
    await client.close()
    assert_no_containers(docker_engine, instance)
