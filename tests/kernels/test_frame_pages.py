"""The kernel helper's data-frame pages (images/kernel/gateway_kernel.py), without a kernel:
the numeric pandas fast path builds exactly the table the general path builds, and the stream
length announced in the header is the length written."""

from __future__ import annotations

import io
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # no stubs in the venv
import pyarrow as pa
import pyarrow.ipc
import pytest


@pytest.fixture
def helper(kernel_helper: ModuleType) -> ModuleType:
    return kernel_helper


def _general(helper: ModuleType, frame: Any, **page: Any) -> tuple[dict[str, Any], Any]:
    """The page as the general path makes it: the whole frame converted, then cut."""
    table = helper._as_arrow(frame)
    total = table.num_rows
    if page["columns"] is not None:
        table = table.select(page["columns"])
    return {"total": total}, table.slice(min(page["offset"], total), page["limit"])


N = 10_000
rng = np.random.default_rng(7)
with_nan = rng.random(N)
with_nan[::13] = np.nan
NUMERIC = pd.DataFrame(
    {
        "f64": rng.random(N),
        "nan": with_nan,
        "f32": rng.random(N).astype("float32"),
        "f16": np.full(N, 60000, dtype="float16"),  # a sum would overflow to inf
        "inf": np.where(np.arange(N) % 2 == 0, np.inf, -np.inf),  # inf - inf is NaN; no NaN here
        "i8": np.arange(N, dtype="int8"),
        "i64": np.arange(N, dtype="int64") * -3,
        "u64": np.arange(N, dtype="uint64") + np.uint64(2**63),
        "b": np.arange(N) % 3 == 0,
    }
)
PAGES = [
    {"offset": 0, "limit": 1_000_000, "columns": None},
    {"offset": 0, "limit": 500, "columns": None},
    {"offset": 4_321, "limit": 500, "columns": ["nan", "b", "f64"]},
    {"offset": N - 3, "limit": 500, "columns": None},
    {"offset": N + 5, "limit": 500, "columns": ["i8"]},
    {"offset": 0, "limit": 0, "columns": None},
]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: f"{p['offset']}+{p['limit']}:{p['columns']}")
def test_the_numeric_path_builds_the_general_paths_table(helper, page):
    fast = helper._numeric_pandas_page(NUMERIC, **page)
    assert fast is not None
    total, table = fast
    meta, expected = _general(helper, NUMERIC, **page)
    assert total == meta["total"] == N
    assert table.schema.equals(expected.schema)  # names, types, nullability
    assert table.equals(expected)  # every cell, NaN as null included
    for name in table.column_names:
        assert table.column(name).null_count == expected.column(name).null_count
    columns = page["columns"] or list(NUMERIC.columns)
    metadata = table.schema.pandas_metadata
    assert [c["name"] for c in metadata["columns"]] == columns  # to_pandas restores dtypes
    assert table.to_pandas().dtypes.tolist() == [NUMERIC[c].dtype for c in columns]


def test_nan_becomes_null_as_pandas_conversion_does(helper):
    _, table = helper._numeric_pandas_page(NUMERIC, offset=0, limit=N, columns=["nan", "inf"])
    assert table.column("nan").null_count == int(np.isnan(with_nan).sum()) > 0
    assert table.column("inf").null_count == 0


@pytest.mark.parametrize(
    "frame",
    [
        pd.DataFrame({"s": ["a", "b"], "i": [1, 2]}),  # an object column
        pd.DataFrame({"i": pd.array([1, None], dtype="Int64")}),  # an extension dtype
        pd.DataFrame({"t": pd.to_datetime(["2026-01-01", "2026-01-02"])}),
        pd.DataFrame({"c": pd.Categorical(["x", "y"])}),
        pd.DataFrame([[1, 2]], columns=["a", "a"]),  # duplicate names
        pd.DataFrame({0: [1.0], 1: [2.0]}),  # names that are not strings
        pd.DataFrame([[1, 2]], columns=pd.MultiIndex.from_tuples([("a", "x"), ("a", "y")])),
        pd.DataFrame({"be": np.arange(3, dtype=">f8")}),  # not native byte order
    ],
    ids=["object", "extension", "datetime", "category", "duplicates", "int-names", "multi", "be"],
)
def test_other_frames_take_the_general_path(helper, frame):
    assert helper._numeric_pandas_page(frame, offset=0, limit=10, columns=None) is None
    if not frame.columns.is_unique or any(
        isinstance(d, np.dtype) and not d.isnative for d in frame.dtypes
    ):
        return  # pyarrow refuses these (an error in the kernel, as before)
    header, page = helper._frame_slice(frame, offset=0, limit=10, columns=None, max_bytes=1 << 30)
    assert header["status"] == "ok"
    assert page.num_rows == len(frame)


