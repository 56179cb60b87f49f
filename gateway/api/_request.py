"""Body field and query-string parsing that raises InvalidRequest naming the field.

JSON bodies are read by `gateway.contract.json_object` (the declared-body check uses it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BadContentDispositionHeader

from gateway.errors import InvalidRequest
from gateway.store.records import UNSET, Maybe


async def form_fields(request: web.Request) -> Mapping[str, Any]:
    """A urlencoded or multipart form body's fields. Raises InvalidRequest (400) for a body that
    is not a readable form (bytes that are not UTF-8, a broken multipart body), never a 500."""
    try:
        return await request.post()
    # UnicodeDecodeError is a ValueError; aiohttp's multipart parser warns about a broken
    # Content-Disposition (an error where warnings are errors) and then finds no field name;
    # a part whose headers do not parse raises the HTTP parser's InvalidHeader.
    except (
        ValueError,
        AssertionError,
        TypeError,
        BadContentDispositionHeader,
        HttpProcessingError,
    ) as err:
        msg = "The form body could not be read: it must be UTF-8 `name=value` pairs."
        raise InvalidRequest(msg) from err


def _wrong(attr: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"{attr} must be {expected}.", attr=attr)


def opt_str(
    body: Mapping[str, Any], attr: str, *, nullable: bool = False, max_length: int | None = None
) -> Maybe[str | None]:
    """Body field `attr` as a string (or None when `nullable`), UNSET when absent;
    InvalidRequest (400) naming it otherwise or when over `max_length`."""
    if attr not in body:
        return UNSET
    value = body[attr]
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        raise _wrong(attr, "a string" + (" or null" if nullable else ""))
    if max_length is not None and len(value) > max_length:
        msg = f"Ensure {attr} has no more than {max_length} characters."
        raise InvalidRequest(msg, attr=attr)
    return value


def req_str(body: Mapping[str, Any], attr: str, *, max_length: int | None = None) -> str:
    """Body field `attr` as a string that must be present; InvalidRequest (400) naming it
    otherwise."""
    value = opt_str(body, attr, max_length=max_length)
    if value is UNSET or value is None:
        msg = f"{attr} is required."
        raise InvalidRequest(msg, attr=attr)
    return value


def opt_bool(body: Mapping[str, Any], attr: str) -> Maybe[bool]:
    """Body field `attr` as a boolean, UNSET when absent; InvalidRequest (400) naming it
    otherwise."""
    if attr not in body:
        return UNSET
    value = body[attr]
    if not isinstance(value, bool):
        raise _wrong(attr, "a boolean")
    return value


def opt_int(body: Mapping[str, Any], attr: str, *, minimum: int | None = None) -> Maybe[int]:
    """Body field `attr` as an integer (booleans refused), at least `minimum`, UNSET when
    absent; InvalidRequest (400) naming it otherwise."""
    if attr not in body:
        return UNSET
    value = body[attr]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(attr, "an integer")
    if minimum is not None and value < minimum:
        raise _wrong(attr, f"an integer ≥ {minimum}")
    return value


def opt_json_size(value: Any, attr: str, *, max_depth: int = 200) -> Any:
    """Reject JSON nested deeper than `max_depth` (keeps recursion in renderers safe)."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            msg = f"{attr} is nested more than {max_depth} levels deep."
            raise InvalidRequest(msg, attr=attr)
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


def query_int(
    query: Mapping[str, str], name: str, *, default: int, minimum: int, maximum: int
) -> int:
    """Query parameter `name` as an integer from `minimum` to `maximum`, `default` when absent
    or empty; InvalidRequest (400) naming it otherwise."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if not minimum <= value <= maximum:
        msg = f"{name} must be an integer from {minimum} to {maximum}."
        raise InvalidRequest(msg, attr=name)
    return value
