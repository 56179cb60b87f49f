"""Data-frame exports: the helper call a `kernel/dataframe` request makes, and its answer."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

FRAME: Final = "frame"  # the user_expression's name


@dataclass(frozen=True, kw_only=True)
class FrameRequest:
    variable: str
    offset: int
    limit: int
    columns: list[str] | None
    max_bytes: int
    timeout: float


@dataclass(frozen=True, kw_only=True)
class FrameExport:
    """The helper's answer: `path` of the Arrow file, or `error` (NameError, not_a_frame, …)."""

    error: str | None
    meta: dict[str, Any]
    path: Path | None


def frame_expression(request: FrameRequest, name: str, frames_dir: str) -> str:
    """The kernel helper call; the variable is a checked identifier, the rest are literals."""
    columns = "None" if request.columns is None else json.dumps(request.columns)
    return (
        f"__import__('gateway_kernel').export_frame({request.variable}, "
        f"offset={request.offset}, limit={request.limit}, columns={columns}, "
        f"max_bytes={request.max_bytes}, name={name!r}, frames_dir={frames_dir!r})"
    )


def frame_export(found: dict[str, Any], path: Path) -> FrameExport:
    """Read the helper's answer (a user_expression result) into a FrameExport."""
    value = found.get(FRAME) or {}
    if value.get("status") != "ok":
        return FrameExport(error=value.get("ename") or "error", meta={}, path=None)
    meta = (value.get("data") or {}).get("application/json") or {}
    if meta.get("status") != "ok":
        return FrameExport(error=str(meta.get("error", "error")), meta=meta, path=None)
    return FrameExport(error=None, meta=meta, path=path)
