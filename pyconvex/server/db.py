"""Typed views of ``ctx.db`` for author code: the query builder, its callbacks and pagination.

These Protocols describe what the runtime's ``ctx.db.query(...)`` objects do
(``pyconvex/runtime/query/query_impl.py``, ``index_range.py``, ``filter.py``). The generated
``convex/_generated/server.py`` binds them to the schema, so that::

    docs = await ctx.db.query("messages").with_index("by_channel", lambda q: q.eq("channel", c)).take(10)

is a ``list[MessagesDoc]`` for mypy, and a misspelled table or index name is a type error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, Literal, NotRequired, Protocol, Self, TypedDict, TypeVar

DocT = TypeVar("DocT")
IndexT = TypeVar("IndexT", bound=str, contravariant=True)
SearchIndexT = TypeVar("SearchIndexT", bound=str, contravariant=True)

#: ``order("asc" | "desc")``.
Order = Literal["asc", "desc"]

#: The system tables ``ctx.db.system.query`` reads.
SystemTableName = Literal["_storage", "_scheduled_functions"]


class PaginationOptions(TypedDict):
    """Convex's ``paginationOpts``: what ``.paginate(...)`` takes, as an argument annotation::

    @query
    async def page(ctx: QueryCtx, pagination_opts: PaginationOptions) -> PaginationResult[MessagesDoc]:
        return await ctx.db.query("messages").order("desc").paginate(pagination_opts)

    Its validator is the same as ``pagination_opts_validator``.
    """

    numItems: float
    cursor: str | None
    endCursor: NotRequired[str | None]
    id: NotRequired[float]
    maximumRowsRead: NotRequired[float]
    maximumBytesRead: NotRequired[float]


#: ``pageStatus`` of a page: split it in two (``splitCursor``) because it grew, or because it
#: hit a read limit and is incomplete.
PageStatus = Literal["SplitRecommended", "SplitRequired"]


class PaginationResult(TypedDict, Generic[DocT]):
    """One page of ``.paginate(...)``, as Convex returns it: ``page``, ``isDone``,
    ``continueCursor``, and ``splitCursor`` / ``pageStatus`` for clients that split pages::

        result = await ctx.db.query("messages").paginate({"numItems": 20, "cursor": None})

    Return it whole (``{**result, "page": enriched}``) so ``usePaginatedQuery`` can split a
    page that grew. Its validator is ``pagination_result_validator(item)``.
    """

    page: list[DocT]
    isDone: bool
    continueCursor: str
    splitCursor: NotRequired[str | None]
    pageStatus: NotRequired[PageStatus | None]


class Expression(Protocol):
    """A filter expression built by :class:`FilterBuilder` (``q.eq(q.field("done"), False)``)."""

    def evaluate(self, doc: dict[str, Any]) -> Any:
        """The expression's value for one document."""
        ...


class FilterBuilder(Protocol):
    """The ``q`` of ``.filter(lambda q: ...)``: fields, comparisons, logic and arithmetic.

    .filter(lambda q: q.and_(q.eq(q.field("done"), False), q.gt(q.field("priority"), 2)))

    Operands are expressions or plain values; comparisons use Convex's order across types.
    """

    def field(self, path: str, /) -> Expression: ...
    def eq(self, a: Any, b: Any, /) -> Expression: ...
    def neq(self, a: Any, b: Any, /) -> Expression: ...
    def lt(self, a: Any, b: Any, /) -> Expression: ...
    def lte(self, a: Any, b: Any, /) -> Expression: ...
    def gt(self, a: Any, b: Any, /) -> Expression: ...
    def gte(self, a: Any, b: Any, /) -> Expression: ...
    def and_(self, *exprs: Any) -> Expression: ...
    def or_(self, *exprs: Any) -> Expression: ...
    def not_(self, expr: Any, /) -> Expression: ...
    def add(self, a: Any, b: Any, /) -> Expression: ...
    def sub(self, a: Any, b: Any, /) -> Expression: ...
    def mul(self, a: Any, b: Any, /) -> Expression: ...
    def div(self, a: Any, b: Any, /) -> Expression: ...
    def mod(self, a: Any, b: Any, /) -> Expression: ...
    def neg(self, a: Any, /) -> Expression: ...


