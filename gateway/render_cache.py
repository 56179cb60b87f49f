"""Rendered notebook bodies, kept between reads and dropped the moment the notebook changes.

Reads outnumber writes by far (viewers, pollers, `If-None-Match` clients), so GET serves the
bytes it rendered last time. The store calls `invalidate` after every commit that changes a
notebook; a per-key generation makes a read that raced a write discard what it rendered rather
than cache stale bytes. Bounded by a byte budget, least recently used out first. Keys include
the project, and lookups happen after authentication and the project check.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

type Key = tuple[int, str]


@dataclass(frozen=True, slots=True)
class Rendered:
    """A notebook's serialised JSON `body` and the `version` it was rendered at (what
    `If-None-Match` is compared with).
    """

    version: int
    body: bytes


class RenderCache:
    """Rendered notebook bodies by (project id, short_id) for the single-notebook GET; `create_app`
    sizes it from `render_cache_mb`. The module docstring states the invalidation contract.
    """

    def __init__(self, *, max_bytes: int) -> None:
        self._max = max_bytes
        self._entries: OrderedDict[Key, Rendered] = OrderedDict()
        self._generations: dict[Key, int] = {}
        self._size = 0

    def get(self, key: Key) -> Rendered | None:
        """The cached entry for `key`, now the most recently used; None when absent."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def generation(self, key: Key) -> int:
        """How many times `key` has been invalidated; a reader takes it before loading the notebook
        and passes it to `put`.
        """
        return self._generations.get(key, 0)

    def put(self, key: Key, entry: Rendered, *, generation: int) -> None:
        """Keep `entry` unless `key` changed since `generation` was read, or it is too big."""
        if generation != self.generation(key) or len(entry.body) > self._max // 8:
            return
        self._drop(key)
        self._entries[key] = entry
        self._size += len(entry.body)
        while self._size > self._max:
            _, evicted = self._entries.popitem(last=False)
            self._size -= len(evicted.body)

    def invalidate(self, project_id: int, short_id: str) -> None:
        """Drop the notebook's entry and bump its generation, so a render begun earlier is not
        cached; the store calls it (a change listener) after COMMIT.
        """
        key = (project_id, short_id)
        self._generations[key] = self.generation(key) + 1
        self._drop(key)

    def _drop(self, key: Key) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._size -= len(old.body)
