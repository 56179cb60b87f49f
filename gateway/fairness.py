"""Per-tenant shares of a shared resource (HogQL translators, the analytics store's threads).

`ProjectGate` lets one project hold at most `per_project` of a resource at once; more requests
of the same project wait their turn (so a page with several queries still works) but at most
`max_waiting` of them, and for at most `wait_s` seconds, after which they get a 429. Other
projects never wait behind them: one member's flood stays that member's problem.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Final

from gateway.errors import TooManyRequests

_MAX_WAITING: Final = 16


class ProjectGate:
    """Owned by one shared resource; `turn(project_id)` is entered around each use of it."""

    def __init__(self, *, per_project: int, what: str, setting: str, wait_s: float) -> None:
        self._per_project = max(1, per_project)
        self._what = what
        self._setting = setting
        self._wait_s = wait_s
        self._gates: dict[int, asyncio.Semaphore] = {}
        self._users: dict[int, int] = {}  # holding or waiting, per project

    @contextlib.asynccontextmanager
    async def turn(self, project_id: int) -> AsyncIterator[None]:
        """Hold one of `project_id`'s places. Raises TooManyRequests (429) when too many of the
        project's requests already wait, or when no place frees up within `wait_s`."""
        users = self._users.get(project_id, 0)
        if users >= self._per_project + _MAX_WAITING:
            msg = f"{users} of this project's {self._what} are running or waiting"
            raise self._refusal(msg)
        gate = self._gates.setdefault(project_id, asyncio.Semaphore(self._per_project))
        self._users[project_id] = users + 1
        try:
            try:
                async with asyncio.timeout(self._wait_s):
                    await gate.acquire()
            except TimeoutError:
                msg = f"this project's {self._what} were busy for {self._wait_s:g} s"
                raise self._refusal(msg) from None
            try:
                yield
            finally:
                gate.release()
        finally:
            self._users[project_id] -= 1
            if not self._users[project_id]:
                del self._users[project_id]
                del self._gates[project_id]

    def _refusal(self, why: str) -> TooManyRequests:
        msg = (
            f"Too many HogQL requests for this project: {why} (each project may run"
            f" {self._per_project} at once, {self._setting}); retry when they finish."
        )
        return TooManyRequests(msg, headers={"Retry-After": "1"})