def test_unknown_or_repeated_columns_are_left_to_the_general_path(helper):
    for columns in (["f64", "missing"], ["f64", "f64"]):
        assert helper._numeric_pandas_page(NUMERIC, offset=0, limit=5, columns=columns) is None
    header, page = helper._frame_slice(
        NUMERIC, offset=0, limit=5, columns=["f64", "missing"], max_bytes=1 << 30
    )
    assert header == {"status": "error", "error": "unknown_columns", "columns": ["missing"]}
    assert page is None


def test_the_byte_cap_holds_on_the_numeric_path(helper):
    header, page = helper._frame_slice(NUMERIC, offset=0, limit=N, columns=None, max_bytes=1000)
    assert header["error"] == "too_large"
    assert page is None


STREAMS = {
    "numeric": pa.table({"a": np.arange(300_000, dtype="float64"), "b": np.arange(300_000)}),
    "strings": pa.table({"s": [f"row {i}" * (i % 7) for i in range(50_000)]}),
    "dictionary": pa.table(
        {"d": pa.array(["x", "y", None] * 10_000).dictionary_encode(), "n": range(30_000)}
    ),
    "nested": pa.table({"l": [[i, None, i + 1] if i % 5 else None for i in range(20_000)]}),
    "empty": pa.table({"a": pa.array([], type=pa.int64())}),
    "wide": pa.table({f"c{i}": np.ones(2_000) for i in range(300)}),
}


@pytest.mark.parametrize("name", STREAMS)
def test_the_announced_length_is_the_written_length(helper, name):
    table = STREAMS[name]
    written = io.BytesIO()
    helper._write_stream(written, table)
    assert helper.stream_size(table) == len(written.getvalue())
    assert pyarrow.ipc.open_stream(written.getvalue()).read_all().equals(table)


def test_record_batches_are_sized_in_bytes(helper):
    batches = pyarrow.ipc.open_stream(_written(helper, STREAMS["numeric"])).read_all().to_batches()
    assert [b.num_rows for b in batches] == [300_000]  # 4.8 MB: one batch
    wide = pa.table({f"c{i}": np.ones(100_000) for i in range(40)})  # 32 MB
    rows = [
        b.num_rows for b in pyarrow.ipc.open_stream(_written(helper, wide)).read_all().to_batches()
    ]
    assert sum(rows) == 100_000
    assert max(rows) * 40 * 8 <= helper.BATCH_BYTES


def _written(helper: ModuleType, table: pa.Table) -> bytes:
    written = io.BytesIO()
    helper._write_stream(written, table)
    return written.getvalue()


def test_the_cap_is_on_the_stream_as_sent(helper):
    """The header announces the stream's exact length, and the cap holds on that length (the
    gateway cuts any stream past it), not on the table's buffers alone."""
    header, page = helper._frame_slice(NUMERIC, offset=0, limit=N, columns=None, max_bytes=1 << 30)
    size = helper.stream_size(page)
    assert header["stream_bytes"] == size > page.nbytes
    header, page = helper._frame_slice(NUMERIC, offset=0, limit=N, columns=None, max_bytes=size - 1)
    assert header == {"status": "error", "error": "too_large", "bytes": size}
    assert page is None
    header, _ = helper._frame_slice(NUMERIC, offset=0, limit=N, columns=None, max_bytes=size)
    assert header["status"] == "ok"
