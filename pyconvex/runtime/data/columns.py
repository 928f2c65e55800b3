"""Typed columns of a table, from its schema: how documents become Arrow record batches.

Every table has ``_id`` (VARCHAR) and ``_creationTime`` (DOUBLE), then one column per top-level
field its schema declares: ``v.string()`` / ``v.id()`` -> VARCHAR, ``v.float64()`` -> DOUBLE,
``v.int64()`` -> BIGINT, ``v.boolean()`` -> BOOLEAN, ``v.bytes()`` -> BLOB, a literal -> the type of
its value; a union, object, array, record or ``any`` field is JSON text (Convex's export JSON).
A field the schema does not declare (no schema, or a table outside it) is a JSON column too,
named after the documents that hold it. ``optional`` changes nothing: a missing field is NULL.

Used by ``pyconvex sql`` (the columnar snapshot, :mod:`.mirror`) and by CSV / Parquet exports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from pyconvex.values import Int64
from pyconvex.values.encoding import encode_export
from pyconvex.values.validators import ObjectValidator, Validator

#: Column kind -> (DuckDB type, Arrow type).
KINDS: dict[str, tuple[str, pa.DataType]] = {
    "string": ("VARCHAR", pa.string()),
    "float64": ("DOUBLE", pa.float64()),
    "int64": ("BIGINT", pa.int64()),
    "boolean": ("BOOLEAN", pa.bool_()),
    "bytes": ("BLOB", pa.binary()),
    "json": ("JSON", pa.string()),
}
SYSTEM = {"_id": "string", "_creationTime": "float64"}
_SCALAR = {"string": "string", "id": "string", "float64": "float64", "int64": "int64",
           "boolean": "boolean", "bytes": "bytes"}  # fmt: skip


def field_kind(v: Validator) -> str:
    """The column kind of one schema field (see the module docstring)."""
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
    return _SCALAR.get(kind, "json")


def schema_kinds(validator: Validator | None) -> dict[str, str]:
    """``{field: kind}`` for the system fields and every field the schema declares."""
    kinds = dict(SYSTEM)
    if isinstance(validator, ObjectValidator):
        for name, v in validator.fields.items():
            if name not in kinds:
                kinds[name] = field_kind(v)
    return kinds


class TableColumns:
    """The columns of one table; ``extend`` adds a JSON column for an undeclared field."""

    def __init__(self, kinds: dict[str, str]) -> None:
        self.kinds = dict(kinds)

    def extend(self, docs: Iterable[dict[str, Any]]) -> list[str]:
        """Add a JSON column for each field of ``docs`` not yet a column; returns them."""
        kinds = self.kinds
        added: list[str] = []
        for d in docs:
            for name in d:
                if name not in kinds:
                    kinds[name] = "json"
                    added.append(name)
        return added

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([(n, KINDS[k][1]) for n, k in self.kinds.items()])

    def sql_types(self) -> dict[str, str]:
        return {n: KINDS[k][0] for n, k in self.kinds.items()}

    def record_batch(
        self, docs: list[dict[str, Any]], *, validated: bool = False
    ) -> pa.RecordBatch:
        """``docs`` as one record batch of these columns (a value of another type than its
        column's, which only a table without schema validation can hold, is NULL).
        ``validated``: the schema checked every document, so the typed columns' values are of
        their type and go to Arrow as they are."""
        arrays = []
        for name, kind in self.kinds.items():
            arrow_type = KINDS[kind][1]
            if validated and kind != "json":
                arrays.append(pa.array([d.get(name) for d in docs], arrow_type))
            else:
                arrays.append(pa.array(column_values(docs, name, kind), arrow_type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.arrow_schema())


def column_values(docs: list[dict[str, Any]], name: str, kind: str) -> list[Any]:
    """The values of field ``name`` of ``docs`` as column ``kind`` holds them."""
    values = [d.get(name) for d in docs]
    if kind == "string":
        return [v if type(v) is str else None for v in values]
    if kind == "float64":
        return [v if type(v) is float else None for v in values]
    if kind == "int64":
        return [int(v) if type(v) is Int64 else None for v in values]
    if kind == "boolean":
        return [v if type(v) is bool else None for v in values]
    if kind == "bytes":
        return [v if type(v) is bytes else None for v in values]
    dumps = json.dumps
    return [
        None if name not in d else dumps(encode_export(v), ensure_ascii=False)
        for d, v in zip(docs, values, strict=True)
    ]
