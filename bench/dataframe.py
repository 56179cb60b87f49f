"""Data-frame serving (issue #6 a, b), against a gateway subprocess with the Docker backend.

A 1,000,000-row x 10-column float64 frame lives in a kernel.
(a) `GET kernel/dataframe` with Arrow, all rows in one request, MB/s, vs a raw pyarrow IPC
    write of an identical table in this process (the ceiling for "serialise the frame"; three
    samples a round, interleaved with the requests, medians compared). The
    endpoint is drained by curl (the server's throughput); a Python aiohttp client that
    collects the body and parses it with pyarrow is reported beside it;
(b) the same rows paged through the JSON endpoint (500 rows a page, the PostHog maximum),
    sampled over `--json-pages` pages and reported as rows/s, vs (a) in rows/s;
(c) `hogql_execute()` of a 50,000-row result (HogQL's cap) into the kernel as a DataFrame
    (timed inside the kernel) vs the same query through `hogql/execute` as JSON over HTTP.

`--transport tcp` serves the frame over the tcp transport (sealed frames, frames_seal.py; the
gateway's default), `ipc` (this script's default) over the run directory.

    .venv/bin/python bench/dataframe.py [--rounds 3] [--json-pages 40] [--transport ipc|tcp]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
import pyarrow as pa
import pyarrow.ipc

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import gateway

ROWS, COLS = 1_000_000, 10
HOGQL_ROWS = 50_000  # HogQL caps explicit limits at 50,000 rows, as PostHog does
MAKE = (
    "import numpy as np, pandas as pd\n"
    f"df = pd.DataFrame({{f'c{{i}}': np.arange({ROWS}, dtype='float64') for i in range({COLS})}})"
)


def raw_ipc_seconds(table: pa.Table) -> tuple[float, int]:
    begin = time.perf_counter()
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=65536)
    return time.perf_counter() - begin, sink.tell()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json-pages", type=int, default=40)
    parser.add_argument("--transport", choices=["ipc", "tcp"], default="ipc")
    args = parser.parse_args()
    local = pa.table({f"c{i}": np.arange(ROWS, dtype="float64") for i in range(COLS)})
    with gateway(
        {
            "GATEWAY_KERNEL_POOL_SIZE": "0",
            "GATEWAY_KERNEL_MAX_FRAME_BYTES": str(1 << 30),
            "GATEWAY_KERNEL_TRANSPORT": args.transport,
        }
    ) as gw:
        base = f"{gw.base}/api/projects/1/notebooks/scratchpad/kernel"
        async with aiohttp.ClientSession(
            headers=gw.headers, timeout=aiohttp.ClientTimeout(total=600)
        ) as session:
            async with session.post(base + "/execute", json={"code": MAKE, "timeout": 120}) as r:
                assert (await r.json())["status"] == "ok"
            arrow_s, raw_s, curl_s, first_byte_s, size = [], [], [], [], 0
            url = base + f"/dataframe?variable_name=df&limit={ROWS}"
            for _ in range(args.rounds):
                for _ in range(3):  # the baseline is short and noisy: three samples a round
                    seconds, size = raw_ipc_seconds(local)
                    raw_s.append(seconds)
                done = await asyncio.to_thread(
                    subprocess.run,
                    [
                        "curl",
                        "-sf",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{time_total} %{time_starttransfer}",
                        "-H",
                        f"Authorization: {gw.headers['Authorization']}",
                        "-H",
                        "Accept: application/vnd.apache.arrow.stream",
                        url,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                # curl's own clock: from the connect to the last byte, not process start-up
                total, first = map(float, done.stdout.split())
                curl_s.append(total)
                first_byte_s.append(first)
                begin = time.perf_counter()
                async with session.get(
                    base + f"/dataframe?variable_name=df&limit={ROWS}",
                    headers={"Accept": "application/vnd.apache.arrow.stream"},
                ) as resp:
                    data = await resp.read()
                    assert resp.status == 200, data[:200]
                arrow_s.append(time.perf_counter() - begin)
                table = pyarrow.ipc.open_stream(io.BytesIO(data)).read_all()
                assert table.num_rows == ROWS
            begin = time.perf_counter()
            for page in range(args.json_pages):
                async with session.get(
                    base + f"/dataframe?variable_name=df&offset={page * 500}&limit=500"
                ) as resp:
                    assert len((await resp.json())["rows"]) == 500
            json_s = time.perf_counter() - begin
            # (c) a HogQL result into the kernel vs the same query over HTTP as JSON
            query = (
                f"select number, toString(number) as s from numbers({HOGQL_ROWS})"
                f" limit {HOGQL_ROWS}"
            )
            cell = (
                "import time\n_t = time.perf_counter()\n"
                f"hq = hogql_execute({query!r})\n"
                "print(len(hq), time.perf_counter() - _t)"
            )
            kernel_s, http_s = [], []
            for _ in range(args.rounds):
                async with session.post(base + "/execute", json={"code": cell}) as r:
                    out = (await r.json())["stdout"].split()
                    assert int(out[0]) == HOGQL_ROWS
                    kernel_s.append(float(out[1]))
                begin = time.perf_counter()
                async with session.post(
                    f"{gw.base}/api/projects/1/notebooks/scratchpad/hogql/execute",
                    json={"query": query},
                ) as r:
                    assert len((await r.json())["results"]) == HOGQL_ROWS
                http_s.append(time.perf_counter() - begin)
    mb = size / 1e6
    arrow_mbs = mb / statistics.median(arrow_s)
    raw_mbs = mb / statistics.median(raw_s)
    curl_mbs = mb / statistics.median(curl_s)
    arrow_rows = ROWS / statistics.median(curl_s)
    json_rows = args.json_pages * 500 / json_s
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; frame {ROWS:,} x {COLS} float64 = {mb:.0f} MB of Arrow"
    )
    print("| measure | figure | ratio |")
    print("|---|---|---|")
    print(f"| raw pyarrow IPC write, one process | {raw_mbs:,.0f} MB/s | 1.00 |")
    print(
        f"| (a) Arrow endpoint, whole frame, drained by curl | {curl_mbs:,.0f} MB/s "
        f"({statistics.median(curl_s):.3f} s; first byte at "
        f"{statistics.median(first_byte_s):.3f} s) | {curl_mbs / raw_mbs:.2f} |"
    )
    print(
        f"| (a') same, Python aiohttp client + pyarrow parse | {arrow_mbs:,.0f} MB/s "
        f"({statistics.median(arrow_s):.3f} s) | {arrow_mbs / raw_mbs:.2f} |"
    )
    kernel_med, http_med = statistics.median(kernel_s), statistics.median(http_s)
    print(
        f"| (c) {HOGQL_ROWS:,}-row HogQL result into the kernel (hogql_execute → DataFrame) "
        f"vs hogql/execute JSON over HTTP | {kernel_med * 1000:.0f} ms vs {http_med * 1000:.0f} ms"
        f" | {http_med / kernel_med:.1f}x faster |"
    )
    print(
        f"| (b) JSON endpoint, 500-row pages | {json_rows:,.0f} rows/s | Arrow is "
        f"{arrow_rows / json_rows:,.0f}x faster in rows/s |"
    )


if __name__ == "__main__":
    asyncio.run(main())
