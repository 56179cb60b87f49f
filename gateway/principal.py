"""Who is calling (user, key, project of the URL), and a short cache of those lookups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.clock import Clock
from gateway.store.records import ApiKey, Project, User


@dataclass(frozen=True, kw_only=True)
class Principal:
    """The authenticated caller of an API request, built by `auth.authenticate` and kept on the
    request under `PRINCIPAL_KEY`; `project` is the URL's project, of which `user` is a member.
    """

    user: User
    key: ApiKey
    project: Project


type Found = tuple[ApiKey, User, Project]


class PrincipalCache:
    """Successful key lookups, kept for `ttl_s` so a busy client costs one SQL query per TTL.

    Only complete successes (known key, member of the project) are kept, so unknown keys
    cannot fill it; it is bounded and emptied when full. A key or membership removed in the
    database stops working within `ttl_s` (setting `auth_cache_s`; 0 disables the cache).
    """

    def __init__(self, clock: Clock, *, ttl_s: float, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=ttl_s)
        self._max = max_entries
        self._entries: dict[tuple[str, int], tuple[datetime, Found]] = {}

    def get(self, key_hash: str, project_id: int) -> Found | None:
        """The cached lookup for (key hash, project), or None when absent or expired;
        `auth.authenticate` still checks the scope on a hit.
        """
        entry = self._entries.get((key_hash, project_id))
        if entry is None:
            return None
        if entry[0] <= self._clock.now():
            del self._entries[(key_hash, project_id)]
            return None
        return entry[1]

    def put(self, key_hash: str, project_id: int, found: Found) -> None:
        """Keep a successful lookup for `ttl_s`; a no-op when the TTL is 0, and a full cache is
        emptied first.
        """
        if not self._ttl:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[(key_hash, project_id)] = (self._clock.now() + self._ttl, found)
