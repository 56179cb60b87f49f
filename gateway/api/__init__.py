"""HTTP handlers, one module per API area; `setup_routes` mounts them all."""

from __future__ import annotations

from aiohttp import web

from gateway.api import activity, meta, notebooks, shared, sharing

# Order matters where paths overlap: `notebooks/activity` before `notebooks/{short_id}`.
_MODULES = (meta, activity, sharing, notebooks, shared)


def setup_routes(app: web.Application) -> None:
    """Register every route twice: `/path` (named) and `/path/` (PostHog's client form)."""
    for module in _MODULES:
        for route in module.routes:
            assert isinstance(route, web.RouteDef)
            path = route.path.rstrip("/")
            name = route.kwargs.get("name")
            app.router.add_route(route.method, path, route.handler, name=name)
            app.router.add_route(route.method, path + "/", route.handler)


__all__ = ["setup_routes"]
