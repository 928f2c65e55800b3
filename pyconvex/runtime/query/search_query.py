"""``with_search_index``: the search filter builder, relevance ranking and paging.

::

    await (ctx.db.query("messages")
           .with_search_index("search_body", lambda q: q.search("body", "hello wor")
                                                       .eq("channel", channel))
           .take(10))

Every term but the last matches whole terms; the last also matches as a prefix (typeahead). A
document matches when it contains any term and equals every ``eq`` filter. Results come in
relevance order: BM25 over the matching documents (their term counts and lengths; a completion
of the prefix term counts half a whole-term match), ties newest first. The statistics are taken over the matching documents only, so the order depends on
nothing outside what the search read: it is a pure function of the snapshot, and of exactly
the writes that invalidate it. At most 1024 results are scanned per search, as in Convex.
"""

from __future__ import annotations

import heapq
import math
import struct
from collections.abc import Callable
from typing import Any

from pyconvex.errors import InvalidCursorError, InvalidValueError, LimitError, SchemaError
from pyconvex.runtime.query.cursors import decode_cursor, encode_cursor
from pyconvex.runtime.query.transaction import Transaction
from pyconvex.runtime.store.index import Document
from pyconvex.runtime.store.memory import BY_CREATION_TIME, BY_ID
from pyconvex.runtime.store.search_index import Scored, search_index, term_ranges, tokenize
from pyconvex.server.schema import SearchIndexDefinition
from pyconvex.values import UNSET, encode_key_part, to_value

#: Convex's limits: terms per search text, eq filters per search, results scanned per search.
MAX_QUERY_TERMS = 16
MAX_FILTERS = 8
MAX_SCANNED = 1024

_POSITION = struct.Struct(">dd")

Keep = Callable[[Document], bool]


class SearchFilterBuilder:
    """The ``q`` of ``with_search_index(name, lambda q: q.search(field, text).eq(f, v))``.

    ``search`` names the index's search field and the text; each ``eq`` then keeps documents
    whose filter field equals the value (``UNSET`` for a missing field).
    """

    __slots__ = ("_definition", "_table", "_where", "eqs", "text")

    def __init__(self, where: str, table: str, definition: SearchIndexDefinition) -> None:
        self._where = where
        self._table = table
        self._definition = definition
        self.text: str | None = None
        self.eqs: list[tuple[str, Any]] = []

    def _name(self) -> str:
        return f"{self._table}.{self._definition.name}"

    def search(self, field: str, text: str) -> SearchFilterBuilder:
        """Search ``field`` (the index's search field) for the terms of ``text``."""
        d = self._definition
        if self.text is not None:
            raise SchemaError(
                f"{self._where}: the filter of search index {self._name()} calls q.search() "
                "twice; call it once, then chain .eq(...) for the filter fields."
            )
        if field != d.search_field:
            raise SchemaError(
                f"{self._where}: search index {self._name()} searches the field "
                f"{d.search_field!r}, not {field!r}. Use q.search({d.search_field!r}, text), "
                "or search another index."
            )
        if not isinstance(text, str):
            raise InvalidValueError(
                f"{self._where}: q.search({field!r}, text) on {self._name()} needs the text as "
                f"a string, got {type(text).__name__}."
            )
        self.text = text
        return self

    def eq(self, field: str, value: Any) -> SearchFilterBuilder:
        """Keep documents whose filter ``field`` equals ``value``."""
        d = self._definition
        if self.text is None:
            raise SchemaError(
                f"{self._where}: the filter of search index {self._name()} must start with "
                f"q.search({d.search_field!r}, text); chain .eq({field!r}, ...) after it."
            )
        if field not in d.filter_fields:
            valid = ", ".join(repr(f) for f in d.filter_fields) or "none"
            raise SchemaError(
                f"{self._where}: {field!r} is not a filter field of search index "
                f"{self._name()} (its filter fields: {valid}). Add it to filter_fields in "
                "convex/schema.py, or use .filter(...) after with_search_index."
            )
        if len(self.eqs) >= MAX_FILTERS:
            raise SchemaError(
                f"{self._where}: a search on {self._name()} can have at most {MAX_FILTERS} "
                "eq filters, like Convex."
            )
        self.eqs.append((field, value if value is UNSET else to_value(value, f".eq({field!r})")))
        return self


