"""Checking an import's rows, a chunk at a time: schema, system fields, index keys.

:class:`RowChecker` turns one chunk of a table's parsed rows into documents ready for the
store — each (a CSV / Parquet row: its cells read back by :class:`~.columns.CellReader`)
validated against the table's schema, with its ``_id`` (kept from a snapshot, else
minted) and ``_creationTime``, its key in every index and its write-set entry — or raises
:class:`ImportRefused` naming the first bad row's file, line and field.

An import checks a million rows this way, so the per-row Python is kept to what a row needs:

* rows of a flat schema (every field a string, float64, boolean, null, bytes or int64, or
  ``v.any()`` holding one of those) are checked by type alone (:func:`plain_row_check`); a row
  that fails it goes through the validator, which accepts or names the field;
* ids are minted per chunk (:func:`~.ids.mint_ids`), creation times given out in one run, and
  the ``by_creation_time`` keys (creation time, id) built by column (:func:`creation_keys`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from itertools import repeat
from typing import Any

from pyconvex.errors import PyconvexError, ValidationError
from pyconvex.runtime.data.columns import CellReader
from pyconvex.runtime.data.import_files import ImportRefused, Source
from pyconvex.runtime.store.index import IndexSpec, key_tail
from pyconvex.runtime.store.read_set import WriteEntry
from pyconvex.values import Int64, encode_float_part
from pyconvex.values.compound_validators import ObjectValidator
from pyconvex.values.id_minting import mint_ids
from pyconvex.values.ids import decode_id
from pyconvex.values.scalar_validators import (
    AnyValidator,
    BooleanValidator,
    BytesValidator,
    Float64Validator,
    Int64Validator,
    NullValidator,
    StringValidator,
)
from pyconvex.values.validator import Validator

Row = dict[str, Any]

#: The Python types each simple validator returns unchanged.
_PLAIN_TYPES: dict[type[Validator], frozenset[type]] = {
    StringValidator: frozenset({str}),
    Float64Validator: frozenset({float}),
    BooleanValidator: frozenset({bool}),
    NullValidator: frozenset({type(None)}),
    BytesValidator: frozenset({bytes}),
    Int64Validator: frozenset({Int64}),
    AnyValidator: frozenset({str, float, bool, type(None), Int64}),
}


def plain_row_check(validator: Validator | None) -> Callable[[Row], bool] | None:
    """For an object validator whose fields are all simple: a test that passes exactly the
    rows the validator would return unchanged — the right fields, each of a type its validator
    keeps as it is. None for other validators (every row then goes through the validator).

    >>> from pyconvex import v
    >>> check = plain_row_check(v.object({"a": v.string(), "b": v.optional(v.float64())}))
    >>> check({"a": "x"}), check({"a": "x", "b": 1.0}), check({"a": "x", "b": 1})
    (True, True, False)
    """
    if type(validator) is not ObjectValidator:
        return None
    types = {}
    for name, field in validator.fields.items():
        allowed = _PLAIN_TYPES.get(type(field))
        if allowed is None:
            return None
        types[name] = allowed
    required = frozenset(n for n, f in validator.fields.items() if not f.is_optional)
    if len(required) == len(types):
        keys = types.keys()

        def exact(row: Row) -> bool:
            if row.keys() != keys:
                return False
            return all(type(value) in types[key] for key, value in row.items())

        return exact

    def with_optional(row: Row) -> bool:
        for key, value in row.items():
            allowed = types.get(key)
            if allowed is None or type(value) not in allowed:
                return False
        return required <= row.keys()

    return with_optional


_TOP_BIT = bytes(b | 0x80 for b in range(256))
_FLOAT_TAG = encode_float_part(1.0)[:1]


def creation_keys(ids: list[str], creation_times: list[float]) -> list[bytes]:
    """:func:`~pyconvex.runtime.store.index.key_tail` of each (id, creation time): the
    ``by_creation_time`` key. Built by column when the ids have one length and the times are
    positive (a positive float's key is its big-endian bits with the sign bit set)."""
    count = len(ids)
    lengths = set(map(len, ids))
    if count == 0 or len(lengths) != 1 or not min(creation_times) > 0.0:
        return [
            key_tail({"_id": i, "_creationTime": t})
            for i, t in zip(ids, creation_times, strict=True)
        ]
    width = lengths.pop()
    bits = bytearray(struct.pack(f">{count}d", *creation_times))
    bits[0::8] = bits[0::8].translate(_TOP_BIT)
    raw = "".join(ids).encode("ascii")
    size = 1 + 8 + width + 1
    keys = bytearray(size * count)
    keys[0::size] = _FLOAT_TAG * count
    for b in range(8):
        keys[1 + b :: size] = bits[b::8]
    for c in range(width):
        keys[9 + c :: size] = raw[c::width]
    keys[size - 1 :: size] = bytes((width,)) * count
    whole = bytes(keys)
    return [whole[i : i + size] for i in range(0, size * count, size)]


class RowChecker:
    """Checks one table's rows, chunk by chunk (see the module docstring)."""

    def __init__(
        self,
        table: str,
        number: int,
        source: Source,
        validator: Validator | None,
        specs: dict[str, IndexSpec],
        creation_time: Callable[[float], float],
        now_ms: float,
        keyless: bool = False,
    ) -> None:
        """``keyless``: write-set entries without index keys (a bulk write, invalidated per
        table: see ``WriteSet.bulk``), a quarter of the objects to make and free."""
        self.table = table
        self.keyless = keyless
        self.number = number
        self.source = source
        self.validator = validator
        self.plain = plain_row_check(validator)
        #: A CSV / Parquet file's cells read back into fields, by the schema's column types.
        self.cells = CellReader(validator, source.cells) if source.cells else None
        self.specs = specs
        self._creation_time = creation_time
        self._now_ms = now_ms
        #: Every ``_id`` checked so far (a snapshot's ids must not repeat).
        self.ids: set[str] = set()

    def check(
        self, chunk: list[tuple[int, Row]]
    ) -> tuple[list[Row], dict[str, list[bytes]], list[WriteEntry]]:
        """The chunk's documents (the rows, taken apart in place), each index's keys of them
        (in document order) and their write-set entries; raises :class:`ImportRefused`."""
        plain = self.plain
        read = self.cells.read if self.cells is not None else None
        docs: list[Row] = []
        # Rows given their _id / _creationTime (a snapshot): position -> value.
        given_ids: dict[int, str] = {}
        given_times: dict[int, float] = {}
        for position, row in chunk:
            if read is not None:
                row = read(row)
            if plain is not None and plain(row):
                docs.append(row)
                continue
            doc, doc_id, created = self._check_row(row, position)
            if doc_id is not None:
                given_ids[len(docs)] = doc_id
            if created is not None:
                given_times[len(docs)] = created
            docs.append(doc)
        ids = self._ids(docs, given_ids)
        times = self._times(len(docs), given_times)
        for doc, doc_id, created in zip(docs, ids, times, strict=True):
            doc["_id"] = doc_id  # system fields last, as an insert writes them
            doc["_creationTime"] = created
        tails = creation_keys(ids, times)
        keys = {
            name: tails if not spec.fields else list(map(spec.key_with_tail, docs, tails))
            for name, spec in self.specs.items()
        }
        pairs: Iterator[tuple[tuple[str, bytes], ...]] = (
            repeat((), len(ids))
            if self.keyless
            else zip(
                *[zip(repeat(name), column, strict=False) for name, column in keys.items()],
                strict=True,
            )
        )
        # WriteEntry(table, id, keys) built in C (a NamedTuple's __new__ is Python).
        new = tuple.__new__
        entries = [new(WriteEntry, e) for e in zip(repeat(self.table), ids, pairs, strict=False)]
        return docs, keys, entries

    def _ids(self, docs: list[Row], given: dict[int, str]) -> list[str]:
        seen = self.ids
        fresh = mint_ids(self.number, len(docs) - len(given))
        if not given:
            seen.update(fresh)
            return fresh
        minted = iter(fresh)
        ids = [given[i] if i in given else next(minted) for i in range(len(docs))]
        seen.update(fresh)
        return ids

    def _times(self, count: int, given: dict[int, float]) -> list[float]:
        needed = count - len(given)
        times: list[float] = []
        if needed:
            first = self._creation_time(self._now_ms)
            times = [first + 0.001 * i for i in range(needed)]
            # Creation times strictly increase (the store's clock goes on after the last).
            self._creation_time(times[-1])
        if not given:
            return times
        made = iter(times)
        return [given[i] if i in given else next(made) for i in range(count)]

    def _check_row(self, row: Row, position: int) -> tuple[Row, str | None, float | None]:
        """One row through the validator, its given ``_id`` and ``_creationTime`` checked."""
        source, table, seen = self.source, self.table, self.ids
        doc = row  # (parsed for this import alone: taken apart in place)
        doc_id = doc.pop("_id", None)
        created = doc.pop("_creationTime", None)
        if doc_id is not None:
            try:
                decoded = decode_id(doc_id)[0] if isinstance(doc_id, str) else None
            except (PyconvexError, ValueError):
                decoded = None
            if decoded != self.number:
                raise ImportRefused(
                    "BadRow",
                    f"{source.where(position)}: field _id: {doc_id!r} is not an id of table "
                    f"{table!r}.",
                )
            if doc_id in seen:
                raise ImportRefused(
                    "DuplicateId", f"{source.where(position)}: field _id: {doc_id} appears twice."
                )
            seen.add(doc_id)
        if created is not None and (not isinstance(created, float | int) or created != created):
            raise ImportRefused(
                "BadRow", f"{source.where(position)}: field _creationTime must be a number."
            )
        if self.validator is not None:
            try:
                checked: Any = self.validator.validate(doc)  # (an object validator: a dict)
                doc = checked
            except ValidationError as e:
                field_name = (e.path or "").lstrip(".") or "(the document)"
                raise ImportRefused(
                    "BadRow", f"{source.where(position)}: field {field_name}: {e.convex}"
                ) from None
        return doc, doc_id, float(created) if created is not None else None
