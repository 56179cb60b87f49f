"""What PostHog's SDKs send to capture, decoded and checked: bytes → a token and events.

Bodies: one event, a JSON array of events (posthog-js), or `{"batch": [...]}` (server SDKs);
JSON or `text/plain`; gzip (`Content-Encoding`, `?compression=gzip-js` or sniffed by its magic
bytes, as PostHog's capture does); a form field `data` holding base64 JSON (older posthog-js and
`sendBeacon`). The token is `api_key`/`token`/`$token` on the batch or on an event, or
`properties.token`. Timestamps get PostHog's clock-skew correction (see `event_timestamp`).
Every failure is `InvalidRequest` (400) or `PayloadTooLarge` (413); nothing here raises anything
else on hostile input.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import urllib.parse
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from gateway.errors import InvalidRequest, PayloadTooLarge

_GZIP_MAGIC: Final = b"\x1f\x8b"
# PostHog drops a timestamp more than 23 hours ahead of the server's clock for "now".
_FUTURE_CUTOFF: Final = dt.timedelta(hours=23)
_MAX_DISTINCT_ID: Final = 200  # characters, as PostHog's capture truncates
_TOKEN_KEYS: Final = ("api_key", "token", "$token")


@dataclass(slots=True, kw_only=True)
class CapturedEvent:
    """One accepted event, ready for person/group processing and the events table."""

    uuid: str
    event: str
    distinct_id: str
    properties: dict[str, Any]
    timestamp: dt.datetime
    elements_chain: str | None = None
    person_id: str | None = field(default=None)


@dataclass(frozen=True, kw_only=True)
class CaptureRequest:
    """A decoded capture body: its token (None when it names none), raw events, `sent_at`."""

    token: str | None
    events: list[Any]
    sent_at: dt.datetime | None


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Decompress with a ceiling, so a small gzip bomb cannot take the gateway's memory."""
    inflater = zlib.decompressobj(wbits=47)  # gzip or zlib header, detected
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as err:
        msg = "The body is not valid gzip."
        raise InvalidRequest(msg) from err
    if len(out) > limit:
        msg = f"The decompressed body is larger than the {limit} byte limit."
        raise PayloadTooLarge(msg)
    return out


def _base64(text: str) -> bytes:
    # Form encoding turns an unescaped `+` into a space; PostHog's capture puts it back.
    cleaned = text.strip().replace(" ", "+")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        msg = "`data` is not base64."
        raise InvalidRequest(msg, attr="data") from err


def _form(raw: bytes) -> tuple[bytes, str]:
    """`data=<base64 or JSON>&compression=…` → the data bytes and the form's compression."""
    # latin-1 never fails: a form with bytes that are not UTF-8 is a 400 below, not a crash
    try:
        fields = urllib.parse.parse_qs(raw.decode("latin-1"), max_num_fields=16)
    except ValueError as err:  # more fields than that: no SDK sends such a form
        msg = "The form has too many fields."
        raise InvalidRequest(msg) from err
    data = fields.get("data")
    if not data:
        msg = "The form needs a `data` field."
        raise InvalidRequest(msg, attr="data")
    value = data[0]
    compression = fields.get("compression", [""])[0]
    if value.lstrip()[:1] in ("{", "["):
        return value.encode("utf-8", "surrogatepass"), compression
    return _base64(value), compression


def decode_body(raw: bytes, *, content_type: str, compression: str, limit: int) -> Any:
    """The JSON value a capture body holds, however the SDK wrapped it."""
    body = raw
    if content_type == "application/x-www-form-urlencoded" or body.startswith(b"data="):
        body, form_compression = _form(body)
        compression = compression or form_compression
    elif compression == "base64":
        body = _base64(body.decode("latin-1"))
    if compression in ("gzip", "gzip-js") or body.startswith(_GZIP_MAGIC):
        body = _gunzip(body, limit)
    elif compression not in ("", "none", "base64"):
        msg = f"Unsupported compression `{compression[:40]}` (gzip, gzip-js or none)."
        raise InvalidRequest(msg, attr="compression")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as err:
        msg = f"JSON parse error - {err}"
        raise InvalidRequest(msg) from err


