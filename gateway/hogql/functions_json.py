"""The JSON family over JSON text (any string): `JSONExtract*`, `JSONHas`, `JSONLength`,
`JSONType`, `JSONExtract(json, …, 'Type')`, `isValidJSON`, `JSON_VALUE`. Keys follow the
document as further arguments (string constants, or 1-based indices), bound as one JSON path.
Text that is not JSON gives the type's default, as ClickHouse's."""

from __future__ import annotations

import re
from typing import Final

from gateway.hogql import ast
from gateway.hogql import handlers as h
from gateway.hogql.binding import json_path
from gateway.hogql.entry import Function, constant, error, f
from gateway.hogql.errors import HogQLUnsupported
from gateway.hogql.handlers import SqlPrinter

MAX_KEYS: Final = 5  # PostHog's: up to five keys after the document
# ClickHouse type → the JSONExtract* function that reads it
_SCALARS: Final = {
    "String": "JSONExtractString",
    "Bool": "JSONExtractBool",
    "Float32": "JSONExtractFloat",
    "Float64": "JSONExtractFloat",
    **{f"{s}Int{n}": "JSONExtractInt" for s in ("", "U") for n in (8, 16, 32, 64)},
}
_DUCK: Final = {
    "JSONExtractString": "VARCHAR",
    "JSONExtractBool": "BOOLEAN",
    "JSONExtractFloat": "DOUBLE",
    "JSONExtractInt": "BIGINT",
}
_TYPE: Final = re.compile(r"^(Nullable|Array|LowCardinality)\((.+)\)$")
_JSON_TYPES: Final = (
    "CASE json_type({d}, {w}) WHEN 'NULL' THEN 'Null' WHEN 'VARCHAR' THEN 'String'"
    " WHEN 'BIGINT' THEN 'Int64' WHEN 'UBIGINT' THEN 'UInt64' WHEN 'DOUBLE' THEN 'Double'"
    " WHEN 'BOOLEAN' THEN 'Bool' WHEN 'ARRAY' THEN 'Array' WHEN 'OBJECT' THEN 'Object' END"
)


def _keys(node: ast.Call, *, typed: bool) -> list[ast.Expr]:
    return node.args[1:-1] if typed else node.args[1:]


