"""``ConvexClient``: the blocking client, for scripts, notebooks, threads and GUI programs.

    from pyconvex.client import ConvexClient

    with ConvexClient("http://127.0.0.1:3210") as client:
        client.mutation("messages:send", {"channel": c, "body": "hi"})
        for messages in client.subscribe("messages:list", {"channel": c}):
            print(len(messages))

It runs an :class:`AsyncConvexClient` on an event loop in its own thread, started at once (a
deployment that is down is retried in the background). Every method may be called from any
thread; a caller waits on a lock, never holding the GIL, so other threads run meanwhile.
Callbacks (``on_update``, ``on_error``, ``on_change``) run on the client's thread: keep them
short, and do not call the blocking client's methods from them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from pyconvex.client.async_client import AsyncConvexClient, FunctionName
from pyconvex.client.auth import FetchToken, OnAuthChange
from pyconvex.client.engine import ConnectionState
from pyconvex.client.errors import ClientClosedError, ClientError
from pyconvex.client.function_names import function_path, wire_args
from pyconvex.client.optimistic import OptimisticUpdate
from pyconvex.client.pagination import BlockingPaginatedSubscription, PaginatedState
from pyconvex.client.subscription import BlockingSubscription, Snapshot, SubscriptionState
from pyconvex.server.ctx import ArgsOf
from pyconvex.server.references import FunctionReference, NoArgs

ArgsT = TypeVar("ArgsT")
ReturnsT = TypeVar("ReturnsT")
R = TypeVar("R")


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (a pyconvex dependency off Windows): it wakes up on a
    socket's data sooner than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class ConvexClient:
    """A blocking Convex client (see the module docstring). ``timeout`` on a call bounds the
    wait in seconds (TimeoutError); a mutation that timed out may still be applied later."""

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None) -> None:
        self._client = AsyncConvexClient(url, headers=headers)
        self._engine = self._client._engine
        self._loop = _new_loop()
        self._closed = False
        self._thread = threading.Thread(
            target=self._serve, name=f"pyconvex client {url}", daemon=True
        )
        self._thread.start()
        self._run(self._engine.start)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    @property
    def url(self) -> str:
        return self._client.url

    # -- running on the client's thread ----------------------------------------------------

    def _check_thread(self) -> None:
        if threading.get_ident() == self._thread.ident:
            raise ClientError(
                "A blocking ConvexClient method was called from the client's own thread (a "
                "callback): it would wait for itself. Use the value the callback got, or "
                "hand the work to another thread."
            )
        if self._closed:
            raise ClientClosedError("The client is closed.")

    def _await(self, coro: Coroutine[Any, Any, R], timeout: float | None) -> R:
        try:
            self._check_thread()
        except ClientError:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer from {self.url} within {timeout} s") from None
        except BaseException:
            future.cancel()
            raise

    def _run(self, fn: Callable[[], R]) -> R:
        """Run ``fn`` on the client's thread and return what it returns."""
        self._check_thread()

        async def call() -> R:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    # -- queries ---------------------------------------------------------------------------

    @overload
    def query(
        self,
        fn: FunctionReference[Literal["query"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
        *,
        timeout: float | None = None,
    ) -> ReturnsT: ...
    @overload
    def query(
        self,
        fn: FunctionReference[Literal["query"], ArgsT, ReturnsT],
        args: ArgsOf[ArgsT],
        *,
        timeout: float | None = None,
    ) -> ReturnsT: ...
    @overload
    def query(
        self,
        fn: FunctionName,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any: ...
    def query(self, fn: Any, args: Any = None, *, timeout: float | None = None) -> Any:
        """Run a query once (see :meth:`AsyncConvexClient.query`)."""
        return self._await(self._client.query(fn, args), timeout)

    @overload
    def subscribe(
        self,
        fn: FunctionReference[Literal["query"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
        *,
        on_update: Callable[[ReturnsT], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> BlockingSubscription[ReturnsT]: ...
    @overload
    def subscribe(
        self,
        fn: FunctionReference[Literal["query"], ArgsT, ReturnsT],
        args: ArgsOf[ArgsT],
        *,
        on_update: Callable[[ReturnsT], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> BlockingSubscription[ReturnsT]: ...
    @overload
    def subscribe(
        self,
        fn: FunctionName,
        args: Mapping[str, Any] | None = None,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> BlockingSubscription[Any]: ...
    def subscribe(
        self,
        fn: Any,
        args: Any = None,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> BlockingSubscription[Any]:
        """Subscribe to a query: iterate it (from any thread), read ``.value``, or pass
        callbacks (run on the client's thread). Close it (or use ``with``) to unsubscribe."""
        state = SubscriptionState(self._engine, function_path(fn), on_update, on_error)
        wire = wire_args(args, f" of {fn}")
        self._run(lambda: state.attach(wire))
        return BlockingSubscription(state, self._run)

    def paginated(
        self,
        fn: FunctionReference[Literal["query"], Any, Any] | FunctionName,
        args: Mapping[str, Any] | None = None,
        page_size: int = 10,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> BlockingPaginatedSubscription[Any]:
        """A live paginated query (see :meth:`AsyncConvexClient.paginated`)."""
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size <= 0:
            raise ValueError(f"page_size must be a positive int, not {page_size!r}")
        wire = wire_args(args, f" of {fn}")
        if "paginationOpts" in wire:
            raise ValueError(
                "paginated() sets paginationOpts itself: pass the query's other arguments"
            )
        state = PaginatedState(
            self._engine, function_path(fn), wire, page_size, on_update, on_error
        )
        self._run(lambda: state.attach(wire))
        return BlockingPaginatedSubscription(state, self._run)

    # -- mutations and actions -------------------------------------------------------------

    @overload
    def mutation(
        self,
        fn: FunctionReference[Literal["mutation"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
        *,
        optimistic_update: OptimisticUpdate | None = None,
        timeout: float | None = None,
    ) -> ReturnsT: ...
    @overload
    def mutation(
        self,
        fn: FunctionReference[Literal["mutation"], ArgsT, ReturnsT],
        args: ArgsOf[ArgsT],
        *,
        optimistic_update: OptimisticUpdate | None = None,
        timeout: float | None = None,
    ) -> ReturnsT: ...
    @overload
    def mutation(
        self,
        fn: FunctionName,
        args: Mapping[str, Any] | None = None,
        *,
        optimistic_update: OptimisticUpdate | None = None,
        timeout: float | None = None,
    ) -> Any: ...
    def mutation(
        self,
        fn: Any,
        args: Any = None,
        *,
        optimistic_update: OptimisticUpdate | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run a mutation (see :meth:`AsyncConvexClient.mutation`); calls from several
        threads are pipelined on the one socket."""
        coro = self._client.mutation(fn, args, optimistic_update=optimistic_update)
        return self._await(coro, timeout)

    @overload
    def action(
        self,
        fn: FunctionReference[Literal["action"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
        *,
        timeout: float | None = None,
    ) -> ReturnsT: ...
    @overload
    def action(
        self,
        fn: FunctionReference[Literal["action"], ArgsT, ReturnsT],
        args: ArgsOf[ArgsT],
        *,
        timeout: float | None = None,
    ) -> ReturnsT: ...
    @overload
    def action(
        self,
        fn: FunctionName,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any: ...
    def action(self, fn: Any, args: Any = None, *, timeout: float | None = None) -> Any:
        """Run an action (see :meth:`AsyncConvexClient.action`)."""
        return self._await(self._client.action(fn, args), timeout)

    # -- auth ------------------------------------------------------------------------------

    def set_auth(self, fetch_token: FetchToken, on_change: OnAuthChange | None = None) -> None:
        """Authenticate as a user (see :meth:`AsyncConvexClient.set_auth`); a blocking
        ``fetch_token`` runs on a worker thread."""
        self._await(self._client.set_auth(fetch_token, on_change), None)

    def set_admin_auth(self, admin_key: str, acting_as: Mapping[str, Any] | None = None) -> None:
        """Authenticate with the admin key, optionally acting as a user (see
        :meth:`AsyncConvexClient.set_admin_auth`)."""
        self._run(lambda: self._client.set_admin_auth(admin_key, acting_as))

    def clear_auth(self) -> None:
        self._run(self._client.clear_auth)

    # -- state and lifetime ----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Every subscription's value as of one Transition, read at once (from any thread:
        values read one by one from different subscriptions may straddle two Transitions)."""
        return Snapshot(self._engine.view)

    def connection_state(self) -> ConnectionState:
        return self._run(self._client.connection_state)

    def close(self) -> None:
        """Close the socket and stop the client's thread (idempotent)."""
        if self._closed:
            return
        if threading.get_ident() == self._thread.ident:
            raise ClientError("close() was called from the client's own thread (a callback).")
        try:
            asyncio.run_coroutine_threadsafe(self._client.close(), self._loop).result(10)
        finally:
            self._closed = True
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> ConvexClient:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ConvexClient {self.url}>"
