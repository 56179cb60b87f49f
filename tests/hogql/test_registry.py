"""The function registry (gateway/hogql/functions.py): one complete entry per function."""

from __future__ import annotations

import pytest

from gateway.hogql import translate
from gateway.hogql.functions import Function, registry

ENTRIES = list(registry())


@pytest.mark.parametrize(("name", "function", "window"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_every_entry_says_how_it_prints(name, function, window):
    assert isinstance(function, Function)
    assert function.template or function.handler is not None, name
    assert 0 <= function.min_args <= function.max_args
    if function.kind_from is not None:
        assert function.kind_from < function.max_args


def test_a_handler_and_its_check_come_from_the_entry():
    # formatDateTime's check refuses an unknown spec before any printing
    with pytest.raises(Exception, match="%Q is not supported"):
        translate("select formatDateTime(now(), '%Q')", project_id=1)
    sql = translate("select formatDateTime(now(), '%Y')", project_id=1).sql
    assert "strftime(" in sql


@pytest.mark.parametrize(("name", "function", "window"), ENTRIES, ids=[e[0] for e in ENTRIES])
def test_every_template_formats_with_its_arguments(name, function, window):
    # a literal brace in a template (a regex quantifier such as {3}) must be doubled, else the
    # printer's str.format raises IndexError on every call: a 500 instead of an answer
    for template in (function.template, function.array_template):
        if not template:
            continue
        args = [f"a{i}" for i in range(function.max_args)]
        params = ["p0", "p1", "p2"]
        template.format(
            *args,
            args=", ".join(args),
            params=", ".join(params),
            over="",
            **{f"p{i}": p for i, p in enumerate(params)},
        )
