"""Shared fixtures: settings → app → client, plus accounts with API keys."""

from __future__ import annotations

import os
from dataclasses import dataclass

import aiohttp
import pytest

import gateway
from gateway.app import create_app
from gateway.auth import new_api_key
from gateway.clock import FakeClock
from gateway.keys import STORE_KEY
from gateway.settings import Settings
from gateway.store import Project, Store, User


def pytest_report_header(config: pytest.Config) -> list[str]:
    import sqlite3

    return [
        f"gateway {gateway.__version__}, aiohttp {aiohttp.__version__}, "
        f"sqlite {sqlite3.sqlite_version}"
    ]


@pytest.fixture(autouse=True)
def _clean_environ(monkeypatch):
    """Tests build Settings directly; nothing may depend on GATEWAY_* in the environment."""
    for key in list(os.environ):
        if key.startswith("GATEWAY_") and key != "GATEWAY_REQUIRE_DOCKER":
            monkeypatch.delenv(key)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", secret_key="test-secret-key-0123456789abcdef")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(settings, clock):
    return create_app(settings, clock=clock)


@pytest.fixture
async def client(aiohttp_client, app):
    return await aiohttp_client(app)


@dataclass
class Account:
    user: User
    project: Project
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def url(self, path: str = "") -> str:
        return f"/api/projects/{self.project.id}/notebooks/{path}"


class Accounts:
    """Creates users, projects and keys directly in the running app's store."""

    def __init__(self, store: Store, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock

    async def make(
        self, email: str = "jane@example.com", *, project_id: int = 1, scopes=("*",)
    ) -> Account:
        now = self.clock.now()
        user = await self.store.ensure_user(
            email, first_name=email.split("@", maxsplit=1)[0], now=now
        )
        project = await self.store.ensure_project(project_id, now=now)
        await self.store.add_member(user.id, project.id)
        raw, key_hash, mask = new_api_key()
        await self.store.create_api_key(
            user.id, key_hash=key_hash, mask=mask, scopes=tuple(scopes), label="t", now=now
        )
        return Account(user=user, project=project, key=raw)


@pytest.fixture
def accounts(client, clock) -> Accounts:
    return Accounts(client.server.app[STORE_KEY], clock)


@pytest.fixture
async def jane(accounts) -> Account:
    return await accounts.make()


async def create_notebook(client, account: Account, **body) -> dict:
    resp = await client.post(account.url(), json=body, headers=account.headers)
    assert resp.status == 201, await resp.text()
    return await resp.json()
