"""In-process fan-out of collab log entries and presence to open streams.

The store calls `publish_entries` after each commit that adds log entries; `collab/presence`
calls `publish_presence`. Each stream owns a `Subscription` with a bounded buffer: publishing
never waits, and a stream that falls further behind than the buffer is marked overflowed and
closed by its handler, so one slow reader cannot block the others or grow memory without bound.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from typing import Any

from gateway.errors import ServiceUnavailable, TooManyRequests
from gateway.store.records import CollabEntry


@dataclass(frozen=True, kw_only=True)
class Presence:
    """A caret broadcast; never stored, never given an event id."""

    notebook_id: str
    data: dict[str, Any]


type Item = CollabEntry | Presence


class Subscription:
    """One stream's view of one notebook: a bounded buffer and a wake-up event."""

    def __init__(self, notebook_id: str, capacity: int) -> None:
        self.notebook_id = notebook_id
        self.user_id: int | None = None  # whose stream (the per-user cap counts it)
        self.overflowed = False
        self.closed = False
        self._capacity = capacity
        self._items: deque[Item] = deque()
        self._ready = asyncio.Event()

    def push(self, item: Item) -> None:
        """Buffer `item` and wake the reader, never waiting. A push onto a full buffer marks the
        subscription overflowed and empties it; pushes after that are ignored.
        """
        if self.overflowed:
            return
        if len(self._items) >= self._capacity:
            self.overflowed = True
            self._items.clear()
        else:
            self._items.append(item)
        self._ready.set()

    def close(self) -> None:
        """Mark the subscription closed and wake its reader, so `next_batch` returns at once; called
        by `CollabHub.close_all`.
        """
        self.closed = True
        self._ready.set()

    async def next_batch(self) -> list[Item]:
        """Everything buffered, waiting until something arrives or the subscription is closed
        or overflows (then the list may be empty). The stream handler bounds the wait with
        `asyncio.timeout()` to send keep-alives."""
        if not self._items and not self.closed and not self.overflowed:
            await self._ready.wait()
        self._ready.clear()
        batch = list(self._items)
        self._items.clear()
        return batch


class CollabHub:
    """Subscriptions per notebook, with a cap on how many may be open in this process."""

    def __init__(self, *, max_streams: int, buffer: int, max_per_user: int | None = None) -> None:
        self._max = max_streams
        self._max_per_user = max_streams if max_per_user is None else max_per_user
        self._buffer = buffer
        self._subs: defaultdict[str, set[Subscription]] = defaultdict(set)
        self._count = 0
        self._per_user: Counter[int] = Counter()

    @property
    def open_streams(self) -> int:
        """How many subscriptions are open now (what `max_streams` caps)."""
        return self._count

    def subscribe(self, notebook_id: str, *, user_id: int | None = None) -> Subscription:
        """A new subscription to a notebook's entries and presence, for the stream handler, which
        must `unsubscribe` it when done. TooManyRequests (429) once `user_id` holds
        `max_per_user` streams, so one member cannot take the process's pool;
        ServiceUnavailable (503, Retry-After) once `max_streams` are open.
        """
        if user_id is not None and self._per_user[user_id] >= self._max_per_user:
            msg = (
                f"You already hold {self._per_user[user_id]} collaboration streams, the most one"
                f" user may (collab_max_streams_per_user = {self._max_per_user}); close one."
            )
            raise TooManyRequests(msg, headers={"Retry-After": "5"})
        if self._count >= self._max:
            msg = "Too many open collaboration streams; retry shortly."
            raise ServiceUnavailable(msg, headers={"Retry-After": "5"})
        sub = Subscription(notebook_id, self._buffer)
        sub.user_id = user_id
        self._subs[notebook_id].add(sub)
        self._count += 1
        if user_id is not None:
            self._per_user[user_id] += 1
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Release `sub` and its slot under `max_streams`; idempotent."""
        subs = self._subs.get(sub.notebook_id)
        if subs is not None and sub in subs:
            subs.discard(sub)
            self._count -= 1
            if sub.user_id is not None:
                self._per_user[sub.user_id] -= 1
                if not self._per_user[sub.user_id]:
                    del self._per_user[sub.user_id]
            if not subs:
                del self._subs[sub.notebook_id]

    def publish_entries(self, entries: list[CollabEntry]) -> None:
        """Push each entry to every subscription of its notebook, without waiting; the store calls
        it (its commit listener) synchronously after COMMIT.
        """
        for entry in entries:
            for sub in self._subs.get(entry.notebook_id, ()):
                sub.push(entry)

    def publish_presence(self, presence: Presence) -> None:
        """Push a caret broadcast to every subscription of its notebook, without waiting; called by
        the `collab/presence` handler.
        """
        for sub in self._subs.get(presence.notebook_id, ()):
            sub.push(presence)

    def close_all(self) -> None:
        """Wake every stream so it ends (graceful shutdown)."""
        for subs in self._subs.values():
            for sub in subs:
                sub.close()
