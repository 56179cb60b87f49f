"""Sharing configuration of a notebook: read, update, rotate the link, manage passwords."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from gateway.api._context import load_notebook, now, principal, store
from gateway.api._render import json_response, sharing_json
from gateway.api._request import opt_bool, opt_str
from gateway.api._schemas import DATETIME, SHARING, STRING_OR_NULL, obj
from gateway.api.notebooks import PREFIX
from gateway.auth import requires
from gateway.clock import isoformat
from gateway.contract import Body, Operation, Reply, declared_body, operation
from gateway.errors import InvalidRequest, NotFound, SharingError
from gateway.keys import SETTINGS_KEY
from gateway.share_links import KNOWN_SETTINGS, hash_password, new_access_token, new_share_password
from gateway.store import UNSET, SharingConfig, SharingPatch
from gateway.store.records import Maybe

routes = web.RouteTableDef()
SHARING_PATH = PREFIX + "/{notebook_id}/sharing"
_CONFIG_REPLY = Reply(200, "The sharing configuration.", SHARING)
_SETTINGS_SCHEMA = {
    "type": ["object", "null"],
    "description": "Known keys are kept: " + ", ".join(sorted(KNOWN_SETTINGS)) + ".",
    "x-message": "Invalid settings format",
}


def _settings(body: dict[str, Any]) -> Maybe[dict[str, Any] | None]:
    if "settings" not in body:
        return UNSET
    value = body["settings"]
    if value is None:
        return None
    if not isinstance(value, dict):
        msg = "Invalid settings format"
        raise InvalidRequest(msg, attr="settings")
    return {k: value[k] for k in KNOWN_SETTINGS if k in value}


async def _current(request: web.Request) -> SharingConfig:
    notebook = await load_notebook(request)
    config = await store(request).get_sharing(notebook, now=now(request))
    if config is None:
        return SharingConfig(
            id=None,
            project_id=notebook.project_id,
            notebook_id=notebook.id,
            created_at=None,
            enabled=False,
            access_token=new_access_token(),
            expires_at=None,
            settings=None,
            password_required=False,
        )
    return config


@routes.get(SHARING_PATH, name="get_sharing")
@requires("sharing_configuration:read")
@operation(Operation("notebooks_sharing_list", replies=(_CONFIG_REPLY,)))
async def get_sharing(request: web.Request) -> web.Response:
    """The notebook's sharing configuration (an unsaved default when none exists)."""
    return json_response(sharing_json(await _current(request)))


@routes.patch(SHARING_PATH, name="update_sharing")
@requires("sharing_configuration:write")
@operation(
    Operation(
        "notebooks_sharing_partial_update",
        replies=(_CONFIG_REPLY,),
        body=Body(
            obj(
                enabled={"type": "boolean"},
                settings=_SETTINGS_SCHEMA,
                password_required={"type": "boolean"},
            )
        ),
    )
)
async def update_sharing(request: web.Request) -> web.Response:
    """Enable/disable the public link, set its settings and whether it needs a password."""
    body = declared_body(request)
    patch = SharingPatch(
        enabled=opt_bool(body, "enabled"),
        settings=_settings(body),
        password_required=opt_bool(body, "password_required"),
    )
    notebook = await load_notebook(request)
    config = await store(request).update_sharing(
        notebook,
        patch,
        new_token=new_access_token(),
        user=principal(request).user,
        now=now(request),
    )
    return json_response(sharing_json(config))


@routes.post(SHARING_PATH + "/refresh", name="refresh_sharing")
@requires("sharing_configuration:write")
@operation(Operation("notebooks_sharing_refresh_create", replies=(_CONFIG_REPLY,)))
async def refresh_sharing(request: web.Request) -> web.Response:
    """Issue a new access token; the old one keeps working for the grace period."""
    notebook = await load_notebook(request)
    config = await store(request).rotate_sharing(
        notebook,
        new_token=new_access_token(),
        grace_s=request.app[SETTINGS_KEY].share_token_grace_s,
        user=principal(request).user,
        now=now(request),
    )
    return json_response(sharing_json(config))


@routes.post(SHARING_PATH + "/passwords", name="create_share_password")
@requires("sharing_configuration:write")
@operation(
    Operation(
        "notebooks_sharing_passwords_create",
        replies=(
            Reply(
                201,
                "The new password, raw, shown this once.",
                obj(
                    ("id", "password", "note", "created_at", "created_by_email"),
                    id={"type": "integer"},
                    password={"type": "string"},
                    note=STRING_OR_NULL,
                    created_at=DATETIME,
                    created_by_email=STRING_OR_NULL,
                ),
            ),
        ),
        errors=(SharingError,),
        body=Body(
            obj(
                raw_password={
                    "type": "string",
                    "minLength": 8,
                    "description": "Omitted: a random one is made.",
                },
                note={"type": ["string", "null"], "maxLength": 100},
            )
        ),
    )
)
async def create_share_password(request: web.Request) -> web.Response:
    """Add a share password; the raw password is in this response only."""
    body = declared_body(request)
    raw = opt_str(body, "raw_password")
    note = opt_str(body, "note", nullable=True, max_length=100)
    if isinstance(raw, str) and len(raw) < 8:
        msg = "Ensure raw_password has at least 8 characters."
        raise InvalidRequest(msg, attr="raw_password")
    config = await _current(request)
    if config.id is None or not config.password_required:
        msg = "Password protection must be enabled before creating passwords"
        raise SharingError(msg)
    password = raw if isinstance(raw, str) else new_share_password()
    iterations = request.app[SETTINGS_KEY].share_password_iterations
    encoded = await asyncio.to_thread(hash_password, password, iterations=iterations)
    user = principal(request).user
    saved = await store(request).add_share_password(
        config,
        password_hash=encoded,
        note=None if note is UNSET else note,
        user=user,
        now=now(request),
    )
    return json_response(
        {
            "id": saved.id,
            "password": password,
            "note": saved.note,
            "created_at": isoformat(saved.created_at),
            "created_by_email": saved.created_by_email,
        },
        status=201,
    )


@routes.delete(SHARING_PATH + "/passwords/{password_id}", name="delete_share_password")
@requires("sharing_configuration:write")
@operation(
    Operation(
        "notebooks_sharing_passwords_destroy",
        replies=(Reply(204, "Deactivated."),),
        description="An unknown password id is 404.",
    )
)
async def delete_share_password(request: web.Request) -> web.Response:
    """Deactivate a share password; 204."""
    raw_id = request.match_info["password_id"]
    config = await _current(request)
    if not raw_id.isdigit() or len(raw_id) > 18 or config.id is None:
        msg = "Password not found"
        raise NotFound(msg)
    await store(request).deactivate_share_password(
        config, int(raw_id), user=principal(request).user, now=now(request)
    )
    return web.Response(status=204)
