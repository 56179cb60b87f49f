"""Every third-party module the gateway imports is installed by its runtime dependencies
(pyproject's `[project] dependencies` and what they require), not only by the dev extra: the
containerized gateway (images/gateway) installs no extras."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _runtime_distributions() -> set[str]:
    """The declared runtime dependencies and, recursively, what they require (no extras)."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    todo = [_normal(Requirement(spec).name) for spec in declared]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for text in importlib.metadata.requires(name) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(_normal(requirement.name))
    return seen


def _imported_top_levels() -> dict[str, str]:
    """Top-level module → one gateway file importing it (absolute imports only)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / "gateway").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_the_gateway_imports_only_what_its_runtime_dependencies_install():
    runtime = _runtime_distributions()
    providers = importlib.metadata.packages_distributions()
    missing = []
    for module, where in sorted(_imported_top_levels().items()):
        if module in sys.stdlib_module_names or module in {"gateway", "__future__"}:
            continue
        distributions = {_normal(d) for d in providers.get(module, [])}
        if not distributions & runtime:
            missing.append(f"{module} (imported in {where}; from {sorted(distributions)})")
    assert missing == [], "not installed without extras: " + ", ".join(missing)


def test_the_check_sees_a_dev_only_module():
    """numpy comes with the dev extra only (and with nothing the gateway needs)."""
    assert "numpy" not in {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if {_normal(d) for d in dists} & _runtime_distributions()
    }
