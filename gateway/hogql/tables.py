"""The isolation boundary: every table a query reads is printed here, as a subquery filtered on
the caller's project. There is no other way for translated SQL to reach a stored table: joins,
subqueries, set members, CTEs and lazy joins (`person`, `pdi`, `group_N`, `session`) alike all
come through `ProjectTables.table()`, and each stored table inside it carries its own
`project_id = $n` filter (tests/hogql/test_tables.py checks every combination).

Outside UTC, datetimes leave these subqueries as naive local times of the project's timezone.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final

from gateway.hogql.binding import ValueSink, json_path, quote_identifier
from gateway.hogql.schema import GROUPS, PERSON_DISTINCT_IDS, PERSONS, SESSIONS, Table

# sessions' fields over the project's events (sid, url, distinct_id, timestamp, event)
_SESSION_FIELDS: Final = {
    "session_id": "sid",
    "id": "sid",
    "distinct_id": "arg_min(distinct_id, timestamp)",
    "$start_timestamp": "min(timestamp)",
    "$end_timestamp": "max(timestamp)",
    "$session_duration": "date_diff('second', min(timestamp), max(timestamp))",
    "duration": "date_diff('second', min(timestamp), max(timestamp))",  # sessions v1's name
    # PostHog's bounce: one pageview, no autocapture, at most 10 s (NULL without a pageview)
    "$is_bounce": "CAST(CASE WHEN count(*) FILTER (WHERE event = '$pageview') > 0 THEN NOT ("
    "count(*) FILTER (WHERE event = '$pageview') > 1 OR count(*) FILTER (WHERE event ="
    " '$autocapture') > 0 OR date_diff('second', min(timestamp), max(timestamp)) > 10) END"
    " AS INTEGER)",
    "$entry_current_url": "arg_min(url, timestamp) FILTER (WHERE url IS NOT NULL)",
    "$end_current_url": "arg_max(url, timestamp) FILTER (WHERE url IS NOT NULL)",
    "$exit_current_url": "arg_max(url, timestamp) FILTER (WHERE url IS NOT NULL)",
    "$pageview_count": "count(*) FILTER (WHERE event = '$pageview')",
    "$autocapture_count": "count(*) FILTER (WHERE event = '$autocapture')",
    "$event_count": "count(*)",
}


def _joined_keys(used: set[str], join: str) -> list[str]:
    """The properties a query reads from a lazy join (`person.properties.plan` → `plan`)."""
    prefix = f"{join}.properties."
    return sorted(u.removeprefix(prefix) for u in used if u.startswith(prefix))


def _joined_items(join: str, keys: list[str]) -> list[str]:
    return [
        f"{join}.{quote_identifier('properties.' + k)} AS"
        f" {quote_identifier(f'{join}.properties.{k}')}"
        for k in keys
    ]


def materialized_column(key: str) -> str:
    """The events column a materialized property is stored in (PostHog names them `mat_*`)."""
    return f"mat_{key}"


# Every events row's `hash(distinct_id)` (UBIGINT), kept by the store's layout: what `uniq`
# counts for `distinct_id` (gateway/hogql/uniq.py, gateway/analytics/layout.py)
DISTINCT_ID_HASH: Final = "$distinct_id_hash"
# the lazy join that gives each events row `"$person_index"`: its person's number among the
# project's persons (gateway/hogql/bitmaps.py)
PERSON_INDEX: Final = "$person_index"


class ProjectTables:
    """Prints table references for one project (`project_id`, bound through `sink`).

    Created by the printer for each translation; `table()` is its only way to name a table.
    Guarantee: every `FROM <stored table>` it prints is filtered on `project_id`.
    """

    def __init__(
        self,
        sink: ValueSink,
        *,
        project_id: int,
        timezone: str,
        materialized: Collection[str] = (),
    ) -> None:
        self._sink = sink
        self._project = project_id
        self._timezone = timezone
        self.local = timezone != "UTC"
        # events properties stored as columns by the analytics store (its `materialized`)
        self._materialized = frozenset(materialized)

    def materialized(self, table: str, column: str, path: tuple[str | int, ...]) -> str | None:
        """The column holding `table.column` at `path` (`events.properties.$browser`) when the
        store keeps it materialized: the same values as the JSON extraction, NULL and "" alike."""
        if len(path) != 1 or not isinstance(path[0], str):
            return None
        key = path[0]
        if table == "events" and column == "properties" and key in self._materialized:
            return materialized_column(key)
        if table in {"persons", "groups"} and column.endswith(".properties"):
            # a lazy join's property: extracted in the joined table's subquery, once per
            # person or group rather than once per event (`table()`)
            return f"{column}.{key}"
        return None

    def _property(self, key: str, qualifier: str = "") -> str:
        """`properties.<key>` of an events row, from its column when materialized."""
        column = self.materialized("events", "properties", (key,))
        if column is not None:
            return f"{qualifier}{quote_identifier(column)}"
        return f"json_extract_string({qualifier}properties, '$.\"{key}\"')"

    def _materialized_columns(self, table: Table, qualifier: str = "") -> list[str]:
        if table.name != "events":
            return []
        names = [quote_identifier(materialized_column(k)) for k in sorted(self._materialized)]
        names.append(quote_identifier(DISTINCT_ID_HASH))
        return [f"{qualifier}{n} AS {n}" if qualifier else n for n in names]

    def in_zone(self, sql: str) -> str:
        """Outside UTC, DuckDB's `timezone(zone, x)` both ways: an instant (TIMESTAMPTZ) becomes
        the project's local time (naive), and a local time becomes the instant again."""
        return f"timezone({self._sink.add(self._timezone)}, {sql})" if self.local else sql

    def _project_filter(self, column: str = "project_id") -> str:
        return f"{column} = {self._sink.add(self._project)}"

    def _column(self, table: Table, column: str, qualifier: str = "") -> str:
        ref = f"{qualifier}{quote_identifier(column)}"
        if table.column_type(column).startswith("DateTime"):
            ref = self.in_zone(ref)
        return ref

    def _stored(self, table: Table, keys: list[str] | None = None) -> str:
        # The project filter, on every reference to every table: joins, subqueries, set
        # members and lazy joins alike.
        refs = [(self._column(table, c), quote_identifier(c)) for c in table.columns]
        extracted = [
            f"json_extract_string(properties, {self._sink.add(json_path((k,)))})"
            f" AS {quote_identifier('properties.' + k)}"
            for k in keys or []
        ]
        listed = ", ".join(
            [ref if ref == name else f"{ref} AS {name}" for ref, name in refs]
            + self._materialized_columns(table)
            + extracted
        )
        return (
            f"(SELECT {listed} FROM {quote_identifier(table.name)} WHERE {self._project_filter()})"
        )

    def table(self, table: Table, lazy: set[str], used: set[str]) -> str:
        """`table` as a subquery of the project's rows, with the lazy joins in `lazy` joined in
        and, for derived tables, only the `used` fields computed."""
        if not table.stored:
            return self._sessions(used)
        if not lazy:
            return self._stored(table)
        items = [
            f"{self._column(table, c, 't.')} AS {quote_identifier(c)}"
            for c in table.columns
            if c not in table.computed
        ] + self._materialized_columns(table, "t.")
        joins = ""
        person_id = "t.person_id"
        if "pdi" in lazy or ("person" in lazy and table.name == "events"):
            # a distinct_id's person, else the person stored on the event
            person_id = "coalesce(pdi.person_id, t.person_id)"
            pdi = self._stored(PERSON_DISTINCT_IDS)
            if PERSON_INDEX in lazy:
                pdi, own = self._person_index(pdi)
                items.append(f"coalesce(pdi.idx, own.idx) AS {quote_identifier(PERSON_INDEX)}")
            joins += f" LEFT JOIN {pdi} AS pdi ON pdi.distinct_id = t.distinct_id"
            if PERSON_INDEX in lazy:
                joins += (
                    f" LEFT JOIN {own} AS own ON own.id = t.person_id AND pdi.person_id IS NULL"
                )
            items.append('pdi.distinct_id AS "pdi.distinct_id"')
            items.append(f'{person_id} AS "pdi.person_id"')
        for name in table.computed:
            items.append(f"{person_id} AS {quote_identifier(name)}")
        if "person" in lazy:
            keys = _joined_keys(used, "person")
            persons = self._stored(PERSONS, keys)
            joins += f" LEFT JOIN {persons} AS person ON person.id = {person_id}"
            items += [f'person.{quote_identifier(c)} AS "person.{c}"' for c in PERSONS.columns]
            items += _joined_items("person", keys)
        for name in sorted(n for n in lazy if n.startswith("group_")):
            # `group_2.properties.name`: the group whose key is the event's `$group_2`
            index = int(name.removeprefix("group_"))
            keys = _joined_keys(used, name)
            joins += (
                f' LEFT JOIN {self._stored(GROUPS, keys)} AS {name} ON {name}."index" = {index}'
                f" AND {name}.key = {self._property(f'$group_{index}', 't.')}"
            )
            items += [f'{name}.{quote_identifier(c)} AS "{name}.{c}"' for c in GROUPS.columns]
            items += _joined_items(name, keys)
        if "session" in lazy:
            fields = {c.removeprefix("session.") for c in used if c.startswith("session.")}
            joins += (
                f" LEFT JOIN {self._sessions(fields)} AS session ON session.session_id ="
                f" {self._property('$session_id', 't.')}"
            )
            items += [
                f'session.{quote_identifier(c)} AS "session.{c}"'
                for c in SESSIONS.columns
                if c in fields
            ]
        return (
            f"(SELECT {', '.join(items)} FROM {quote_identifier(table.name)} AS t{joins}"
            f" WHERE {self._project_filter('t.project_id')})"
        )

    def _person_index(self, pdi: str) -> tuple[str, str]:
        """The person distinct ids with each person's index (`idx`), and the index of every
        person id: 0, 1, 2, … over the project's persons named by a distinct id or stored on an
        event, in UUID order (so both copies number alike), one number per person."""
        events = self._stored_column("events", "person_id")
        ids = (
            "(SELECT id, CAST(row_number() OVER (ORDER BY id) - 1 AS BIGINT) AS idx FROM"
            f" (SELECT person_id AS id FROM {pdi} WHERE person_id IS NOT NULL"
            f" UNION SELECT person_id FROM {events} WHERE person_id IS NOT NULL))"
        )
        indexed = (
            f"(SELECT p.distinct_id, p.person_id, i.idx FROM {pdi} AS p"
            f" LEFT JOIN {ids} AS i ON i.id = p.person_id)"
        )
        return indexed, ids

    def _stored_column(self, table: str, column: str) -> str:
        return (
            f"(SELECT {quote_identifier(column)} FROM {quote_identifier(table)}"
            f" WHERE {self._project_filter()})"
        )

    def _sessions(self, used: set[str]) -> str:
        """`sessions`, derived from the project's events grouped by `$session_id`; only the
        fields a query names are computed (the URLs are the costly ones)."""
        urls = used & {"$entry_current_url", "$end_current_url", "$exit_current_url"}
        url = f", {self._property('$current_url')} AS url" if urls else ""
        events = (
            f"SELECT {self._property('$session_id')} AS sid{url},"
            f" distinct_id, {self.in_zone('timestamp')} AS timestamp, event FROM events"
            f" WHERE {self._project_filter()}"
        )
        items = ", ".join(
            [
                f"{_SESSION_FIELDS[c]} AS {quote_identifier(c)}"
                for c in SESSIONS.columns
                if c in used or c == "session_id"
            ]
        )
        # `length(sid) > 0` drops NULL and '' in one test (two tests cost DuckDB ~30% here)
        return f"(SELECT {items} FROM ({events}) WHERE length(sid) > 0 GROUP BY sid)"
