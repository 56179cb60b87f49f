"""Service routes: liveness and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from gateway.api._render import json_response
from gateway.api._schemas import obj
from gateway.contract import Operation, Reply, operation
from gateway.keys import KERNELS_KEY
from gateway.openapi import build_openapi

routes = web.RouteTableDef()


@routes.get("/_health", name="health")
@operation(
    Operation(
        "health",
        replies=(
            Reply(
                200,
                "Serving.",
                obj(
                    ("status", "kernels"),
                    status={"type": "string", "enum": ["ok"]},
                    kernels=obj(
                        ("running", "pool_ready"),
                        running={"type": "integer", "minimum": 0},
                        pool_ready={"type": "integer", "minimum": 0},
                    ),
                ),
            ),
        ),
    )
)
async def health(request: web.Request) -> web.Response:
    """Liveness: 200 while the process serves requests, with kernel counts."""
    kernels = request.app[KERNELS_KEY]
    return json_response(
        {
            "status": "ok",
            "kernels": {
                "running": len(kernels.live_runtimes()) - kernels.pool_ready,
                "pool_ready": kernels.pool_ready,
            },
        }
    )


@routes.get("/api/schema", name="get_schema")
@operation(
    Operation(
        "schema_retrieve",
        replies=(Reply(200, "The OpenAPI 3.1 document.", {"type": "object"}),),
    )
)
async def get_schema(request: web.Request) -> web.Response:
    """This API as an OpenAPI 3.1 document."""
    return json_response(build_openapi(request.app))
