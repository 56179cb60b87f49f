"""Type decisions the resolver makes from what it has resolved: an expression's kind ("array",
"date" where the printer's SQL must differ) and the zone a result column is shown in.

Called by the resolver once a node's subtree is resolved (they read `Resolution` only).
"""

from __future__ import annotations

from gateway.hogql import ast
from gateway.hogql.resolution import ColumnCte, Resolution


def kind(resolution: Resolution, node: ast.Expr) -> str | None:
    """ "array" or "date" where it matters (length(arr), addDays(date, n)); None otherwise."""
    match node:
        case ast.Alias(expr=expr):
            return kind(resolution, expr)
        case ast.Array():
            return "array"
        case ast.Constant(value=list()):
            return "array"
        case ast.Call():
            found = resolution.calls.get(id(node))
            if found is None:
                return None
            _, function = found
            if function.kind_from is not None:
                index = function.kind_from
                return kind(resolution, node.args[index]) if len(node.args) > index else None
            return function.kind
        case ast.ArithmeticOperation(left=left):
            return kind(resolution, left)
    meaning = resolution.fields.get(id(node))
    if isinstance(meaning, ColumnCte):
        return kind(resolution, meaning.expr)
    return None


def column_timezone(resolution: Resolution, node: ast.Expr) -> str | None:
    """The zone a result column's datetimes are shown in, when not the project's."""
    match node:
        case ast.Alias(expr=expr):
            return column_timezone(resolution, expr)
        case ast.Call(args=args) if id(node) in resolution.calls:
            name, function = resolution.calls[id(node)]
            if name == "toTimeZone" and isinstance(args[1], ast.Constant):
                return str(args[1].value)
            if args and function.keeps_zone:
                return column_timezone(resolution, args[0])
        case ast.ArithmeticOperation(left=left):
            return column_timezone(resolution, left)
    return None
