"""HTTP handlers, one module per API area; `setup_routes` mounts them all."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from gateway.api import (
    activity,
    capture,
    collab,
    dataframe,
    hogql,
    kernel,
    meta,
    notebooks,
    sharing,
    viewer,
)

# The router tries resources in this order, so the hottest come first. Where paths overlap,
# the literal one must precede the variable one (`notebooks/activity` before
# `notebooks/{short_id}`).
_MODULES = (
    activity,
    notebooks,
    kernel,
    dataframe,
    hogql,
    collab,
    sharing,
    viewer,
    capture,
    meta,
)
# One resource answers both `/path` and `/path/` (PostHog's clients use the slash).
SLASH: Final = "{slash:/?}"


def setup_routes(app: web.Application) -> None:
    """Register each path once, matching with and without a trailing slash."""
    resources: dict[str, web.Resource] = {}
    for module in _MODULES:
        for route in module.routes:
            assert isinstance(route, web.RouteDef)
            path = route.path.rstrip("/")
            resource = resources.get(path)
            if resource is None:
                resource = app.router.add_resource(path + SLASH)
                resources[path] = resource
            # The handler's name is the operation id (STYLE R9: route name = function name).
            assert route.kwargs["name"] == route.handler.__name__, route.kwargs["name"]
            resource.add_route(route.method, route.handler)


__all__ = ["setup_routes"]
