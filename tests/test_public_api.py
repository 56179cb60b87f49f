"""Each package's public names, pinned: a change here is an API change, made on purpose."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "gateway": ["__version__"],
    "gateway.api": ["setup_routes"],
    "gateway.collab": ["CollabHub", "Presence", "Subscription"],
    "gateway.hogql": [
        "HogQLError",
        "HogQLQueryError",
        "HogQLSyntaxError",
        "HogQLUnsupported",
        "Translation",
        "placeholder_values",
        "translate",
    ],
    "gateway.kernels": [
        "ExecutionResult",
        "FrameExport",
        "FrameRequest",
        "KernelConfig",
        "KernelKey",
        "KernelManager",
        "KernelProvisioner",
        "KernelRuntime",
        "Resources",
    ],
    "gateway.store": [
        "UNSET",
        "ActivityEntry",
        "ApiKey",
        "ContainsTerm",
        "KernelRecord",
        "NewNotebook",
        "Notebook",
        "NotebookFilter",
        "NotebookPatch",
        "Page",
        "Project",
        "SQLiteStore",
        "SharePassword",
        "SharingConfig",
        "SharingPatch",
        "Store",
        "User",
    ],
    "gateway.viewer": [
        "CONTENT_SECURITY_POLICY",
        "HEADERS",
        "QueryOutcome",
        "SharedQueries",
        "document",
        "hogql_queries",
        "render_notebook",
        "unlock_document",
    ],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names(module):
    imported = importlib.import_module(module)
    assert sorted(imported.__all__) == sorted(PUBLIC[module])
    for name in imported.__all__:
        assert hasattr(imported, name), name
