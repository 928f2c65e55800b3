"""Read sets and write sets: what a transaction looked at and what a commit changed.

A query's read set is the index key ranges it scanned (cut at the last key it actually used,
so ``take(10)`` does not depend on the 11th row) and the ids it fetched with ``get``. A commit's
write set is, per written document, its old and new key in every index of its table. A
subscription is invalidated exactly when some written key falls inside some read range.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

#: Documents past which a write is a bulk write (``WriteSet.bulk``): subscriptions are
#: invalidated per table, not key by key.
BULK_WRITES = 10_000


class WriteEntry(NamedTuple):
    """One written document: its table, id, and (index name, key) for old and new versions."""

    table: str
    doc_id: str
    keys: tuple[tuple[str, bytes], ...]


@dataclass(slots=True)
class WriteSet:
    """Everything one commit wrote."""

    entries: list[WriteEntry] = field(default_factory=list)
    #: The tables of ``entries``, when the writer knows them (a bulk write: an import), so
    #: that listeners need not go through a million entries to find them.
    known_tables: frozenset[str] | None = None
    #: A bulk write (an import of more than ``BULK_WRITES`` documents): its entries may carry
    #: no keys, and what read any of its tables is invalidated.
    bulk: bool = False

    def tables(self) -> frozenset[str]:
        """The tables written (worked out once: a write set does not change once made)."""
        if self.known_tables is None:
            self.known_tables = frozenset(e.table for e in self.entries)
        return self.known_tables

    def __len__(self) -> int:
        return len(self.entries)


@dataclass(slots=True, frozen=True)
class Commit:
    """A durable commit, as announced to commit listeners (one per durable batch entry)."""

    ts: int
    writes: WriteSet


CommitListener = Callable[[int, "list[Commit]"], None]
"""Called on the event loop after a batch became durable: (new latest ts, commits in ts order)."""


class KeyRange(NamedTuple):
    """Keys ``lo <= k < hi`` of one index (``hi`` None: unbounded above)."""

    lo: bytes
    hi: bytes | None

    def contains(self, key: bytes) -> bool:
        return self.lo <= key and (self.hi is None or key < self.hi)


def _range_order(r: KeyRange) -> tuple[bytes, bool, bytes]:
    return (r.lo, r.hi is None, r.hi or b"")


class ReadSet:
    """What one query (or mutation) read: index ranges and document ids.

    ``ranges`` maps ``(table, index)`` to its key ranges; ``ids`` holds ids read by ``get``.
    """

    __slots__ = ("_los", "_sorted", "ids", "ranges")

    def __init__(self) -> None:
        self.ranges: dict[tuple[str, str], list[KeyRange]] = {}
        self.ids: set[str] = set()
        self._los: dict[tuple[str, str], list[bytes]] = {}
        self._sorted = True

    def add_range(self, table: str, index: str, lo: bytes | None, hi: bytes | None) -> None:
        if hi is not None and lo is not None and hi <= lo:
            return
        self.ranges.setdefault((table, index), []).append(KeyRange(lo or b"", hi))
        self._sorted = False

    def add_id(self, doc_id: str) -> None:
        self.ids.add(doc_id)

    def merge(self, other: ReadSet) -> None:
        for k, rs in other.ranges.items():
            self.ranges.setdefault(k, []).extend(rs)
        self.ids |= other.ids
        self._sorted = False

    def _normalize(self) -> None:
        # Merge overlapping ranges so containment is one bisect per (index, key).
        for k, rs in self.ranges.items():
            # By start, then end with "unbounded" last (None does not compare with bytes: two
            # scans from the same start, one of them to the end, are common).
            rs.sort(key=_range_order)
            merged: list[KeyRange] = []
            for r in rs:
                if merged:
                    last = merged[-1]
                    if last.hi is None or r.lo <= last.hi:
                        hi = None if (last.hi is None or r.hi is None) else max(last.hi, r.hi)
                        merged[-1] = KeyRange(last.lo, hi)
                        continue
                merged.append(r)
            self.ranges[k] = merged
            self._los[k] = [r.lo for r in merged]
        self._sorted = True

    def contains_key(self, table: str, index: str, key: bytes) -> bool:
        if not self._sorted:
            self._normalize()
        rs = self.ranges.get((table, index))
        if not rs:
            return False
        # The candidate is the last range starting at or before key; check its upper end.
        i = bisect_right(self._los[(table, index)], key) - 1
        return i >= 0 and rs[i].contains(key)

    def intersects(self, writes: WriteSet) -> bool:
        """Whether any write in ``writes`` falls inside this read set."""
        ids = self.ids
        ranges = self.ranges
        for entry in writes.entries:
            if entry.doc_id in ids:
                return True
            table = entry.table
            for index, key in entry.keys:
                if (table, index) in ranges and self.contains_key(table, index, key):
                    return True
        return False

    def __repr__(self) -> str:
        n = sum(len(r) for r in self.ranges.values())
        return f"ReadSet({n} ranges over {sorted(self.ranges)}, {len(self.ids)} ids)"
