"""The layering of docs/architecture.md, checked on every import in gateway/ (late ones too):
a module imports only its own unit, the layers below it and its peers — within the domain
layer only the few dependencies drawn there; no two units import each other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "gateway"

# unit → layer; a unit is `gateway.<first name>`.
LAYERS: dict[str, int] = {
    # 0 base: no gateway imports beyond this layer
    "gateway": 0,
    "gateway.settings": 0,
    "gateway.errors": 0,
    "gateway.clock": 0,
    "gateway.sse": 0,
    "gateway.markdown": 0,
    "gateway.fairness": 0,
    # 1 records and the embedded database
    "gateway.store": 1,
    # 2 domain: each owns one subsystem
    "gateway.collab": 2,
    "gateway.filters": 2,
    "gateway.share_links": 2,
    "gateway.principal": 2,
    "gateway.render_cache": 2,
    "gateway.kernels": 2,
    "gateway.hogql": 2,
    "gateway.ingestion": 2,
    "gateway.analytics": 2,
    # 3 services composed from several domains
    "gateway.viewer": 3,
    # 4 HTTP: handlers, auth, middleware, the schema, the app's typed keys
    "gateway.api": 4,
    "gateway.auth": 4,
    "gateway.middleware": 4,
    "gateway.openapi": 4,
    "gateway.contract": 4,
    "gateway.keys": 4,
    # 5 composition and entry points
    "gateway.app": 5,
    "gateway.cli": 5,
    "gateway.__main__": 5,
}
# The only imports between domain units: the analytics store runs what hogql translated and
# what ingestion prepared.
DOMAIN_EDGES = {
    ("gateway.analytics", "gateway.hogql"),
    ("gateway.analytics", "gateway.ingestion"),
}


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        targets = graph.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            targets.update(n for n in names if n == "gateway" or n.startswith("gateway."))
    return graph


def test_every_unit_has_a_layer():
    units = {_unit(module) for module in _imports()}
    assert units <= set(LAYERS), f"add to LAYERS and docs/architecture.md: {units - set(LAYERS)}"


def test_imports_go_down_the_layers():
    wrong = []
    for module, targets in _imports().items():
        source = _unit(module)
        for target in map(_unit, targets):
            if target == source:
                continue
            below = LAYERS[target] < LAYERS[source]
            same = LAYERS[target] == LAYERS[source]
            # peers of one layer may use each other (cycles are refused below), except in the
            # domain layer, whose few edges are drawn in DOMAIN_EDGES
            sideways = same and (LAYERS[source] != 2 or (source, target) in DOMAIN_EDGES)
            if not (below or sideways):
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_no_two_units_import_each_other():
    edges = {
        (_unit(module), _unit(target))
        for module, targets in _imports().items()
        for target in targets
        if _unit(module) != _unit(target)
    }
    assert sorted((a, b) for a, b in edges if (b, a) in edges) == []


def test_only_the_docker_backend_imports_docker():
    users = sorted(
        module
        for module, _ in _imports().items()
        if any(
            isinstance(node, ast.Import | ast.ImportFrom)
            and any(
                (getattr(node, "module", None) or "").split(".")[0] == "docker"
                or alias.name.split(".")[0] == "docker"
                for alias in node.names
            )
            for node in ast.walk(ast.parse(_path(module).read_text()))
        )
    )
    assert users == ["gateway.kernels.docker"]


def test_the_relay_process_imports_only_pyzmq_and_the_standard_library():
    """It is started per kernel as a script: importing the gateway would cost its start-up
    time and memory (it runs under a memory cap), so it imports nothing of ours."""
    tree = ast.parse((ROOT / "kernels" / "relay_process.py").read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else []
        )
    }
    assert imported <= {"__future__", "zmq", *sys.stdlib_module_names}, imported


def _path(module: str) -> Path:
    base = ROOT.parent.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def test_no_module_over_600_lines():
    long = {
        str(path.relative_to(ROOT.parent)): n
        for path in ROOT.rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 600
    }
    assert long == {}
