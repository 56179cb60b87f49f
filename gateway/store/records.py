"""Plain values the store hands out. Frozen: a change goes back through the store."""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Final


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET
type Maybe[T] = T | _Unset


@dataclass(frozen=True, kw_only=True)
class User:
    """A user account, created by `Store.ensure_user` and never changed afterwards (the SQLite store
    caches users by id on that basis).
    """

    id: int
    uuid: str
    distinct_id: str
    first_name: str
    last_name: str
    email: str


@dataclass(frozen=True, kw_only=True)
class Project:
    """A project: its id, name, the IANA `timezone` HogQL reads and shows datetimes in, and its
    public capture token (`phc_…`).
    """

    id: int
    name: str
    timezone: str
    api_token: str


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """A personal API key as the store hands it out: never the raw key, only its `mask` and the
    `scopes` that `auth.scope_allows` checks.
    """

    id: int
    user_id: int
    label: str
    mask: str
    scopes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Notebook:
    """One notebook row. Handlers serialise it and send changes back through
    `Store.update_notebook`; `version` goes up with every content change (REST edit or collab
    step).
    """

    id: str
    project_id: int
    short_id: str
    title: str | None
    content_json: str
    text_content: str | None
    version: int
    deleted: bool
    created_at: datetime
    created_by: User | None
    last_modified_at: datetime
    last_modified_by: User | None
    kernel_config_json: str = "{}"

    @cached_property
    def content(self) -> Any:
        """The content, decoded on first use (GET passes `content_json` through untouched)."""
        return json.loads(self.content_json)

    @cached_property
    def kernel_config(self) -> dict[str, Any]:
        """The stored kernel settings, decoded on first use; `Store.set_kernel_config` merges into
        them.
        """
        config: dict[str, Any] = json.loads(self.kernel_config_json)
        return config


@dataclass(frozen=True, kw_only=True)
class NotebookPatch:
    """Fields a PATCH/PUT may set; UNSET means 'not in the body'."""

    title: Maybe[str | None] = UNSET
    content: Maybe[Any] = UNSET
    text_content: Maybe[str | None] = UNSET
    version: Maybe[int] = UNSET
    deleted: Maybe[bool] = UNSET
    create_in_folder: Maybe[str] = UNSET

    def is_empty(self) -> bool:
        """True when the patch sets no field; `update_notebook` then returns the notebook unchanged,
        with no version bump and no activity.
        """
        return (
            all(
                v is UNSET
                for v in (self.title, self.content, self.text_content, self.deleted, self.version)
            )
            and self.create_in_folder is UNSET
        )


@dataclass(frozen=True, kw_only=True)
class NewNotebook:
    """What a create request may set, passed to `Store.create_notebook`; a None `short_id` gets a
    fresh random one.
    """

    short_id: str | None = None
    title: str | None = None
    content: Any = None
    text_content: str | None = None
    deleted: bool = False
    create_in_folder: str | None = None


@dataclass(frozen=True, kw_only=True)
class ContainsTerm:
    """One `contains` term: node type `ph-<target>`, value None/True/False or an id."""

    target: str
    value: bool | int | str | None


# Fields the notebook list may be ordered by (`order=`); anything else is a 400.
ORDERABLE_FIELDS = frozenset({"title", "created_at", "last_modified_at", "short_id"})


@dataclass(frozen=True, kw_only=True)
class NotebookFilter:
    """The notebook list's filters and order: built from the query string by
    `filters.parse_notebook_filter`, applied by `Store.list_notebooks`. None (or empty) fields do
    not filter.
    """

    created_by_user_id: int | None = None
    created_by_uuid: str | None = None
    last_modified_by_uuid: str | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    search: str | None = None
    contains: tuple[ContainsTerm, ...] = ()
    short_id: str | None = None
    order_field: str = "last_modified_at"
    order_desc: bool = True


@dataclass(frozen=True, kw_only=True)
class ActivityEntry:
    """One activity log entry as `Store.list_activity` returns it; `detail` is PostHog's detail
    object (see `notebook_detail`) and `user` is None when no user is known.
    """

    id: str
    project_id: int
    user: User | None
    activity: str
    scope: str
    item_id: str
    detail: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class SharePassword:
    """An active password of a sharing config, stored only as `password_hash`; `created_by_email`
    reads "deleted user" when its creator is gone.
    """

    id: int
    created_at: datetime
    note: str | None
    created_by_email: str
    password_hash: str


