"""The docs name every route, setting and error code the code has."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from gateway.app import create_app
from gateway.errors import ALL_ERRORS
from gateway.kernels.errors import (
    KernelExecuteFailed,
    KernelQueueFull,
    KernelStartFailed,
)
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


def test_every_error_code_is_documented():
    text = (DOCS / "errors.md").read_text()
    for error in (
        *ALL_ERRORS,
        KernelStartFailed,
        KernelExecuteFailed,
        KernelQueueFull,
    ):
        assert f"`{error.code}`" in text, error.__name__
