"""The schema as the engine uses it: validators, index specs, SQL view columns per table."""

from __future__ import annotations

import difflib

from pyconvex.runtime.store.index import IndexSpec
from pyconvex.server.schema import SchemaDefinition, SearchIndexDefinition
from pyconvex.values import Int64
from pyconvex.values.validators import ObjectValidator, Validator

#: The view column types (other kinds are JSON in the views).
_SQL_TYPES = {"string": "VARCHAR", "float64": "DOUBLE", "boolean": "BOOLEAN"}
_SCALAR = {"string": "string", "id": "string", "float64": "float64", "int64": "int64",
           "boolean": "boolean", "bytes": "bytes"}  # fmt: skip


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


def column_kind(v: Validator) -> str:
    """The column kind of one top-level schema field: string (ids too), float64, int64,
    boolean, bytes, a literal of one, or a union whose members all have one kind (string
    literals: string, so ``WHERE status = 'done'`` compares text); anything else json."""
    kind = v.kind  # (v.optional keeps the kind and marks it optional)
    if kind == "literal":
        value = getattr(v, "value", None)
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, Int64):
            return "int64"
        if isinstance(value, float):
            return "float64"
        return "string"
    if kind == "union":
        members = {column_kind(m) for m in getattr(v, "members", ())}
        return members.pop() if len(members) == 1 else "json"
    return _SCALAR.get(kind, "json")


def sql_type(validator: Validator) -> str:
    """The DuckDB type of a top-level field's view column (:func:`column_kind`; int64 and bytes
    are JSON in the views).

    >>> from pyconvex import v
    >>> sql_type(v.union(v.literal("todo"), v.literal("done"))), sql_type(v.array(v.string()))
    ('VARCHAR', 'JSON')
    """
    return _SQL_TYPES.get(column_kind(validator), "JSON")
