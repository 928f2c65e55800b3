"""Index keys and the in-memory sorted index over one table.

A key is the order-preserving encoding of the indexed field values, then ``_creationTime``,
then the document id's ASCII bytes and one byte holding the id's length — so the id can be
read back from the key without a second lookup, and keys of one index are unique per
document version.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sortedcontainers import SortedList

from pyconvex.values import UNSET, encode_key, encode_key_part

Document = dict[str, Any]


def field_value(doc: Document, path: tuple[str, ...]) -> Any:
    """The value at a (possibly nested) field path, or UNSET when any step is missing."""
    value: Any = doc
    for part in path:
        if type(value) is not dict:
            return UNSET
        value = value.get(part, UNSET)
        if value is UNSET:
            return UNSET
    return value


def id_suffix(doc_id: str) -> bytes:
    raw = doc_id.encode("ascii")
    return raw + bytes((len(raw),))


def id_from_key(key: bytes) -> str:
    """Read the document id back from an index key."""
    n = key[-1]
    return key[-1 - n : -1].decode("ascii")


def key_tail(doc: Document) -> bytes:
    """What ends every index key of ``doc``: its ``_creationTime``, its id, the id's length."""
    raw: bytes = doc["_id"].encode("ascii")
    return encode_key_part(doc["_creationTime"]) + raw + bytes((len(raw),))


class IndexSpec:
    """How to compute one index's key from a document."""

    __slots__ = ("fields", "name", "paths", "top_level")

    def __init__(self, name: str, fields: tuple[str, ...]) -> None:
        self.name = name
        self.fields = fields
        self.paths = tuple(tuple(f.split(".")) for f in fields)
        # Most index fields are top-level: read them with one dict lookup.
        self.top_level = all(len(p) == 1 for p in self.paths)

    def values(self, doc: Document) -> list[Any]:
        out = [field_value(doc, p) for p in self.paths]
        out.append(doc["_creationTime"])
        return out

    def key(self, doc: Document) -> bytes:
        return self.key_with_tail(doc, key_tail(doc))

    def key_with_tail(self, doc: Document, tail: bytes) -> bytes:
        """:meth:`key` given the document's :func:`key_tail` (the same for every index, so
        a write computes it once)."""
        fields = self.fields
        if not fields:
            return tail
        if self.top_level:
            get = doc.get
            if len(fields) == 1:
                return encode_key_part(get(fields[0], UNSET)) + tail
            return b"".join([encode_key_part(get(f, UNSET)) for f in fields]) + tail
        return encode_key([field_value(doc, p) for p in self.paths]) + tail

    def __repr__(self) -> str:
        return f"IndexSpec({self.name!r}, {list(self.fields)!r})"


class MemoryIndex:
    """A sorted set of index keys. Holds one key per distinct version still retained."""

    __slots__ = ("keys", "spec")

    def __init__(self, spec: IndexSpec, keys: list[bytes] | None = None) -> None:
        """``keys`` must be sorted and distinct."""
        self.spec = spec
        # Re-sorting sorted input is one linear pass (timsort).
        self.keys: SortedList = SortedList(keys or ())

    def add(self, key: bytes) -> None:
        keys = self.keys
        i = keys.bisect_left(key)
        if i == len(keys) or keys[i] != key:
            keys.add(key)

    def append_greater(self, keys: list[bytes]) -> bool:
        """Add sorted, distinct ``keys`` that all sort after every key held, in time linear in
        ``keys`` alone (``SortedList.update`` re-sorts everything once they are a quarter of
        it): an import's keys into a new table, a chunk per loop turn. Returns False, doing
        nothing, if they do not sort after."""
        held = self.keys
        if not keys:
            return True
        if held and not keys[0] > held[-1]:
            return False
        # SortedList's own layout (sortedcontainers 2.4, as ``update`` fills an empty list):
        # sublists of at most ``_load`` keys, their maxima, the length; the positional index
        # is rebuilt on its next use.
        load = held._load
        parts = [keys[pos : pos + load] for pos in range(0, len(keys), load)]
        held._lists.extend(parts)
        held._maxes.extend(part[-1] for part in parts)
        held._len += len(keys)
        del held._index[:]
        return True

    def discard(self, key: bytes) -> None:
        self.keys.discard(key)

    def scan(self, lo: bytes | None, hi: bytes | None, reverse: bool) -> Iterator[bytes]:
        """Keys in [lo, hi) (None = unbounded), ascending or descending."""
        return self.keys.irange(lo, hi, (True, False), reverse)  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self.keys)
