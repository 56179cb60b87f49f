"""HogQL translation off the event loop, in worker processes that are killed at a time budget.

The parser (`hogql-parser-rs`) holds the GIL and its cost grows faster than linearly with some
texts, so neither the event loop nor a thread may run it on untrusted text. `Translator` checks
the raw text first (`limits.check_text`: length, tokens, bracket depth), then sends the query to
one of a few long-lived worker processes (`_worker.py`, started with `asyncio`'s
`create_subprocess_exec`: a fresh interpreter, never a fork of the threaded gateway). A worker
that passes the budget, or whose caller goes away mid-request, is killed and replaced in the
background. `translator_ctx` owns the pool for the app's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import pickle
import struct
import sys
from collections.abc import Mapping
from typing import Any, Final

from gateway.errors import ServiceUnavailable
from gateway.fairness import ProjectGate
from gateway.hogql import Translation
from gateway.hogql.errors import (
    HogQLError,
    HogQLQueryError,
    HogQLResultTooLarge,
    HogQLSyntaxError,
    HogQLTooComplex,
    HogQLUnsupported,
)
from gateway.hogql.limits import TextLimits, check_text

_log = logging.getLogger(__name__)
_HEADER: Final = struct.Struct(">I")
_MAX_REPLY_BYTES: Final = 256 * 1024 * 1024
# A fresh worker imports the translator before it says "ready" (about 0.2 s idle, more on a
# busy host); a request waits at most this long for a free worker before a 503.
_WAIT_S: Final = 10.0
_ERRORS: Final = {
    cls.code: cls
    for cls in (
        HogQLError,
        HogQLSyntaxError,
        HogQLQueryError,
        HogQLUnsupported,
        HogQLTooComplex,
        HogQLResultTooLarge,
    )
}


class _Unpickler(pickle.Unpickler):
    """Replies are plain builtins: no class may be loaded (defence in depth, should a hostile
    query ever take over a worker)."""

    def find_class(self, module: str, name: str) -> Any:
        msg = f"translator reply refers to {module}.{name}"
        raise pickle.UnpicklingError(msg)


class _WorkerGone(Exception):
    """The worker closed its pipe, died or sent a malformed frame."""


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def send(self, request: tuple[Any, ...]) -> None:
        assert self.process.stdin is not None
        data = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(_HEADER.pack(len(data)) + data)
        await self.process.stdin.drain()

    async def receive(self) -> tuple[Any, ...]:
        assert self.process.stdout is not None
        try:
            (size,) = _HEADER.unpack(await self.process.stdout.readexactly(_HEADER.size))
            if size > _MAX_REPLY_BYTES:
                msg = f"reply of {size} bytes"
                raise _WorkerGone(msg)
            reply = _Unpickler(io.BytesIO(await self.process.stdout.readexactly(size))).load()
        except (asyncio.IncompleteReadError, pickle.UnpicklingError, EOFError) as err:
            raise _WorkerGone(str(err)) from err
        if not isinstance(reply, tuple) or not reply:
            msg = "malformed reply"
            raise _WorkerGone(msg)
        return reply

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


def _result(reply: tuple[Any, ...]) -> Translation:
    kind = reply[0]
    if kind == "ok":
        return Translation(**reply[1])
    if kind == "error":
        _, code, message, start, end = reply
        raise _ERRORS.get(code, HogQLError)(message, start=start, end=end)
    msg = f"HogQL translation failed in the worker:\n{reply[-1]}"
    raise RuntimeError(msg)  # a bug: the middleware logs it and answers a generic 500


class Translator:
    """Translates HogQL in a pool of `workers` processes, each translation bounded by
    `timeout_s` (then: HogQLTooComplex, and the worker is replaced).

    Created and closed by `translator_ctx`; handlers reach it through `TRANSLATOR_KEY` (the
    kernel bridge through `AnalyticsStore.translator`). Workers start on first use, so an app
    that never runs HogQL (most tests) never starts one. `translate()` raises what the
    synchronous `gateway.hogql.translate()` raises, plus HogQLTooComplex for the limits and
    ServiceUnavailable when no worker frees up within 10 s.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        timeout_s: float = 3.0,
        limits: TextLimits | None = None,
        per_project: int | None = None,
    ) -> None:
        """`per_project`: translations one project may have in flight (default: all workers
        but one, so one member's slow queries cannot take every worker)."""
        self._size = max(1, workers)
        self._projects = ProjectGate(
            per_project=per_project or max(1, self._size - 1),
            what="translations",
            setting="hogql_translations_per_project",
            wait_s=_WAIT_S,
        )
        self._timeout = timeout_s
        self._limits = limits or TextLimits()
        self._idle: asyncio.Queue[_Worker] = asyncio.Queue()
        self._started = False
        self._closed = False
        self._all: set[_Worker] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # the events properties the analytics store keeps as columns (set by the app from
        # `AnalyticsStore.materialized`): printed as those columns
        self.materialized: tuple[str, ...] = ()

    @property
    def limits(self) -> TextLimits:
        """The text limits checked before any translation (the settings' values)."""
        return self._limits

    def _spawn_soon(self) -> None:
        task = asyncio.create_task(self._spawn())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self) -> None:
        """Start one worker and hand it to the idle queue once it is ready; retry on failure."""
        while not self._closed:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "gateway.hogql._worker",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            worker = _Worker(process)
            self._all.add(worker)
            try:
                async with asyncio.timeout(_WAIT_S * 3):
                    ready = await worker.receive()
                if ready != ("ready",):
                    msg = f"unexpected greeting {ready!r}"
                    raise _WorkerGone(msg)
            except (TimeoutError, _WorkerGone) as err:
                _log.warning("HogQL translator worker did not start (%s); retrying", err)
                await self._discard(worker)
                await asyncio.sleep(1.0)
                continue
            except BaseException:
                await self._discard(worker)
                raise
            self._idle.put_nowait(worker)
            return

    async def _discard(self, worker: _Worker) -> None:
        worker.kill()
        await worker.process.wait()
        self._all.discard(worker)

    def _replace(self, worker: _Worker) -> None:
        """Kill `worker` (its state is unknown) and start another in the background."""
        worker.kill()
        task = asyncio.create_task(self._discard(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if not self._closed:
            self._spawn_soon()

    async def _acquire(self) -> _Worker:
        if self._closed:
            msg = "The HogQL translator is shutting down."
            raise ServiceUnavailable(msg, headers={"Retry-After": "1"})
        if not self._started:
            self._started = True
            for _ in range(self._size):
                self._spawn_soon()
        try:
            async with asyncio.timeout(_WAIT_S):
                return await self._idle.get()
        except TimeoutError:
            msg = "Every HogQL translator is busy; try again in a moment."
            raise ServiceUnavailable(msg, headers={"Retry-After": "1"}) from None

    async def translate(
        self,
        query: str,
        *,
        project_id: int,
        values: Mapping[str, Any] | None = None,
        timezone: str = "UTC",
    ) -> Translation:
        """Check `query`'s text, then translate it in a worker within the time budget.
        TooManyRequests (429) when `project_id`'s share of the workers stays busy (fairness.py)."""
        check_text(query, self._limits)
        async with self._projects.turn(project_id):
            return await self._translate(query, project_id, values, timezone)

    async def _translate(
        self, query: str, project_id: int, values: Mapping[str, Any] | None, timezone: str
    ) -> Translation:
        worker = await self._acquire()
        done = False
        try:
            async with asyncio.timeout(self._timeout):
                await worker.send(
                    (query, project_id, dict(values or {}), timezone, self.materialized)
                )
                reply = await worker.receive()
            done = True
        except TimeoutError:
            msg = (
                f"The query was too complex to translate within {self._timeout:g} s"
                " (hogql_translate_timeout_s)."
            )
            raise HogQLTooComplex(msg, start=0, end=len(query)) from None
        except (_WorkerGone, ConnectionError) as err:
            _log.warning("HogQL translator worker stopped mid-request: %s", err)
            msg = "The query could not be translated: the translator stopped on it."
            raise HogQLTooComplex(msg, start=0, end=len(query)) from None
        finally:
            if done:
                self._idle.put_nowait(worker)
            else:
                self._replace(worker)
        return _result(reply)

    async def close(self) -> None:
        """Stop every worker (closing stdin ends them; a kill makes sure) and wait for them."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for worker in list(self._all):
            if worker.process.stdin is not None:
                worker.process.stdin.close()
            try:
                async with asyncio.timeout(1.0):
                    await worker.process.wait()
            except TimeoutError:
                pass
            await self._discard(worker)