class IndexRangeBuilder(Protocol):
    """The ``q`` of ``.with_index(name, lambda q: ...)``: ``eq`` on a prefix of the index's
    fields, then at most one lower (``gt``/``gte``) and one upper (``lt``/``lte``) bound::

        .with_index("by_channel", lambda q: q.eq("channel", channel).gt("_creationTime", since))
    """

    def eq(self, field: str, value: Any, /) -> IndexRangeBuilder: ...
    def gt(self, field: str, value: Any, /) -> IndexRangeBuilder: ...
    def gte(self, field: str, value: Any, /) -> IndexRangeBuilder: ...
    def lt(self, field: str, value: Any, /) -> IndexRangeBuilder: ...
    def lte(self, field: str, value: Any, /) -> IndexRangeBuilder: ...


class SearchFilter(Protocol):
    """A search expression: add equality filters on the search index's filter fields."""

    def eq(self, field: str, value: Any, /) -> SearchFilter: ...


class SearchFilterBuilder(Protocol):
    """The ``q`` of ``.with_search_index(name, lambda q: q.search("body", "hello").eq(...))``."""

    def search(self, field: str, query: str, /) -> SearchFilter: ...


IndexRange = Callable[[IndexRangeBuilder], IndexRangeBuilder]
FilterPredicate = Callable[[FilterBuilder], "Expression | bool"]
SearchExpression = Callable[[SearchFilterBuilder], SearchFilter]


class OrderedQuery(Protocol[DocT]):
    """A query whose order is fixed: filter it, then read it (every read is awaited)::

    first = await ctx.db.query("messages").order("desc").first()
    """

    def filter(self, predicate: FilterPredicate, /) -> Self:
        """Keep the documents for which ``predicate(q)`` is true."""
        ...

    async def take(self, n: int, /) -> list[DocT]:
        """The first ``n`` documents."""
        ...

    async def collect(self) -> list[DocT]:
        """Every document (prefer ``take`` or ``paginate`` on big tables)."""
        ...

    async def first(self) -> DocT | None:
        """The first document, or None."""
        ...

    async def unique(self) -> DocT | None:
        """The only document, or None; raises if there are several."""
        ...

    async def paginate(
        self, opts: PaginationOptions | Mapping[str, Any], /
    ) -> PaginationResult[DocT]:
        """One page: ``{"numItems": n, "cursor": None | str}`` in, ``PaginationResult`` out."""
        ...

    def __aiter__(self) -> AsyncIterator[DocT]: ...


class Query(OrderedQuery[DocT], Protocol[DocT]):
    """A query over an index (or the whole table): choose the order, filter, read."""

    def order(self, order: Order, /) -> OrderedQuery[DocT]:
        """``"asc"`` (the default) or ``"desc"`` along the index."""
        ...


class QueryInitializer(Query[DocT], Protocol[DocT, IndexT, SearchIndexT]):
    """What ``ctx.db.query(table)`` returns: pick an index (``IndexT`` names the table's
    indexes, including ``by_id`` and ``by_creation_time``) or a search index, or read the table
    in creation order."""

    def with_index(self, index: IndexT, range: IndexRange | None = None, /) -> Query[DocT]:
        """Scan ``index``, restricted by ``range`` (``lambda q: q.eq("channel", c)``)."""
        ...

    def with_search_index(
        self, index: SearchIndexT, search: SearchExpression, /
    ) -> OrderedQuery[DocT]:
        """Full-text search, most relevant first."""
        ...


class SystemReader(Protocol):
    """``ctx.db.system``: read the system tables (``_storage``, ``_scheduled_functions``)."""

    def query(self, table: SystemTableName, /) -> QueryInitializer[dict[str, Any], str, str]: ...

    async def get(self, table_or_id: str, id: str | None = None, /) -> dict[str, Any] | None: ...
