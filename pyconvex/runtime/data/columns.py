"""Typed columns of a table, from its schema: how documents become Arrow record batches.

Every table has ``_id`` (VARCHAR) and ``_creationTime`` (DOUBLE), then one column per top-level
field its schema declares: ``v.string()`` / ``v.id()`` -> VARCHAR, ``v.float64()`` -> DOUBLE,
``v.int64()`` -> BIGINT, ``v.boolean()`` -> BOOLEAN, ``v.bytes()`` -> BLOB, a literal -> the type of
its value, a union whose members all have one of those types (``v.union(v.literal("todo"),
v.literal("done"))``: VARCHAR) -> that type; any other union, object, array, record, null or
``any`` field is JSON text (Convex's export JSON: an int64 a bare integer, a float64 a number
with a decimal point, bytes ``{"$bytes": base64}``). A field the schema does not declare (no
schema, or a table outside it) is a JSON column too, named after the documents that hold it.
``optional`` changes nothing: a missing field is NULL.

Used by ``pyconvex sql`` (the columnar snapshot, :mod:`.mirror`) and by CSV / Parquet exports;
:class:`CellReader` reads such a file's cells back into the values (``pyconvex import``).
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode
from collections.abc import Callable, Iterable
from typing import Any

import pyarrow as pa

from pyconvex.errors import PyconvexError, ValidationError
from pyconvex.runtime.store.schema_state import column_kind
from pyconvex.values import Int64
from pyconvex.values.encoding import decode_export, encode_export
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


def schema_kinds(validator: Validator | None) -> dict[str, str]:
    """``{field: kind}`` for the system fields and every field the schema declares."""
    kinds = dict(SYSTEM)
    if isinstance(validator, ObjectValidator):
        for name, v in validator.fields.items():
            if name not in kinds:
                kinds[name] = column_kind(v)
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


# -- Reading an exported file's cells back (``pyconvex import`` of CSV / Parquet) ----------

#: A cell that stands for a missing field.
ABSENT: Any = object()
_EXPORT_JSON = json.JSONDecoder(parse_int=Int64)
_BOOLEANS = {"true": True, "false": False}


def csv_cell(text: str) -> Any:
    """A CSV cell as Convex's import reads it: a float64 if it parses as a number, else the
    string.

    >>> csv_cell("36"), csv_cell("Ada")
    (36.0, 'Ada')
    """
    try:
        return float(text)
    except ValueError:
        return text


def _csv_int64(text: str) -> Any:
    try:
        return Int64(int(text))
    except (ValueError, PyconvexError):
        return csv_cell(text)


def _csv_boolean(text: str) -> Any:
    value = _BOOLEANS.get(text.lower())
    return csv_cell(text) if value is None else value


def _csv_bytes(text: str) -> Any:
    try:
        return b64decode(text, validate=True)  # (CSV exports write bytes as base64)
    except (binascii.Error, ValueError):
        return text


def _json_cell(field: Validator, plain: Callable[[str], Any]) -> Callable[[str], Any]:
    """A JSON column's cell: the value whose export JSON it is. Text that is not JSON, or a
    scalar the field refuses where ``plain`` (CSV: Convex's reading, a number or a string;
    Parquet: the text) gives a value it takes (``12`` or ``true`` typed into a
    ``v.union(v.float64(), v.string())`` field), is read by ``plain``."""

    def read(text: str) -> Any:
        try:
            value = decode_export(_EXPORT_JSON.decode(text))
        except (ValueError, PyconvexError):
            return plain(text)
        if isinstance(value, dict | list):
            return value
        other = plain(text)
        return other if not _accepts(field, value) and _accepts(field, other) else value

    return read


def _accepts(field: Validator, value: Any) -> bool:
    try:
        field.validate(value)
    except ValidationError:
        return False
    return True


_CSV_READERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "float64": csv_cell,  # (also "nan", "inf": how a DOUBLE column writes them)
    "int64": _csv_int64,
    "boolean": _csv_boolean,
    "bytes": _csv_bytes,
}


class CellReader:
    """The rows of a CSV or Parquet file (``fmt``) as documents of a table whose schema is
    ``validator``: each declared field's cell read back as its typed column was written (the
    inverse of :meth:`TableColumns.record_batch` and the CSV export's base64 bytes):

    * CSV cells are text: a string field's stays text (``"123"`` too), a float64 / int64 /
      boolean / bytes field's is parsed, a JSON column's (objects, arrays, other unions,
      ``v.any()``, null) decoded from export JSON; an empty cell of an optional field is a
      missing field (as Convex's import drops empty strings of optional fields). A column the
      schema does not declare is read as Convex reads CSV: a float64 if it is a number.
    * Parquet cells are typed already (a null is a missing field); a declared JSON column's
      text is decoded.

    >>> from pyconvex import v
    >>> schema = v.object({"tags": v.array(v.string()), "due": v.optional(v.float64())})
    >>> CellReader(schema, "csv").read({"tags": '["a"]', "due": "", "note": "7"})
    {'tags': ['a'], 'note': 7.0}
    """

    def __init__(self, validator: Validator | None, fmt: str) -> None:
        self.csv = fmt == "csv"
        fields = validator.fields if isinstance(validator, ObjectValidator) else {}
        self.readers: dict[str, Callable[[Any], Any]] = {}
        for name, kind in schema_kinds(validator).items():
            field = fields.get(name)
            if kind == "json" and field is not None:
                reader = _json_cell(field, csv_cell if self.csv else str)
            elif self.csv:
                reader = _CSV_READERS[kind]
            else:
                continue  # a typed Parquet column: its values are the field's already
            if self.csv and field is not None and field.is_optional:
                reader = _optional(reader)
            self.readers[name] = reader

    def read(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row``'s cells as the document's fields (a new dict)."""
        readers = self.readers
        if self.csv:
            out = {}
            plain: Callable[[Any], Any] = csv_cell
            for name, cell in row.items():
                value = readers.get(name, plain)(cell)
                if value is not ABSENT:
                    out[name] = value
            return out
        return {
            name: readers[name](cell) if name in readers and type(cell) is str else cell
            for name, cell in row.items()
        }


def _optional(read: Callable[[str], Any]) -> Callable[[str], Any]:
    def optional(text: str) -> Any:
        return ABSENT if text == "" else read(text)

    return optional