class SearchQuery:
    """A compiled search on one index of one table, run at the transaction's snapshot."""

    __slots__ = ("_declared", "_first_filter", "_table", "_tx", "definition", "exact", "filters",
                 "prefix")  # fmt: skip

    def __init__(
        self,
        tx: Transaction,
        table: str,
        definition: SearchIndexDefinition,
        declared: list[str],
        builder: SearchFilterBuilder,
    ) -> None:
        self._tx = tx
        self._table = table
        self._declared = declared
        self.definition = definition
        terms = list(dict.fromkeys(tokenize(builder.text or "")))
        if len(terms) > MAX_QUERY_TERMS:
            raise SchemaError(
                f"{tx.where}: the search text for {table}.{definition.name} has {len(terms)} "
                f"distinct terms; a search takes at most {MAX_QUERY_TERMS}, like Convex. "
                "Shorten the text."
            )
        # The last term also matches as a prefix; the others match whole terms.
        self.prefix: str | None = terms[-1] if terms else None
        self.exact: tuple[str, ...] = tuple(terms[:-1])
        positions = {f: i for i, f in enumerate(definition.filter_fields)}
        self.filters = [(positions[f], encode_key_part(v)) for f, v in builder.eqs]
        self._first_filter = (builder.eqs[0][0], self.filters[0][1]) if builder.eqs else None

    # -- running ---------------------------------------------------------------------------
    def _scored(self) -> list[Scored]:
        """Every match at the snapshot, unsorted; records what the search read."""
        tx = self._tx
        if self.prefix is None:
            return []  # no terms: nothing matches, whatever is written later
        table = tx.table(self._table)
        if table is None:
            # No table yet: the insert that creates it comes before any search index exists
            # to name its terms, so depend on the whole table until then.
            tx.reads.add_range(self._table, BY_CREATION_TIME, b"", None)
            return []
        for lo, hi in term_ranges(self._first_filter, self.exact, self.prefix):
            tx.reads.add_range(self._table, self.definition.name, lo, hi)
        index = search_index(tx.store, table, self.definition, self._declared)
        return index.search(tx.ts, self.exact, self.prefix, self.filters)

    def _scan(
        self,
        ordered: list[Scored],
        limit: int | None,
        max_rows: int | None,
        keep: Keep | None,
    ) -> tuple[list[Document], int]:
        """Documents ``keep`` accepts, from the start of ``ordered``, and how many were read."""
        tx = self._tx
        table = tx.table(self._table)
        end = len(ordered) if max_rows is None else min(len(ordered), max_rows)
        out: list[Document] = []
        i = 0
        while i < end and (limit is None or len(out) < limit):
            _, _, doc_id, doc = ordered[i]
            i += 1
            assert table is not None
            if doc is None:
                doc = table.doc(doc_id)
                assert doc is not None
            tx.count_read(table, doc_id)
            if keep is None or keep(doc):
                out.append(doc)
        return out, i

    def collect(self, limit: int | None, keep: Keep | None) -> list[Document]:
        """The first ``limit`` results (None: all, at most 1024) that ``keep`` accepts."""
        entries = self._scored()
        if limit == 0:
            return []
        need = MAX_SCANNED + 1 if limit is None or keep is not None else limit
        docs, read = self._scan(_ordered(entries, None, need), limit, MAX_SCANNED, keep)
        if limit is None and read < min(len(entries), MAX_SCANNED + 1):
            raise LimitError(
                f"{self._tx.where}: the search on {self._table}.{self.definition.name} matched "
                f"more than {MAX_SCANNED} documents, the most a search scans (like Convex). "
                "Use take(n) or paginate(), or narrow it with more terms or eq filters."
            )
        return docs

    def page(
        self,
        num: int,
        cursor: str | None,
        end_cursor: str | None,
        max_rows: int | None,
        keep: Keep | None,
    ) -> tuple[list[Document], bool, str]:
        """One page of results: (documents, is done, continue cursor).

        Cursors hold a position in relevance order (score, creation time, id); with
        ``end_cursor`` the page runs exactly up to it, as a reactive page re-run does.
        """
        tx = self._tx
        name = self.definition.name
        entries = self._scored()
        after = None
        start = _BEFORE_ALL
        if cursor is not None:
            pos = decode_cursor(cursor, self._table, name, tx.where)
            if pos is None:
                return [], True, cursor
            after = _position(pos, tx.where)
            start = pos
        if end_cursor is not None:
            end = decode_cursor(end_cursor, self._table, name, tx.where)
            if end is not None:
                last = _position(end, tx.where)
                entries = [e for e in entries if (e[0], e[1], e[2]) <= last]
            docs, _ = self._scan(_ordered(entries, after, None), None, None, keep)
            return docs, end is None, end_cursor
        rows = MAX_SCANNED if max_rows is None else min(max_rows, MAX_SCANNED)
        need = (rows if keep is not None else min(num, rows)) + 1
        ordered = _ordered(entries, after, need)
        docs, read = self._scan(ordered, num, rows, keep)
        if read >= len(ordered):
            return docs, True, encode_cursor(self._table, name, None)
        position = _key(ordered[read - 1]) if read > 0 else start
        return docs, False, encode_cursor(self._table, name, position)


