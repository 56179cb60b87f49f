"""`GET kernel/dataframe`: a slice of a kernel's data frame, as a JSON page or an Arrow stream.

The kernel sends the slice as an Arrow IPC stream on its frames channel (frames.py); the Arrow
variant relays it in chunks while it is written (bounded memory, no JSON or base64 on the way),
the JSON variant reads it and renders PostHog's page. Both come from the same bytes, so they
agree cell for cell.
"""

from __future__ import annotations

import asyncio
import keyword
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.ipc
from aiohttp import web

from gateway.api._arrow import ARROW
from gateway.api._kernel_schemas import DATAFRAME_PAGE, START_ERRORS
from gateway.api._request import query_int
from gateway.api.kernel import KERNEL, kernel_target
from gateway.auth import requires
from gateway.contract import Operation, Param, Reply, operation
from gateway.errors import InvalidRequest, NotFound
from gateway.kernels import FrameExport, FrameRequest
from gateway.kernels.errors import (
    FrameTooLarge,
    InvalidDataframeRequest,
    KernelExecuteFailed,
    KernelNotRunning,
)
from gateway.keys import KERNELS_KEY, SETTINGS_KEY
from gateway.middleware import SlicedPayload

routes = web.RouteTableDef()

_JSON_MAX_LIMIT: Final = 500
_PAGE_ROWS: Final = 50  # rows a JSON page converts and encodes per call (the GIL between them)
_ARROW_MAX_LIMIT: Final = 1_000_000


def _variable(query: Any) -> str:
    name = query.get("variable_name", "")
    if not name.isidentifier() or keyword.iskeyword(name):
        msg = "Variable name must be a valid identifier."
        raise InvalidRequest(msg, attr="variable_name")
    return str(name)


def _columns(query: Any) -> list[str] | None:
    raw = query.get("columns")
    if raw is None or raw == "":
        return None
    return [c for c in raw.split(",") if c]


def _timeout(query: Any) -> float:
    raw = query.get("timeout")
    if raw is None:
        return 30.0
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.1 <= value <= 120:
        msg = "timeout must be a number of seconds from 0.1 to 120."
        raise InvalidRequest(msg, attr="timeout")
    return value


def _raise_for(error: str, meta: dict[str, Any], variable: str, cap: int, *, page: bool) -> None:
    """The error of an export the kernel refused (`page`: a JSON page was asked for)."""
    if error == "NameError":
        msg = f"Variable '{variable}' is not defined in the kernel."
        raise NotFound(msg, attr="variable_name")
    if error == "not_a_frame":
        msg = "Invalid dataframe request."
        raise InvalidDataframeRequest(msg)
    if error == "unknown_columns":
        named = meta.get("columns")  # the kernel's list: shown as text, whatever it holds
        shown = ", ".join(map(str, named)) if isinstance(named, list) else "?"
        msg = f"Unknown columns: {shown}."
        raise InvalidRequest(msg, attr="columns")
    if error == "too_large" and page:
        raise FrameTooLarge(_json_cap_message(cap))
    if error == "too_large":
        msg = (
            f"The slice is {meta.get('bytes')} bytes, over the {cap} byte cap; ask for fewer rows."
        )
        raise FrameTooLarge(msg)
    msg = f"Could not export the data frame ({error})."
    raise KernelExecuteFailed(msg)


def _total(meta: dict[str, Any]) -> int:
    """The header's row count; the header comes from the kernel, so it is checked."""
    total = meta.get("total")
    if isinstance(total, bool) or not isinstance(total, int) or not 0 <= total < 2**63:
        msg = "The kernel's data frame header is invalid."
        raise KernelExecuteFailed(msg)
    return total


def _stream_length(meta: dict[str, Any], cap: int) -> int | None:
    """The Arrow stream's length the kernel announced (`stream_bytes`; None: not announced).
    An Arrow stream is never empty, so anything but a positive integer is refused, and so is
    a length over `cap` (the kernel's helper refuses such a slice itself: too_large)."""
    size = meta.get("stream_bytes")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= cap:
        msg = "The kernel's data frame header is invalid."
        raise KernelExecuteFailed(msg)
    return size


