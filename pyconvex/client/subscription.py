"""Live query subscriptions: :class:`Subscription` (asyncio) and :class:`BlockingSubscription`
(threads), both made by their client's ``subscribe``.

Iterating one yields its current value (once it has one), then each new value; a consumer that
falls behind gets the newest value, not every one in between. Once the subscription or the
client is closed, iteration stops at once. A query that fails raises its
error from the iteration (iterate again to go on: the subscription stays live); iteration ends
when the subscription or the client is closed. ``value`` is the current value at any time, and
``on_update`` / ``on_error`` callbacks run on the client's event loop (for the blocking client,
its thread) as each Transition is applied, when every other subscription of the client already
shows the same Transition.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pyconvex.client.errors import ClientError
from pyconvex.client.results import QueryResult

if TYPE_CHECKING:
    from pyconvex.client.engine import ClientEngine, View

T = TypeVar("T")
_log = logging.getLogger("pyconvex.client")


class SubscriptionState:
    """The engine-facing side of a subscription (a ``QueryListener``): the latest result, a
    change counter, and the ways to wait for the next change on the loop and in threads."""

    def __init__(
        self,
        engine: ClientEngine,
        path: str,
        on_update: Callable[[Any], Any] | None,
        on_error: Callable[[BaseException], Any] | None,
    ) -> None:
        self.engine = engine
        self.path = path
        self.query_id = -1
        self.seq = 0
        self.ended = False
        self.end_error: BaseException | None = None
        self.closed = False
        self._on_update = on_update
        self._on_error = on_error
        self._waiters: list[asyncio.Future[None]] = []
        self.cond = threading.Condition()

    def attach(self, args: dict[str, Any]) -> None:
        """Subscribe (on the engine's loop)."""
        self.query_id = self.engine.subscribe(self.path, args, self)
        if self.engine.view.results.get(self.query_id) is not None:
            self.seq = 1  # an identical subscription already has a result

    def detach(self) -> None:
        """Unsubscribe (on the engine's loop) and end the iterations."""
        if self.closed:
            return
        self.closed = True
        self.engine.unsubscribe(self.query_id, self)
        self.on_end(None)

    @property
    def result(self) -> QueryResult | None:
        return self.engine.view.results.get(self.query_id)

    # -- QueryListener ---------------------------------------------------------------------

    def on_result(self, result: QueryResult) -> None:
        with self.cond:
            self.seq += 1
            self.cond.notify_all()
        self._wake()
        if result.error is None:
            if self._on_update is not None:
                _callback(self._on_update, result.value)
        elif self._on_error is not None:
            _callback(self._on_error, result.error)

    def on_end(self, error: BaseException | None) -> None:
        with self.cond:
            self.ended = True
            self.end_error = error
            self.cond.notify_all()
        self._wake()
        if error is not None and self._on_error is not None:
            _callback(self._on_error, error)

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    # -- waiting ---------------------------------------------------------------------------

    async def next_async(self, seen: int) -> tuple[int, QueryResult] | None:
        """The result after change ``seen`` (waiting on the loop); None once ended."""
        while True:
            if self.ended:
                if self.end_error is not None:
                    raise self.end_error
                return None
            if self.seq != seen:
                result = self.result
                if result is not None:
                    return self.seq, result
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def next_blocking(self, seen: int, timeout: float | None) -> tuple[int, QueryResult] | None:
        """The result after change ``seen``, waiting in this thread (never holding the GIL
        while it waits); None once ended. Raises TimeoutError after ``timeout`` seconds."""
        with self.cond:
            while True:
                if self.ended:
                    if self.end_error is not None:
                        raise self.end_error
                    return None
                if self.seq != seen:
                    result = self.result
                    if result is not None:
                        return self.seq, result
                if not self.cond.wait(timeout):
                    raise TimeoutError(f"no new result of {self.path} within {timeout} s")


_background: set[asyncio.Future[Any]] = set()


def _callback(fn: Callable[[Any], Any], arg: Any) -> None:
    try:
        outcome = fn(arg)
        if asyncio.iscoroutine(outcome):
            _background.add(task := asyncio.ensure_future(outcome))
            task.add_done_callback(_background.discard)
    except Exception:
        _log.exception("a subscription callback raised")


class Subscription(Generic[T]):
    """A live query on an :class:`~pyconvex.client.AsyncConvexClient`::

    sub = client.subscribe(api.messages.list, {"channel": "general"})
    async for messages in sub:    # the current result, then each change
        print(len(messages))
    sub.close()                   # or: with client.subscribe(...) as sub:
    """

    def __init__(self, state: SubscriptionState) -> None:
        self._state = state

    @property
    def function(self) -> str:
        return self._state.path

    @property
    def loaded(self) -> bool:
        """Whether a first result has arrived."""
        return self._state.result is not None

    @property
    def value(self) -> T | None:
        """The current value (None until the first result); raises the error of a failed
        query."""
        result = self._state.result
        return None if result is None else result.get()

    @property
    def outcome(self) -> QueryResult | None:
        """The current result with its log lines and error, without raising."""
        return self._state.result

    async def first(self) -> T:
        """The current value, waiting for the first result if there is none yet."""
        step = await self._state.next_async(0)
        if step is None:
            raise ClientError(f"the subscription to {self._state.path} is closed")
        return step[1].get()  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[T]:
        return self._values()

    async def _values(self) -> AsyncIterator[T]:
        seen = 0
        while (step := await self._state.next_async(seen)) is not None:
            seen, result = step
            yield result.get()

    async def outcomes(self) -> AsyncIterator[QueryResult]:
        """Like iterating, but yields each :class:`QueryResult` (failures too) instead of
        raising."""
        seen = 0
        while (step := await self._state.next_async(seen)) is not None:
            seen, result = step
            yield result

    def close(self) -> None:
        """Unsubscribe; iterations end."""
        self._state.detach()

    def __enter__(self) -> Subscription[T]:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Subscription {self._state.path} #{self._state.query_id}>"


class BlockingSubscription(Generic[T]):
    """A live query on a :class:`~pyconvex.client.ConvexClient`, iterated from any thread::

    with client.subscribe(api.messages.list, {"channel": "general"}) as sub:
        for messages in sub:      # blocks (without the GIL) until the next change
            print(len(messages))
    """

    def __init__(self, state: SubscriptionState, run: Callable[[Callable[[], Any]], Any]) -> None:
        self._state = state
        self._run = run  # run a function on the client's loop thread and wait for it

    @property
    def function(self) -> str:
        return self._state.path

    @property
    def loaded(self) -> bool:
        return self._state.result is not None

    @property
    def value(self) -> T | None:
        """The current value (None until the first result); raises the error of a failed
        query."""
        result = self._state.result
        return None if result is None else result.get()

    @property
    def outcome(self) -> QueryResult | None:
        """The current result with its log lines and error, without raising."""
        return self._state.result

    def first(self, timeout: float | None = None) -> T:
        """The current value, waiting (up to ``timeout`` seconds) for the first result."""
        step = self._state.next_blocking(0, timeout)
        if step is None:
            raise ClientError(f"the subscription to {self._state.path} is closed")
        return step[1].get()  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[T]:
        seen = 0
        while (step := self._state.next_blocking(seen, None)) is not None:
            seen, result = step
            yield result.get()

    def outcomes(self, timeout: float | None = None) -> Iterator[QueryResult]:
        """Like iterating, but yields each :class:`QueryResult` (failures too); raises
        TimeoutError when no new result comes within ``timeout`` seconds."""
        seen = 0
        while (step := self._state.next_blocking(seen, timeout)) is not None:
            seen, result = step
            yield result

    def close(self) -> None:
        """Unsubscribe; iterations end."""
        if not self._state.closed:
            self._run(self._state.detach)

    def __enter__(self) -> BlockingSubscription[T]:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<BlockingSubscription {self._state.path} #{self._state.query_id}>"


class Snapshot:
    """Every subscription of one client as of one Transition (``client.snapshot()``): read
    several values from another thread and they are never half of one Transition, half of the
    next::

        snap = client.snapshot()
        total, page = snap[count_sub], snap[list_sub]
    """

    def __init__(self, view: View) -> None:
        self._view = view

    @property
    def ts(self) -> int:
        """The timestamp of the Transition these results come from."""
        return self._view.ts

    def __getitem__(self, sub: Subscription[T] | BlockingSubscription[T]) -> T | None:
        """The subscription's value then (None while it had none); raises its error. A
        paginated subscription gives its current value."""
        state = sub._state
        result = (
            state.result
            if type(state) is not SubscriptionState
            else self._view.results.get(state.query_id)
        )
        return None if result is None else result.get()
