"""Wire shapes of the store's records (PostHog's serializers)."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Final

import orjson
from aiohttp import web
from yarl import URL

from gateway.clock import isoformat
from gateway.kernels import ExecutionResult, KernelConfig, KernelRuntime
from gateway.keys import SETTINGS_KEY
from gateway.middleware import SlicedPayload
from gateway.store.records import ActivityEntry, Notebook, SharingConfig, User

# strings longer than this (characters) are encoded a slice at a time (long_json_response)
_LONG_STRING: Final = 256 * 1024


def user_json(user: User | None) -> dict[str, Any] | None:
    """PostHog's nested user object (`created_by`, `last_modified_by`, activity users), or None."""
    if user is None:
        return None
    return {
        "id": user.id,
        "uuid": user.uuid,
        "distinct_id": user.distinct_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "is_email_verified": None,
        "hedgehog_config": None,
        "role_at_organization": None,
    }


def notebook_json(notebook: Notebook, *, minimal: bool = False) -> dict[str, Any]:
    """A notebook in PostHog's shape; `minimal` is the list view's (no content)."""
    body: dict[str, Any] = {
        "id": notebook.id,
        "short_id": notebook.short_id,
        "title": notebook.title,
    }
    if not minimal:
        # Stored JSON goes out as it is: no decode/encode round trip on every GET.
        body["content"] = orjson.Fragment(notebook.content_json)
        body["text_content"] = notebook.text_content
        body["version"] = notebook.version
    body |= {
        "deleted": notebook.deleted,
        "created_at": isoformat(notebook.created_at),
        "created_by": user_json(notebook.created_by),
        "last_modified_at": isoformat(notebook.last_modified_at),
        "last_modified_by": user_json(notebook.last_modified_by),
        "user_access_level": "editor",
    }
    if not minimal:
        body["parent_resource"] = None
    return body


def activity_json(entry: ActivityEntry) -> dict[str, Any]:
    """One activity log entry in PostHog's shape, with its before/after changes."""
    user: dict[str, Any] = (
        {"first_name": "System", "email": None, "is_system": True}
        if entry.user is None
        else {"first_name": entry.user.first_name, "email": entry.user.email}
    )
    return {
        "id": entry.id,
        "user": user,
        "activity": entry.activity,
        "scope": entry.scope,
        "item_id": entry.item_id,
        "detail": entry.detail,
        "created_at": isoformat(entry.created_at),
    }


def sharing_json(config: SharingConfig) -> dict[str, Any]:
    """A sharing configuration in PostHog's shape (its access token and settings)."""
    return {
        "created_at": None if config.created_at is None else isoformat(config.created_at),
        "enabled": config.enabled,
        "access_token": config.access_token,
        "settings": config.settings,
        "password_required": config.password_required,
        "share_passwords": [
            {
                "id": p.id,
                "created_at": isoformat(p.created_at),
                "note": p.note,
                "created_by_email": p.created_by_email,
                "is_active": True,
            }
            for p in config.passwords
        ],
    }


def absolute_url(request: web.Request, **query: int) -> str:
    """This request's URL with `query` merged in, absolute (public_url wins when set)."""
    base = request.app[SETTINGS_KEY].public_url
    url = request.url if not base else URL(base.rstrip("/") + request.rel_url.path_qs)
    return str(url.update_query({k: str(v) for k, v in query.items()}))


