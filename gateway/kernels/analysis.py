"""Static analysis of a cell: the module-level names it assigns, defines or imports.

Those are the names `execute` reports in `variables` (PostHog's `analyze_python_globals`).
Cells that do not parse as Python (IPython magics, syntax errors) yield no names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator


def _targets(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _targets(element)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)


def _walk(body: list[ast.stmt]) -> Iterator[str]:
    for node in body:
        match node:
            case ast.Assign(targets=targets):
                for target in targets:
                    yield from _targets(target)
            case ast.AnnAssign(target=target) | ast.AugAssign(target=target):
                yield from _targets(target)
            case (
                ast.FunctionDef(name=name)
                | ast.AsyncFunctionDef(name=name)
                | ast.ClassDef(name=name)
            ):
                yield name
            case ast.Import(names=names) | ast.ImportFrom(names=names):
                for alias in names:
                    if alias.name != "*":
                        yield alias.asname or alias.name.split(".")[0]
            case (
                ast.For(target=target, body=inner, orelse=orelse)
                | ast.AsyncFor(target=target, body=inner, orelse=orelse)
            ):
                yield from _targets(target)
                yield from _walk(inner)
                yield from _walk(orelse)
            case ast.With(items=items, body=inner) | ast.AsyncWith(items=items, body=inner):
                for item in items:
                    if item.optional_vars is not None:
                        yield from _targets(item.optional_vars)
                yield from _walk(inner)
            case ast.If(body=inner, orelse=orelse) | ast.While(body=inner, orelse=orelse):
                yield from _walk(inner)
                yield from _walk(orelse)
            case ast.Try(body=inner, handlers=handlers, orelse=orelse, finalbody=final):
                yield from _walk(inner)
                for handler in handlers:
                    if handler.name:
                        yield handler.name
                    yield from _walk(handler.body)
                yield from _walk(orelse)
                yield from _walk(final)
            case ast.Expr(value=ast.NamedExpr(target=target)):
                yield from _targets(target)


def _without_magics(code: str) -> str:
    """Blank IPython line magics and shell escapes so the rest still parses."""
    lines = code.splitlines()
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in lines)


def cell_globals(code: str) -> list[str]:
    """Sorted, de-duplicated module-level names bound by `code`; [] when it does not parse."""
    if code.lstrip().startswith("%%"):
        return []
    try:
        tree = ast.parse(_without_magics(code))
    except (SyntaxError, ValueError):
        return []
    return sorted({name for name in _walk(tree.body) if not name.startswith("__")})
