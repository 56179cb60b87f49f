"""The public viewer's rendering: notebook HTML, its page and headers, and its HogQL runs."""

from __future__ import annotations

from gateway.viewer.page import CONTENT_SECURITY_POLICY, HEADERS, document, unlock_document
from gateway.viewer.queries import SharedQueries
from gateway.viewer.render import QueryOutcome, hogql_queries, render_notebook

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "HEADERS",
    "QueryOutcome",
    "SharedQueries",
    "document",
    "hogql_queries",
    "render_notebook",
    "unlock_document",
]
