"""Reading server-sent events in tests, frame by frame."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Frame:
    event: str | None
    data: Any
    id: str | None
    comment: str | None = None


async def read_frame(resp: aiohttp.ClientResponse) -> Frame | None:
    """The next frame (or comment), None at end of stream."""
    fields: dict[str, str] = {}
    comment = None
    while True:
        line = await resp.content.readline()
        if not line:
            return None
        text = line.decode().rstrip("\n")
        if text == "":
            if fields or comment is not None:
                data = json.loads(fields["data"]) if "data" in fields else None
                return Frame(fields.get("event"), data, fields.get("id"), comment)
            continue
        if text.startswith(":"):
            comment = text[1:].strip()
            continue
        name, _, value = text.partition(": ")
        fields[name] = value


async def read_frames(
    resp: aiohttp.ClientResponse, count: int, *, skip_comments: bool = True
) -> list[Frame]:
    frames: list[Frame] = []
    while len(frames) < count:
        frame = await read_frame(resp)
        assert frame is not None, f"stream ended after {frames}"
        if skip_comments and frame.comment is not None and frame.event is None:
            continue
        frames.append(frame)
    return frames
