"""No capture body is a 5xx: hypothesis makes bodies (JSON shapes, broken JSON, gzip, forms,
bytes that are not UTF-8) for every capture path, content type and `compression`."""

from __future__ import annotations

import base64
import gzip
import json

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

_PATHS = ["/e/", "/batch/", "/capture/", "/i/v0/e/", "/flags/?v=2", "/decide/"]
_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", ""]
_COMPRESSION = ["", "gzip-js", "gzip", "base64", "lz64", "\u00e9"]
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "event",
                    "distinct_id",
                    "properties",
                    "timestamp",
                    "uuid",
                    "api_key",
                    "token",
                    "batch",
                    "$set",
                    "$set_once",
                    "$unset",
                    "$anon_distinct_id",
                    "alias",
                    "$groups",
                    "$group_type",
                    "$group_key",
                    "$group_set",
                    "sent_at",
                    "offset",
                    "$process_person_profile",
                    "x",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=12,
)
_EVENT_NAMES = st.sampled_from(
    ["$identify", "$create_alias", "$merge_dangerously", "$groupidentify", "$set", "e"]
)


@st.composite
def _events(draw, token: str):
    """Mostly plausible events with hostile values in the places persons and groups read."""
    properties = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "$set",
                    "$set_once",
                    "$unset",
                    "$anon_distinct_id",
                    "alias",
                    "$groups",
                    "$group_type",
                    "$group_key",
                    "$group_set",
                    "$process_person_profile",
                    "distinct_id",
                    "token",
                ]
            ),
            _json,
            max_size=5,
        )
    )
    event = {"event": draw(_EVENT_NAMES), "distinct_id": draw(_json), "properties": properties}
    if draw(st.booleans()):
        event["timestamp"] = draw(_json | st.just("2026-01-01T00:00:00Z"))
    if draw(st.booleans()):
        event["api_key"] = token
    return event


def _encode(body: bytes, how: str) -> bytes:
    if how == "gzip":
        return gzip.compress(body)
    if how == "form":
        return b"data=" + base64.b64encode(body)
    if how == "latin1-form":
        return b"data=\xff\xfe" + body
    if how == "truncated-gzip":
        return gzip.compress(body)[:-5]
    return body


async def test_fuzzed_capture_bodies_never_cause_a_server_error(client, jane):
    token = jane.project.api_token
    cases = []

    @hsettings(
        max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(
        path=st.sampled_from(_PATHS),
        content_type=st.sampled_from(_TYPES),
        compression=st.sampled_from(_COMPRESSION),
        payload=st.one_of(
            _json,
            st.lists(_events(token), max_size=4),
            st.builds(
                lambda b, s: {"api_key": token, "batch": b, "sent_at": s},
                st.lists(_events(token), max_size=4),
                _json,
            ),
            st.binary(max_size=64),
        ),
        how=st.sampled_from(["raw", "gzip", "form", "latin1-form", "truncated-gzip"]),
    )
    def make(path, content_type, compression, payload, how):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        cases.append((path, content_type, compression, _encode(body, how)))

    make()
    for path, content_type, compression, body in cases:
        url = path + (
            ("&" if "?" in path else "?") + f"compression={compression}" if compression else ""
        )
        headers = {"Content-Type": content_type} if content_type else {}
        resp = await client.post(url, data=body, headers=headers)
        assert resp.status < 500, (url, content_type, body[:200], await resp.text())
