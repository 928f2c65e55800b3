"""The in-memory, timestamp-versioned document store.

Every table keeps its head documents in a dict and its indexes as sorted key sets. Versions
written recently (after the garbage-collection horizon) are also kept per document in
``history`` as ``[(ts, doc_or_None), ...]`` ascending, the first entry (ts 0) being the version
that was current before them; a reader at snapshot ``ts`` resolves a document through it. A
document absent from ``history`` has one version, visible to every retained snapshot, and its
index keys are exactly its current ones — which keeps the common read path a dict lookup.

Mutations run one at a time on the event loop and write straight into the head at their
commit timestamp (chosen when they start); queries read at the durable timestamp, so they
never see a write before it is durable. A failed mutation, or a batch DuckDB refused, is undone
with :meth:`Store.undo`.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, Protocol, cast

from pyconvex.runtime.store.index import Document, IndexSpec, MemoryIndex, id_from_key, key_tail
from pyconvex.runtime.store.read_set import WriteEntry
from pyconvex.values import UNSET, encode_float_part, encode_key_part, loads_value

_loads = json.loads


def parse_document(text: str) -> Document:
    """A stored document's JSON text as a document (plain JSON unless it has $-forms)."""
    doc: Document = loads_value(text) if '"$' in text else _loads(text)  # type: ignore[assignment]
    return doc


class WriteObserver(Protocol):
    """Derived data kept current by every write to a table (the search indexes of
    ``search_index.py``): the store calls it and never imports it."""

    def on_write(self, doc_id: str, prev: Document | None, new: Document | None, ts: int) -> None:
        """A new head version of ``doc_id`` at ``ts`` (``new`` None: deleted)."""

    def write_keys(
        self, doc_id: str, old: Document | None, new: Document | None
    ) -> list[tuple[str, bytes]]:
        """Invalidation keys ``(index name, key)`` of a committed write, for its write set."""


BY_ID = "by_id"
BY_CREATION_TIME = "by_creation_time"
HEAD = None  # snapshot "ts" meaning: the head, including writes not yet durable

# Table numbers of the system tables (user tables are numbered from FIRST_USER_TABLE up).
SYSTEM_TABLES = {"_storage": 1, "_scheduled_functions": 2}
FIRST_USER_TABLE = 10  # ids stay 31 characters long for table numbers < 128


@dataclass(slots=True)
class TableState:
    """One table: head documents, retained history, and its indexes."""

    name: str
    number: int
    #: Head documents. Loaded from disk they stay JSON text (a third of the memory) until first
    #: read; ``doc()`` parses and keeps the parsed form.
    docs: dict[str, Document | str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    history: dict[str, list[tuple[int, Document | None]]] = field(default_factory=dict)
    indexes: dict[str, MemoryIndex] = field(default_factory=dict)
    #: Full-text search indexes (search_index.py), attached on the table's first search.
    search: WriteObserver | None = None

    def __post_init__(self) -> None:
        if BY_CREATION_TIME not in self.indexes:
            self.indexes[BY_CREATION_TIME] = MemoryIndex(IndexSpec(BY_CREATION_TIME, ()))

    @property
    def is_system(self) -> bool:
        return self.name.startswith("_")

    def doc(self, doc_id: str) -> Document | None:
        """The head version of a document, parsed."""
        d = self.docs.get(doc_id)
        if type(d) is str:
            self.sizes[doc_id] = len(d)
            d = self.docs[doc_id] = parse_document(d)
        return d  # type: ignore[return-value]

    def get(self, doc_id: str, ts: int | None) -> Document | None:
        """The document's version visible at ``ts`` (HEAD = None for the newest)."""
        h = self.history.get(doc_id)
        if h is None or ts is None:
            return self.doc(doc_id)
        for i in range(len(h) - 1, -1, -1):
            vts, doc = h[i]
            if vts <= ts:
                return doc
        return None

    def scan(
        self, index: str, lo: bytes | None, hi: bytes | None, reverse: bool, ts: int | None
    ) -> Iterator[tuple[bytes, Document]]:
        """(key, document) pairs of ``index`` in [lo, hi) as seen at ``ts``."""
        mem = self.indexes[index]
        spec_key = mem.spec.key
        history = self.history
        docs = self.docs
        for key in mem.scan(lo, hi, reverse):
            doc_id = id_from_key(key)
            h = history.get(doc_id)
            if h is None:
                d = docs[doc_id]
                yield key, (self.doc(doc_id) if type(d) is str else d)  # type: ignore[misc]
                continue
            doc = self.get(doc_id, ts)
            if doc is None:
                continue
            # A document inserted recently and not changed since has one key: this one.
            if (len(h) == 2 and h[0][1] is None) or spec_key(doc) == key:
                yield key, doc


@dataclass(slots=True)
class UndoRecord:
    """Enough to take one transaction's writes back out of the head."""

    ts: int
    touched: list[tuple[TableState, str]] = field(default_factory=list)
    created_tables: list[str] = field(default_factory=list)
    #: Index keys of each touched document's newest version, computed once when written.
    new_keys: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)


