"""The application factory: the one place that wires the subsystems together.

Each resource has its own cleanup context, entered in this order and left in reverse: the
store, the HogQL translator, the analytics store, the shared viewer's query runner, the kernels
(whose HogQL bridge handler comes from the api layer). No subsystem imports another's context;
the command line (`gateway.cli`) is the entry point and imports this module, never the reverse.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator

from aiohttp import web

from gateway.analytics.store import AnalyticsStore
from gateway.api import setup_routes
from gateway.api.capture import cors_headers
from gateway.api.kernel_bridge import kernel_query_handler
from gateway.clock import Clock, SystemClock
from gateway.collab import CollabHub
from gateway.hogql.limits import TextLimits
from gateway.hogql.translator import Translator
from gateway.kernels.context import running_kernels
from gateway.keys import (
    ANALYTICS_KEY,
    AUTH_CACHE_KEY,
    CLOCK_KEY,
    COLLAB_HUB_KEY,
    KERNELS_KEY,
    RENDER_CACHE_KEY,
    SETTINGS_KEY,
    SHARE_LIMITER_KEY,
    SHARE_TOKENS_KEY,
    SHARED_QUERIES_KEY,
    STORE_KEY,
    TRANSLATOR_KEY,
)
from gateway.middleware import body_timeout_middleware, error_middleware, sliced_body_middleware
from gateway.principal import PrincipalCache
from gateway.render_cache import RenderCache
from gateway.settings import Settings
from gateway.share_links import ShareLoginLimiter, ShareTokens
from gateway.store import SQLiteStore
from gateway.viewer.queries import SharedQueries


def load_secret(settings: Settings) -> str:
    """The signing key: from settings, else `<data_dir>/secret_key`, created once (0600)."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


async def store_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open (and migrate) the embedded database for the app's lifetime."""
    settings = app[SETTINGS_KEY]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SQLiteStore.open(settings.database_path, collab_keep=settings.collab_max_steps)
    store.add_commit_listener(app[COLLAB_HUB_KEY].publish_entries)
    store.add_change_listener(app[RENDER_CACHE_KEY].invalidate)
    app[STORE_KEY] = store
    app[SHARE_TOKENS_KEY] = ShareTokens(load_secret(settings), app[CLOCK_KEY])
    yield
    await store.close()


async def translator_ctx(app: web.Application) -> AsyncIterator[None]:
    """The HogQL translator's worker pool (workers start on first use)."""
    settings = app[SETTINGS_KEY]
    translator = Translator(
        workers=settings.hogql_translate_workers,
        timeout_s=settings.hogql_translate_timeout_s,
        limits=TextLimits(
            max_chars=settings.hogql_max_query_chars,
            max_tokens=settings.hogql_max_tokens,
            max_depth=settings.hogql_max_depth,
        ),
        per_project=settings.hogql_translations_per_project,
    )
    app[TRANSLATOR_KEY] = translator
    try:
        yield
    finally:
        await translator.close()


async def analytics_ctx(app: web.Application) -> AsyncIterator[None]:
    """The analytics store (DuckDB file in the data directory)."""
    settings = app[SETTINGS_KEY]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = AnalyticsStore(
        settings.data_dir / "analytics.duckdb",
        timeout_s=settings.hogql_timeout_s,
        memory_mb=settings.hogql_memory_mb,
        max_result_bytes=settings.hogql_max_result_bytes,
        materialized=[p for p in settings.hogql_materialized_properties.split(",") if p],
        max_queries=settings.hogql_max_concurrent_queries,
        queries_per_project=settings.hogql_queries_per_project,
    )
    app[TRANSLATOR_KEY].materialized = store.materialized  # print what the store has
    store.layout.start(settings.analytics_layout_interval_s)
    app[ANALYTICS_KEY] = store
    try:
        yield
    finally:
        await asyncio.to_thread(store.close)


async def shared_queries_ctx(app: web.Application) -> AsyncIterator[None]:
    """The shared viewer's query runner, over the translator and the analytics store."""
    settings = app[SETTINGS_KEY]
    runner = SharedQueries(
        app[ANALYTICS_KEY],
        app[TRANSLATOR_KEY],
        app[CLOCK_KEY],
        concurrency=settings.shared_query_concurrency,
        max_nodes=settings.shared_query_nodes,
        max_bytes=settings.shared_cache_mb * 1024 * 1024,
        ttl_s=settings.shared_cache_ttl_s,
    )
    app[SHARED_QUERIES_KEY] = runner
    try:
        yield
    finally:
        await runner.close()


async def kernels_ctx(app: web.Application) -> AsyncIterator[None]:
    """The kernel manager; `hogql_execute()` in kernels is served by the api layer's handler."""
    async with running_kernels(
        app[SETTINGS_KEY], app[CLOCK_KEY], app[STORE_KEY], bridge=kernel_query_handler(app)
    ) as manager:
        app[KERNELS_KEY] = manager
        yield


async def _close_streams(app: web.Application) -> None:
    """Graceful shutdown: end every open stream so the server can stop."""
    app[COLLAB_HUB_KEY].close_all()


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """Build the gateway application; resources open on startup, close on cleanup."""
    app = web.Application(
        middlewares=[sliced_body_middleware, error_middleware, body_timeout_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS_KEY] = settings
    app[CLOCK_KEY] = clock or SystemClock()
    app[SHARE_LIMITER_KEY] = ShareLoginLimiter(
        app[CLOCK_KEY],
        max_failures=settings.share_login_max_failures,
        window_s=settings.share_login_window_s,
    )
    app[RENDER_CACHE_KEY] = RenderCache(max_bytes=settings.render_cache_mb * 1024 * 1024)
    app[AUTH_CACHE_KEY] = PrincipalCache(app[CLOCK_KEY], ttl_s=settings.auth_cache_s)
    app[COLLAB_HUB_KEY] = CollabHub(
        max_streams=settings.collab_max_streams,
        buffer=settings.collab_stream_buffer,
        max_per_user=settings.collab_max_streams_per_user,
    )
    app.on_shutdown.append(_close_streams)
    app.cleanup_ctx.extend(
        [store_ctx, translator_ctx, analytics_ctx, shared_queries_ctx, kernels_ctx]
    )
    setup_routes(app)
    app.on_response_prepare.append(cors_headers)
    return app


def _set_priority(nice: int) -> None:
    """Give the gateway's threads (set before any starts, so all inherit it) the niceness
    `nice`: the event loop that answers every client outranks tenants' kernels, which the
    engine starts elsewhere, and HogQL workers (nice 10 above it). Lowering it below 0 needs
    root; without, the gateway keeps its niceness and says so."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    except OSError as err:
        logging.getLogger(__name__).warning("process_nice %d not applied: %s", nice, err)


def serve(settings: Settings) -> None:
    """Run the gateway until interrupted (the CLI's `serve`): logging at `log_level`,
    `create_app(settings)` on host:port, no aiohttp access log, and `header_read_timeout_s` as the
    keep-alive timeout.
    """
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    _set_priority(settings.process_nice)
    sys.setswitchinterval(settings.process_switch_interval_ms / 1000)
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        print=None,
        access_log=None,
        keepalive_timeout=settings.header_read_timeout_s,
    )


__all__ = ["create_app", "serve"]
