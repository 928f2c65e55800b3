"""The client's sync engine: the query set, the server's results and the visible ones, the
requests in flight, auth, and the WebSocket, on one asyncio event loop.

Everything here runs on that loop. A Transition is applied in one synchronous step: every
changed result, the optimistic updates it retires and the mutations it makes visible, then
one new :class:`View` (replaced, never changed in place, so a thread reading it sees one
Transition or the next, never half of one), then the listeners, then the mutations resolve.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pyconvex.client.auth import AuthManager
from pyconvex.client.connection import Connection
from pyconvex.client.errors import AuthenticationError, ClientClosedError, ClientError
from pyconvex.client.local_state import LocalState
from pyconvex.client.optimistic import OptimisticLayer, OptimisticUpdate
from pyconvex.client.requests import Request, RequestManager
from pyconvex.client.results import QueryResult
from pyconvex.client.websocket import ClientSocket
from pyconvex.protocol import (
    Action,
    Authenticate,
    ClientMessage,
    Connect,
    Mutation,
    ProtocolError,
    StateVersion,
)
from pyconvex.protocol.client_side import (
    AuthError,
    FatalError,
    FunctionResponse,
    QueryFailed,
    QueryRemoved,
    QueryUpdated,
    ServerMessage,
    Transition,
    TransitionChunk,
    encode_client_message,
    parse_server_message,
)
from pyconvex.values import decode_value

_log = logging.getLogger("pyconvex.client")
CLIENT_NAME = "pyconvex-0.1.0"


class QueryListener(Protocol):
    def on_result(self, result: QueryResult) -> None: ...

    def on_end(self, error: BaseException | None) -> None:
        """No more results: the client closed (``error`` None) or failed for good."""


@dataclass(frozen=True, slots=True)
class View:
    """The visible results (query id -> result) as of the Transition at ``ts``: replaced as a
    whole by each Transition, so reading it once gives one consistent state."""

    ts: int
    results: dict[int, QueryResult]


@dataclass(frozen=True, slots=True)
class ConnectionState:
    """``client.connection_state()``: the socket, the work in flight, and the last close."""

    is_connected: bool
    has_ever_connected: bool
    connection_count: int
    connection_retries: int
    in_flight_mutations: int
    in_flight_actions: int
    #: Seconds the oldest request in flight has waited (None when there is none).
    oldest_request_age_s: float | None
    last_close_reason: str | None

    @property
    def has_in_flight_requests(self) -> bool:
        return bool(self.in_flight_mutations or self.in_flight_actions)


class ClientEngine:
    def __init__(self, url: str, *, headers: dict[str, str] | None = None) -> None:
        self.session_id = str(uuid.uuid4())
        self.local = LocalState()
        self.requests = RequestManager()
        self.optimistic = OptimisticLayer()
        self.auth = AuthManager(self)
        self.connection = Connection(url, self, {"Convex-Client": CLIENT_NAME, **(headers or {})})
        #: The server's latest result per query id (this loop only).
        self.server: dict[int, QueryResult] = {}
        #: What subscribers see: the server's results with optimistic updates on top.
        self.view = View(0, {})
        self.version = StateVersion()
        self.identity_version = 0
        self.max_observed_ts: int | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._listeners: dict[int, list[QueryListener]] = {}
        self._transition_listeners: list[Callable[[set[int]], None]] = []
        self._socket_ready = False
        self._flush_scheduled = False
        self._chunks: list[str] = []
        self.closed: BaseException | None = None
        self.auth_error: AuthenticationError | None = None

    # -- starting --------------------------------------------------------------------------

    def start(self) -> None:
        """Bind to the running loop (first use) and start connecting."""
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        elif self.loop is not loop:
            raise ClientError(
                "This AsyncConvexClient was first used on another event loop; create one "
                "client per loop (or use the blocking ConvexClient, which has its own)."
            )
        self.check_usable()
        self.connection.start()

    def check_usable(self) -> None:
        if self.closed is not None:
            raise self.closed
        if self.auth_error is not None:
            raise self.auth_error

    # -- queries ---------------------------------------------------------------------------

    def subscribe(self, path: str, args: dict[str, Any], listener: QueryListener) -> int:
        self.start()
        query, added = self.local.subscribe(path, args)
        self._listeners.setdefault(query.query_id, []).append(listener)
        if added:
            self._schedule_flush()
        return query.query_id

    def unsubscribe(self, query_id: int, listener: QueryListener) -> None:
        listeners = self._listeners.get(query_id)
        if listeners is None or listener not in listeners:
            return
        listeners.remove(listener)
        if not listeners:
            del self._listeners[query_id]
        if self.local.unsubscribe(query_id):
            self.server.pop(query_id, None)
            view = self.view
            if query_id in view.results:
                results = {k: v for k, v in view.results.items() if k != query_id}
                self.view = View(view.ts, results)
            if self.closed is None:
                self._schedule_flush()

    def add_transition_listener(self, listener: Callable[[set[int]], None]) -> None:
        self._transition_listeners.append(listener)

    def remove_transition_listener(self, listener: Callable[[set[int]], None]) -> None:
        if listener in self._transition_listeners:
            self._transition_listeners.remove(listener)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self.loop is not None:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._socket_ready:
            message = self.local.take_modify_query_set()
            if message is not None:
                self._send(message)

    def _send(self, message: ClientMessage) -> None:
        self.connection.send(encode_client_message(message))

    # -- mutations and actions -------------------------------------------------------------

    def request(
        self,
        kind: str,
        path: str,
        args: dict[str, Any],
        optimistic_update: OptimisticUpdate | None = None,
        update_args: Any = None,
    ) -> tuple[int, asyncio.Future[Any]]:
        self.start()
        assert self.loop is not None
        request_id = self.requests.new_id()
        if optimistic_update is not None:
            changed = self.optimistic.add(
                request_id, optimistic_update, update_args, self.local, self.view.results
            )
            if changed:
                results = dict(self.view.results)
                results.update(changed)
                self._publish(View(self.view.ts, results), set(changed))
        message: ClientMessage = (
            Mutation(request_id, path, [args], None)
            if kind == "Mutation"
            else Action(request_id, path, [args], None)
        )
        future: asyncio.Future[Any] = self.loop.create_future()
        text = encode_client_message(message)
        request = Request(request_id, kind, path, text, future)
        self.requests.add(request)
        if self._socket_ready:
            self._flush()  # queries subscribed before the call reach the server before it
            request.sent = self.connection.send(text)
        return request_id, future

    # -- the connection's handler ----------------------------------------------------------

    async def before_open(self) -> None:
        await self.auth.before_open()

    def on_open(self, sock: ClientSocket) -> None:
        self.version = StateVersion()
        self.identity_version = 0
        self._chunks = []
        conn = self.connection
        messages: list[ClientMessage] = [
            Connect(
                self.session_id,
                conn.connection_count - 1,
                conn.last_close_reason if conn.connection_count > 1 else "InitialConnect",
                self.max_observed_ts,
                time.time() * 1000,
            )
        ]
        auth = self.auth.message()
        if auth is not None:
            messages.append(auth)
            self.identity_version = 1
        messages.append(self.local.restart())
        for message in messages:
            sock.send(encode_client_message(message))
        for text in self.requests.resend():
            sock.send(text)
        self._socket_ready = True

    def on_text(self, text: str) -> None:
        try:
            message = parse_server_message(text)
            self._dispatch(message)
        except ProtocolError as e:
            _log.error("protocol error from %s: %s; reconnecting", self.connection.url, e)
            self.connection.reconnect(f"ProtocolError: {e}")
        except Exception:
            _log.exception("the client failed handling a message; reconnecting")
            self.connection.reconnect("InternalClientError")

    def on_close(self, reason: str) -> None:
        self._socket_ready = False
        self.requests.connection_lost()

    def on_fatal(self, error: Exception) -> None:
        self._end(error)

    # -- the auth manager's host -----------------------------------------------------------

    def send_auth(self, message: Authenticate) -> None:
        self.auth_error = None
        if not self._socket_ready:
            return
        base = self.identity_version
        self.identity_version += 1
        self._send(Authenticate(base, message.token_type, message.value, message.acting_as))

    def reconnect(self, reason: str) -> None:
        self.connection.reconnect(reason)

    def auth_failed(self, error: AuthenticationError) -> None:
        self.auth_error = error
        self.requests.fail_all(error)
        for query_id, listeners in list(self._listeners.items()):
            for listener in list(listeners):
                listener.on_end(error)
                self.unsubscribe(query_id, listener)  # ended: new subscriptions replace them

    # -- server messages -------------------------------------------------------------------

    def _dispatch(self, message: ServerMessage) -> None:
        if isinstance(message, Transition):
            self._transition(message)
        elif isinstance(message, FunctionResponse):
            self._response(message)
        elif isinstance(message, AuthError):
            self.auth.on_auth_error(message, self.identity_version)
        elif isinstance(message, FatalError):
            _log.error("fatal error from %s: %s", self.connection.url, message.error)
            self.connection.reconnect(f"FatalError: {message.error}")
        elif isinstance(message, TransitionChunk):
            self._chunk(message)

    def _chunk(self, chunk: TransitionChunk) -> None:
        if chunk.part_number != len(self._chunks):
            raise ProtocolError(f"TransitionChunk {chunk.part_number} arrived out of order")
        self._chunks.append(chunk.chunk)
        if len(self._chunks) == chunk.total_parts:
            text, self._chunks = "".join(self._chunks), []
            whole = parse_server_message(text)
            if not isinstance(whole, Transition):
                raise ProtocolError("TransitionChunks did not make a Transition")
            self._transition(whole)

    def _transition(self, t: Transition) -> None:
        if t.start != self.version:
            raise ProtocolError(
                f"Transition starts at {t.start}, but the client is at {self.version}"
            )
        self.version = t.end
        ts = t.end.ts
        if self.max_observed_ts is None or ts > self.max_observed_ts:
            self.max_observed_ts = ts
        server = self.server
        queries = self.local.queries
        changed: set[int] = set()
        for mod in t.modifications:
            query_id = mod.query_id
            if isinstance(mod, QueryRemoved):
                continue
            query = queries.get(query_id)
            if query is None:
                continue  # unsubscribed since: its Remove is on the way
            query.journal = mod.journal
            old = server.get(query_id)
            if isinstance(mod, QueryUpdated):
                if old is not None and old.error is None and old.raw == mod.value:
                    continue
                result = QueryResult.of_value(decode_value(mod.value), mod.value, mod.log_lines)
            else:
                assert isinstance(mod, QueryFailed)
                result = QueryResult.of_failure(query.path, mod)
                if old is not None and old.raw == result.raw:
                    continue
            _log_lines(query.path, mod.log_lines)
            server[query_id] = result
            changed.add(query_id)
        self.auth.on_transition(t)
        completed = self.requests.reached(ts)
        replay = self.optimistic.drop([r.request_id for r in completed]) if completed else False
        if replay or self.optimistic:
            self._replay(ts)
        elif changed or self._transition_listeners:
            results = self.view.results
            if changed:
                results = dict(results)
                for query_id in changed:
                    results[query_id] = server[query_id]
            self._publish(View(ts, results), changed)
        else:
            self.view = View(ts, self.view.results)
        self.connection.mark_healthy()
        self.requests.resolve(completed)

    def _replay(self, ts: int) -> None:
        """Publish the server's results with the optimistic updates replayed on top."""
        old = self.view.results
        results = self.optimistic.replay(self.local, self.server)
        if results is self.server:
            results = dict(results)
        changed = {
            k
            for k in results.keys() | old.keys()
            if k in results and not results[k].same_as(old.get(k))
        }
        self._publish(View(ts, results), changed)

    def _publish(self, view: View, changed: set[int]) -> None:
        self.view = view
        results = view.results
        listeners = self._listeners
        for query_id in changed:
            result = results.get(query_id)
            if result is None:
                continue
            for listener in listeners.get(query_id, ()):
                listener.on_result(result)
        for transition_listener in list(self._transition_listeners):
            transition_listener(changed)

    def _response(self, response: FunctionResponse) -> None:
        ts = response.ts
        if ts is not None and (self.max_observed_ts is None or ts > self.max_observed_ts):
            self.max_observed_ts = ts
        request = self.requests.on_response(response)
        if request is None:
            return
        _log_lines(request.path, response.log_lines)
        if self.optimistic.drop([request.request_id]):
            self._replay(self.view.ts)

    # -- state and closing -----------------------------------------------------------------

    def connection_state(self) -> ConnectionState:
        conn = self.connection
        oldest = self.requests.oldest_start()
        return ConnectionState(
            is_connected=self._socket_ready and conn.connected,
            has_ever_connected=conn.connection_count > 0,
            connection_count=conn.connection_count,
            connection_retries=conn.retries,
            in_flight_mutations=self.requests.count("Mutation"),
            in_flight_actions=self.requests.count("Action"),
            oldest_request_age_s=None if oldest is None else time.monotonic() - oldest,
            last_close_reason=conn.last_close_reason,
        )

    async def close(self) -> None:
        if self.closed is None:
            self._end(None)
        self.auth.close()
        await self.connection.stop()

    def _end(self, error: Exception | None) -> None:
        """No more work: closed (``error`` None) or failed for good."""
        self.closed = error if error is not None else ClientClosedError("The client is closed.")
        self._socket_ready = False
        self.requests.fail_all(self.closed)
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                listener.on_end(error)


def _log_lines(path: str, lines: tuple[str, ...]) -> None:
    """A function's log lines, as the npm client prints them: ``[CONVEX Q(messages:list)]``
    prefixes are left to the handler; they go to the ``pyconvex.client.functions`` logger."""
    if lines:
        for line in lines:
            _functions_log.info("[%s] %s", path, line)


_functions_log = logging.getLogger("pyconvex.client.functions")
