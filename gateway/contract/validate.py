"""Values checked against the JSON Schema subset our declarations use, with DRF's rules and
messages: an error is InvalidRequest (400) naming the field in `attr`.

The subset: `type` (one or a list), `enum`, `minimum`/`maximum`, `minLength`/`maxLength`,
`pattern`, `format` (date, date-time), `anyOf`, `properties`/`required`,
`additionalProperties` (false or a schema), `items`/`maxItems`, and `x-message` (our detail
for any failure of that value). An `integer` accepts a float with no fraction (`1.0`), as
JSON Schema and DRF's IntegerField do, and is returned as an int.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from gateway.errors import InvalidRequest

_TYPE_NAMES: Final = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}
_MESSAGES: Final = {
    "string": "Not a valid string.",
    "integer": "A valid integer is required.",
    "number": "A valid number is required.",
    "boolean": "Must be a valid boolean.",
    "null": "This field must be null.",
}


_FORMATS: Final = {
    "date": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "date-time": re.compile(
        r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"
    ),
}


@cache
def _pattern(text: str) -> re.Pattern[str]:
    return re.compile(text)


def _fail(schema: Mapping[str, Any], attr: str | None, detail: str) -> InvalidRequest:
    message = schema.get("x-message") or (f"{attr}: {detail}" if attr else detail)
    return InvalidRequest(message, attr=attr)


def _as_type(value: Any, kind: str) -> tuple[bool, Any]:
    """(whether `value` is of JSON type `kind`, the value normalised for it)."""
    if kind == "integer":
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool), value
    return _TYPE_NAMES.get(type(value)) == kind, value


def _typed(value: Any, schema: Mapping[str, Any], attr: str | None) -> Any:
    kinds = schema.get("type")
    if kinds is None:
        return value
    for kind in [kinds] if isinstance(kinds, str) else kinds:
        ok, normalised = _as_type(value, kind)
        if ok:
            return normalised
    if value is None:
        raise _fail(schema, attr, "This field may not be null.")
    first = kinds if isinstance(kinds, str) else next(k for k in kinds if k != "null")
    if first == "object":
        got = _TYPE_NAMES.get(type(value), "value")
        raise _fail(schema, attr, f'Expected a dictionary of items but got type "{got}".')
    if first == "array":
        got = _TYPE_NAMES.get(type(value), "value")
        raise _fail(schema, attr, f'Expected a list of items but got type "{got}".')
    raise _fail(schema, attr, _MESSAGES.get(first, "Invalid value."))


def _bounds(value: Any, schema: Mapping[str, Any], attr: str | None) -> None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and value < low:
            raise _fail(schema, attr, f"Ensure this value is greater than or equal to {low}.")
        if high is not None and value > high:
            raise _fail(schema, attr, f"Ensure this value is less than or equal to {high}.")
    if isinstance(value, str):
        shortest, longest = schema.get("minLength"), schema.get("maxLength")
        if shortest is not None and len(value) < shortest:
            raise _fail(schema, attr, f"Ensure this field has at least {shortest} characters.")
        if longest is not None and len(value) > longest:
            raise _fail(schema, attr, f"Ensure this field has no more than {longest} characters.")
        pattern = schema.get("pattern")
        if pattern is not None and not _pattern(pattern).search(value):
            raise _fail(schema, attr, "This value does not match the required pattern.")
        form = _FORMATS.get(schema.get("format", ""))
        if form is not None and not form.match(value):
            raise _fail(schema, attr, f"Not a valid {schema['format']}.")
    if isinstance(value, list) and len(value) > schema.get("maxItems", len(value)):
        raise _fail(schema, attr, f"Ensure this field has no more than {schema['maxItems']} items.")


def _object(value: dict[str, Any], schema: Mapping[str, Any], attr: str | None) -> dict[str, Any]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            msg = "This field is required."
            raise InvalidRequest(msg, attr=_join(attr, name))
    if schema.get("additionalProperties") is False:
        extra = sorted(set(value) - set(properties))
        if extra:
            msg = f"Unexpected field {extra[0]!r}."
            raise InvalidRequest(msg, attr=_join(attr, extra[0]))
    others = schema.get("additionalProperties")
    return {
        name: check(item, properties[name], _join(attr, name))
        if name in properties
        else check(item, others, _join(attr, name))
        if isinstance(others, Mapping)
        else item
        for name, item in value.items()
    }


def _join(attr: str | None, name: str) -> str:
    return name if attr is None else f"{attr}__{name}"


def _any_of(value: Any, schema: Mapping[str, Any], attr: str | None) -> Any:
    first: InvalidRequest | None = None
    for option in schema["anyOf"]:
        try:
            return check(value, option, attr)
        except InvalidRequest as err:
            first = first or err
    if "x-message" in schema or first is None:
        raise _fail(schema, attr, "Invalid value.")
    raise first


def check(value: Any, schema: Mapping[str, Any], attr: str | None = None) -> Any:
    """`value` checked against `schema`; returns it normalised (integers as ints).

    Raises:
        InvalidRequest: the first rule `value` breaks, with `attr` naming the field (nested
            fields joined with `__`, as drf-exceptions-hog does).
    """
    if "anyOf" in schema:
        value = _any_of(value, schema, attr)
    value = _typed(value, schema, attr)
    if "enum" in schema and value not in schema["enum"]:
        raise _fail(schema, attr, f'"{value}" is not a valid choice.')
    _bounds(value, schema, attr)
    if isinstance(value, dict):
        return _object(value, schema, attr)
    if isinstance(value, list) and "items" in schema:
        return [check(item, schema["items"], attr) for item in value]
    return value


def parse_query_value(raw: str, schema: Mapping[str, Any], name: str) -> Any:
    """A query-string value as its declared type (integer, number, boolean or string), checked."""
    kinds = schema.get("type", "string")
    kind = kinds if isinstance(kinds, str) else kinds[0]
    value: Any = raw
    try:
        if kind == "integer":
            value = int(raw)
        elif kind == "number":
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
    except ValueError as err:
        raise _fail(schema, name, _MESSAGES[kind]) from err
    if kind == "boolean":
        if raw.lower() not in {"true", "false", "1", "0"}:
            raise _fail(schema, name, _MESSAGES["boolean"])
        value = raw.lower() in {"true", "1"}
    return check(value, schema, name)
