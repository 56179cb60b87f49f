"""Small accessors handlers share: the caller, the clock, and the notebook of the URL."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from gateway.keys import CLOCK_KEY, PRINCIPAL_KEY, STORE_KEY
from gateway.principal import Principal
from gateway.store import Notebook, Store


def principal(request: web.Request) -> Principal:
    """The authenticated caller (user, project, scopes) that `@requires` put on the request;
    handlers behind it may rely on it."""
    return request[PRINCIPAL_KEY]


def store(request: web.Request) -> Store:
    """The app's record store (SQLite by default), for handlers."""
    return request.app[STORE_KEY]


def now(request: web.Request) -> datetime:
    """The app clock's current time (a fake clock in tests), for timestamps handlers write."""
    return request.app[CLOCK_KEY].now()


async def load_notebook(request: web.Request, *, include_deleted: bool = False) -> Notebook:
    """The notebook named by `{short_id}` (or `{notebook_id}`) in the caller's project; 404 else."""
    short_id = request.match_info.get("short_id") or request.match_info["notebook_id"]
    return await store(request).get_notebook(
        principal(request).project.id, short_id, include_deleted=include_deleted
    )
