"""Data in as PostHog's capture does it: SDK bodies decoded (`payload`), persons and groups
built from the events (`persons`), each batch written in one transaction (`store`)."""

from __future__ import annotations

from gateway.ingestion.payload import (
    CapturedEvent,
    CaptureRequest,
    decode_body,
    normalise_event,
    read_request,
)

__all__ = ["CaptureRequest", "CapturedEvent", "decode_body", "normalise_event", "read_request"]