async def _announced(
    export: FrameExport, length: int | None, cap: int
) -> AsyncIterator[bytes | memoryview]:
    """The export's chunks, held to the `length` the kernel announced (None: not announced,
    held to `cap`). Raises KernelExecuteFailed at the first byte over it, or at the end when
    short of the announced length."""
    sent = 0
    limit = cap if length is None else length
    async for chunk in export.chunks(limit):
        sent += len(chunk)
        if sent > limit:
            msg = "The kernel sent more of the data frame than it announced or the cap allows."
            raise KernelExecuteFailed(msg)
        yield chunk
    if length is not None and sent != length:
        msg = "The kernel sent less of the data frame than it announced."
        raise KernelExecuteFailed(msg)


def _json_cap_message(cap: int) -> str:
    return (
        f"The slice is over the {cap} byte cap of a JSON page "
        "(kernel_max_frame_json_bytes); ask for fewer rows or columns, or for Arrow."
    )


async def _read_capped(export: FrameExport, cap: int) -> bytes:
    """The whole Arrow stream, refusing past `cap` bytes whatever the kernel's header said:
    reading stops there, and leaving the export closes the pipe on the kernel."""
    chunks: list[bytes | memoryview] = []
    size = 0
    async for chunk in export.chunks(cap + 1):  # one byte past the cap is refused below
        size += len(chunk)
        if size > cap:
            raise FrameTooLarge(_json_cap_message(cap))
        chunks.append(chunk)
    return b"".join(chunks)


def json_value(value: Any) -> Any:
    """orjson's `default` for a page's cells: datetimes as PostHog's JSON has them (pandas'
    `to_json(date_format="iso")`: UTC, milliseconds, `Z`; a naive value is taken as UTC),
    anything else orjson cannot encode as its text."""
    if isinstance(value, datetime):
        utc = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    return str(value)


