"""The schema as the engine uses it: validators, index specs, SQL view columns per table."""

from __future__ import annotations

import difflib

from pyconvex.runtime.store.index import IndexSpec
from pyconvex.server.schema import SchemaDefinition, SearchIndexDefinition
from pyconvex.values.validators import ObjectValidator, Validator

_SQL_TYPES = {"string": "VARCHAR", "id": "VARCHAR", "float64": "DOUBLE", "boolean": "BOOLEAN"}


class SchemaState:
    """Read-only view of a :class:`SchemaDefinition` (or of no schema at all)."""

    def __init__(self, schema: SchemaDefinition | None) -> None:
        self.definition = schema
        self._indexes: dict[str, dict[str, tuple[str, ...]]] = {}
        self._search_indexes: dict[str, dict[str, SearchIndexDefinition]] = {}
        if schema is not None:
            for name, table in schema.tables.items():
                self._indexes[name] = {i.name: i.fields for i in table.indexes}
                self._search_indexes[name] = {s.name: s for s in table.search_indexes}

    def document_validator(self, table: str) -> Validator | None:
        s = self.definition
        if s is None or not s.schema_validation:
            return None
        t = s.tables.get(table)
        return None if t is None else t.document

    def undeclared(self, table: str) -> list[str] | None:
        """None when ``table`` may be used; else the declared tables closest to its name (a
        schema with validation declares every table a function may write)."""
        s = self.definition
        if s is None or not s.schema_validation or table in s.tables or table[:1] == "_":
            return None
        return difflib.get_close_matches(table, list(s.tables), n=3, cutoff=0.6)

    def declared_tables(self) -> list[str]:
        """The schema's tables, sorted (none without a schema)."""
        return sorted(self.definition.tables) if self.definition is not None else []

    def index_fields(self, table: str, index: str) -> tuple[str, ...] | None:
        return self._indexes.get(table, {}).get(index)

    def index_names(self, table: str) -> list[str]:
        return list(self._indexes.get(table, {}))

    def search_indexes(self, table: str) -> dict[str, SearchIndexDefinition]:
        """The table's full-text search indexes by name."""
        return self._search_indexes.get(table, {})

    def index_specs(self, table: str) -> list[IndexSpec]:
        return [IndexSpec(n, f) for n, f in self._indexes.get(table, {}).items()]

    def index_paths(self) -> dict[str, list[str]]:
        """Per table, every field path some user index uses (in a stable order)."""
        out: dict[str, list[str]] = {}
        for table, indexes in self._indexes.items():
            paths = list(dict.fromkeys(f for fields in indexes.values() for f in fields))
            if paths:
                out[table] = paths
        return out

    def view_columns(self) -> dict[str, dict[str, str]]:
        """Typed SQL columns per table, from top-level fields of simple types (:func:`sql_type`)."""
        out: dict[str, dict[str, str]] = {}
        if self.definition is None:
            return out
        for name, table in self.definition.tables.items():
            doc = table.document
            if not isinstance(doc, ObjectValidator):
                continue
            out[name] = {f: sql_type(val) for f, val in doc.fields.items()}
        return out


def sql_type(validator: Validator) -> str:
    """The DuckDB type of a top-level field's view column: a string, id, float64 or boolean,
    a literal of one, or a union whose members all have one of these types (string literals:
    VARCHAR, so ``WHERE status = 'done'`` compares text); anything else is JSON.

    >>> from pyconvex import v
    >>> sql_type(v.union(v.literal("todo"), v.literal("done"))), sql_type(v.array(v.string()))
    ('VARCHAR', 'JSON')
    """
    kind = validator.kind
    if kind == "literal":
        value = getattr(validator, "value", None)
        if isinstance(value, bool):
            return "BOOLEAN"
        if isinstance(value, str):
            return "VARCHAR"
        return "DOUBLE" if type(value) is float else "JSON"
    if kind == "union":
        types = {sql_type(m) for m in getattr(validator, "members", ())}
        return types.pop() if len(types) == 1 else "JSON"
    return _SQL_TYPES.get(kind, "JSON")