def json_response(body: Any, *, status: int = 200) -> web.Response:
    """A JSON response rendered with orjson (every handler's one way to answer JSON)."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _set_aside(value: Any, marker: str, strings: list[str]) -> Any:
    """`value` with every string longer than `_LONG_STRING` replaced by `marker:<n>` (n its
    index in `strings`, where it goes), in the order orjson writes them."""
    if isinstance(value, str):
        if len(value) <= _LONG_STRING:
            return value
        strings.append(value)
        return f"{marker}:{len(strings) - 1}"
    if isinstance(value, dict):
        return {key: _set_aside(item, marker, strings) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_set_aside(item, marker, strings) for item in value]
    return value


async def long_json_response(body: Any) -> web.Response:
    """`json_response` for a body that may hold strings of many MB (an execute result: its
    media, a display's text, up to `kernel_max_message_bytes` each). orjson holds the GIL for a
    whole call (~50 ms for a 40 MB string on the 2-core host), so each long string is encoded
    `_LONG_STRING` characters at a time, the event loop running between slices, and the body
    goes out as those parts, never joined (`SlicedPayload`). The bytes are orjson's own."""
    marker = secrets.token_hex(16)  # a kernel cannot guess it, so no value of its can collide
    strings: list[str] = []
    skeleton = orjson.dumps(_set_aside(body, marker, strings))
    parts: list[bytes] = []
    at = 0
    for n, text in enumerate(strings):
        placeholder = orjson.dumps(f"{marker}:{n}")
        found = skeleton.index(placeholder, at)
        parts += (skeleton[at:found], b'"')
        for start in range(0, len(text), _LONG_STRING):
            parts.append(orjson.dumps(text[start : start + _LONG_STRING])[1:-1])
            await asyncio.sleep(0)
        parts.append(b'"')
        at = found + len(placeholder)
    parts.append(skeleton[at:])
    return web.Response(body=SlicedPayload(parts, content_type="application/json"))


def runtime_json(runtime: KernelRuntime) -> dict[str, Any]:
    """A kernel's state in PostHog's kernel status shape (start, restart and status)."""
    alive = runtime.alive
    return {
        "backend": runtime.provisioner.backend,
        "status": runtime.status,
        "execution_state": runtime.execution_state if alive else None,
        "last_used_at": isoformat(runtime.last_used_at),
        "last_error": runtime.last_error,
        "runtime_id": runtime.id,
        "kernel_id": runtime.kernel_id,
        "container_id": runtime.provisioner.sandbox_id,
        "cpu_cores": runtime.resources.cpu_cores,
        "memory_gb": runtime.resources.memory_gb,
        "idle_timeout_seconds": runtime.idle_timeout_s,
        "started_at": isoformat(runtime.started_at),
        "idle_expires_at": isoformat(runtime.idle_expires_at()) if alive else None,
        "timings": {
            "sandbox_created_s": runtime.timings.created,
            "sandbox_started_s": runtime.timings.started,
            "kernel_ready_s": runtime.timings.ready,
        },
    }


def kernel_status_json(
    runtime: KernelRuntime | None, *, backend: str, config: KernelConfig
) -> dict[str, Any]:
    """`kernel/status`: the running kernel's state, or a stopped one with the notebook's config."""
    if runtime is not None:
        return runtime_json(runtime)
    return {
        "backend": backend,
        "status": "stopped",
        "execution_state": None,
        "last_used_at": None,
        "last_error": None,
        "runtime_id": None,
        "kernel_id": None,
        "container_id": None,
        "cpu_cores": config.resources.cpu_cores,
        "memory_gb": config.resources.memory_gb,
        "idle_timeout_seconds": config.idle_timeout_s,
        "started_at": None,
        "idle_expires_at": None,
        "timings": None,
    }


def execution_json(result: ExecutionResult) -> dict[str, Any]:
    """An execution in PostHog's execute result shape (execute, and execute/stream's last event)."""
    assert result.runtime is not None and result.started_at and result.completed_at
    body: dict[str, Any] = {
        "status": result.status,
        "stdout": result.stdout,
        "stderr": result.stderr,
        "result": result.result,
        "media": result.media,
        "execution_count": result.execution_count,
        "error_name": result.error_name,
        "error_value": result.error_value,
        "traceback": result.traceback,
        "variables": result.variables,
        "truncated": result.truncated,
        "started_at": isoformat(result.started_at),
        "completed_at": isoformat(result.completed_at),
        "kernel_runtime": {
            "id": result.runtime.id,
            "status": result.runtime.status,
            "last_used_at": isoformat(result.runtime.last_used_at),
        },
    }
    if result.variables_survived is not None:
        body["variables_survived"] = result.variables_survived
    if result.oom_killed is not None:
        body["oom_killed"] = result.oom_killed
    # what the gateway left out to stay within its memory bounds, said so rather than hidden
    if result.media_dropped:
        body["media_dropped"] = result.media_dropped
    if result.messages_dropped:
        body["messages_dropped"] = result.messages_dropped
    return body