def _read_page(data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    """The page's columns and rows (in a worker thread), converted `_PAGE_ROWS` rows at a time:
    to_pylist holds the GIL for a whole call (a 500-row page of 12 KB strings: ~5-40 ms under
    load), and the event loop needs it back in between (bench/health_under_attack.py)."""
    table = pyarrow.ipc.open_stream(pa.BufferReader(data)).read_all()
    rows: list[dict[str, Any]] = []
    for start in range(0, table.num_rows, _PAGE_ROWS):
        rows += table.slice(start, _PAGE_ROWS).to_pylist()
    return table.column_names, rows


async def _page_json(columns: list[str], rows: list[dict[str, Any]], total: int) -> list[bytes]:
    """The JSON page, orjson's own bytes, in parts: the rows `_PAGE_ROWS` at a time with the
    event loop running in between (one orjson call on a ~6 MB page held it up to ~25 ms)."""
    options = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
    parts = [b'{"columns":', orjson.dumps(columns, option=options), b',"rows":[']
    for start in range(0, len(rows), _PAGE_ROWS):
        batch = orjson.dumps(rows[start : start + _PAGE_ROWS], default=json_value, option=options)
        parts += (b"," if start else b"", batch[1:-1])  # the batch's array without its brackets
        await asyncio.sleep(0)
    parts += (b'],"row_count":', orjson.dumps(total), b"}")
    return parts


@routes.get(KERNEL + "/dataframe", name="get_kernel_dataframe")
@requires("notebook:read")
@operation(
    Operation(
        "notebooks_kernel_dataframe_retrieve",
        replies=(
            Reply(
                200,
                "A JSON page (up to 500 rows), or with `Accept: "
                + ARROW
                + "` an Arrow IPC stream (up to 1,000,000 rows; `X-Total-Count`).",
                DATAFRAME_PAGE,
            ),
        ),
        errors=(
            InvalidDataframeRequest,
            KernelNotRunning,
            FrameTooLarge,
            *START_ERRORS,
            KernelExecuteFailed,
        ),
        params=(
            Param(
                "variable_name",
                {"type": "string", "pattern": r"^[^\W\d]\w*$"},
                required=True,
                description="A data frame variable of the kernel.",
            ),
            Param("offset", {"type": "integer", "minimum": 0, "maximum": 2**62, "default": 0}),
            Param(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": _ARROW_MAX_LIMIT, "default": 10},
                description=f"At most {_JSON_MAX_LIMIT} for a JSON page.",
            ),
            Param("columns", {"type": "string"}, description="Comma-separated column names."),
            Param("timeout", {"type": "number", "minimum": 0.1, "maximum": 120, "default": 30}),
        ),
        description="An undefined variable is 404; a variable that is not a frame is 400.",
    )
)
async def get_kernel_dataframe(request: web.Request) -> web.StreamResponse:
    """A slice of a data frame variable: JSON page, or Arrow IPC with `Accept` set to Arrow."""
    wants_arrow = ARROW in request.headers.get("Accept", "")
    query = request.query
    variable = _variable(query)
    limit_max = _ARROW_MAX_LIMIT if wants_arrow else _JSON_MAX_LIMIT
    offset = query_int(query, "offset", default=0, minimum=0, maximum=2**62)
    limit = query_int(query, "limit", default=10, minimum=1, maximum=limit_max)
    settings = request.app[SETTINGS_KEY]
    # a JSON page is rendered in gateway memory (several times its Arrow size): its own cap
    cap = (
        settings.kernel_max_frame_bytes
        if wants_arrow
        else min(settings.kernel_max_frame_json_bytes, settings.kernel_max_frame_bytes)
    )
    key, _, _ = await kernel_target(request)
    frame_request = FrameRequest(
        variable=variable,
        offset=offset,
        limit=limit,
        columns=_columns(query),
        max_bytes=cap,
        timeout=_timeout(query),
    )
    async with request.app[KERNELS_KEY].export_frame(key, frame_request) as export:
        if export.error is not None:
            _raise_for(export.error, export.meta, variable, cap, page=not wants_arrow)
        total = _total(export.meta)
        if wants_arrow:
            return await _stream_arrow(request, export, total=total, cap=cap)
        data = await _read_capped(export, cap)  # at most 500 rows, and under the JSON cap
        await export.complete()
    try:
        columns, rows = await asyncio.to_thread(_read_page, data)
    except (OverflowError, KeyError) as err:  # a value Python cannot hold: a timestamp past
        # year 9999, or in a time zone it does not know (pytz's UnknownTimeZoneError), …
        msg = (
            "A value in this slice is outside what a JSON page can show (a date or time past "
            "year 9999, or in an unknown time zone, for one); ask for it as Arrow (Accept: "
            + ARROW
            + ")."
        )
        raise InvalidRequest(msg, attr="variable_name") from err
    except (pa.ArrowException, ValueError, OSError) as err:  # what a doctored kernel wrote
        # (a truncated stream: OSError, pyarrow's "expected to be able to read N bytes")
        msg = "The kernel's data frame is not a valid Arrow stream."
        raise KernelExecuteFailed(msg) from err
    parts = await _page_json(columns, rows, total)
    return web.Response(body=SlicedPayload(parts, content_type="application/json"))


async def _stream_arrow(
    request: web.Request, export: FrameExport, *, total: int, cap: int
) -> web.StreamResponse:
    """Relay the Arrow stream as the kernel writes it, a chunk at a time (bounded memory),
    with the Content-Length the kernel announced (chunked when it announced none). The last
    chunk is held back until the kernel's helper has returned ok and the stream has exactly
    the announced length: should the kernel fail after the headers went out, or send more or
    less than it announced, the connection is cut short, so a client sees a broken transfer,
    never a stream that looks whole."""
    response = web.StreamResponse(headers={"Content-Type": ARROW, "X-Total-Count": str(total)})
    length = _stream_length(export.meta, cap)
    if length is None:
        response.enable_chunked_encoding()
    else:
        response.content_length = length  # written as it comes, without chunk framing
    await response.prepare(request)
    try:
        held: bytes | memoryview = b""  # the last bytes go out only once the export is whole
        async for chunk in _announced(export, length, cap):
            if held:
                await response.write(held)
            held = chunk
        await export.complete()
        if held:
            await response.write(held)
    except KernelExecuteFailed:
        if request.transport is not None:
            request.transport.abort()
        return response
    except ConnectionResetError:
        return response
    await response.write_eof()
    return response
