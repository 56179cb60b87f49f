"""Persons and groups from events, with PostHog's semantics, for one batch in memory.

`BatchProcessor` is given what the store already knows about the batch's distinct ids, persons,
group types and groups (`Known`), applies the events in order, and reports what changed
(`Changes`) for `gateway.ingestion.store` to write in one transaction. The rules follow
PostHog's ingestion (plugin-server `person-merge-service`, `person-update`, `groups`):

- Every event with person processing (all but `$process_person_profile: false`) makes sure its
  distinct id has a person (created at the event's timestamp), then applies `$set_once`, `$set`
  and `$unset` from its properties, in that order.
- `$identify` with `$anon_distinct_id`, and `$create_alias`/`$merge_dangerously` with `alias`,
  join the other id to the event's `distinct_id`: if one has a person, the other id joins it;
  if neither, one person gets both; if both have different persons, the other person is merged
  into the event's person (properties: the event person's win on conflict; the older
  `created_at`; every distinct id moves, none is lost) unless the other person is already
  identified (refused, as PostHog does, except for `$merge_dangerously`). The event's person is
  then `is_identified`. Illegal ids (`anonymous`, `null`, `0`, …) are never merged.
- `$groups: {type: key}` on any event sets `$group_<index>` in its properties; a group type
  gets the next free index (0 to 4) of the project the first time it is seen; a sixth is ignored.
- `$groupidentify` (`$group_type`, `$group_key`, `$group_set`) creates or updates that group.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.ingestion.payload import CapturedEvent

_MAX_GROUP_TYPES: Final = 5
_PERSON_NAMESPACE: Final = uuid.UUID("932979b4-65c3-4424-8467-0b66ec27bc22")
_ILLEGAL_ANY_CASE: Final = (
    "anonymous",
    "guest",
    "distinctid",
    "distinct_id",
    "id",
    "not_authenticated",
    "email",
    "undefined",
    "true",
    "false",
)
_ILLEGAL_EXACT: Final = ("[object Object]", "NaN", "None", "none", "null", "0", "undefined")


def _quoted(ids: tuple[str, ...]) -> frozenset[str]:
    return frozenset(ids) | {f"'{i}'" for i in ids} | {f'"{i}"' for i in ids}


_ILLEGAL_LOWER: Final = _quoted(_ILLEGAL_ANY_CASE)
_ILLEGAL: Final = _quoted(_ILLEGAL_EXACT)


def is_illegal_distinct_id(distinct_id: str) -> bool:
    """Ids PostHog refuses to merge with: they come from bugs, not from users."""
    return (
        not distinct_id.strip() or distinct_id.lower() in _ILLEGAL_LOWER or distinct_id in _ILLEGAL
    )


def person_uuid(project_id: int, distinct_id: str) -> str:
    """The id of a person created for `distinct_id` (deterministic, as PostHog's)."""
    return str(uuid.uuid5(_PERSON_NAMESPACE, f"{project_id}:{distinct_id}"))


@dataclass(slots=True, kw_only=True)
class Person:
    """A person as one capture batch sees it: loaded into `Known` by `gateway.ingestion.store`,
    changed in place by `BatchProcessor` (properties, `is_identified`) and reported in
    `Changes.persons`.
    """

    id: str
    created_at: dt.datetime
    properties: dict[str, Any]
    is_identified: bool


@dataclass(slots=True, kw_only=True)
class Group:
    """A group as one capture batch sees it: created or updated in place by `BatchProcessor` on
    `$groupidentify` (`created_at` the earliest timestamp seen, `updated_at` the last applied
    event's) and reported in `Changes.groups`.
    """

    index: int
    key: str
    created_at: dt.datetime
    updated_at: dt.datetime
    properties: dict[str, Any]


@dataclass(kw_only=True)
class Known:
    """What the store holds for a batch: only the ids the batch names need be here."""

    person_of: dict[str, str] = field(default_factory=dict)  # distinct id → person id
    persons: dict[str, Person] = field(default_factory=dict)
    group_types: dict[str, int] = field(default_factory=dict)  # type → index (all of them)
    groups: dict[tuple[int, str], Group] = field(default_factory=dict)


@dataclass(kw_only=True)
class Changes:
    """What a batch changed, in the order it must be written."""

    persons: dict[str, Person] = field(default_factory=dict)  # upserted (final state)
    deleted: set[str] = field(default_factory=set)  # persons merged away
    moves: list[tuple[str, str]] = field(default_factory=list)  # (from, into): all its ids
    links: dict[str, str] = field(default_factory=dict)  # distinct id → person id (final)
    group_types: dict[str, int] = field(default_factory=dict)  # new ones
    groups: dict[tuple[int, str], Group] = field(default_factory=dict)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _apply_updates(person: Person, properties: dict[str, Any]) -> None:
    """`$set_once`, then `$set`, then `$unset` (a list of keys, or an object's keys)."""
    props = person.properties
    for key, value in _dict(properties.get("$set_once")).items():
        props.setdefault(key, value)
    props.update(_dict(properties.get("$set")))
    unset = properties.get("$unset")
    keys = unset if isinstance(unset, list) else list(_dict(unset))
    for key in keys:
        if isinstance(key, str):
            props.pop(key, None)


class BatchProcessor:
    """Applies one project's batch of events to `known`, collecting `changes`."""

    def __init__(self, project_id: int, known: Known) -> None:
        self._project = project_id
        self._known = known
        self.changes = Changes()

    # -- persons ---------------------------------------------------------------------------

    def _person_of(self, distinct_id: str) -> Person | None:
        person_id = self._known.person_of.get(distinct_id)
        return None if person_id is None else self._known.persons.get(person_id)

    def _touch(self, person: Person) -> None:
        self.changes.persons[person.id] = person

    def _link(self, distinct_id: str, person: Person) -> None:
        self._known.person_of[distinct_id] = person.id
        self.changes.links[distinct_id] = person.id

    def _create(self, distinct_ids: list[str], timestamp: dt.datetime) -> Person:
        person = Person(
            id=person_uuid(self._project, distinct_ids[0]),
            created_at=timestamp,
            properties={},
            is_identified=False,
        )
        self._known.persons[person.id] = person
        self.changes.deleted.discard(person.id)
        for distinct_id in distinct_ids:
            self._link(distinct_id, person)
        self._touch(person)
        return person

    def _merge_people(self, into: Person, other: Person) -> None:
        into.properties = {**other.properties, **into.properties}
        into.created_at = min(into.created_at, other.created_at)
        self._touch(into)
        self.changes.persons.pop(other.id, None)
        self.changes.deleted.add(other.id)
        self._known.persons.pop(other.id, None)
        self.changes.moves.append((other.id, into.id))
        for distinct_id, person_id in list(self._known.person_of.items()):
            if person_id == other.id:
                self._known.person_of[distinct_id] = into.id
        for distinct_id, person_id in list(self.changes.links.items()):
            if person_id == other.id:
                self.changes.links[distinct_id] = into.id

    def _merge(self, other_id: str, into_id: str, event: CapturedEvent) -> bool:
        """Join `other_id` to `into_id`'s person; True when the event's person is now
        identified (PostHog marks it so even when a merge is refused)."""
        if other_id == into_id or is_illegal_distinct_id(into_id):
            return False
        if is_illegal_distinct_id(other_id):
            return False
        other, into = self._person_of(other_id), self._person_of(into_id)
        if other is not None and into is None:
            self._link(into_id, other)
        elif other is None and into is not None:
            self._link(other_id, into)
        elif other is not None and into is not None:
            if other.id != into.id and (
                not other.is_identified or event.event == "$merge_dangerously"
            ):
                self._merge_people(into, other)
        else:
            self._create([into_id, other_id], event.timestamp)
        return True

    def _process_person(self, event: CapturedEvent) -> None:
        props = event.properties
        identified = False
        other: Any = None
        if event.event in ("$create_alias", "$merge_dangerously"):
            other = props.get("alias")
        elif event.event == "$identify":
            other = props.get("$anon_distinct_id")
        if isinstance(other, str | int | float) and not isinstance(other, bool) and other != "":
            identified = self._merge(str(other), event.distinct_id, event)
        person = self._person_of(event.distinct_id)
        if person is None:
            person = self._create([event.distinct_id], event.timestamp)
        if "$set" in props or "$set_once" in props or "$unset" in props:
            _apply_updates(person, props)
            self._touch(person)
        if identified and not person.is_identified:
            person.is_identified = True
            self._touch(person)
        event.person_id = person.id

    # -- groups ----------------------------------------------------------------------------

    def _group_index(self, group_type: str) -> int | None:
        known = self._known.group_types
        if group_type not in known:
            if len(known) >= _MAX_GROUP_TYPES:
                return None
            known[group_type] = len(known)
            self.changes.group_types[group_type] = known[group_type]
        return known[group_type]

    def _group_identify(self, event: CapturedEvent) -> None:
        props = event.properties
        group_type, key = props.get("$group_type"), props.get("$group_key")
        if not isinstance(group_type, str) or not group_type or key is None or key == "":
            return
        index = self._group_index(group_type)
        if index is None:
            return
        key = key if isinstance(key, str) else str(key)
        group = self._known.groups.get((index, key))
        if group is None:
            group = Group(
                index=index,
                key=key,
                created_at=event.timestamp,
                updated_at=event.timestamp,
                properties={},
            )
            self._known.groups[(index, key)] = group
        group.created_at = min(group.created_at, event.timestamp)
        group.updated_at = event.timestamp
        group.properties.update(_dict(props.get("$group_set")))
        self.changes.groups[(index, key)] = group

    def _group_columns(self, event: CapturedEvent) -> None:
        for group_type, key in _dict(event.properties.get("$groups")).items():
            if key is None or key == "":
                continue
            index = self._group_index(group_type)
            if index is not None:
                event.properties[f"$group_{index}"] = key if isinstance(key, str) else str(key)

    # -- the batch -------------------------------------------------------------------------

    def process(self, events: list[CapturedEvent]) -> None:
        """Apply `events` in order; each gets its `person_id` (a personless event, the
        person its distinct id already has, else its deterministic id, as PostHog's)."""
        for event in events:
            if event.event == "$groupidentify":
                self._group_identify(event)
            if "$groups" in event.properties:
                self._group_columns(event)
            if event.properties.get("$process_person_profile") is False:
                person = self._person_of(event.distinct_id)
                event.person_id = (
                    person.id if person else person_uuid(self._project, event.distinct_id)
                )
                continue
            self._process_person(event)


def distinct_ids_named(events: list[CapturedEvent]) -> set[str]:
    """Every distinct id a batch may look up: the events' own, `$anon_distinct_id`, `alias`."""
    names = {e.distinct_id for e in events}
    for event in events:
        for key in ("$anon_distinct_id", "alias"):
            value = event.properties.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                names.add(str(value))
    return names


def group_keys_named(events: list[CapturedEvent]) -> set[tuple[str, str]]:
    """(type, key) of every `$groupidentify` in a batch."""
    keys = set()
    for event in events:
        if event.event == "$groupidentify":
            group_type, key = (
                event.properties.get("$group_type"),
                event.properties.get("$group_key"),
            )
            if isinstance(group_type, str) and key is not None:
                keys.add((group_type, key if isinstance(key, str) else str(key)))
    return keys
