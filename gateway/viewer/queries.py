"""HogQL for shared notebooks: run each query node once per notebook version, a few at a time.

A shared link is public, so its page must not become a way to load the analytics store: per
link at most `concurrency` queries run at once, each under the store's timeout and row limits;
only the first `max_nodes` query nodes of a page run; every result is cut to `MAX_ROWS` rows of
text cells and kept (bounded by bytes, for `ttl_s`) per notebook version, and concurrent views
of one version share one run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextlib import suppress
from typing import Any, Final

import orjson

from gateway.analytics.store import AnalyticsStore
from gateway.clock import Clock
from gateway.errors import GatewayError
from gateway.hogql.translator import Translator
from gateway.viewer.render import QueryOutcome

log = logging.getLogger(__name__)

MAX_ROWS: Final = 100
MAX_COLUMNS: Final = 100
MAX_CELL_CHARS: Final = 500
_NOT_RUN: Final = "Not run: this page runs at most {n} queries."

type Key = tuple[str, int, str]  # notebook id, version, project timezone


def _cell(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = repr(value) if isinstance(value, float) else str(value)
    else:
        text = orjson.dumps(value, default=str).decode()
    return text if len(text) <= MAX_CELL_CHARS else text[: MAX_CELL_CHARS - 1] + "…"


def _size(outcomes: Mapping[str, QueryOutcome]) -> int:
    total = 0
    for text, outcome in outcomes.items():
        total += len(text) + len(outcome.error or "") + sum(len(c) for c in outcome.columns)
        total += sum(len(cell or "") + 8 for row in outcome.rows for cell in row)
    return total


@dataclasses.dataclass(frozen=True, slots=True)
class _Entry:
    outcomes: dict[str, QueryOutcome]
    size: int
    at: float


class SharedQueries:
    """Query results for shared pages. Owned by the app (`shared_queries_ctx`); the viewer
    handler is its only caller."""

    def __init__(
        self,
        analytics: AnalyticsStore,
        translator: Translator,
        clock: Clock,
        *,
        concurrency: int,
        max_nodes: int,
        max_bytes: int,
        ttl_s: float,
    ) -> None:
        self._analytics = analytics
        self._translator = translator
        self._clock = clock
        self._concurrency = concurrency
        self._max_nodes = max_nodes
        self._max_bytes = max_bytes
        self._ttl_s = ttl_s
        self._cache: OrderedDict[Key, _Entry] = OrderedDict()
        self._size = 0
        self._running: dict[Key, asyncio.Task[dict[str, QueryOutcome]]] = {}
        # A link's semaphore lives while some run holds it, then goes (no growth per link seen).
        self._limits: weakref.WeakValueDictionary[str, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )

    async def _one(
        self, text: str, *, project_id: int, timezone: str, limit: asyncio.Semaphore
    ) -> QueryOutcome:
        async with limit:
            try:
                # In the translator's worker processes, under its time and size limits.
                translation = await self._translator.translate(
                    text, project_id=project_id, timezone=timezone
                )
                # Only the first rows are shown: fetch no more than that (plus one for "more").
                capped = dataclasses.replace(
                    translation, row_cap=min(translation.row_cap, MAX_ROWS)
                )
                result = await self._analytics.run(capped)
            except GatewayError as err:  # HogQL errors, limits, a busy translator
                return QueryOutcome(error=err.detail)
            except Exception:
                log.exception("shared notebook query failed")
                return QueryOutcome(error="The query could not be run.")
        width = min(len(result.columns), MAX_COLUMNS)
        return QueryOutcome(
            columns=tuple(result.columns[:width]),
            rows=tuple(tuple(_cell(v) for v in row[:width]) for row in result.rows[:MAX_ROWS]),
            has_more=result.has_more or len(result.rows) > MAX_ROWS,
        )

    async def _run(
        self, link: str, queries: Sequence[str], *, project_id: int, timezone: str
    ) -> dict[str, QueryOutcome]:
        limit = self._limits.get(link)
        if limit is None:
            limit = self._limits[link] = asyncio.Semaphore(self._concurrency)
        chosen = list(queries[: self._max_nodes])
        results = await asyncio.gather(
            *(self._one(q, project_id=project_id, timezone=timezone, limit=limit) for q in chosen)
        )
        outcomes = dict(zip(chosen, results, strict=True))
        skipped = QueryOutcome(error=_NOT_RUN.format(n=self._max_nodes))
        outcomes.update(dict.fromkeys(queries[self._max_nodes :], skipped))
        return outcomes

    def _cached(self, key: Key) -> dict[str, QueryOutcome] | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if self._clock.now().timestamp() - entry.at > self._ttl_s:
            self._drop(key)
            return None
        self._cache.move_to_end(key)
        return entry.outcomes

    def _keep(self, key: Key, outcomes: dict[str, QueryOutcome]) -> None:
        size = _size(outcomes)
        if size > self._max_bytes // 8:
            return
        self._drop(key)
        self._cache[key] = _Entry(outcomes, size, self._clock.now().timestamp())
        self._size += size
        while self._size > self._max_bytes:
            _, evicted = self._cache.popitem(last=False)
            self._size -= evicted.size

    def _drop(self, key: Key) -> None:
        old = self._cache.pop(key, None)
        if old is not None:
            self._size -= old.size

    async def outcomes(
        self,
        *,
        link: str,
        notebook_id: str,
        version: int,
        project_id: int,
        timezone: str,
        queries: Sequence[str],
    ) -> dict[str, QueryOutcome]:
        """What each of `queries` (a notebook version's HogQL texts) gives, for `link`'s page.

        Views of the same version while it runs wait for that run; a viewer who leaves does
        not stop it (the next one gets the results).
        """
        if not queries:
            return {}
        key = (notebook_id, version, timezone)
        cached = self._cached(key)
        if cached is not None and all(q in cached for q in queries):
            return cached
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(
                self._run(link, queries, project_id=project_id, timezone=timezone)
            )
            self._running[key] = task

            def finished(done: asyncio.Task[dict[str, QueryOutcome]]) -> None:
                self._running.pop(key, None)
                if not done.cancelled() and done.exception() is None:
                    self._keep(key, done.result())

            task.add_done_callback(finished)
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Stop runs still going (at shutdown)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