#: Versions :meth:`Store.collect` forgets at most per call. It runs on the event loop, after
#: each durable batch: after a burst of 150k writes, a budget of 20,000 held the loop for
#: ~170 ms at once (~8 us a version); the rest waits for the next call or loop turn.
COLLECT_BUDGET = 1_000


class Store:
    """All tables, the commit clock, and version garbage collection."""

    def __init__(self, retention_ns: int = 2_000_000_000) -> None:
        self.tables: dict[str, TableState] = {}
        self.tables_by_number: dict[int, TableState] = {}
        self.head_ts = 0
        self.durable_ts = 0
        self.retention_ns = retention_ns
        self.gc_horizon = 0
        #: Snapshots held open (an export reading over many loop turns): ts -> holders.
        self.pinned: dict[int, int] = {}
        self._gc_queue: deque[tuple[int, TableState, str]] = deque()
        self._last_creation_ms = 0.0
        for name, number in SYSTEM_TABLES.items():
            self._add_table(name, number)

    # -- tables ---------------------------------------------------------------------------
    def _add_table(self, name: str, number: int) -> TableState:
        t = TableState(name, number)
        self.tables[name] = t
        self.tables_by_number[number] = t
        return t

    def next_table_number(self) -> int:
        user = [n for n in self.tables_by_number if n >= FIRST_USER_TABLE]
        return max(user, default=FIRST_USER_TABLE - 1) + 1

    def create_table(self, name: str, number: int | None = None) -> TableState:
        existing = self.tables.get(name)
        if existing is not None:
            return existing
        if number is None and name.startswith("_"):
            # A system table made when first written (``_cron_jobs``) stays below the user
            # tables' numbers: an export's user ids keep theirs in a fresh deployment.
            free = (n for n in range(1, FIRST_USER_TABLE) if n not in self.tables_by_number)
            number = next(free, None)
        return self._add_table(name, number if number is not None else self.next_table_number())

    def drop_table(self, name: str) -> None:
        t = self.tables.pop(name, None)
        if t is not None:
            self.tables_by_number.pop(t.number, None)

    def table_for_id(self, doc_id: str, number: int) -> TableState | None:
        return self.tables_by_number.get(number)

    def set_indexes(self, table: TableState, specs: list[IndexSpec], build: bool = True) -> None:
        """Make ``table``'s user indexes exactly ``specs``, building new ones from its versions
        (``build=False``: leave them empty, for :meth:`load` to fill)."""
        wanted = {s.name: s for s in specs}
        for name in list(table.indexes):
            if name != BY_CREATION_TIME and (
                name not in wanted or wanted[name].fields != table.indexes[name].spec.fields
            ):
                del table.indexes[name]
        for name, spec in wanted.items():
            if name in table.indexes:
                continue
            if not build:
                table.indexes[name] = MemoryIndex(spec)
                continue
            keys = [spec.key(d) for d in _parsed_values(table.docs)]
            for doc_id, h in table.history.items():
                head = table.docs.get(doc_id)
                for _, d in h:
                    if d is not None and d is not head:
                        keys.append(spec.key(d))
            table.indexes[name] = MemoryIndex(spec, sorted(set(keys)))

    # -- clock -----------------------------------------------------------------------------
    def next_ts(self) -> int:
        """A fresh commit timestamp: nanoseconds since the epoch, strictly increasing."""
        ts = time.time_ns()
        if ts <= self.head_ts:
            ts = self.head_ts + 1
        self.head_ts = ts
        return ts

    def next_creation_time(self, now_ms: float) -> float:
        """Creation times strictly increase, so by_creation_time follows insertion order."""
        ct = now_ms
        if ct <= self._last_creation_ms:
            ct = self._last_creation_ms + 0.001
            if ct <= self._last_creation_ms:  # float spacing at this magnitude
                ct = float.__add__(self._last_creation_ms, 2**-10)
        self._last_creation_ms = ct
        return ct

    # -- writes ----------------------------------------------------------------------------
    def write(
        self, table: TableState, doc_id: str, new: Document | None, size: int, undo: UndoRecord
    ) -> None:
        """Put a new head version of one document at ``undo.ts`` (None deletes)."""
        ts = undo.ts
        prev = table.doc(doc_id)
        h = table.history.get(doc_id)
        # A brand-new document's keys (each ending in its id) cannot be in any index yet. An
        # id with history but no head was deleted, and its old versions' keys stay until
        # collected: an import bringing the id back may write the very same keys again.
        fresh = prev is None and h is None
        if h is None:
            h = [(0, prev)]
            table.history[doc_id] = h
            undo.touched.append((table, doc_id))
            self._gc_queue.append((ts, table, doc_id))
        elif h[-1][0] == ts:
            # Written earlier in this same transaction: replace that version.
            replaced = h.pop()[1]
            fresh = False
            if replaced is not None:
                self._drop_unused_keys(table, h, [replaced], keep=new)
        else:
            undo.touched.append((table, doc_id))
            self._gc_queue.append((ts, table, doc_id))
        h.append((ts, new))
        if new is None:
            table.docs.pop(doc_id, None)
            table.sizes.pop(doc_id, None)
            undo.new_keys[doc_id] = []
        else:
            table.docs[doc_id] = new
            table.sizes[doc_id] = size
            keys = []
            tail = key_tail(new)
            for name, mem in table.indexes.items():
                k = mem.spec.key_with_tail(new, tail)
                if fresh:
                    mem.keys.add(k)
                else:
                    mem.add(k)
                keys.append((name, k))
            undo.new_keys[doc_id] = keys
        if table.search is not None:
            table.search.on_write(doc_id, prev, new, ts)

    def insert_versions(
        self, table: TableState, docs: list[Document], sizes: list[int], undo: UndoRecord
    ) -> None:
        """Brand-new documents (ids ``table`` never held) at ``undo.ts``, first step: their
        versions, what :meth:`write` does per document with the loops in C (an import). They
        are invisible at every earlier snapshot, and to scans until their keys are added
        (:meth:`add_keys`, :meth:`append_keys`) and :meth:`insert_heads` makes them the newest
        versions. ``undo.ts`` may be a ``write_gate.PendingTs``: an import puts its versions
        in ahead of its commit, and spreads both steps over loop turns."""
        ts = undo.ts
        ids = [d["_id"] for d in docs]
        table.history.update((i, [(0, None), (ts, d)]) for i, d in zip(ids, docs, strict=True))
        table.sizes.update(zip(ids, sizes, strict=True))
        undo.touched.extend(zip(repeat(table), ids))
        self._gc_queue.extend(zip(repeat(ts), repeat(table), ids))

    def insert_heads(
        self, table: TableState, docs: list[Document], entries: list[WriteEntry], ts: int
    ) -> list[WriteEntry]:
        """:meth:`insert_versions`' second step, at ``ts``: the documents as the newest
        versions. ``entries`` are their write-set entries, in ``docs`` order; returned with
        search-index keys added when the table has search indexes."""
        ids = [d["_id"] for d in docs]
        table.docs.update(zip(ids, docs, strict=True))
        search = table.search
        if search is None:
            return entries
        for doc_id, d in zip(ids, docs, strict=True):
            search.on_write(doc_id, None, d, ts)
        return [
            WriteEntry(e.table, e.doc_id, e.keys + tuple(search.write_keys(e.doc_id, None, d)))
            for e, d in zip(entries, docs, strict=True)
        ]

    def write_over(
        self, table: TableState, docs: list[Document], sizes: list[int], undo: UndoRecord
    ) -> list[WriteEntry]:
        """New versions of documents ``table`` holds (an import's replace that writes the
        same ids again), at ``undo.ts``; returns their write-set entries."""
        part = UndoRecord(undo.ts)
        for doc, size in zip(docs, sizes, strict=True):
            self.write(table, doc["_id"], doc, size, undo)
            part.touched.append((table, doc["_id"]))
        part.new_keys = undo.new_keys
        return self.write_entries(part)

    def add_keys(self, table: TableState, index: str, keys: list[bytes]) -> None:
        """Add index keys (sorted, new) of documents already in ``table`` (an import)."""
        table.indexes[index].keys.update(keys)

    def append_keys(self, table: TableState, index: str, keys: list[bytes]) -> bool:
        """:meth:`add_keys` of keys that sort after all the index holds, without going over
        the rest (:meth:`MemoryIndex.append_greater`); False, doing nothing, if they do not."""
        return table.indexes[index].append_greater(keys)

    def delete_all(
        self, table: TableState, undo: UndoRecord, ids: list[str] | None = None
    ) -> list[WriteEntry]:
        """Delete every head document of ``table`` (or those of ``ids`` among them) at
        ``undo.ts`` (an import's replace): their versions stay readable at earlier timestamps
        until collected. Returns the write set's entries. What :meth:`write` does one at a
        time, in bulk (a big table's replace)."""
        ts = undo.ts
        heads = list(table.docs) if ids is None else [i for i in ids if i in table.docs]
        history = table.history
        names = list(table.indexes)
        specs = [table.indexes[n].spec for n in names]
        entries: list[WriteEntry] = []
        bulk = (
            []
            if table.search is not None
            else [i for i in heads if (h := history.get(i)) is None or h[-1][0] != ts]
        )
        if bulk:
            olds = cast(list[Document], [table.doc(i) for i in bulk])
            tails = [key_tail(d) for d in olds]
            keys = [
                tails if not s.fields else list(map(s.key_with_tail, olds, tails)) for s in specs
            ]
            gone = (ts, None)
            docs, sizes = table.docs, table.sizes
            for doc_id, doc in zip(bulk, olds, strict=True):
                h = history.get(doc_id)
                if h is None:
                    history[doc_id] = [(0, doc), gone]
                else:
                    h.append(gone)
                del docs[doc_id]
                sizes.pop(doc_id, None)
            undo.touched.extend(zip(repeat(table), bulk))
            self._gc_queue.extend(zip(repeat(ts), repeat(table), bulk))
            undo.new_keys.update({doc_id: [] for doc_id in bulk})
            columns = [zip(repeat(n), k) for n, k in zip(names, keys, strict=True)]
            pairs = zip(*columns, strict=True)
            new = tuple.__new__  # WriteEntry(table, id, keys), built in C
            entries = [new(WriteEntry, e) for e in zip(repeat(table.name), bulk, pairs)]
        for doc_id in heads:  # search indexes, or written earlier at this ts
            old = table.doc(doc_id)
            if old is None:
                continue
            self.write(table, doc_id, None, 0, undo)
            old_keys = tuple((n, s.key(old)) for n, s in zip(names, specs, strict=True))
            if table.search is not None:
                old_keys += tuple(table.search.write_keys(doc_id, old, None))
            entries.append(WriteEntry(table.name, doc_id, old_keys))
        return entries

    def _drop_unused_keys(
        self,
        table: TableState,
        remaining: list[tuple[int, Document | None]],
        dropped: list[Document],
        keep: Document | None = None,
    ) -> None:
        for mem in table.indexes.values():
            key = mem.spec.key
            live = {key(d) for _, d in remaining if d is not None}
            if keep is not None:
                live.add(key(keep))
            for d in dropped:
                k = key(d)
                if k not in live:
                    mem.discard(k)

    def write_entries(self, undo: UndoRecord) -> list[WriteEntry]:
        """What the transaction changed, as index keys (old and new) per document."""
        out: list[WriteEntry] = []
        new_keys = undo.new_keys
        for table, doc_id in undo.touched:
            h = table.history[doc_id]
            old = h[-2][1] if len(h) >= 2 else None
            keys = new_keys.get(doc_id, [])
            if old is not None:
                keys = keys + [(name, mem.spec.key(old)) for name, mem in table.indexes.items()]
            if table.search is not None:
                keys = keys + table.search.write_keys(doc_id, old, h[-1][1])
            out.append(WriteEntry(table.name, doc_id, tuple(keys)))
        return out

    def undo(self, undo: UndoRecord) -> None:
        """Take a transaction's writes back out (it failed, or its batch was not durable)."""
        for table, doc_id in reversed(undo.touched):
            h = table.history.get(doc_id)
            if not h or h[-1][0] != undo.ts:
                continue
            _, new = h.pop()
            prev = h[-1][1]
            if prev is None:
                table.docs.pop(doc_id, None)
                table.sizes.pop(doc_id, None)
            else:
                table.docs[doc_id] = prev
            if new is not None:
                self._drop_unused_keys(table, h, [new])
            if len(h) == 1 and h[0][0] == 0:
                del table.history[doc_id]
        for name in undo.created_tables:
            t = self.tables.get(name)
            if t is not None and not t.docs and not t.history:
                self.drop_table(name)

    # -- durability and garbage collection -----------------------------------------------
    def mark_durable(self, ts: int) -> bool:
        """Commits up to ``ts`` are durable; forget some versions the retention window no
        longer needs. Returns whether more are left to forget now (:meth:`collect_more`)."""
        if ts > self.durable_ts:
            self.durable_ts = ts
        return self.collect_more()

    def collect_more(self) -> bool:
        """Forget up to :data:`COLLECT_BUDGET` versions older than the retention window;
        returns whether more are left (the caller runs it again in a later turn)."""
        return self.collect(self.durable_ts - self.retention_ns)

    def pin(self, ts: int) -> None:
        """Keep every version visible at ``ts`` until :meth:`unpin` (``ts`` >= the horizon)."""
        self.pinned[ts] = self.pinned.get(ts, 0) + 1

    def unpin(self, ts: int) -> None:
        left = self.pinned.get(ts, 0) - 1
        if left > 0:
            self.pinned[ts] = left
        else:
            self.pinned.pop(ts, None)

    def collect(self, horizon: int, budget: int | None = None) -> bool:
        """Forget versions no snapshot at or after ``horizon`` can see, at most ``budget``
        (default :data:`COLLECT_BUDGET`); returns whether more could be forgotten now."""
        if budget is None:
            budget = COLLECT_BUDGET
        horizon = min(horizon, self.durable_ts, *self.pinned)
        if horizon > self.gc_horizon:
            self.gc_horizon = horizon
        q = self._gc_queue
        while q and budget > 0 and q[0][0] <= self.gc_horizon:
            budget -= 1
            _, table, doc_id = q.popleft()
            h = table.history.get(doc_id)
            if h is None:
                continue
            keep = 0
            for i, (vts, _) in enumerate(h):
                if vts <= self.gc_horizon:
                    keep = i
            if keep == 0:
                continue
            dropped = [d for _, d in h[:keep] if d is not None]
            del h[:keep]
            if len(h) == 1:
                del table.history[doc_id]
            if dropped:
                self._drop_unused_keys(table, h, dropped)
        return bool(q) and q[0][0] <= self.gc_horizon

    def load(
        self,
        batches: Iterable[tuple[int, list[str], list[float], list[str], list[list[str | None]]]],
        index_paths: dict[str, list[str]],
    ) -> None:
        """Fill the tables from disk (see ``Persistence.load``): documents stay JSON text, and
        index keys are built from the indexed fields DuckDB cut out, without parsing documents.
        """
        tables = self.tables_by_number
        keys: dict[int, dict[str, list[bytes]]] = {
            n: {name: [] for name in t.indexes} for n, t in tables.items()
        }
        latest = self._last_creation_ms
        part = encode_key_part
        float_part = encode_float_part
        for number, ids, cts, texts, fragments in batches:
            table = tables[number]
            docs = table.docs
            table_keys = keys[number]
            paths = index_paths.get(table.name, [])
            # Each user index as (its key list, positions of its fields among the fragments).
            user = [
                (table_keys[name], [paths.index(f) for f in mem.spec.fields])
                for name, mem in table.indexes.items()
                if name != BY_CREATION_TIME
            ]
            values = [[_fragment(f) for f in col] for col in fragments] if user else []
            ct_keys = table_keys[BY_CREATION_TIME]
            for i, doc_id in enumerate(ids):
                docs[doc_id] = texts[i]
                raw = doc_id.encode("ascii")
                tail = float_part(cts[i]) + raw + bytes((len(raw),))
                ct_keys.append(tail)
                for index_keys, positions in user:
                    index_keys.append(b"".join([part(values[p][i]) for p in positions]) + tail)
            if cts:
                latest = max(latest, max(cts))
        self._last_creation_ms = latest
        for number, by_index in keys.items():
            table = tables[number]
            for name, index_keys in by_index.items():
                index_keys.sort()
                table.indexes[name] = MemoryIndex(table.indexes[name].spec, index_keys)


def _fragment(text: str | None) -> Any:
    """A field's JSON text as a value (None from SQL: the field is missing)."""
    if text is None:
        return UNSET
    first = text[0]
    if first == '"' and "\\" not in text:
        return text[1:-1]  # a plain string: no need for the JSON parser
    if first in _NUMBER_START:
        return float(text)  # every JSON number is a float64
    return loads_value(text) if '"$' in text else _loads(text)


_NUMBER_START = frozenset("-0123456789")


def _parsed_values(docs: dict[str, Document | str]) -> Iterator[Document]:
    """Every head document parsed, without keeping the parsed form of those stored as text."""
    for d in docs.values():
        yield parse_document(d) if type(d) is str else d  # type: ignore[misc]
