"""Public classes and functions in gateway/ say who calls them and what they guarantee.

Public: a name not starting with `_`, at module level (classes and functions) or a method of a
public class. Counted with `ast`, so nothing is imported.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

GATEWAY = Path(__file__).resolve().parent.parent / "gateway"
# Issue #11's floor: 52 % were documented at first. New public definitions come with docstrings.
MIN_SHARE = 0.90

_Definition = ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef


def _public(node: ast.stmt) -> bool:
    return isinstance(node, _Definition) and not node.name.startswith("_")


def _definitions(tree: ast.Module) -> Iterator[tuple[str, _Definition]]:
    for node in tree.body:
        if not _public(node):
            continue
        assert isinstance(node, _Definition)
        yield node.name, node
        if isinstance(node, ast.ClassDef):
            for member in node.body:
                if _public(member):
                    assert isinstance(member, _Definition)
                    yield f"{node.name}.{member.name}", member


def public_definitions() -> list[tuple[str, bool]]:
    """(module:qualified name, has a docstring) for every public definition in gateway/."""
    found = []
    for path in sorted(GATEWAY.rglob("*.py")):
        module = path.relative_to(GATEWAY.parent).with_suffix("").as_posix().replace("/", ".")
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, node in _definitions(tree):
            found.append((f"{module}:{name}", ast.get_docstring(node) is not None))
    return found


def test_public_definitions_are_documented():
    found = public_definitions()
    assert len(found) > 100, "the walk found too little to be meaningful"
    missing = [name for name, documented in found if not documented]
    share = 1 - len(missing) / len(found)
    listing = "\n".join(missing)
    assert share >= MIN_SHARE, (
        f"{share:.1%} of {len(found)} public classes and functions have a docstring "
        f"(minimum {MIN_SHARE:.0%}); undocumented:\n{listing}"
    )
