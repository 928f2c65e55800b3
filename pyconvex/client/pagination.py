"""Live paginated queries, as Convex's ``usePaginatedQuery`` runs them (PROTOCOL.md §6).

``client.paginated(api.messages.page, {"channel": c}, page_size=20)`` subscribes to the first
page (``cursor: null``); ``load_more()`` adds a page starting at the last page's
``continueCursor``. Each page is its own query subscription, so a live insert grows the page
it falls in; the server keeps each page's end (its journal), so pages never overlap or leave
gaps. A page that grows too large (the server returns ``splitCursor`` and ``pageStatus``
``SplitRecommended``/``SplitRequired``, or more than twice ``page_size`` items) is split into
``[cursor, splitCursor]`` and ``[splitCursor, continueCursor]``, swapped in once both are
loaded; items from a ``SplitRequired`` page on are hidden until then. An ``InvalidCursor``
error starts over from the first page.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from pyconvex.client.errors import ConvexError
from pyconvex.client.results import QueryResult
from pyconvex.client.subscription import (
    BlockingSubscription,
    Subscription,
    SubscriptionState,
)

if TYPE_CHECKING:
    from pyconvex.client.engine import ClientEngine

T = TypeVar("T")
_log = logging.getLogger("pyconvex.client")
_ids = itertools.count(1)

PaginationStatus = Literal["LoadingFirstPage", "CanLoadMore", "LoadingMore", "Exhausted"]


@dataclass(frozen=True, slots=True)
class PaginatedResult(Generic[T]):
    """The loaded items of every page, in order, and what ``load_more`` can do."""

    results: list[T] = field(default_factory=list)
    status: PaginationStatus = "LoadingFirstPage"

    @property
    def is_loading(self) -> bool:
        return self.status in ("LoadingFirstPage", "LoadingMore")


class _PageListener:
    """A page's subscription: its changes are read when the Transition is applied; its end
    (the client closed or failed) ends the paginated subscription."""

    def __init__(self, owner: PaginatedState) -> None:
        self.owner = owner

    def on_result(self, result: QueryResult) -> None:
        pass

    def on_end(self, error: BaseException | None) -> None:
        if not self.owner.ended:
            self.owner.on_end(error)


@dataclass(slots=True)
class _Page:
    query_id: int
    cursor: str | None
    listener: _PageListener


class PaginatedState(SubscriptionState):
    """The pages of one paginated query; its "result" is a :class:`PaginatedResult`."""

    def __init__(
        self,
        engine: ClientEngine,
        path: str,
        args: dict[str, Any],
        page_size: int,
        on_update: Callable[[Any], Any] | None,
        on_error: Callable[[BaseException], Any] | None,
    ) -> None:
        super().__init__(engine, path, on_update, on_error)
        self.args = args
        self.page_size = page_size
        self._current: QueryResult | None = None
        self._shape: tuple[Any, ...] = ()
        self._reset_state()

    def _reset_state(self) -> None:
        self.id = next(_ids)
        self.pages: list[int] = []
        self._queries: dict[int, _Page] = {}
        self._splits: dict[int, tuple[int, int]] = {}
        self._next_key = 0
        self._last: dict[str, Any] | None = None

    # -- SubscriptionState -----------------------------------------------------------------

    @property
    def result(self) -> QueryResult | None:
        return self._current

    def attach(self, args: dict[str, Any]) -> None:
        self.engine.start()
        self.engine.add_transition_listener(self._on_transition)
        self.pages.append(self._add_page({"numItems": self.page_size, "cursor": None}))
        self._update()

    def detach(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.engine.remove_transition_listener(self._on_transition)
        self._drop_pages()
        self.on_end(None)

    # -- pages -----------------------------------------------------------------------------

    def _add_page(self, opts: dict[str, Any]) -> int:
        key = self._next_key
        self._next_key += 1
        listener = _PageListener(self)
        page_args = {**self.args, "paginationOpts": {**opts, "id": float(self.id)}}
        query_id = self.engine.subscribe(self.path, page_args, listener)
        self._queries[key] = _Page(query_id, opts.get("cursor"), listener)
        return key

    def _drop_pages(self) -> None:
        for page in self._queries.values():
            self.engine.unsubscribe(page.query_id, page.listener)
        self._queries.clear()

    def _page_value(self, key: int) -> QueryResult | None:
        return self.engine.view.results.get(self._queries[key].query_id)

    def load_more(self, num_items: int | None = None) -> bool:
        """Add the next page (``num_items``, default the page size); False when the last page
        is still loading, or the end has been reached."""
        last = self._last
        if self.closed or last is None or last.get("isDone") or self.status != "CanLoadMore":
            return False
        n = self.page_size if num_items is None else num_items
        if n <= 0:
            raise ValueError(f"load_more needs a positive number of items, not {n}")
        self.pages.append(self._add_page({"numItems": n, "cursor": last["continueCursor"]}))
        self._update()
        return True

    @property
    def status(self) -> PaginationStatus:
        current = self._current
        if current is None or current.error is not None:
            return "LoadingFirstPage"
        value = current.value
        assert isinstance(value, PaginatedResult)
        return value.status

    # -- recomputing -----------------------------------------------------------------------

    def _on_transition(self, changed: set[int]) -> None:
        if self.closed:
            return
        if any(page.query_id in changed for page in self._queries.values()):
            self._update()

    def _update(self) -> None:
        self._complete_splits()
        result, shape = self._compute()
        if result is None:  # started over
            return
        if self._current is None or not _same_shape(shape, self._shape):
            self._shape = shape
            self._current = result
            self.on_result(result)

    def _complete_splits(self) -> None:
        for key, (first, second) in list(self._splits.items()):
            if self._page_value(first) is not None and self._page_value(second) is not None:
                index = self.pages.index(key)
                self.pages[index : index + 1] = [first, second]
                del self._splits[key]
                page = self._queries.pop(key)
                self.engine.unsubscribe(page.query_id, page.listener)

    def _compute(self) -> tuple[QueryResult | None, tuple[Any, ...]]:
        items: list[Any] = []
        shape: list[Any] = []
        last: dict[str, Any] | None = None
        for key in self.pages:
            outcome = self._page_value(key)
            if outcome is None:
                last = None
                break
            if outcome.error is not None:
                if _invalid_cursor(outcome.error):
                    _log.warning(
                        "%s: %s; starting over from the first page", self.path, outcome.error
                    )
                    self._start_over()
                    return None, ()
                self._last = None
                return outcome, ("error", outcome)
            value = outcome.value
            if not isinstance(value, dict) or not isinstance(value.get("page"), list):
                raise TypeError(
                    f"{self.path} is not a paginated query: it returned "
                    f"{type(value).__name__}, not {{page, isDone, continueCursor}}"
                )
            shape.append(outcome)
            if key not in self._splits and self._should_split(value):
                self._split(key, value)
            if value.get("pageStatus") == "SplitRequired":
                last = None
                break
            items.extend(value["page"])
            last = value
        self._last = last
        if last is None:
            status: PaginationStatus = "LoadingMore" if items else "LoadingFirstPage"
        elif last.get("isDone"):
            status = "Exhausted"
        else:
            status = "CanLoadMore"
        return (
            QueryResult.of_value(PaginatedResult(items, status), None),
            (status, *shape),
        )

    def _should_split(self, value: dict[str, Any]) -> bool:
        return bool(value.get("splitCursor")) and (
            value.get("pageStatus") in ("SplitRecommended", "SplitRequired")
            or len(value["page"]) > self.page_size * 2
        )

    def _split(self, key: int, value: dict[str, Any]) -> None:
        cursor = self._queries[key].cursor
        split, end = value["splitCursor"], value["continueCursor"]
        first = self._add_page({"numItems": self.page_size, "cursor": cursor, "endCursor": split})
        second = self._add_page({"numItems": self.page_size, "cursor": split, "endCursor": end})
        self._splits[key] = (first, second)

    def _start_over(self) -> None:
        self._drop_pages()
        self._reset_state()
        self.pages.append(self._add_page({"numItems": self.page_size, "cursor": None}))
        self._current = QueryResult.of_value(PaginatedResult(), None)
        self._shape = ("restart", self.id)
        self.on_result(self._current)


def _same_shape(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """The same status and the very same page results (compared by identity)."""
    return len(a) == len(b) and all(x is y or x == y for x, y in zip(a, b, strict=True))


def _invalid_cursor(error: BaseException) -> bool:
    if "InvalidCursor" in str(error):
        return True
    data = getattr(error, "data", None) if isinstance(error, ConvexError) else None
    return (
        isinstance(data, dict)
        and data.get("isConvexSystemError") is True
        and data.get("paginationError") == "InvalidCursor"
    )


class PaginatedSubscription(Subscription[PaginatedResult[T]]):
    """A live paginated query on an :class:`~pyconvex.client.AsyncConvexClient`::

    feed = client.paginated(api.messages.page, {"channel": "general"}, page_size=20)
    async for page in feed:        # PaginatedResult: .results, .status
        show(page.results)
        if page.status == "CanLoadMore" and want_more():
            feed.load_more()
    """

    def __init__(self, state: PaginatedState) -> None:
        super().__init__(state)
        self._paginated = state

    @property
    def results(self) -> list[T]:
        """Every loaded item, in order ([] while the first page loads)."""
        current = self._paginated.result
        return [] if current is None else list(current.get().results)

    @property
    def status(self) -> PaginationStatus:
        return self._paginated.status

    def load_more(self, num_items: int | None = None) -> bool:
        """Subscribe to the next page (``num_items``, default the page size). Returns False
        (doing nothing) while the last page loads, or once the end is reached."""
        return self._paginated.load_more(num_items)


class BlockingPaginatedSubscription(BlockingSubscription[PaginatedResult[T]]):
    """A live paginated query on a :class:`~pyconvex.client.ConvexClient` (see
    :class:`PaginatedSubscription`)."""

    def __init__(self, state: PaginatedState, run: Callable[[Callable[[], Any]], Any]) -> None:
        super().__init__(state, run)
        self._paginated = state

    @property
    def results(self) -> list[T]:
        current = self._paginated.result
        return [] if current is None else list(current.get().results)

    @property
    def status(self) -> PaginationStatus:
        return self._paginated.status

    def load_more(self, num_items: int | None = None) -> bool:
        state = self._paginated
        return bool(self._run(lambda: state.load_more(num_items)))
