"""Collaboration: fan-out of the collab log and presence to live streams."""

from __future__ import annotations

from gateway.collab.hub import CollabHub, Presence, Subscription

__all__ = ["CollabHub", "Presence", "Subscription"]
