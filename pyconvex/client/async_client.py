"""``AsyncConvexClient``: pyconvex's client for asyncio programs, over one WebSocket.

    from pyconvex.client import AsyncConvexClient
    from convex._generated.api import api

    async with AsyncConvexClient("http://127.0.0.1:3210") as client:
        await client.mutation(api.messages.send, {"channel": c, "body": "hi"})
        messages = await client.query(api.messages.list, {"channel": c})
        async for messages in client.subscribe(api.messages.list, {"channel": c}):
            ...

It binds to the event loop it is first used on and connects then; a deployment that is down
is retried until it answers. See :mod:`pyconvex.client` for the guarantees.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Literal, TypeVar, overload

from pyconvex.client.auth import FetchToken, OnAuthChange
from pyconvex.client.engine import ClientEngine, ConnectionState
from pyconvex.client.errors import ClientClosedError
from pyconvex.client.function_names import function_path, wire_args
from pyconvex.client.optimistic import OptimisticUpdate
from pyconvex.client.pagination import PaginatedState, PaginatedSubscription
from pyconvex.client.subscription import Snapshot, Subscription, SubscriptionState
from pyconvex.server.ctx import ArgsOf
from pyconvex.server.references import FunctionReference, NoArgs

ArgsT = TypeVar("ArgsT")
ReturnsT = TypeVar("ReturnsT")

#: A function named without a generated reference: ``"messages:send"``.
FunctionName = str


class _First:
    """A one-shot query's listener: the first result, then it unsubscribes."""

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future

    def on_result(self, result: Any) -> None:
        if not self.future.done():
            self.future.set_result(result)

    def on_end(self, error: BaseException | None) -> None:
        if not self.future.done():
            self.future.set_exception(error or ClientClosedError("The client is closed."))


