"""Full-text search indexes: Convex's tokeniser and an in-memory inverted index over one table.

Text is split as Convex splits it (Tantivy's ``SimpleTokenizer``): runs of letters and digits,
terms of 32 bytes or more dropped, lowercased::

    >>> tokenize("Hello, wörld! Don't")
    ['hello', 'wörld', 'don', 't']

A table's search indexes are built on its first search and from then on kept current by
:meth:`Store.write` through ``TableState.search``; a table nobody searches pays nothing.

MVCC: the postings hold the terms of every retained version of a document (plus, for a while,
terms of versions already collected), so a read at any retained snapshot finds every candidate.
Each candidate is then checked: a document with a single version (absent from the store's
history) and no pending clean-up is read straight from the postings; any other ("dirty") is read
at the snapshot, and its terms taken from that version (kept for the version written last,
tokenised again for an older one). Clean-up runs a few documents at a time, once the store has
collected their old versions, drops the stale terms and makes them clean again.

Reactivity: every written version contributes invalidation keys under the index's name, one per
term (``\\x00 term \\x00``) and one per term and filter field (``\\x01 field \\x00 value term
\\x00``); a search reads one key range per query term, so a commit invalidates it exactly when
it writes a version that has a searched term (or one starting with the last, prefix, term) and,
when the search filters, the first filter's value.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Iterable
from typing import NamedTuple

from sortedcontainers import SortedList

from pyconvex.runtime.store.index import Document, field_value
from pyconvex.runtime.store.memory import Store, TableState, parse_document
from pyconvex.server.schema import SearchIndexDefinition
from pyconvex.values import encode_key_part

#: Terms of this many UTF-8 bytes or more are not indexed (nor searched), as in Convex.
MAX_TERM_BYTES = 32

_WORD = re.compile(r"[^\W_]+")
_MAX_CHAR = "\U0010ffff"
# Clean-up steps taken per write and per search: enough to keep up with the writes, small
# enough to never be noticed.
_CLEAN_PER_WRITE = 8
_CLEAN_PER_SEARCH = 4096
# BM25's usual constants: term-count saturation and length normalisation.
_K1 = 1.2
_B = 0.75
# A term the last (prefix) term only starts counts half as much as a whole-term match.
_COMPLETION_WEIGHT = 0.5


def tokenize(text: str) -> list[str]:
    """The terms of ``text`` in order, as Convex indexes and searches them.

    >>> tokenize("the_end, 2 ÉTÉS")
    ['the', 'end', '2', 'étés']
    """
    terms: list[str] = _WORD.findall(text.lower())
    if text.isascii():
        if terms and max(map(len, terms)) >= MAX_TERM_BYTES:
            terms = [t for t in terms if len(t) < MAX_TERM_BYTES]
    else:
        # A term under 8 characters is under 32 bytes: only longer ones need measuring.
        terms = [t for t in terms if len(t) < 8 or len(term_bytes(t)) < MAX_TERM_BYTES]
    return terms


def term_bytes(term: str) -> bytes:
    return term.encode("utf-8", "surrogatepass")


class Analysis(NamedTuple):
    """One document version as an index sees it."""

    tf: Counter[str]  # term -> occurrences
    length: int  # number of terms
    filter_keys: tuple[bytes, ...]  # encode_key_part of each filter field's value


class Head(NamedTuple):
    """What a search needs of a single-version document, kept so it need not be read."""

    length: int
    filter_keys: tuple[bytes, ...]
    creation_time: float


class Dirty:
    """A document written since its postings were last exact."""

    __slots__ = ("analysis", "latest", "posted", "prior", "prior_analysis", "ts")

    def __init__(
        self,
        ts: int,
        posted: set[str],
        latest: Document | None,
        analysis: Analysis | None,
        prior: Document | None,
        prior_analysis: Analysis | None,
    ) -> None:
        self.ts = ts  # its last write
        self.posted = posted  # every term it is posted under
        self.latest = latest  # its newest version (None: deleted) and that version's analysis
        self.analysis = analysis
        self.prior = prior  # the version before it became dirty, and its analysis
        self.prior_analysis = prior_analysis


#: A search result: (-score, -creation time, id, version read, None for the head). Ascending
#: order is relevance order, newest first on ties.
Scored = tuple[float, float, str, "Document | None"]


class SearchIndex:
    """The inverted index of one search index over one table (see the module docstring)."""

    __slots__ = (
        "_filter_paths",
        "_filter_tags",
        "_path",
        "_queue",
        "_store",
        "_table",
        "definition",
        "dirty",
        "heads",
        "name",
        "postings",
        "vocabulary",
    )

    def __init__(self, definition: SearchIndexDefinition, table: TableState, store: Store) -> None:
        self.definition = definition
        self.name = definition.name
        self._path = tuple(definition.search_field.split("."))
        self._filter_paths = tuple(tuple(f.split(".")) for f in definition.filter_fields)
        self._filter_tags = tuple(filter_tag(f) for f in definition.filter_fields)
        self._table = table
        self._store = store
        #: term -> {doc_id: occurrences}; exact for clean documents, a superset for dirty ones.
        self.postings: dict[str, dict[str, int]] = {}
        self.vocabulary = SortedList()  # every term of ``postings``, for prefix lookups
        self.heads: dict[str, Head] = {}
        self.dirty: dict[str, Dirty] = {}
        self._queue: deque[tuple[int, str]] = deque()
        self._build()

    # -- documents -------------------------------------------------------------------------
    def analyse(self, doc: Document | None) -> Analysis | None:
        """The terms and filter values of a version; None when it is not indexed (its search
        field is missing, not a string, or has no terms)."""
        if doc is None:
            return None
        path = self._path
        text = doc.get(path[0]) if len(path) == 1 else field_value(doc, path)
        if type(text) is not str:
            return None
        terms = tokenize(text)
        if not terms:
            return None
        keys = tuple(encode_key_part(field_value(doc, p)) for p in self._filter_paths)
        return Analysis(Counter(terms), len(terms), keys)

    def _post(self, doc_id: str, tf: Counter[str]) -> None:
        postings = self.postings
        for term, n in tf.items():
            docs = postings.get(term)
            if docs is None:
                postings[term] = {doc_id: n}
                self.vocabulary.add(term)
            else:
                docs[doc_id] = n

    def _unpost(self, doc_id: str, term: str) -> None:
        docs = self.postings.get(term)
        if docs is None:
            return
        docs.pop(doc_id, None)
        if not docs:
            del self.postings[term]
            self.vocabulary.discard(term)

    def _build(self) -> None:
        table = self._table
        history = table.history
        for doc_id, raw in table.docs.items():
            doc: Document = parse_document(raw) if type(raw) is str else raw  # type: ignore[assignment]
            a = self.analyse(doc)
            if a is not None:
                self._post(doc_id, a.tf)
                self.heads[doc_id] = Head(a.length, a.filter_keys, doc["_creationTime"])
        # Documents with several retained versions: post every version's terms, and mark them
        # dirty so searches read them at their snapshot.
        pending = []
        for doc_id, versions in history.items():
            head = table.doc(doc_id)
            posted: set[str] = set()
            for _, version in versions:
                a = self.analyse(version)
                if a is not None:
                    posted.update(a.tf)
                    if version is not head:
                        self._post_missing(doc_id, a.tf)
            last_ts = versions[-1][0]
            self.dirty[doc_id] = Dirty(last_ts, posted, head, self.analyse(head), None, None)
            pending.append((last_ts, doc_id))
        pending.sort()
        self._queue.extend(pending)

    def _post_missing(self, doc_id: str, tf: Counter[str]) -> None:
        # An older version's terms, without overwriting the head's counts.
        postings = self.postings
        for term, n in tf.items():
            docs = postings.get(term)
            if docs is None:
                postings[term] = {doc_id: n}
                self.vocabulary.add(term)
            elif doc_id not in docs:
                docs[doc_id] = n

    # -- writes ----------------------------------------------------------------------------
    def on_write(self, doc_id: str, prev: Document | None, new: Document | None, ts: int) -> None:
        """``new`` (None: deleted) replaced ``prev`` as the head version at ``ts``."""
        a = self.analyse(new)
        entry = self.dirty.get(doc_id)
        if entry is None:
            posted: set[str] = set()
            before = None
            if doc_id in self.heads:
                # A clean, indexed document is posted under exactly its head's terms.
                before = self.analyse(prev)
                if before is not None:
                    posted.update(before.tf)
            self.dirty[doc_id] = Dirty(ts, posted, new, a, prev, before)
        else:
            posted = entry.posted
            entry.ts, entry.latest, entry.analysis = ts, new, a
        if a is not None and new is not None:
            self._post(doc_id, a.tf)
            posted.update(a.tf)
            self.heads[doc_id] = Head(a.length, a.filter_keys, new["_creationTime"])
        self._queue.append((ts, doc_id))
        self.clean(_CLEAN_PER_WRITE)

    def write_keys(self, doc_id: str, doc: Document | None) -> list[tuple[str, bytes]]:
        """Invalidation keys of one written version (see the module docstring)."""
        if doc is None:
            return []
        # The versions of a commit were just analysed by on_write: reuse that.
        entry = self.dirty.get(doc_id)
        if entry is not None and doc is entry.latest:
            a = entry.analysis
        elif entry is not None and doc is entry.prior:
            a = entry.prior_analysis
        else:
            a = self.analyse(doc)
        if a is None:
            return []
        name = self.name
        starts = [b"\x00"]
        starts += [t + v for t, v in zip(self._filter_tags, a.filter_keys, strict=True)]
        return [
            (name, start + term.encode("utf-8", "surrogatepass") + b"\x00")
            for term in a.tf
            for start in starts
        ]

    def clean(self, budget: int) -> None:
        """Make up to ``budget`` dirty documents clean, once only their head is retained."""
        queue = self._queue
        horizon = self._store.gc_horizon
        table = self._table
        while queue and budget > 0 and queue[0][0] <= horizon:
            budget -= 1
            ts, doc_id = queue.popleft()
            entry = self.dirty.get(doc_id)
            if entry is None or entry.ts != ts:
                continue  # cleaned already, or written again since (queued again then)
            versions = table.history.get(doc_id)
            if versions is not None:
                # Old versions not collected yet: look again after the newest one.
                entry.ts = versions[-1][0]
                queue.append((entry.ts, doc_id))
                continue
            del self.dirty[doc_id]
            head = table.doc(doc_id)
            # The head is the last version written unless that write was undone.
            latest = head is entry.latest
            a = entry.analysis if latest else self.analyse(head)
            if a is None or head is None:
                for term in entry.posted:
                    self._unpost(doc_id, term)
                self.heads.pop(doc_id, None)
                continue
            if len(entry.posted) != len(a.tf):
                for term in entry.posted:
                    if term not in a.tf:
                        self._unpost(doc_id, term)
            if not latest:
                self._post(doc_id, a.tf)
                self.heads[doc_id] = Head(a.length, a.filter_keys, head["_creationTime"])

    # -- reads -----------------------------------------------------------------------------
    def search(
        self,
        ts: int | None,
        exact: Iterable[str],
        prefix: str | None,
        filters: list[tuple[int, bytes]],
    ) -> list[Scored]:
        """Score the documents visible at ``ts`` (None: the head) that contain one of the
        ``exact`` terms or a term starting with ``prefix``, and whose filter field ``i``
        encodes to ``key`` for every ``(i, key)`` of ``filters``; unsorted.

        BM25, with the statistics (document frequencies, average length) taken over these
        documents only: the scores then depend on nothing but what the search read.
        """
        self.clean(_CLEAN_PER_SEARCH)
        postings = self.postings
        wanted = set(exact)
        terms = [t for t in wanted if t in postings]
        if prefix is not None:
            terms.extend(
                t for t in self.vocabulary.irange(prefix, prefix + _MAX_CHAR) if t not in wanted
            )
        if not terms:
            return []
        # A fixed summation order keeps scores bit-identical across runs (cursors hold them).
        terms.sort()
        lists = [postings[t] for t in terms]
        ids: Iterable[str] = lists[0] if len(lists) == 1 else set().union(*lists)
        # Pass 1: the matching documents, as (length, creation time, version or None: head).
        table = self._table
        dirty = self.dirty
        heads = self.heads
        one = filters[0] if len(filters) == 1 else None
        rows: dict[str, tuple[int, float, Document | None]] = {}
        own: dict[str, list[tuple[str, int]]] = {}  # terms of documents read at the snapshot
        total = 0
        for doc_id in ids:
            entry = dirty.get(doc_id)
            if entry is None:
                head = heads.get(doc_id)
                if head is None:
                    continue
                length, keys, created = head
                doc = None
            else:
                doc = table.get(doc_id, ts)
                if doc is None:
                    continue
                a = entry.analysis if entry.latest is doc else self.analyse(doc)
                if a is None:
                    continue
                matched = sorted(
                    (t, n)
                    for t, n in a.tf.items()
                    if t in wanted or (prefix is not None and t.startswith(prefix))
                )
                if not matched:
                    continue
                length, keys, created = a.length, a.filter_keys, doc["_creationTime"]
            if one is not None:
                if keys[one[0]] != one[1]:
                    continue
            elif filters and any(keys[i] != key for i, key in filters):
                continue
            if entry is not None:
                own[doc_id] = matched
            rows[doc_id] = (length, created, doc)
            total += length
        n = len(rows)
        if n == 0:
            return []
        # Pass 2: document frequencies, then scores.
        matching = rows.keys()
        df = [len(matching & docs.keys()) for docs in lists]
        for doc_id, matched in own.items():
            has = {t for t, _ in matched}
            for i, term in enumerate(terms):
                if doc_id in lists[i] and term not in has:
                    df[i] -= 1  # posted under a term of another version
        base = _K1 * (1.0 - _B)
        per_length = _K1 * _B * n / max(total, 1)  # b / average length
        # Per term: idf, BM25's (k1 + 1), and less for completions of the prefix term.
        weights = {
            t: math.log(1.0 + (n - df[i] + 0.5) / (df[i] + 0.5))
            * (_K1 + 1.0)
            * (1.0 if t in wanted or t == prefix else _COMPLETION_WEIGHT)
            for i, t in enumerate(terms)
        }
        scores: dict[str, float] = {}
        for term, docs in zip(terms, lists, strict=True):
            weight = weights[term]
            for doc_id, count in docs.items():
                row = rows.get(doc_id)
                if row is None or doc_id in own:
                    continue
                # Same operations, in the same order, as for the documents in ``own`` below.
                s = weight * count / (count + (base + per_length * row[0]))
                scores[doc_id] = scores.get(doc_id, 0.0) + s
        for doc_id, matched in own.items():
            norm = base + per_length * rows[doc_id][0]
            s = 0.0
            for term, count in matched:
                s += weights[term] * count / (count + norm)
            scores[doc_id] = s
        return [(-s, -r[1], d, r[2]) for d, s in scores.items() for r in (rows[d],)]


def filter_tag(field: str) -> bytes:
    """The start of the invalidation keys of one filter field."""
    return b"\x01" + field.encode("utf-8") + b"\x00"


def term_ranges(
    first_filter: tuple[str, bytes] | None, exact: Iterable[str], prefix: str | None
) -> list[tuple[bytes, bytes]]:
    """The invalidation key ranges a search reads: one per exact term, one for the prefix."""
    start = b"\x00" if first_filter is None else filter_tag(first_filter[0]) + first_filter[1]
    # Each range's upper end extends its lower end, so the subscription manager files it under
    # the whole lower end and only a write of that term (or completion) ever probes it.
    out = []
    for term in exact:
        key = start + term_bytes(term) + b"\x00"
        out.append((key, key + b"\x01"))  # exactly that key: none extends it
    if prefix is not None:
        lo = start + term_bytes(prefix)
        out.append((lo, lo + b"\xff"))  # every key extending it: UTF-8 never holds 0xff
    return out


class TableSearch:
    """The search indexes of one table, attached to ``TableState.search`` on first use."""

    __slots__ = ("indexes",)

    def __init__(self) -> None:
        self.indexes: dict[str, SearchIndex] = {}

    def on_write(self, doc_id: str, prev: Document | None, new: Document | None, ts: int) -> None:
        """Called by :meth:`Store.write` for every write to the table."""
        for index in self.indexes.values():
            index.on_write(doc_id, prev, new, ts)

    def write_keys(
        self, doc_id: str, old: Document | None, new: Document | None
    ) -> list[tuple[str, bytes]]:
        """Invalidation keys of a committed write (old and new version), for the write set."""
        out: list[tuple[str, bytes]] = []
        for index in self.indexes.values():
            out += index.write_keys(doc_id, old)
            out += index.write_keys(doc_id, new)
        return out


def search_index(
    store: Store, table: TableState, definition: SearchIndexDefinition, declared: Iterable[str]
) -> SearchIndex:
    """The table's live index for ``definition``, built now if it is new or was redefined.

    Indexes no longer ``declared`` by the schema are dropped, so writes stop maintaining them.
    """
    search = table.search
    if not isinstance(search, TableSearch):
        search = table.search = TableSearch()
    names = set(declared)
    for name in [n for n in search.indexes if n not in names]:
        del search.indexes[name]
    index = search.indexes.get(definition.name)
    if index is None or index.definition != definition:
        index = search.indexes[definition.name] = SearchIndex(definition, table, store)
    return index
