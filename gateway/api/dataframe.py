"""`GET kernel/dataframe`: a slice of a kernel's data frame, as a JSON page or an Arrow stream.

The kernel writes the slice as Arrow IPC into its run directory; the Arrow variant streams that
file in chunks (bounded memory, no JSON or base64 on the way), the JSON variant reads it back and
renders PostHog's page. Both come from the same bytes, so they agree cell for cell.
"""

from __future__ import annotations

import asyncio
import keyword
import os
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa
import pyarrow.ipc
from aiohttp import web

from gateway.api._request import query_int
from gateway.api.kernel import KERNEL, kernel_target
from gateway.auth import requires
from gateway.errors import InvalidRequest, NotFound
from gateway.kernels import FrameRequest
from gateway.kernels.errors import FrameTooLarge, InvalidDataframeRequest, KernelExecuteFailed
from gateway.keys import KERNELS_KEY, SETTINGS_KEY

routes = web.RouteTableDef()
ARROW: Final = "application/vnd.apache.arrow.stream"
_JSON_MAX_LIMIT: Final = 500
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


def _raise_for(error: str, meta: dict[str, Any], variable: str, cap: int) -> None:
    if error == "NameError":
        msg = f"Variable '{variable}' is not defined in the kernel."
        raise NotFound(msg, attr="variable_name")
    if error == "not_a_frame":
        msg = "Invalid dataframe request."
        raise InvalidDataframeRequest(msg)
    if error == "unknown_columns":
        msg = f"Unknown columns: {', '.join(meta.get('columns', []))}."
        raise InvalidRequest(msg, attr="columns")
    if error == "too_large":
        msg = (
            f"The slice is {meta.get('bytes')} bytes, over the {cap} byte cap; ask for fewer rows."
        )
        raise FrameTooLarge(msg)
    msg = f"Could not export the data frame ({error})."
    raise KernelExecuteFailed(msg)


def _read_page(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    with pa.OSFile(str(path), "rb") as source:
        table = pyarrow.ipc.open_stream(source).read_all()
    return table.column_names, table.to_pylist()


@routes.get(KERNEL + "/dataframe", name="get_kernel_dataframe")
@requires("notebook:read")
async def get_kernel_dataframe(request: web.Request) -> web.StreamResponse:
    """A slice of a data frame variable: JSON page, or Arrow IPC with `Accept` set to Arrow."""
    wants_arrow = ARROW in request.headers.get("Accept", "")
    query = request.query
    variable = _variable(query)
    limit_max = _ARROW_MAX_LIMIT if wants_arrow else _JSON_MAX_LIMIT
    offset = query_int(query, "offset", default=0, minimum=0, maximum=2**62)
    limit = query_int(query, "limit", default=10, minimum=1, maximum=limit_max)
    cap = request.app[SETTINGS_KEY].kernel_max_frame_bytes
    key, _, _ = await kernel_target(request)
    export = await request.app[KERNELS_KEY].export_frame(
        key,
        FrameRequest(
            variable=variable,
            offset=offset,
            limit=limit,
            columns=_columns(query),
            max_bytes=cap,
            timeout=_timeout(query),
        ),
    )
    if export.path is None:
        _raise_for(export.error or "error", export.meta, variable, cap)
    assert export.path is not None
    total = int(export.meta["total"])
    if not wants_arrow:
        try:
            columns, rows = await asyncio.to_thread(_read_page, export.path)
        finally:
            export.path.unlink(missing_ok=True)
        body = orjson.dumps(
            {"columns": columns, "rows": rows, "row_count": total},
            default=str,
            option=orjson.OPT_NON_STR_KEYS,
        )
        return web.Response(body=body, content_type="application/json")
    return await send_arrow_file(request, export.path, total=total)


async def send_arrow_file(request: web.Request, path: Path, *, total: int) -> web.StreamResponse:
    """Send the kernel's Arrow file with sendfile (zero-copy from the page cache to the socket,
    bounded memory). The file is unlinked once open: nothing is left behind, whatever happens."""
    handle = await asyncio.to_thread(path.open, "rb")
    path.unlink(missing_ok=True)
    try:
        size = os.fstat(handle.fileno()).st_size
        response = web.StreamResponse(headers={"Content-Type": ARROW, "X-Total-Count": str(total)})
        response.content_length = size
        await response.prepare(request)
        transport = request.transport
        if transport is None or transport.is_closing():
            return response
        await asyncio.get_running_loop().sendfile(transport, handle, 0, size)
        await response.write_eof()
    except ConnectionResetError:
        pass
    finally:
        handle.close()
    return response
