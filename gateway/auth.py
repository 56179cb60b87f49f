"""Personal API keys: generation, hashing, scope rules and the per-route guard.

Keys are high-entropy random strings, so a single SHA-256 is the right hash (as PostHog does):
it is not reversible, and a slow hash would only slow every request.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from gateway.errors import AuthenticationFailed, NotAuthenticated, NotFound, PermissionDenied
from gateway.keys import AUTH_CACHE_KEY, PRINCIPAL_KEY, STORE_KEY
from gateway.principal import Principal

KEY_PREFIX: Final = "phx_"
SCOPES: Final = frozenset(
    {
        "notebook:read",
        "notebook:write",
        "activity_log:read",
        "sharing_configuration:read",
        "sharing_configuration:write",
        "query:read",
        "*",
    }
)

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_api_key() -> tuple[str, str, str]:
    """A fresh key: (raw key shown once, hash to store, mask for listings)."""
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    return raw, hash_api_key(raw), f"{raw[:8]}...{raw[-4:]}"


def hash_api_key(raw: str) -> str:
    """The SHA-256 hex digest under which a key is stored (`new_api_key`) and looked up
    (`authenticate`).
    """
    return hashlib.sha256(raw.encode()).hexdigest()


def scope_allows(granted: tuple[str, ...], needed: str) -> bool:
    """`*` grants everything; `X:write` also grants `X:read`, as in PostHog."""
    if "*" in granted or needed in granted:
        return True
    obj, _, action = needed.partition(":")
    return action == "read" and f"{obj}:write" in granted


def parse_scopes(text: str) -> tuple[str, ...]:
    """A comma-separated scope list (the CLI's `--scopes`) as a tuple; ValueError for an empty list
    or an unknown scope.
    """
    scopes = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        msg = f"Unknown scopes {unknown}; choose from {sorted(SCOPES)}."
        raise ValueError(msg)
    return scopes


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer …` header (scheme case-insensitive, whitespace
    stripped), or None when there is none.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(request: web.Request, scope: str) -> Principal:
    """401 without a valid key, 403 when the key lacks `scope`, 404 for a foreign project."""
    token = bearer_token(request)
    if token is None:
        msg = "Authentication credentials were not provided."
        raise NotAuthenticated(msg)
    raw_project = request.match_info.get("project_id", "")
    project_id = int(raw_project) if raw_project.isdigit() and len(raw_project) < 19 else None
    key_hash = hash_api_key(token)
    cache = request.app[AUTH_CACHE_KEY]
    if project_id is not None and (hit := cache.get(key_hash, project_id)) is not None:
        key, user, cached_project = hit
        if not scope_allows(key.scopes, scope):
            msg = f"API key missing required scope '{scope}'"
            raise PermissionDenied(msg)
        return Principal(user=user, key=key, project=cached_project)
    found = await request.app[STORE_KEY].find_principal(key_hash, project_id)
    if found is None:
        msg = "Personal API key found in request Authorization header is invalid."
        raise AuthenticationFailed(msg)
    key, user, project = found
    if not scope_allows(key.scopes, scope):
        msg = f"API key missing required scope '{scope}'"
        raise PermissionDenied(msg)
    if project is None or project_id is None:
        msg = "Not found."
        raise NotFound(msg)
    cache.put(key_hash, project_id, (key, user, project))
    return Principal(user=user, key=key, project=project)


def requires(scope: str) -> Callable[[Handler], Handler]:
    """Guard a handler: authenticate, check `scope`, resolve the project.

    The scope is kept on the handler as `required_scope`, which the OpenAPI document reads.
    """

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            request[PRINCIPAL_KEY] = await authenticate(request, scope)
            return await handler(request)

        guarded.required_scope = scope  # type: ignore[attr-defined]
        return guarded

    return decorate