def _token_of(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    for key in _TOKEN_KEYS:
        if isinstance(item.get(key), str) and item[key]:
            return str(item[key])
    properties = item.get("properties")
    if isinstance(properties, dict) and isinstance(properties.get("token"), str):
        return properties["token"] or None
    return None


def _parse_time(value: Any) -> dt.datetime | None:
    """ISO 8601 (naive means UTC) or epoch milliseconds; None when it is neither."""
    try:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return dt.datetime.fromtimestamp(value / 1000, tz=dt.UTC)
        if isinstance(value, str) and value:
            parsed = dt.datetime.fromisoformat(value.strip())
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def read_request(payload: Any, query: dict[str, str]) -> CaptureRequest:
    """Split a decoded body into token, events and `sent_at` (body `sent_at`, else `?_=` ms)."""
    if isinstance(payload, list):
        events: list[Any] = payload
        batch_token = None
        sent_raw: Any = None
    elif isinstance(payload, dict) and "batch" in payload:
        if not isinstance(payload["batch"], list):
            msg = "`batch` must be a list of events."
            raise InvalidRequest(msg, attr="batch")
        events = payload["batch"]
        batch_token = _token_of({k: payload.get(k) for k in _TOKEN_KEYS})
        sent_raw = payload.get("sent_at")
    elif isinstance(payload, dict):
        events = [payload]
        batch_token = None
        sent_raw = payload.get("sent_at")
    else:
        msg = 'The body must be an event, a list of events or {"batch": [...]}.'
        raise InvalidRequest(msg)
    token = batch_token
    if token is None:
        tokens = {t for t in map(_token_of, events) if t is not None}
        if len(tokens) > 1:
            msg = "The events carry different project tokens; send one project per request."
            raise InvalidRequest(msg, attr="token")
        token = next(iter(tokens), None)
    if sent_raw is None and query.get("_", "").isdigit():
        sent_raw = int(query["_"][:16])
    return CaptureRequest(token=token, events=events, sent_at=_parse_time(sent_raw))


def event_timestamp(
    raw: dict[str, Any], properties: dict[str, Any], now: dt.datetime, sent_at: dt.datetime | None
) -> dt.datetime:
    """PostHog's rule: with `timestamp` and `sent_at`, the client's clock skew is removed
    (`now + (timestamp - sent_at)`); with `offset` (ms) alone, `now - offset`; a missing or
    unreadable timestamp, or one more than 23 h ahead, is `now`."""
    timestamp = _parse_time(raw.get("timestamp"))
    try:
        if timestamp is not None:
            if sent_at is not None and not properties.get("$ignore_sent_at"):
                timestamp = now + (timestamp - sent_at)
        elif isinstance(raw.get("offset"), int | float) and not isinstance(raw["offset"], bool):
            timestamp = now - dt.timedelta(milliseconds=raw["offset"])
    except OverflowError:
        timestamp = None
    if timestamp is None or timestamp - now > _FUTURE_CUTOFF:
        return now
    return timestamp


def _distinct_id(raw: dict[str, Any], properties: dict[str, Any]) -> str:
    value = raw.get("distinct_id")
    if value is None:
        value = raw.get("$distinct_id")
    if value is None:
        value = properties.get("distinct_id")
    if value is None:
        msg = "`distinct_id` is missing"
        raise ValueError(msg)
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    text = text.replace("\0", "\ufffd")[:_MAX_DISTINCT_ID]
    if not text.strip():
        msg = "`distinct_id` is empty"
        raise ValueError(msg)
    return text


def normalise_event(raw: Any, *, now: dt.datetime, sent_at: dt.datetime | None) -> CapturedEvent:
    """One SDK event → a `CapturedEvent`; ValueError says why it is dropped."""
    if not isinstance(raw, dict):
        msg = "an event must be a JSON object"
        raise ValueError(msg)
    name = raw.get("event")
    if not isinstance(name, str) or not name:
        msg = "`event` must be a non-empty string"
        raise ValueError(msg)
    properties = raw.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        msg = "`properties` must be an object"
        raise ValueError(msg)
    properties = dict(properties)
    # SDKs send `$set`/`$set_once` beside `properties` too (posthog-python's set()); PostHog
    # folds them in, the event's own winning.
    for key in ("$set", "$set_once"):
        if isinstance(raw.get(key), dict):
            inner = properties.get(key)
            properties[key] = {**(inner if isinstance(inner, dict) else {}), **raw[key]}
    event_uuid = raw.get("uuid")
    chain = raw.get("elements_chain")
    if chain is None:
        chain = properties.get("$elements_chain")
    return CapturedEvent(
        uuid=str(uuid.UUID(event_uuid))
        if isinstance(event_uuid, str) and event_uuid
        else str(uuid.uuid4()),
        event=name[:400],
        distinct_id=_distinct_id(raw, properties),
        properties=properties,
        timestamp=event_timestamp(raw, properties, now, sent_at),
        elements_chain=chain if isinstance(chain, str) else None,
    )
