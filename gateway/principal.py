"""Who is calling: the authenticated user, their key and the project of the URL."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.store.records import ApiKey, Project, User


@dataclass(frozen=True, kw_only=True)
class Principal:
    user: User
    key: ApiKey
    project: Project