def _ordered(
    entries: list[Scored], after: tuple[float, float, str] | None, need: int | None
) -> list[Scored]:
    """Entries past ``after`` in relevance order: all of them, or the first ``need``."""
    if after is not None:
        entries = [e for e in entries if (e[0], e[1], e[2]) > after]
    # Ids are unique, so comparisons never reach the documents.
    if need is not None and need < len(entries):
        return heapq.nsmallest(need, entries)
    entries.sort()
    return entries


def _key(entry: Scored) -> bytes:
    return _POSITION.pack(entry[0], entry[1]) + entry[2].encode("ascii")


_BEFORE_ALL = _POSITION.pack(-math.inf, -math.inf)


def _position(key: bytes, where: str) -> tuple[float, float, str]:
    if len(key) < _POSITION.size:
        raise InvalidCursorError(
            f"InvalidCursor: {where} got a search cursor that pyconvex did not make. Pass null "
            "for the first page and then the continueCursor of the previous page."
        )
    neg_score, neg_created = _POSITION.unpack_from(key)
    return neg_score, neg_created, key[_POSITION.size :].decode("ascii", "replace")


def compile_search(
    tx: Transaction, table: str, index: str, search_fn: Callable[[SearchFilterBuilder], Any]
) -> SearchQuery:
    """Check ``with_search_index(index, search_fn)`` against the schema and compile it."""
    defs = tx.schema.search_indexes(table)
    definition = defs.get(index)
    if definition is None:
        names = ", ".join(repr(n) for n in defs) or "none"
        if index in (BY_ID, BY_CREATION_TIME) or index in tx.schema.index_names(table):
            hint = f"{index!r} is a database index: read it with with_index({index!r}, ...)."
        else:
            hint = (
                f"Define it in convex/schema.py with .search_index({index!r}, "
                "search_field=..., filter_fields=[...])."
            )
        raise SchemaError(
            f"{tx.where}: table {table!r} has no search index {index!r} (its search indexes: "
            f"{names}). {hint}"
        )
    builder = search_fn(SearchFilterBuilder(tx.where, table, definition))
    if not isinstance(builder, SearchFilterBuilder):
        raise SchemaError(
            f"{tx.where}: the with_search_index({index!r}, ...) callback must return the filter "
            f"builder (e.g. lambda q: q.search({definition.search_field!r}, text)), got "
            f"{type(builder).__name__}."
        )
    if builder.text is None:
        raise SchemaError(
            f"{tx.where}: with_search_index({index!r}, ...) needs a search: "
            f"lambda q: q.search({definition.search_field!r}, text)."
        )
    return SearchQuery(tx, table, definition, list(defs), builder)
