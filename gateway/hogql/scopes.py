"""Name lookup within one SELECT: which source, column, JSON path, alias or lambda argument a
field names, including the lazy joins (`person.properties.x`) it makes the printer add."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.hogql import ast
from gateway.hogql.errors import HogQLQueryError
from gateway.hogql.resolution import (
    ARRAY_JOIN_ALIAS,
    Column,
    ColumnCte,
    FieldMeaning,
    JsonPath,
    LambdaArg,
    SelectAlias,
    Source,
    Star,
)
from gateway.hogql.schema import RESERVED


def _error(message: str, node: ast.Node) -> HogQLQueryError:
    return HogQLQueryError(message, start=node.start, end=node.end)


def check_identifier(name: str, node: ast.Node) -> None:
    """PostHog refuses `%` in any identifier it prints (aliases, tables, columns)."""
    if "%" in name:
        msg = f'The HogQL identifier "{name}" is not permitted as it contains the "%" character'
        raise _error(msg, node)


def _json(alias: str, column: str, path: list[Any], node: ast.Field, table: str = "") -> JsonPath:
    """A JSON path from a field chain (`properties.list.1`): indices are 1-based."""
    if any(isinstance(key, int) and key < 1 for key in path):
        msg = "SQL indexes start from one, not from zero. E.g: array.1"
        raise _error(msg, node)
    return JsonPath(alias=alias, column=column, path=tuple(path), table=table)


@dataclass(kw_only=True)
class Scope:
    """The names one SELECT (or lambda body) can see: its FROM sources, select aliases,
    `WITH expr AS name` names and lambda arguments. Created by the resolver."""

    sources: list[Source]
    aliases: set[str]
    column_ctes: dict[str, ast.Expr] = field(default_factory=dict)
    lambdas: dict[str, str] = field(default_factory=dict)

    def field(self, node: ast.Field, *, allow_star: bool) -> FieldMeaning:
        chain = node.chain
        first = str(chain[0])
        if first in self.lambdas and len(chain) == 1:
            return LambdaArg(name=self.lambdas[first])
        check_identifier(first, node)
        if first == "*" and len(chain) == 1:
            return self._star(node, allow_star=allow_star)
        if first in RESERVED:
            msg = f"{first} is not selectable."
            raise _error(msg, node)
        by_alias = [s for s in self.sources if s.alias == first]
        if by_alias and chain[1:] == ["*"]:
            return self._table_star(by_alias[0], node, allow_star=allow_star)
        if by_alias and len(chain) > 1:
            return self._in(
                by_alias[0], [str(c) if isinstance(c, str) else c for c in chain[1:]], node
            )
        owners = [s for s in self.sources if s.has(first)]
        if len(owners) > 1:
            msg = f"Ambiguous field `{first}`: qualify it with a table alias."
            raise _error(msg, node)
        if owners:
            return self._in(owners[0], list(chain), node)
        if first in self.aliases and len(chain) == 1:
            return SelectAlias(name=first)
        if first in self.column_ctes and len(chain) == 1:
            return ColumnCte(expr=self.column_ctes[first])
        msg = f"Unable to resolve field: {first}"
        raise _error(msg, node)

    def _star(self, node: ast.Field, *, allow_star: bool) -> Star:
        if not allow_star:
            msg = "* is only allowed in SELECT."
            raise _error(msg, node)
        tables = [s for s in self.sources if s.alias != ARRAY_JOIN_ALIAS]
        if not tables:
            msg = "Cannot use '*' when there are no tables in the query"
            raise _error(msg, node)
        if len(tables) > 1:
            msg = "Cannot use '*' without table name when there are multiple tables in the query"
            raise _error(msg, node)
        for source in self.sources:
            if source.table is not None:
                source.lazy.update(source.table.computed.values())
                source.used.update(source.table.columns)
            else:  # a subquery's every column is read (gateway/hogql/grouping.py)
                source.used.update(source.subquery_columns or [])
        (only,) = tables
        if only.table is not None:
            return Star(source=only.alias, columns=tuple(only.table.columns))
        return Star()

    @staticmethod
    def _table_star(source: Source, node: ast.Field, *, allow_star: bool) -> Star:
        """`t.*`: every column of the FROM entry `t` (allowed beside other tables)."""
        if not allow_star:
            msg = f"{source.alias}.* is only allowed in SELECT."
            raise _error(msg, node)
        if source.table is not None:
            source.lazy.update(source.table.computed.values())
            source.used.update(source.table.columns)
            return Star(
                alias=source.alias, source=source.alias, columns=tuple(source.table.columns)
            )
        source.used.update(source.subquery_columns or [])
        return Star(alias=source.alias)

    def _in(self, source: Source, chain: list[Any], node: ast.Field) -> FieldMeaning:
        name = str(chain[0])
        if name in RESERVED:
            msg = f"{name} is not selectable."
            raise _error(msg, node)
        if source.table is not None:
            table = source.table
            if name in table.virtual and len(chain) == 1:
                column, key = table.virtual[name]
                return JsonPath(alias=source.alias, column=column, path=(key,), table=table.name)
            if name in table.lazy:
                return self._lazy(source, chain, node)
            if name not in table.columns:
                msg = f"Field `{name}` does not exist on table `{table.name}`."
                raise _error(msg, node)
            if name in table.computed:
                source.lazy.add(table.computed[name])
            source.used.add(name)
            if name in table.json_columns:
                return _json(source.alias, name, chain[1:], node, table.name)
            if len(chain) == 1:
                return Column(alias=source.alias, name=name)
            if name not in table.json_columns:
                msg = f"`{name}` has no fields."
                raise _error(msg, node)
            return _json(source.alias, name, chain[1:], node)
        if not source.has(name) or len(chain) > 1:
            msg = f"Unable to resolve field: {'.'.join(map(str, chain))}"
            raise _error(msg, node)
        source.used.add(name)  # a subquery's or CTE's column some query reads
        return Column(alias=source.alias, name=name)

    @staticmethod
    def _lazy(source: Source, chain: list[Any], node: ast.Field) -> FieldMeaning:
        """`person.properties.x`, `pdi.person_id`, `session.$session_duration`: a column of a
        lazy join, printed as `alias."person.properties"` once the printer joins it."""
        assert source.table is not None
        name = str(chain[0])
        joined = source.table.lazy[name]
        if len(chain) == 1:
            example = f"{name}.{next(iter(joined.columns))}"
            msg = f"`{name}` is a table: name one of its fields (`{example}`)."
            raise _error(msg, node)
        field_name = str(chain[1])
        if name == "pdi" and field_name in source.table.lazy:
            # events.pdi.person is the person of the event's distinct id: events.person
            return Scope._lazy(source, chain[1:], node)
        if field_name in RESERVED:
            msg = f"{field_name} is not selectable."
            raise _error(msg, node)
        if field_name not in joined.columns:
            msg = f"Field `{field_name}` does not exist on table `{joined.name}`."
            raise _error(msg, node)
        source.lazy.add(name)
        column = f"{name}.{field_name}"
        source.used.add(column)
        if field_name in joined.json_columns:
            path = chain[2:]
            if len(path) == 1 and isinstance(path[0], str):
                # `person.properties.plan`: extracted once per joined row (tables.py)
                source.used.add(f"{column}.{path[0]}")
            return _json(source.alias, column, path, node, joined.name)
        if len(chain) > 2:
            msg = f"`{column}` has no fields."
            raise _error(msg, node)
        return Column(alias=source.alias, name=column)
