"""Schema definitions: ``define_schema`` and ``define_table`` (Convex's ``schema.ts`` in Python)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyconvex.errors import SchemaError
from pyconvex.values.validators import ObjectValidator, Validator, v

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_FIELD_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
RESERVED_INDEXES = ("by_id", "by_creation_time")


@dataclass(frozen=True, slots=True)
class IndexDefinition:
    """A database index: ``fields`` in order; ``_creationTime`` and ``_id`` follow implicitly."""

    name: str
    fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SearchIndexDefinition:
    """A full-text search index over one string field, with equality filter fields."""

    name: str
    search_field: str
    filter_fields: tuple[str, ...] = ()


@dataclass(slots=True)
class TableDefinition:
    """One table of the schema. Build it with :func:`define_table`::

    define_table({"name": v.string()}).index("by_name", ["name"])
    """

    document: Validator
    indexes: list[IndexDefinition] = field(default_factory=list)
    search_indexes: list[SearchIndexDefinition] = field(default_factory=list)

    def _check_new_index_name(self, name: str) -> None:
        if not _NAME.match(name):
            raise SchemaError(
                f"Index name {name!r} is invalid: use letters, digits and underscores, "
                "starting with a letter, at most 64 characters."
            )
        if name in RESERVED_INDEXES:
            raise SchemaError(
                f"Index name {name!r} is reserved (built-in indexes: by_id, by_creation_time)."
            )
        if any(i.name == name for i in self.indexes) or any(
            s.name == name for s in self.search_indexes
        ):
            raise SchemaError(f"Index {name!r} is defined twice on the same table.")

    @staticmethod
    def _check_field_path(index: str, path: str) -> None:
        if not isinstance(path, str) or not _FIELD_PATH.match(path):
            raise SchemaError(
                f"Index {index!r}: field {path!r} is not a valid field path "
                "(names joined by '.', e.g. 'settings.visibility')."
            )
        if path in ("_id", "_creationTime"):
            raise SchemaError(
                f"Index {index!r}: {path!r} must not be listed; every index ends with "
                "_creationTime and _id implicitly."
            )

    def index(self, name: str, fields: Sequence[str]) -> TableDefinition:
        """Add an index on ``fields`` (a prefix of which queries can match with ``eq``)::

        define_table({...}).index("by_channel", ["channel", "author"])
        """
        self._check_new_index_name(name)
        if isinstance(fields, str):
            raise SchemaError(f"Index {name!r}: fields must be a list, e.g. [{fields!r}].")
        fields_t = tuple(fields)
        if not fields_t:
            raise SchemaError(f"Index {name!r} needs at least one field.")
        if len(set(fields_t)) != len(fields_t):
            raise SchemaError(f"Index {name!r} lists a field twice: {list(fields_t)}.")
        for f in fields_t:
            self._check_field_path(name, f)
        self.indexes.append(IndexDefinition(name, fields_t))
        return self

    def search_index(
        self, name: str, *, search_field: str, filter_fields: Iterable[str] = ()
    ) -> TableDefinition:
        """Declare a full-text search index::

        define_table({...}).search_index("search_body", search_field="body",
                                         filter_fields=["channel"])
        """
        self._check_new_index_name(name)
        self._check_field_path(name, search_field)
        filters = tuple(filter_fields)
        for f in filters:
            self._check_field_path(name, f)
        self.search_indexes.append(SearchIndexDefinition(name, search_field, filters))
        return self

    def to_json(self) -> dict[str, Any]:
        """The table's definition as JSON (for diffs, codegen and the dashboard)."""
        return {
            "documentType": self.document.to_json(),
            "indexes": [
                {"indexDescriptor": i.name, "fields": list(i.fields)} for i in self.indexes
            ],
            "searchIndexes": [
                {
                    "indexDescriptor": s.name,
                    "searchField": s.search_field,
                    "filterFields": list(s.filter_fields),
                }
                for s in self.search_indexes
            ],
        }


def define_table(document: Mapping[str, Validator] | Validator) -> TableDefinition:
    """Define a table from its document fields (a dict of validators or an object validator)::

    define_table({"channel": v.id("channels"), "body": v.string()})
    """
    if isinstance(document, Mapping):
        validator: Validator = v.object(dict(document))
    elif isinstance(document, Validator):
        validator = document
    else:
        raise SchemaError(
            f"define_table() takes a dict of validators or a validator, got {type(document).__name__}."
        )
    if validator.kind not in ("object", "union", "any"):
        raise SchemaError(
            f"A table's document must be v.object(...), a union of objects or v.any(), got {validator!r}."
        )
    if isinstance(validator, ObjectValidator):
        for name in validator.fields:
            if name.startswith("_"):
                raise SchemaError(
                    f"Field {name!r}: top-level fields starting with '_' are reserved for system "
                    "fields (_id, _creationTime)."
                )
    return TableDefinition(validator)


@dataclass(slots=True)
class SchemaDefinition:
    """The whole schema: tables by name. Build it with :func:`define_schema`."""

    tables: dict[str, TableDefinition]
    schema_validation: bool = True

    def to_json(self) -> dict[str, Any]:
        """The schema as JSON (stable key order)."""
        return {
            "tables": [{"tableName": n, **t.to_json()} for n, t in sorted(self.tables.items())],
            "schemaValidation": self.schema_validation,
        }


def define_schema(
    tables: Mapping[str, TableDefinition], *, schema_validation: bool = True
) -> SchemaDefinition:
    """Define the deployment's schema (``schema = define_schema({...})`` in ``convex/schema.py``)::

        schema = define_schema({"messages": define_table({"body": v.string()})})

    With ``schema_validation=False`` documents are not checked against their validators (indexes
    still apply).
    """
    out: dict[str, TableDefinition] = {}
    for name, table in tables.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise SchemaError(
                f"Table name {name!r} is invalid: use letters, digits and underscores, starting "
                "with a letter (names starting with '_' are system tables)."
            )
        if not isinstance(table, TableDefinition):
            raise SchemaError(
                f"Table {name!r}: expected define_table(...), got {type(table).__name__}."
            )
        out[name] = table
    return SchemaDefinition(out, schema_validation)