class AsyncConvexClient:
    """A Convex client for asyncio (see the module docstring).

    ``url`` is the deployment's URL (``http://127.0.0.1:3210`` for ``pyconvex dev``, or
    ``https://<name>.convex.cloud``); ``headers`` are added to the WebSocket handshake.
    """

    def __init__(self, url: str, *, headers: Mapping[str, str] | None = None) -> None:
        self._engine = ClientEngine(url, headers=dict(headers or {}))

    @property
    def url(self) -> str:
        return self._engine.connection.url

    # -- queries ---------------------------------------------------------------------------

    @overload
    async def query(
        self, fn: FunctionReference[Literal["query"], NoArgs, ReturnsT], args: NoArgs | None = None
    ) -> ReturnsT: ...
    @overload
    async def query(
        self, fn: FunctionReference[Literal["query"], ArgsT, ReturnsT], args: ArgsOf[ArgsT]
    ) -> ReturnsT: ...
    @overload
    async def query(self, fn: FunctionName, args: Mapping[str, Any] | None = None) -> Any: ...
    async def query(self, fn: Any, args: Any = None) -> Any:
        """Run a query once: its result at a timestamp at least as new as everything this
        client has seen (its own mutations included). Raises :class:`ConvexError` or
        :class:`FunctionError` when the query fails."""
        engine = self._engine
        path, wire = function_path(fn), wire_args(args, f" of {fn}")
        engine.start()
        assert engine.loop is not None
        future: asyncio.Future[Any] = engine.loop.create_future()
        listener = _First(future)
        query_id = engine.subscribe(path, wire, listener)
        try:
            current = engine.view.results.get(query_id)
            result = current if current is not None else await future
        finally:
            engine.unsubscribe(query_id, listener)
        return result.get()

    @overload
    def subscribe(
        self,
        fn: FunctionReference[Literal["query"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
        *,
        on_update: Callable[[ReturnsT], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> Subscription[ReturnsT]: ...
    @overload
    def subscribe(
        self,
        fn: FunctionReference[Literal["query"], ArgsT, ReturnsT],
        args: ArgsOf[ArgsT],
        *,
        on_update: Callable[[ReturnsT], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> Subscription[ReturnsT]: ...
    @overload
    def subscribe(
        self,
        fn: FunctionName,
        args: Mapping[str, Any] | None = None,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> Subscription[Any]: ...
    def subscribe(
        self,
        fn: Any,
        args: Any = None,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> Subscription[Any]:
        """Subscribe to a query: iterate the result (``async for value in sub``), read
        ``sub.value``, or pass ``on_update`` / ``on_error`` callbacks. Must be called on the
        client's event loop; close it (or use ``with``) to unsubscribe."""
        state = SubscriptionState(self._engine, function_path(fn), on_update, on_error)
        state.attach(wire_args(args, f" of {fn}"))
        return Subscription(state)

    def paginated(
        self,
        fn: FunctionReference[Literal["query"], Any, Any] | FunctionName,
        args: Mapping[str, Any] | None = None,
        page_size: int = 10,
        *,
        on_update: Callable[[Any], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
    ) -> PaginatedSubscription[Any]:
        """Subscribe to a paginated query (one that takes ``paginationOpts`` and returns
        ``ctx.db.query(...).paginate(...)``): pass its other arguments; ``page_size`` items
        come first, ``load_more()`` adds a page. See :mod:`pyconvex.client.pagination`."""
        if not isinstance(page_size, int) or isinstance(page_size, bool) or page_size <= 0:
            raise ValueError(f"page_size must be a positive int, not {page_size!r}")
        wire = wire_args(args, f" of {fn}")
        if "paginationOpts" in wire:
            raise ValueError(
                "paginated() sets paginationOpts itself: pass the query's other arguments"
            )
        path = function_path(fn)
        state = PaginatedState(self._engine, path, wire, page_size, on_update, on_error)
        state.attach(wire)
        return PaginatedSubscription(state)

    # -- mutations and actions -------------------------------------------------------------

    @overload
    async def mutation(
        self,
        fn: FunctionReference[Literal["mutation"], NoArgs, ReturnsT],
        args: NoArgs | None = None,
        *,
        optimistic_update: OptimisticUpdate | None = None,
    ) -> ReturnsT: ...
    @overload
    async def mutation(
        self,
        fn: FunctionReference[Literal["mutation"], ArgsT, ReturnsT],
        args: ArgsOf[ArgsT],
        *,
        optimistic_update: OptimisticUpdate | None = None,
    ) -> ReturnsT: ...
    @overload
    async def mutation(
        self,
        fn: FunctionName,
        args: Mapping[str, Any] | None = None,
        *,
        optimistic_update: OptimisticUpdate | None = None,
    ) -> Any: ...
    async def mutation(
        self, fn: Any, args: Any = None, *, optimistic_update: OptimisticUpdate | None = None
    ) -> Any:
        """Run a mutation; returns its result once its writes are visible to every
        subscription of this client. ``optimistic_update(local_store, args)`` shows its
        expected effect at once (see :mod:`pyconvex.client.optimistic`). Mutations are
        pipelined on the socket, applied in call order, each exactly once (re-sent after a
        reconnect under the same session)."""
        path, wire = function_path(fn), wire_args(args, f" of {fn}")
        _, future = self._engine.request("Mutation", path, wire, optimistic_update, args or {})
        return await future

    @overload
    async def action(
        self, fn: FunctionReference[Literal["action"], NoArgs, ReturnsT], args: NoArgs | None = None
    ) -> ReturnsT: ...
    @overload
    async def action(
        self, fn: FunctionReference[Literal["action"], ArgsT, ReturnsT], args: ArgsOf[ArgsT]
    ) -> ReturnsT: ...
    @overload
    async def action(self, fn: FunctionName, args: Mapping[str, Any] | None = None) -> Any: ...
    async def action(self, fn: Any, args: Any = None) -> Any:
        """Run an action. If the connection drops while it runs, it is not re-sent (it may
        have had effects): :class:`ConnectionLostError` is raised."""
        path, wire = function_path(fn), wire_args(args, f" of {fn}")
        request_id, future = self._engine.request("Action", path, wire)
        try:
            return await future
        except asyncio.CancelledError:
            self._engine.requests.forget(request_id)
            raise

    # -- auth ------------------------------------------------------------------------------

    async def set_auth(
        self, fetch_token: FetchToken, on_change: OnAuthChange | None = None
    ) -> None:
        """Authenticate as a user: ``fetch_token(force_refresh)`` returns a JWT from your
        identity provider (or None when signed out); sync or async. The token is refreshed
        before it expires, and fetched again when the deployment refuses it;
        ``on_change(is_authenticated)`` reports the server's verdict."""
        self._engine.start()
        self._engine.auth_error = None
        await self._engine.auth.set_user(fetch_token, on_change)

    def set_admin_auth(self, admin_key: str, acting_as: Mapping[str, Any] | None = None) -> None:
        """Authenticate with the deployment's admin key (internal functions become callable),
        optionally acting as the user whose identity claims are ``acting_as`` (e.g.
        ``{"subject": "u1", "issuer": "https://auth.example.com", "name": "Ann"}``)."""
        self._engine.auth_error = None
        self._engine.auth.set_admin(admin_key, dict(acting_as) if acting_as else None)
        self._engine.connection.retry_now()

    def clear_auth(self) -> None:
        """Go on unauthenticated."""
        self._engine.auth_error = None
        self._engine.auth.clear()

    # -- state and lifetime ----------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Every subscription's value as of the last Transition applied, read at once."""
        return Snapshot(self._engine.view)

    def connection_state(self) -> ConnectionState:
        """Whether the socket is open, the requests in flight, retries and the last close."""
        return self._engine.connection_state()

    async def close(self) -> None:
        """Close the socket; calls in flight raise :class:`ClientClosedError`, subscriptions
        end."""
        await self._engine.close()

    async def __aenter__(self) -> AsyncConvexClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<AsyncConvexClient {self.url}>"
