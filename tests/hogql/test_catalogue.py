"""PostHog's whole HogQL function list is covered: each name implemented or refused with its
reason, and docs/hogql.md's generated table says so (scripts/hogql_catalogue.py)."""

from __future__ import annotations

import pytest

from gateway.hogql import translate
from gateway.hogql.catalogue import posthog_functions
from gateway.hogql.errors import HogQLUnsupported
from scripts.hogql_catalogue import DOC, status, updated

NAMES = [f.name for f in posthog_functions()]


def test_every_posthog_name_is_implemented_or_refused_with_a_reason():
    unreasoned = [n for n in NAMES if status(n) is not None and len(status(n) or "") < 20]
    assert not unreasoned, unreasoned
    assert len(NAMES) == len(set(NAMES)) >= 780


@pytest.mark.parametrize("name", ["erf", "groupBitmapIf", "JSONExtractKeysAndValues"])
def test_a_refused_name_is_a_400_that_names_it_and_why(name):
    with pytest.raises(HogQLUnsupported, match=rf"{name}\(\.\.\.\) is not supported .*: \w+"):
        translate(f"select {name}(1, 2)", project_id=1)


def test_the_docs_table_is_what_the_catalogue_generates():
    text = DOC.read_text(encoding="utf-8")
    assert text == updated(text), "run: .venv/bin/python scripts/hogql_catalogue.py"