@dataclass(frozen=True, kw_only=True)
class SharingConfig:
    """A notebook's sharing configuration: the public link's `access_token`, whether it is enabled,
    its settings and active passwords.

    `expires_at` is None on the current config and set on one that `rotate_sharing` replaced (valid
    until then); `id` is None only for the unsaved default the sharing API shows.
    """

    id: int | None
    project_id: int
    notebook_id: str
    created_at: datetime | None
    enabled: bool
    access_token: str
    expires_at: datetime | None
    settings: dict[str, Any] | None
    password_required: bool
    passwords: tuple[SharePassword, ...] = ()


@dataclass(frozen=True, kw_only=True)
class SharingPatch:
    """The sharing fields a PATCH may set, passed to `Store.update_sharing`; UNSET means 'not in the
    body'.
    """

    enabled: Maybe[bool] = UNSET
    settings: Maybe[dict[str, Any] | None] = UNSET
    password_required: Maybe[bool] = UNSET


@dataclass(frozen=True, kw_only=True)
class Page[T]:
    """One page of a listing (`items`) and the `total` number of matches over all pages."""

    total: int
    items: list[T]


def notebook_detail(
    *, title: str | None, short_id: str, changes: list[dict[str, Any]] | None
) -> dict[str, Any]:
    """The `detail` object PostHog's activity log shows for a notebook."""
    return {
        "id": None,
        "name": title,
        "short_id": short_id,
        "type": None,
        "changes": changes,
        "merge": None,
        "trigger": None,
    }


STEP: Final = 0
UPDATE: Final = 1


@dataclass(frozen=True, kw_only=True, order=True)
class CollabEntry:
    """One entry of a notebook's collab log; `id` is the SSE event id."""

    version: int
    sub: int
    notebook_id: str = field(compare=False)
    data: dict[str, Any] = field(compare=False)

    @property
    def id(self) -> str:
        """The SSE event id, `<version>-<sub>`; a client resumes from it with `Last-Event-ID`."""
        return f"{self.version}-{self.sub}"

    @property
    def event(self) -> str:
        """The SSE event name: `step` for a collab step, `update` for a REST edit."""
        return "step" if self.sub == STEP else "update"


@dataclass(frozen=True, kw_only=True)
class CollabSave:
    """One collab save as the collab API parses it: `steps` from `client_id` to append at `version`,
    with the client's resulting document. Passed to `Store.collab_save`.
    """

    client_id: str
    version: int
    steps: list[Any]
    content: Any
    text_content: str
    title: Maybe[str]
    cursor_head: int | None


@dataclass(frozen=True, kw_only=True)
class CollabAccepted:
    """`Store.collab_save` outcome: the steps were appended; `notebook` is the saved row at its new
    version.
    """

    notebook: Notebook


@dataclass(frozen=True, kw_only=True)
class CollabConflict:
    """`Store.collab_save` outcome: the client is behind. `steps` (and their `client_ids`) are what
    it missed, up to `version`, to rebase over; the API answers 409.
    """

    steps: list[Any]
    client_ids: list[str | None]
    version: int


@dataclass(frozen=True, kw_only=True)
class CollabStale:
    """`Store.collab_save` outcome: the client cannot rebase (missed steps trimmed or replaced by a
    REST edit, or a version ahead of the store) and must reload at `version`; the API answers 410.
    """

    version: int


type CollabOutcome = CollabAccepted | CollabConflict | CollabStale
type CommitListener = Callable[[list[CollabEntry]], None]
type ChangeListener = Callable[[int, str], None]


def user_name(user: User | None) -> str:
    """The name collaborators see (PostHog's fallback for a nameless user)."""
    if user is None:
        return "Wandering Hog"
    return f"{user.first_name} {user.last_name}".strip() or user.email or "Wandering Hog"


@dataclass(frozen=True, kw_only=True)
class KernelRecord:
    """A live kernel as persisted for re-attachment after a gateway restart."""

    id: str
    instance: str
    project_id: int
    short_id: str
    user_id: int
    sandbox_id: str
    run_dir: str
    cpu_cores: float
    memory_gb: float
    idle_timeout_s: float
    started_at: datetime
    # the kernel's HMAC connection key: re-attachment never reads the kernel's run directory
    connection_key: str = ""
    # `ipc` (run_dir holds its sockets) or `tcp` (run_dir is empty; curve_secret is its key)
    transport: str = "ipc"
    curve_secret: str = ""
