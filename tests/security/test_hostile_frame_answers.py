"""What the gateway makes of a data-frame header and helper answer that a hostile kernel wrote:
each is a clear 4xx or 503, never an exception that becomes a 500."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.api.dataframe import _raise_for, _stream_length, _total
from gateway.errors import InvalidRequest
from gateway.kernels.client import _well_formed
from gateway.kernels.errors import KernelExecuteFailed
from gateway.kernels.frames import FRAME, _header, _helper_result


def test_a_header_nested_past_the_parsers_depth_is_a_bad_header():
    assert _header(b"H", memoryview(b"[" * 200_000)) == {"status": "error", "error": "bad_header"}
    assert _header(b"H", memoryview(b'{"a": ' * 100_000)) == {
        "status": "error",
        "error": "bad_header",
    }


@pytest.mark.parametrize(
    "reply",
    [
        [],
        {FRAME: []},
        {FRAME: "ok"},
        {FRAME: {"status": "ok", "data": []}},
        {FRAME: {"status": "ok", "data": {"application/json": [1]}}},
        {FRAME: {"status": "error", "ename": ["NameError"]}},
        {FRAME: {"status": "error", "ename": 7}},
    ],
)
def test_a_misshapen_helper_answer_is_an_error_or_nothing(reply: Any):
    result = _helper_result(reply)
    assert isinstance(result, dict)
    assert result.get("status") != "ok"
    assert isinstance(result.get("error", ""), str)


def test_unknown_columns_of_any_kind_are_named_as_text():
    with pytest.raises(InvalidRequest) as refused:
        _raise_for("unknown_columns", {"columns": [1, None, "b"]}, "df", 100, page=False)
    assert "1, None, b" in str(refused.value)
    with pytest.raises(InvalidRequest):
        _raise_for("unknown_columns", {"columns": "not a list"}, "df", 100, page=False)


@pytest.mark.parametrize("total", [2**63, 2**64, -1, True, 1.5, "4"])
def test_a_row_count_no_page_could_hold_is_refused(total: Any):
    with pytest.raises(KernelExecuteFailed):
        _total({"total": total})


@pytest.mark.parametrize("size", [0, -1, 101, 2**62, True, "50"])
def test_an_announced_stream_over_the_cap_or_no_length_is_refused(size: Any):
    with pytest.raises(KernelExecuteFailed):
        _stream_length({"stream_bytes": size}, 100)
    assert _stream_length({"stream_bytes": 100}, 100) == 100
    assert _stream_length({}, 100) is None


@pytest.mark.parametrize(
    "msg",
    [
        [],
        {"header": {}, "parent_header": [], "content": {}},
        {"header": {}, "parent_header": {}, "content": "x"},
        {"header": None, "parent_header": {}, "content": {}},
        {"parent_header": {}, "content": {}},
    ],
)
def test_kernel_messages_of_the_wrong_shape_are_not_read(msg: Any):
    assert not _well_formed(msg)
    assert _well_formed({"header": {}, "parent_header": {}, "content": {}, "metadata": []})
