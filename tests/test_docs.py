"""The docs name every route, setting and error code the code has."""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import fields
from pathlib import Path

import gateway
from gateway.app import create_app
from gateway.errors import GatewayError
from gateway.openapi import route_table
from gateway.settings import Settings
from scripts.update_docs import settings_table

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_route_table_is_current():
    text = (DOCS / "api.md").read_text()
    start = text.index("<!-- routes:start -->\n") + len("<!-- routes:start -->\n")
    end = text.index("<!-- routes:end -->")
    assert text[start:end] == route_table(create_app(Settings())), "regenerate with: make docs"


def test_settings_table_is_current():
    assert (DOCS / "settings.md").read_text() == settings_table(), "regenerate with: make docs"
    for f in fields(Settings):
        assert f"`GATEWAY_{f.name.upper()}`" in settings_table(), f.name


def _error_tree() -> list[type[GatewayError]]:
    """GatewayError and every subclass, after importing every gateway module.

    Subclasses live next to the code that raises them (gateway.kernels.errors,
    gateway.hogql.errors, ...), so the walk imports the whole package first.
    """
    for module in pkgutil.walk_packages(gateway.__path__, "gateway."):
        if module.name.rsplit(".", 1)[-1] != "__main__":  # runs the CLI on import
            importlib.import_module(module.name)
    tree: list[type[GatewayError]] = []
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        error = pending.pop()
        tree.append(error)
        # Subclasses a test defines for itself are not part of the gateway's tree.
        pending.extend(e for e in error.__subclasses__() if e.__module__.startswith("gateway."))
    return tree


def test_error_tree_walk_finds_subpackage_errors():
    names = {error.__qualname__ for error in _error_tree()}
    assert {"KernelQueueFull", "HogQLSyntaxError", "CollabConflict"} <= names


def test_every_error_code_is_documented():
    text = (DOCS / "errors.md").read_text()
    missing = sorted(
        f"{error.__module__}.{error.__qualname__} ({error.code})"
        for error in _error_tree()
        if f"`{error.code}`" not in text
    )
    assert not missing, f"error codes missing from docs/errors.md: {missing}"