def _check_keys(name: str, node: ast.Call, *, typed: bool = False) -> None:
    keys = _keys(node, typed=typed)
    if len(keys) > MAX_KEYS:
        msg = f"{name} takes at most {MAX_KEYS} keys."
        raise error(msg, node)
    for key in keys:
        value = constant(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            msg = f"{name} takes keys as string constants or 1-based indices."
            raise error(msg, key)
        if isinstance(value, int) and value < 1:
            msg = "Array indices start at 1."
            raise error(msg, key)


def _check_plain(name: str, node: ast.Call) -> None:
    _check_keys(name, node)


def _parse_type(name: str, node: ast.Call) -> tuple[str, str]:
    """JSONExtract's last argument: (wrapper, scalar type): ('', 'String'), ('Nullable', …),
    ('Array', …). Anything else is refused with the types this gateway reads."""
    given = node.args[-1]
    text = constant(given)
    if not isinstance(text, str):
        msg = f"{name}'s last argument is a ClickHouse type name, as a string constant."
        raise error(msg, given)
    wrapper, inner = "", text.strip()
    match = _TYPE.match(inner)
    if match:
        wrapper, inner = match.group(1), match.group(2).strip()
        if wrapper == "LowCardinality":
            wrapper = ""
    if inner not in _SCALARS:
        supported = "String, Bool, Int8…Int64, UInt8…UInt64, Float32/64, Nullable(…), Array(…)"
        msg = f"{name}: type {text!r} is not supported by this gateway ({supported})."
        raise HogQLUnsupported(msg, start=given.start, end=given.end)
    return wrapper, inner


def _check_typed(name: str, node: ast.Call) -> None:
    _check_keys(name, node, typed=True)
    _parse_type(name, node)


def _path(p: SqlPrinter, keys: list[ast.Expr]) -> str:
    path: list[str | int] = []
    for key in keys:
        assert isinstance(key, ast.Constant)  # checked by the resolver
        path.append(key.value)
    return p.bind(json_path(tuple(path)))


def _guarded(document: str, inner: str, default: str) -> str:
    """NULL for a NULL document (a missing property), the default for text that is no JSON."""
    guarded = f"coalesce(CASE WHEN json_valid({document}) THEN {inner} END, {default})"
    return f"CASE WHEN {document} IS NOT NULL THEN {guarded} END"


def _extract_typed(p: SqlPrinter, node: ast.Call) -> str:
    """JSONExtract(json, keys…, 'Type')."""
    wrapper, inner = _parse_type("JSONExtract", node)
    document, where = p.expr(node.args[0]), _path(p, _keys(node, typed=True))
    reader = _SCALARS[inner]
    if wrapper == "Array":
        cast = "VARCHAR" if inner == "String" else _DUCK[reader]
        element = "json_extract_string(__j, '$')" if inner == "String" else "__j"
        raw = f"CAST(json_extract({document}, {where}) AS JSON[])"
        items = f"list_transform({raw}, lambda __j: TRY_CAST({element} AS {cast}))"
        return _guarded(
            document, f"CASE WHEN json_type({document}, {where}) = 'ARRAY' THEN {items} END", "[]"
        )
    extraction, default = h.JSON_READERS[reader]
    value = extraction.format(d=document, w=where)
    if inner.startswith("UInt"):
        value = f"CASE WHEN ({value}) < 0 THEN 0 ELSE {value} END"
    if wrapper == "Nullable":
        return f"CASE WHEN json_valid({document}) THEN {value} END"
    return _guarded(document, value, default)


def _length(p: SqlPrinter, node: ast.Call) -> str:
    """JSONLength: elements of an array or keys of an object; 0 otherwise."""
    document, where = p.expr(node.args[0]), _path(p, node.args[1:])
    inner = (
        f"CASE json_type({document}, {where})"
        f" WHEN 'ARRAY' THEN json_array_length({document}, {where})"
        f" WHEN 'OBJECT' THEN len(json_keys({document}, {where})) ELSE 0 END"
    )
    return _guarded(document, inner, "0")


def _simple(template: str, default: str) -> Function:
    def handler(p: SqlPrinter, node: ast.Call) -> str:
        document, where = p.expr(node.args[0]), _path(p, node.args[1:])
        inner = template.format(d=document, w=where)
        return _guarded(document, inner, default)

    return f(1, 1 + MAX_KEYS, handler=handler, check=_check_plain)


def _check_json_path(_name: str, node: ast.Call) -> None:
    path = constant(node.args[1])
    if not (isinstance(path, str) and path.startswith("$")):
        msg = "JSON_VALUE's path is a JSONPath string constant starting with '$'."
        raise error(msg, node.args[1])


_PLAIN: Final = Function(
    min_args=1, max_args=1 + MAX_KEYS, handler=h.json_extract, check=_check_plain
)

FUNCTIONS: Final[dict[str, Function]] = {
    **dict.fromkeys(h.JSON_READERS, _PLAIN),
    "JSONExtractUInt": _simple(
        "CASE WHEN TRY_CAST(json_extract_string({d}, {w}) AS BIGINT) < 0 THEN 0"
        " ELSE TRY_CAST(json_extract_string({d}, {w}) AS BIGINT) END",
        "0",
    ),
    "JSONExtract": f(2, 2 + MAX_KEYS, handler=_extract_typed, check=_check_typed),
    "isValidJSON": f(1, 1, "json_valid({0})"),
    "JSONLength": f(1, 1 + MAX_KEYS, handler=_length, check=_check_plain),
    "JSONArrayLength": f(
        1,
        1,
        "CASE WHEN json_valid({0}) AND json_type({0}) = 'ARRAY' THEN json_array_length({0}) END",
    ),
    "JSONType": _simple(_JSON_TYPES, "'Null'"),
    "JSONExtractKeys": _simple(
        "CASE WHEN json_type({d}, {w}) = 'OBJECT' THEN json_keys({d}, {w}) END", "[]"
    ),
    "JSONExtractArrayRaw": _simple(
        "CASE WHEN json_type({d}, {w}) = 'ARRAY' THEN list_transform("
        "CAST(json_extract({d}, {w}) AS JSON[]), lambda __j: CAST(__j AS VARCHAR)) END",
        "[]",
    ),
    "JSON_VALUE": f(
        2,
        2,
        "coalesce(CASE WHEN json_valid({0}) AND json_type({0}, {1}) NOT IN ('OBJECT', 'ARRAY')"
        " THEN json_extract_string({0}, {1}) END, '')",
        check=_check_json_path,
    ),
}
