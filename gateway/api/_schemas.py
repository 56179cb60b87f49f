"""Schemas of the wire shapes `_render.py` and the handlers produce, for the declarations.

Named ones (Component) appear once in the document's `components/schemas`.
"""

from __future__ import annotations

from typing import Any, Final

from gateway.contract import Component

STRING_OR_NULL: Final = {"type": ["string", "null"]}
DATETIME: Final = {"type": "string", "format": "date-time"}
DATETIME_OR_NULL: Final = {"type": ["string", "null"], "format": "date-time"}
ANY: Final[dict[str, Any]] = {}


def obj(required: tuple[str, ...] = (), **properties: Any) -> dict[str, Any]:
    """An object schema with these properties (others allowed), `required` listed."""
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    return schema


def page_of(item: Any, *, name: str) -> Component:
    """A limit/offset page (DRF's LimitOffsetPagination)."""
    return Component(
        name,
        obj(
            ("count", "next", "previous", "results"),
            count={"type": "integer", "minimum": 0},
            next={"type": ["string", "null"], "format": "uri"},
            previous={"type": ["string", "null"], "format": "uri"},
            results={"type": "array", "items": item},
        ),
    )


USER: Final = Component(
    "UserBasic",
    obj(
        ("id", "uuid", "distinct_id", "first_name", "last_name", "email"),
        id={"type": "integer"},
        uuid={"type": "string"},
        distinct_id=STRING_OR_NULL,
        first_name={"type": "string"},
        last_name={"type": ["string", "null"]},
        email={"type": "string"},
        is_email_verified={"type": ["boolean", "null"]},
        hedgehog_config={"type": ["object", "null"]},
        role_at_organization=STRING_OR_NULL,
    ),
)
USER_OR_NULL: Final = {"anyOf": [USER, {"type": "null"}]}
_NOTEBOOK_COMMON: Final[dict[str, Any]] = {
    "id": {"type": "string", "format": "uuid"},
    "short_id": {"type": "string"},
    "title": STRING_OR_NULL,
    "deleted": {"type": "boolean"},
    "created_at": DATETIME,
    "created_by": USER_OR_NULL,
    "last_modified_at": DATETIME,
    "last_modified_by": USER_OR_NULL,
    "user_access_level": STRING_OR_NULL,
}
NOTEBOOK_MINIMAL: Final = Component(
    "NotebookMinimal", obj(tuple(_NOTEBOOK_COMMON), **_NOTEBOOK_COMMON)
)
NOTEBOOK: Final = Component(
    "Notebook",
    obj(
        (*_NOTEBOOK_COMMON, "content", "text_content", "version"),
        **_NOTEBOOK_COMMON,
        content={"description": "ProseMirror JSON document (or null)."},
        text_content=STRING_OR_NULL,
        version={"type": "integer", "minimum": 0},
        parent_resource={"type": ["object", "null"]},
    ),
)
NOTEBOOK_PAGE: Final = page_of(NOTEBOOK_MINIMAL, name="PaginatedNotebookMinimalList")
ACTIVITY: Final = Component(
    "ActivityLog",
    obj(
        ("id", "user", "activity", "scope", "item_id", "detail", "created_at"),
        id={"type": ["string", "integer"]},
        user=obj(first_name=STRING_OR_NULL, email=STRING_OR_NULL, is_system={"type": "boolean"}),
        activity={"type": "string"},
        scope={"type": "string"},
        item_id=STRING_OR_NULL,
        detail={"type": ["object", "null"]},
        created_at=DATETIME,
    ),
)
ACTIVITY_PAGE: Final = Component(
    "ActivityLogPage",
    obj(
        ("results", "next", "previous", "total_count"),
        results={"type": "array", "items": ACTIVITY},
        next={"type": ["string", "null"], "format": "uri"},
        previous={"type": ["string", "null"], "format": "uri"},
        total_count={"type": "integer", "minimum": 0},
    ),
)
SHARE_PASSWORD: Final = obj(
    ("id", "created_at", "note", "created_by_email", "is_active"),
    id={"type": "integer"},
    created_at=DATETIME,
    note=STRING_OR_NULL,
    created_by_email=STRING_OR_NULL,
    is_active={"type": "boolean"},
)
SHARING: Final = Component(
    "SharingConfiguration",
    obj(
        ("created_at", "enabled", "access_token", "settings", "password_required"),
        created_at=DATETIME_OR_NULL,
        enabled={"type": "boolean"},
        access_token={"type": "string"},
        settings={"type": ["object", "null"]},
        password_required={"type": "boolean"},
        share_passwords={"type": "array", "items": SHARE_PASSWORD},
    ),
)
SCENE: Final = Component(
    "SharedScene",
    obj(
        ("type", "notebook"),
        type={"type": "string", "enum": ["scene"]},
        notebook=obj(
            ("short_id", "title", "content"),
            short_id={"type": "string"},
            title=STRING_OR_NULL,
            content=ANY,
        ),
    ),
)


def sse_events(*names: str) -> dict[str, Any]:
    """One server-sent event: its name (one of `names`) and its JSON `data`."""
    return obj(
        ("event", "data"),
        event={"type": "string", "enum": list(names)},
        data={"type": "string", "description": "JSON."},
        id={"type": "string"},
    )
