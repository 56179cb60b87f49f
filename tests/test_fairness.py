"""ProjectGate: one project's requests queue behind each other, never another project's."""

from __future__ import annotations

import asyncio

import pytest

from gateway.errors import TooManyRequests
from gateway.fairness import ProjectGate


async def test_a_project_waits_its_turn_and_others_do_not():
    gate = ProjectGate(per_project=1, what="queries", setting="x", wait_s=5)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(project: int, name: str) -> None:
        async with gate.turn(project):
            order.append(name)
            await release.wait()

    first = asyncio.create_task(hold(1, "a1"))
    second = asyncio.create_task(hold(1, "a2"))  # same project: waits
    other = asyncio.create_task(hold(2, "b1"))  # another project: goes straight in
    await asyncio.sleep(0.05)
    assert order == ["a1", "b1"]
    release.set()
    await asyncio.gather(first, second, other)
    assert order == ["a1", "b1", "a2"]


async def test_a_turn_not_given_in_time_is_a_429():
    gate = ProjectGate(per_project=1, what="queries", setting="x", wait_s=0.1)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.turn(1):
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    with pytest.raises(TooManyRequests, match=r"busy for 0\.1 s"):
        async with gate.turn(1):
            pass
    release.set()
    await holder


async def test_too_many_waiting_are_refused_at_once():
    gate = ProjectGate(per_project=1, what="queries", setting="x", wait_s=5)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.turn(1):
            await release.wait()

    waiting = [asyncio.create_task(hold()) for _ in range(17)]  # 1 holding + 16 waiting
    await asyncio.sleep(0.01)
    with pytest.raises(TooManyRequests, match="running or waiting"):
        async with gate.turn(1):
            pass
    release.set()
    await asyncio.gather(*waiting)
    async with gate.turn(1):  # all released: the project's gate is gone and made anew
        pass
