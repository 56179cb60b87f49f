"""Static analysis of a cell: the module-level names it assigns, defines or imports.

Those are the names `execute` reports in `variables` (PostHog's `analyze_python_globals`).
Cells that do not parse as Python (IPython magics, syntax errors) yield no names.

`ast.parse` holds the GIL for its whole run and costs ~2 ms and ~1 KB of memory per source byte
at worst (a 1 MiB cell: up to 2.3 s and 790 MB), so only cells up to `AST_MAX_CHARS` are parsed;
longer ones (up to `kernel_max_cell_bytes`) get a linear, line-based scan of their top-level
statements, which misses names bound inside top-level blocks (`if`, `for`, `with`, `try`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Final

AST_MAX_CHARS: Final = 32 * 1024  # worst shape measured: ~50 ms of held GIL on a busy host
_MAX_CHAIN: Final = 64  # `a = b = … = 1`: targets looked at per line
_AUGMENTED: Final = ("**", "//", ">>", "<<", "+", "-", "*", "/", "%", "&", "|", "^", "@")


def _targets(node: ast.expr) -> Iterator[str]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Tuple | ast.List):
        for element in node.elts:
            yield from _targets(element)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)


def _walk(body: list[ast.stmt]) -> Iterator[str]:  # noqa: C901 - one branch per statement kind that binds names: a table read top to bottom
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


def _imported(clause: str) -> Iterator[str]:
    for part in clause.strip().strip("()").split(","):
        words = part.split()
        if not words or words[0] == "*":
            continue
        name = words[-1] if len(words) == 3 and words[1] == "as" else words[0].split(".")[0]
        if name.isidentifier():
            yield name


def _target_names(lhs: str) -> list[str] | None:
    """`a`, `a, b`, `(a, *b)` → names; None when `lhs` is anything else."""
    parts = [part.strip().lstrip("*") for part in lhs.strip().strip("()[]").split(",")]
    if parts and parts[-1] == "" and len(parts) > 1:
        parts.pop()  # a trailing comma
    return parts if parts and all(part.isidentifier() for part in parts) else None


def _assigned(line: str) -> Iterator[str]:
    """Names a top-level assignment line binds (`a = b = 1`, `x, y = t`, `n: int = 1`, `c += 1`)."""
    start, first = 0, True
    for _ in range(_MAX_CHAIN):
        eq = line.find("=", start)
        if eq == -1:
            return
        if line[eq + 1 : eq + 2] == "=":
            return  # a comparison from here on
        lhs = line[start:eq].rstrip()
        if first:
            for op in _AUGMENTED:
                if lhs.endswith(op):
                    lhs = lhs[: -len(op)]
                    break
            lhs = lhs.split(":", 1)[0]
        if lhs.endswith(("<", ">", "!", "=")):
            return
        names = _target_names(lhs)
        if names is None:
            return
        yield from names
        start, first = eq + 1, False


def _scan(code: str) -> Iterator[str]:
    """Names bound by top-level statements, line by line with str methods only (linear)."""
    for line in code.splitlines():
        if not line or line[0] in " \t#":
            continue
        head, _, rest = line.partition(" ")
        if head in {"def", "class"}:
            name = rest.split("(", 1)[0].split(":", 1)[0].strip()
            if name.isidentifier():
                yield name
        elif head == "async" and rest.startswith("def "):
            name = rest[4:].split("(", 1)[0].strip()
            if name.isidentifier():
                yield name
        elif head == "import":
            yield from _imported(rest.split("#", 1)[0])
        elif head == "from":
            _, found, names = rest.partition(" import ")
            if found:
                yield from _imported(names.split("#", 1)[0])
        else:
            yield from _assigned(line.split("#", 1)[0])


def cell_globals(code: str) -> list[str]:
    """Sorted, de-duplicated module-level names bound by `code`; [] when it does not parse."""
    if code.lstrip().startswith("%%"):
        return []
    if len(code) > AST_MAX_CHARS:
        names: Iterator[str] = _scan(code)
    else:
        try:
            tree = ast.parse(_without_magics(code))
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return []
        names = _walk(tree.body)
    return sorted({name for name in names if not name.startswith("__")})
