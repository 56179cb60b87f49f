"""Item 3 (cells): an oversize cell is refused before anything parses it, and the variable
analysis of a cell at the cap is bounded in time and memory and runs off the event loop.

Before: a 4 MB cell was parsed on the loop (10 s, 3.9 GB); 1 MiB took up to 2.3 s and 790 MB.
"""

from __future__ import annotations

import asyncio
import time
import tracemalloc

import pytest

from gateway.kernels.analysis import AST_MAX_CHARS, cell_globals

MIB = 1024 * 1024

# the shapes that cost ast.parse the most per byte, at 1 MiB
SHAPES = {
    "calls": "f()\n" * (MIB // 4),
    "assignments": "".join(f"a{i}=1\n" for i in range(MIB // 8))[:MIB],
    "tuple": ("a" + ",a" * (MIB // 2))[: MIB - 4] + " = 1",
    "chain": "a=" * (MIB // 2),
    "plus": "x = " + "+".join(["1"] * (MIB // 2)),
    "spaces": "a" + " " * MIB,
}


@pytest.fixture
def settings(settings):
    return settings.with_changes(kernel_max_cell_bytes=64 * 1024)


async def test_a_cell_over_the_cap_is_refused(client, jane):
    # well within max_body_bytes, over kernel_max_cell_bytes: no kernel is started for it
    resp = await client.post(
        jane.url("scratchpad/kernel/execute"),
        json={"code": "x = 1\n" * 20_000},
        headers=jane.headers,
    )
    assert resp.status == 413
    error = await resp.json()
    assert error["code"] == "cell_too_large"
    assert error["attr"] == "code"
    assert "kernel_max_cell_bytes" in error["detail"]
    resp = await client.post(
        jane.url("scratchpad/kernel/execute/stream"),
        json={"code": "é" * 40_000},  # 80 KB in UTF-8: the cap counts bytes
        headers=jane.headers,
    )
    assert resp.status == 413


async def test_a_cell_at_the_cap_still_reports_its_variables(client, jane):
    code = (
        "big = 1\n" + "pass\n" * 10_000 + "import os as o, sys\nx, y = 1, 2\ndef f():\n    z = 1\n"
    )
    assert AST_MAX_CHARS < len(code) < 64 * 1024
    resp = await client.post(
        jane.url("scratchpad/kernel/execute"), json={"code": code}, headers=jane.headers
    )
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert sorted(body["variables"]) == ["big", "f", "o", "sys", "x", "y"]


@pytest.mark.parametrize("shape", SHAPES)
def test_analysis_of_a_1_mib_cell_is_bounded(shape):
    code = SHAPES[shape]
    began = time.process_time()
    cell_globals(code)
    cpu = time.process_time() - began
    tracemalloc.start()
    cell_globals(code)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 64 * MIB, f"{peak / MIB:.0f} MiB"  # ast.parse: up to 790 MB
    assert cpu < 5, f"{cpu:.1f} s of CPU"


def test_the_line_scan_finds_top_level_names():
    code = (
        "#" * AST_MAX_CHARS
        + "\n"
        + (
            "import os, numpy as np\n"
            "from a.b import (c, d as e)\n"
            "import x.y\n"
            "def f(): pass\n"
            "async def g(): pass\n"
            "class K(Base): pass\n"
            "a = 1\n"
            "b, c2 = 1, 2\n"
            "(p, *q) = 3\n"
            "t: int = 4\n"
            "u += 1\n"
            "v == 3\n"
            "w <= 3\n"
            "    inner = 5\n"
            "x1 = y1 = 2\n"
            "d['k'] = 1\n"
            "__dunder__ = 1\n"
        )
    )
    assert cell_globals(code) == sorted(
        ["os", "np", "c", "e", "x", "f", "g", "K", "a", "b", "c2", "p", "q", "t", "u", "x1", "y1"]
    )


async def test_analysis_leaves_the_event_loop_responsive():
    loop = asyncio.get_running_loop()
    worst = 0.0
    for code in SHAPES.values():
        stop = asyncio.Event()

        async def probe(stop: asyncio.Event) -> float:
            late = 0.0
            while not stop.is_set():
                began = loop.time()
                await asyncio.sleep(0.001)
                late = max(late, loop.time() - began - 0.001)
            return late

        task = asyncio.create_task(probe(stop))
        await asyncio.to_thread(cell_globals, code)
        stop.set()
        worst = max(worst, await task)
    # a parse on the loop (or a GIL-holding one in a thread) stalled it for seconds
    assert worst < 0.5, f"the loop stalled {worst * 1000:.0f} ms"
