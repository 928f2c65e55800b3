"""``ctx.db.query(table)``: index ranges, order, filters, take/first/unique/collect/paginate.

Every terminal operation records in the transaction's read set exactly the key range it
consumed: from where the scan started to the last key it used (or the whole range when it ran
to the end). So ``take(10)`` is not invalidated by a write after its tenth row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from pyconvex.errors import PyconvexError, SchemaError
from pyconvex.runtime.query.cursors import decode_cursor, encode_cursor
from pyconvex.runtime.query.filter import FilterBuilder, matches
from pyconvex.runtime.query.index_range import IndexRangeBuilder
from pyconvex.runtime.query.page import parse_options, scan_page
from pyconvex.runtime.query.search_query import SearchFilterBuilder, SearchQuery, compile_search
from pyconvex.runtime.query.transaction import Transaction
from pyconvex.runtime.store.index import Document
from pyconvex.runtime.store.memory import BY_CREATION_TIME, BY_ID


def copy_doc(doc: Document) -> Document:
    """A deep copy of a document, so handlers can't change the stored version in place."""
    out = {}
    for k, v in doc.items():
        t = type(v)
        out[k] = v if (t is not dict and t is not list) else _copy(v)
    return out


def _copy(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return {k: _copy(x) for k, x in v.items()}
    if t is list:
        return [_copy(x) for x in v]
    return v


class Query:
    """A query under construction; terminal methods are awaitable.

    >>> # await ctx.db.query("messages").with_index("by_channel",
    >>> #     lambda q: q.eq("channel", c)).order("desc").take(10)
    """

    __slots__ = (
        "_consumed",
        "_eq_id",
        "_filters",
        "_hi",
        "_index",
        "_lo",
        "_order",
        "_search",
        "_table",
        "_tx",
    )

    def __init__(self, tx: Transaction, table: str) -> None:
        self._tx = tx
        self._table = table
        self._index = BY_CREATION_TIME
        self._lo: bytes = b""
        self._hi: bytes | None = None
        self._order = "asc"
        self._filters: list[Any] = []
        self._consumed = False
        self._eq_id: str | None = None
        self._search: SearchQuery | None = None

    # -- building ------------------------------------------------------------------------
    def with_index(
        self, index: str, range_fn: Callable[[IndexRangeBuilder], IndexRangeBuilder] | None = None
    ) -> Query:
        """Scan ``index``, optionally restricted by ``range_fn`` (eq on a prefix, then bounds)."""
        tx = self._tx
        if self._search is not None:
            raise SchemaError(
                f"{tx.where}: with_index({index!r}) cannot follow with_search_index on "
                f"{self._table!r}; a query reads one index. Put equality conditions into the "
                "search index's filter fields (q.eq), or use .filter(...)."
            )
        if index == BY_ID:
            fields: tuple[str, ...] = ("_id",)
        elif index == BY_CREATION_TIME:
            fields = ("_creationTime",)
        else:
            user = tx.schema.index_fields(self._table, index)
            if user is None:
                known = ["by_id", "by_creation_time", *tx.schema.index_names(self._table)]
                raise SchemaError(
                    f"{tx.where}: table {self._table!r} has no index {index!r}. Indexes: "
                    f"{', '.join(dict.fromkeys(known))}. Define it in convex/schema.py with "
                    f".index({index!r}, [...])."
                )
            fields = (*user, "_creationTime")
        self._index = index
        if range_fn is not None:
            builder = range_fn(IndexRangeBuilder(index, fields))
            if not isinstance(builder, IndexRangeBuilder):
                raise SchemaError(
                    f"{tx.where}: the with_index({index!r}, ...) callback must return the range "
                    f"builder (e.g. lambda q: q.eq('field', value)), got {type(builder).__name__}."
                )
            if index == BY_ID:
                if builder.has_bounds or not builder.eq_values:
                    raise SchemaError(f"{tx.where}: by_id supports only q.eq('_id', id).")
                value = builder.eq_values[0]
                self._eq_id = value if isinstance(value, str) else ""
            else:
                self._lo, self._hi = builder.key_range()
        return self

    def with_search_index(
        self, index: str, search_fn: Callable[[SearchFilterBuilder], Any]
    ) -> Query:
        """Full-text search, results in relevance order (see ``runtime/search_query.py``)::

        .with_search_index("search_body", lambda q: q.search("body", "hello").eq("channel", c))
        """
        tx = self._tx
        if self._search is not None:
            raise SchemaError(f"{tx.where}: with_search_index can be called once per query.")
        if self._index != BY_CREATION_TIME or self._lo or self._hi is not None:
            raise SchemaError(
                f"{tx.where}: with_search_index({index!r}) cannot follow with_index"
                f"({self._index!r}) on {self._table!r}; a query reads one index."
            )
        if self._order != "asc":
            raise SchemaError(
                f"{tx.where}: search results always come in relevance order; remove .order() "
                f"before with_search_index({index!r})."
            )
        self._search = compile_search(tx, self._table, index, search_fn)
        return self

    def order(self, order: str) -> Query:
        """ "asc" (default) or "desc" along the index."""
        if order not in ("asc", "desc"):
            raise ValueError(f'{self._tx.where}: order() takes "asc" or "desc", got {order!r}.')
        if self._search is not None:
            raise SchemaError(
                f"{self._tx.where}: search results always come in relevance order; remove "
                f".order({order!r}) after with_search_index."
            )
        self._order = order
        return self

    def filter(self, predicate: Callable[[FilterBuilder], Any]) -> Query:
        """Keep documents for which the expression is true::

        .filter(lambda q: q.and_(q.eq(q.field("done"), False), q.gt(q.field("n"), 3)))
        """
        self._filters.append(predicate(FilterBuilder()))
        return self

    # -- scanning ------------------------------------------------------------------------
    def _start(self) -> None:
        if self._consumed:
            raise PyconvexError(
                f"{self._tx.where}: this query was already run; build a new ctx.db.query(...)."
            )
        self._consumed = True

    def _keep(self, doc: Document) -> bool:
        return all(matches(f, doc) for f in self._filters)

    def _by_id_docs(self) -> list[Document]:
        tx = self._tx
        if self._eq_id is not None:
            doc = tx.get(self._eq_id)
            table = tx.table_for_id(self._eq_id)
            if doc is None or table is None or table.name != self._table:
                return []
            return [doc] if self._keep(doc) else []
        docs = [d for _, d in self._run(None)[0]]
        docs.sort(key=lambda d: d["_id"], reverse=self._order == "desc")
        return docs

    def _run(
        self,
        limit: int | None,
        lo: bytes | None = None,
        hi: bytes | None = None,
        max_rows: int | None = None,
    ) -> tuple[list[tuple[bytes, Document]], bool, bytes | None]:
        """Scan: the (key, doc) pairs kept, whether the range was exhausted, the last key read."""
        tx = self._tx
        index = BY_CREATION_TIME if self._index == BY_ID else self._index
        lo = self._lo if lo is None else lo
        hi = self._hi if hi is None else hi
        reverse = self._order == "desc"
        out: list[tuple[bytes, Document]] = []
        last: bytes | None = None
        exhausted = True
        rows = 0
        if limit != 0:
            it: Iterator[tuple[bytes, Document]] = tx.scan(self._table, index, lo, hi, reverse)
            for key, doc in it:
                last = key
                rows += 1
                if self._keep(doc):
                    out.append((key, doc))
                    if limit is not None and len(out) >= limit:
                        exhausted = False
                        break
                if max_rows is not None and rows >= max_rows:
                    exhausted = False
                    break
        if exhausted or last is None:
            tx.reads.add_range(self._table, index, lo, hi)
        elif reverse:
            tx.reads.add_range(self._table, index, last, hi)
        else:
            tx.reads.add_range(self._table, index, lo, last + b"\x00")
        return out, exhausted, last

    def _collect(self, limit: int | None) -> list[Document]:
        self._start()
        if self._search is not None:
            keep = self._keep if self._filters else None
            return [copy_doc(d) for d in self._search.collect(limit, keep)]
        if self._index == BY_ID:
            docs = self._by_id_docs()
            return [copy_doc(d) for d in (docs if limit is None else docs[:limit])]
        pairs = self._run(limit)[0]
        return [copy_doc(d) for _, d in pairs]

    # -- terminal operations -------------------------------------------------------------
    async def take(self, n: int) -> list[Document]:
        """The first ``n`` documents."""
        if isinstance(n, bool) or not isinstance(n, int | float) or n < 0 or n != int(n):
            raise ValueError(f"{self._tx.where}: take() needs a whole number >= 0, got {n!r}.")
        return self._collect(int(n))

    async def collect(self) -> list[Document]:
        """All documents (mind the read limits; prefer take/paginate on big tables)."""
        return self._collect(None)

    async def first(self) -> Document | None:
        """The first document, or None."""
        docs = self._collect(1)
        return docs[0] if docs else None

    async def unique(self) -> Document | None:
        """The only document, or None; raises if there is more than one."""
        docs = self._collect(2)
        if len(docs) > 1:
            raise PyconvexError(
                f"{self._tx.where}: unique() found more than one document in {self._table!r} "
                f"(ids {docs[0]['_id']}, {docs[1]['_id']}). Narrow the query or use first()."
            )
        return docs[0] if docs else None

    async def paginate(self, opts: Any) -> dict[str, Any]:
        """One page, as Convex's ``queryPage`` returns it::

            {"page": [...], "isDone": bool, "continueCursor": str,
             "splitCursor": str | None, "pageStatus": "SplitRecommended" | "SplitRequired" | None}

        ``opts`` is Convex's paginationOpts: ``numItems``, ``cursor``, and optionally
        ``endCursor``, ``maximumRowsRead``, ``maximumBytesRead`` (see ``page.py``). In a
        subscription the page keeps its end position when re-run, so pages grow or shrink
        instead of shifting; ``splitCursor`` and ``pageStatus`` tell a client when to split a
        page that grew.
        """
        tx = self._tx
        self._start()
        if self._index == BY_ID:
            raise SchemaError(
                f"{tx.where}: paginate() over by_id is not supported; use another index."
            )
        options = parse_options(opts, tx.where, tx.limits.documents_read)
        if tx.paginated:
            raise PyconvexError(
                "This query or mutation function ran multiple paginated queries. Convex only "
                f"supports a single paginated query in each function ({tx.where}: paginate "
                "once, and use take() or collect() for the other reads)."
            )
        tx.paginated = True
        cursor, end_cursor = options.cursor, options.end_cursor
        if end_cursor is None and tx.journal_in is not None:
            end_cursor = tx.journal_in
        if self._search is not None:
            keep = self._keep if self._filters else None
            docs, done, cont = self._search.page(
                options.num_items, cursor, end_cursor, options.maximum_rows_read, keep
            )
            tx.journal_out = cont
            # Like Convex: a search page is never split (splitting would not make it cheaper).
            return _result([copy_doc(d) for d in docs], done, cont, None, None)
        index = self._index
        reverse = self._order == "desc"
        lo, hi = self._lo, self._hi
        if cursor is not None:
            start = decode_cursor(cursor, self._table, index, tx.where)
            if start is None:  # the end cursor: nothing after it
                tx.journal_out = cursor
                return _result([], True, cursor, None, None)
            if reverse:
                hi = start if hi is None or start < hi else hi
            else:
                lo = max(lo, start + b"\x00")
        end_key: bytes | None = None
        if end_cursor is not None:
            end_key = decode_cursor(end_cursor, self._table, index, tx.where)
            if end_key is not None:
                if reverse:
                    lo = max(lo, end_key)
                else:
                    bound = end_key + b"\x00"
                    hi = bound if hi is None or bound < hi else hi
        keep = self._keep if self._filters else None
        limit = None if end_cursor is not None else options.num_items
        scan = scan_page(tx, self._table, index, lo, hi, reverse, keep, limit, options)
        page = [copy_doc(d) for _, d in scan.pairs]
        if end_cursor is not None:
            cont, done = end_cursor, end_key is None
        else:
            done = scan.exhausted
            cont = encode_cursor(self._table, index, None if done else scan.last_key)
        split = (
            None if scan.split_key is None else encode_cursor(self._table, index, scan.split_key)
        )
        tx.journal_out = cont
        return _result(page, done, cont, split, scan.status)

    def __aiter__(self) -> AsyncIterator[Document]:
        return self._aiter()

    async def _aiter(self) -> AsyncIterator[Document]:
        for doc in self._collect(None):
            yield doc


def _result(
    page: list[Document], done: bool, cont: str, split: str | None, status: str | None
) -> dict[str, Any]:
    return {
        "page": page,
        "isDone": done,
        "continueCursor": cont,
        "splitCursor": split,
        "pageStatus": status,
    }
