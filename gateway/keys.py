"""Every application and request key, typed. Nothing else lives here."""

from __future__ import annotations

from aiohttp import web

from gateway.analytics.store import AnalyticsStore
from gateway.clock import Clock
from gateway.collab import CollabHub
from gateway.hogql.translator import Translator
from gateway.kernels.manager import KernelManager
from gateway.principal import Principal, PrincipalCache
from gateway.render_cache import RenderCache
from gateway.settings import Settings
from gateway.share_links import ShareLoginLimiter, ShareTokens
from gateway.store import Store
from gateway.viewer.queries import SharedQueries

SETTINGS_KEY = web.AppKey("settings", Settings)
CLOCK_KEY = web.AppKey("clock", Clock)
STORE_KEY = web.AppKey("store", Store)
SHARE_TOKENS_KEY = web.AppKey("share_tokens", ShareTokens)
SHARE_LIMITER_KEY = web.AppKey("share_limiter", ShareLoginLimiter)
AUTH_CACHE_KEY = web.AppKey("auth_cache", PrincipalCache)
COLLAB_HUB_KEY = web.AppKey("collab_hub", CollabHub)
KERNELS_KEY = web.AppKey("kernels", KernelManager)
RENDER_CACHE_KEY = web.AppKey("render_cache", RenderCache)
ANALYTICS_KEY = web.AppKey("analytics", AnalyticsStore)
TRANSLATOR_KEY = web.AppKey("translator", Translator)
SHARED_QUERIES_KEY = web.AppKey("shared_queries", SharedQueries)

PRINCIPAL_KEY = web.RequestKey("principal", Principal)
# the request body as `gateway.contract.operation()` read and checked it
BODY_KEY = web.RequestKey("body", dict)
