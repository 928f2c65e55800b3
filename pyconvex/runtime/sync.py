"""One WebSocket sync session: the server side of PROTOCOL.md §1.

A socket gets an :class:`Outbox` (a bounded queue drained by one writer task, which also sends
the JSON ``Ping`` when the socket has been idle) and a :class:`SyncSession` (the per-socket state
machine). Everything but mutations and actions is handled synchronously on the event loop as
the frame arrives, so a Transition is always built from one consistent view: the subscription
manager's ``ts``, at which every subscription's result is valid.

Rules the session keeps (the clients break otherwise):

* every Transition starts exactly where the previous one ended;
* each ModifyQuerySet and Authenticate is answered by a Transition, even an empty one;
* a successful mutation's response is followed by a Transition whose ts is at least the
  commit's ts (the npm client resolves the mutation only then);
* FatalError is kept for real protocol misuse: npm shuts down for good on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pyconvex.runtime.function_path import normalize_path
from pyconvex.runtime.results import FunctionFailure, FunctionResult
from pyconvex.runtime.subscriptions import (
    SERVER_ERROR,
    QueryRunner,
    Subscription,
    SubscriptionManager,
    decode_args,
)
from pyconvex.runtime.sync_messages import (
    PING,
    Action,
    AddQuery,
    Authenticate,
    Connect,
    Event,
    ModifyQuerySet,
    Mutation,
    ProtocolError,
    StateVersion,
    action_response,
    auth_error,
    fatal_error,
    log_function_lines,
    mutation_response,
    parse_client_message,
    query_modification,
    query_removed,
    transition_json,
)
from pyconvex.values import Value, encode_value

_log = logging.getLogger("pyconvex.sync")

# Close codes and reasons. npm backs off by the reason's prefix (PROTOCOL §1.7); 1000/1001/
# 1005/4040 count as normal closes there, anything else is logged and reconnected.
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
OVERLOADED_REASON = "SubscriptionsWorkerFullError"
MAX_CLOSE_REASON_BYTES = 123

AUTH_NOT_CONFIGURED = (
    "Authentication is not configured in this deployment, so the {kind} token was rejected. "
    "Add convex/auth_config.py (coming in a later pyconvex version) or stop sending a token "
    "(remove setAuth / set_auth)."
)


@dataclass(frozen=True, slots=True)
class SyncConfig:
    """Knobs of the sync endpoint.

    ``ping_interval``: seconds of outbound silence before a JSON Ping (Convex: 15).
    ``max_outbound_bytes``: a socket whose unsent frames exceed this is closed as overloaded.
    ``close_timeout``: how long a close may wait on a stuck client before the TCP connection
    is aborted.
    """

    ping_interval: float = 15.0
    max_outbound_bytes: int = 32 * 1024 * 1024
    close_timeout: float = 5.0


class Transport(Protocol):
    """How an :class:`Outbox` reaches the socket (a Starlette WebSocket in production)."""

    async def send_text(self, text: str) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...

    def abort(self) -> None: ...


class SyncDeployment(QueryRunner, Protocol):
    """The part of the Deployment a session needs beyond queries."""

    async def run_mutation(
        self,
        path: str,
        args: dict[str, Value],
        *,
        identity: object = None,
        allow_internal: bool = False,
        idempotency_key: tuple[str, int] | None = None,
    ) -> FunctionResult: ...

    async def run_action(
        self,
        path: str,
        args: dict[str, Value],
        *,
        identity: object = None,
        allow_internal: bool = False,
    ) -> FunctionResult: ...


def _truncate_reason(reason: str) -> str:
    raw = reason.encode("utf-8")
    if len(raw) <= MAX_CLOSE_REASON_BYTES:
        return reason
    return raw[: MAX_CLOSE_REASON_BYTES - 3].decode("utf-8", "ignore") + "..."


class Outbox:
    """A socket's bounded outbound queue and the writer task draining it.

    :meth:`send` never blocks: a slow or dead client only grows its own queue, and when that
    queue passes ``max_outbound_bytes`` the socket is closed with a reason starting with
    ``SubscriptionsWorkerFullError`` (npm backs off 3 s on it).
    """

    def __init__(self, transport: Transport, config: SyncConfig) -> None:
        self._transport = transport
        self._config = config
        self._queue: deque[str] = deque()
        self._queued_bytes = 0
        self._wakeup = asyncio.Event()
        self._close_request: tuple[int, str] | None = None
        self.closed = False  # no more frames are accepted
        self.done = asyncio.Event()  # the writer has finished (socket closed or gone)
        self.sent_frames = 0
        self._writer = asyncio.create_task(self._run(), name="pyconvex-sync-writer")
        self._closer: asyncio.Task[None] | None = None
        # One re-arming timer for the idle Ping, rather than a timeout around every wait.
        self._loop = asyncio.get_running_loop()
        self._last_sent = self._loop.time()
        self._ping_timer = self._loop.call_later(config.ping_interval, self._ping_check)

    def _ping_check(self) -> None:
        if self.closed:
            return
        idle = self._loop.time() - self._last_sent
        interval = self._config.ping_interval
        if idle >= interval and not self._queue:
            self._queue.append(PING)
            self._queued_bytes += len(PING)
            self._wakeup.set()
            idle = 0.0
        self._ping_timer = self._loop.call_later(max(interval - idle, 0.001), self._ping_check)

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    def send(self, text: str) -> None:
        if self.closed:
            return
        if self._queue and self._queued_bytes + len(text) > self._config.max_outbound_bytes:
            _log.warning(
                "closing a sync socket that is not reading: %d bytes waiting", self._queued_bytes
            )
            self.close(
                CLOSE_TRY_AGAIN_LATER,
                f"{OVERLOADED_REASON}: this client is not reading its messages fast enough",
                flush=False,
            )
            return
        self._queue.append(text)
        self._queued_bytes += len(text)
        self._wakeup.set()

    def close(self, code: int, reason: str, *, flush: bool = True) -> None:
        """Stop accepting frames and close the socket, after the queued frames if ``flush``."""
        if self.closed:
            return
        self.closed = True
        self._close_request = (code, _truncate_reason(reason))
        if flush:
            self._wakeup.set()
            return
        # The writer may be stuck sending to a client that does not read: drop everything.
        self._queue.clear()
        self._queued_bytes = 0
        self._writer.cancel()
        self._closer = asyncio.create_task(self._close_transport(), name="pyconvex-sync-close")

    async def aclose(self) -> None:
        """Tear down when the client is gone: stop the writer and wait for it."""
        self.closed = True
        self._ping_timer.cancel()
        if self._close_request is None:
            self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer
        if self._closer is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._closer
        self.done.set()

    async def _run(self) -> None:
        try:
            while True:
                if not self._queue:
                    if self._close_request is not None:
                        break
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                text = self._queue.popleft()
                self._queued_bytes -= len(text)
                await self._transport.send_text(text)
                self._last_sent = self._loop.time()
                self.sent_frames += 1
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the client went away mid-send
            _log.debug("sync socket send failed: %s", exc)
            self.closed = True
            self.done.set()
            return
        await self._close_transport()

    async def _close_transport(self) -> None:
        code, reason = self._close_request or (CLOSE_NORMAL, "")
        try:
            await asyncio.wait_for(self._transport.close(code, reason), self._config.close_timeout)
        except Exception:  # includes TimeoutError: the client does not read at all
            self._transport.abort()
        finally:
            self.done.set()


class SyncSession:
    """The per-socket protocol state machine (PROTOCOL §1.5).

    Feed it frames with :meth:`handle`; it writes to its :class:`Outbox`.
    """

    def __init__(
        self,
        deployment: SyncDeployment,
        manager: SubscriptionManager,
        outbox: Outbox,
    ) -> None:
        self._deployment = deployment
        self._manager = manager
        self._outbox = outbox
        self.session_id: str | None = None
        self.connection_count = 0
        self.recv_query_set = 0
        self.recv_identity = 0
        self.sent = StateVersion()
        self.identity: object = None
        self.queries: dict[int, Subscription] = {}
        self._owed_ts: int | None = None
        self._mutations: asyncio.Queue[Mutation] = asyncio.Queue()
        self._mutation_worker: asyncio.Task[None] | None = None
        self._actions: set[asyncio.Task[None]] = set()
        self.stopped = False

    # -- frames -----------------------------------------------------------------------------

    def handle(self, text: str | bytes) -> None:
        """Handle one client frame."""
        if self.stopped:
            return
        try:
            message = parse_client_message(text)
        except ProtocolError as exc:
            self.fail(str(exc))
            return
        if self.session_id is None and not isinstance(message, Connect):
            self.fail(
                f"Expected Connect as the first message on the socket, got "
                f"{type(message).__name__}."
            )
            return
        try:
            self._dispatch(message)
        except ProtocolError as exc:
            self.fail(str(exc))

    def _dispatch(self, message: Any) -> None:
        if isinstance(message, ModifyQuerySet):
            self._modify_query_set(message)
        elif isinstance(message, Mutation):
            self._enqueue_mutation(message)
        elif isinstance(message, Action):
            task = asyncio.create_task(self._run_action(message))
            self._actions.add(task)
            task.add_done_callback(self._actions.discard)
        elif isinstance(message, Authenticate):
            self._authenticate(message)
        elif isinstance(message, Connect):
            self._connect(message)
        elif isinstance(message, Event):
            pass  # client metrics only

    def fail(self, error: str) -> None:
        """Protocol misuse: send FatalError and close the socket."""
        _log.warning("sync protocol error (session %s): %s", self.session_id, error)
        self._outbox.send(fatal_error(error))
        self._outbox.close(CLOSE_PROTOCOL_ERROR, f"ProtocolError: {error}")
        self.stop()

    def stop(self) -> None:
        """Forget this socket: drop its subscriptions and cancel its pending work."""
        if self.stopped:
            return
        self.stopped = True
        for query_id, sub in self.queries.items():
            self._manager.unsubscribe(self, query_id, sub)
        self.queries.clear()
        if self._mutation_worker is not None:
            self._mutation_worker.cancel()
        for task in list(self._actions):
            task.cancel()

    def _connect(self, message: Connect) -> None:
        if self.session_id is not None:
            raise ProtocolError("Connect was sent twice on one socket.")
        self.session_id = message.session_id
        self.connection_count = message.connection_count
        latest = max(self._deployment.latest_ts, self._manager.ts)
        observed = message.max_observed_timestamp
        if observed is not None and observed > latest:
            # The client has seen writes this server does not have (e.g. its data directory was
            # replaced): refuse, without FatalError, so the client keeps retrying.
            _log.warning(
                "refusing sync session %s: it observed ts %d, newer than this server's %d",
                message.session_id,
                observed,
                latest,
            )
            self._outbox.close(
                CLOSE_INTERNAL_ERROR,
                "ClientTimestampAhead: the client has seen a newer timestamp than this server "
                "holds; was the data directory reset?",
            )
            self.stop()

    def _modify_query_set(self, message: ModifyQuerySet) -> None:
        if message.base_version != self.recv_query_set:
            raise ProtocolError(
                f"BaseVersionMismatch: ModifyQuerySet has baseVersion {message.base_version}, "
                f"but the query set is at version {self.recv_query_set}."
            )
        if message.new_version <= message.base_version:
            raise ProtocolError(
                f"ModifyQuerySet newVersion {message.new_version} must be greater than "
                f"baseVersion {message.base_version}."
            )
        modifications: list[str] = []
        for change in message.modifications:
            if isinstance(change, AddQuery):
                if change.query_id in self.queries:
                    raise ProtocolError(
                        f"ModifyQuerySet adds queryId {change.query_id}, which is already in "
                        "the query set."
                    )
                sub = self._manager.subscribe(
                    self,
                    change.query_id,
                    change.udf_path,
                    change.args,
                    identity=self.identity,
                    journal=change.journal,
                    component_path=change.component_path,
                )
                self.queries[change.query_id] = sub
                modifications.append(query_modification(change.query_id, sub.body))
            else:
                removed = self.queries.pop(change.query_id, None)
                if removed is None:
                    raise ProtocolError(
                        f"ModifyQuerySet removes queryId {change.query_id}, which is not in "
                        "the query set."
                    )
                self._manager.unsubscribe(self, change.query_id, removed)
                modifications.append(query_removed(change.query_id))
        self.recv_query_set = message.new_version
        self._transition(modifications)

    def _authenticate(self, message: Authenticate) -> None:
        if message.token_type != "None":
            self._outbox.send(
                auth_error(
                    AUTH_NOT_CONFIGURED.format(kind=message.token_type.lower()),
                    self.recv_identity,
                )
            )
            self._outbox.close(CLOSE_NORMAL, "AuthError: authentication is not configured")
            self.stop()
            return
        if message.base_version != self.recv_identity:
            raise ProtocolError(
                f"BaseVersionMismatch: Authenticate has baseVersion {message.base_version}, "
                f"but the identity is at version {self.recv_identity}."
            )
        self.recv_identity += 1
        self.identity = None
        # Any result may depend on who asks: move every query to the new identity.
        modifications: list[str] = []
        for query_id, old in list(self.queries.items()):
            sub = self._manager.resubscribe(self, query_id, old, identity=self.identity)
            self.queries[query_id] = sub
            if sub.body != old.body:
                modifications.append(query_modification(query_id, sub.body))
        self._transition(modifications)

    # -- transitions ------------------------------------------------------------------------

    def _transition(self, modifications: list[str]) -> None:
        end = StateVersion(
            self.recv_query_set, self.recv_identity, max(self._manager.ts, self.sent.ts)
        )
        self._outbox.send(transition_json(self.sent, end, modifications))
        self.sent = end
        if self._owed_ts is not None and end.ts >= self._owed_ts:
            self._owed_ts = None

    def subscriptions_updated(self, ts: int, changed: list[tuple[int, Subscription]]) -> None:
        """Called by the manager after a commit batch: push one Transition with the changes."""
        if self.stopped:
            return
        if self._outbox.closed:  # closing (e.g. overloaded): stop costing re-runs
            self.stop()
            return
        modifications = [
            query_modification(query_id, sub.body)
            for query_id, sub in changed
            if self.queries.get(query_id) is sub
        ]
        if modifications:
            self._transition(modifications)

    def _owe_transition(self, ts: int) -> None:
        """After a MutationResponse: make sure a Transition at >= ts follows it."""
        self._owed_ts = ts if self._owed_ts is None else max(self._owed_ts, ts)
        self._manager.when_ts_reached(ts, self._pay_transition)

    def _pay_transition(self) -> None:
        if self.stopped or self._owed_ts is None or self._manager.ts < self._owed_ts:
            return
        self._transition([])

    # -- mutations and actions --------------------------------------------------------------

    def _enqueue_mutation(self, message: Mutation) -> None:
        self._mutations.put_nowait(message)
        if self._mutation_worker is None:
            self._mutation_worker = asyncio.create_task(
                self._run_mutations(), name="pyconvex-sync-mutations"
            )

    async def _run_mutations(self) -> None:
        # One at a time, in arrival order (PROTOCOL §1.5).
        while True:
            message = await self._mutations.get()
            result, path = await self._call(
                "mutation",
                message.udf_path,
                message.args,
                message.component_path,
                request_id=message.request_id,
            )
            if self.stopped:
                return
            if result.failure is None:
                try:
                    encoded = encode_value(result.value)
                except ValueError as exc:
                    result = _invalid_value_result(path, exc, result)
                else:
                    self._outbox.send(
                        mutation_response(
                            message.request_id,
                            result=encoded,
                            ts=result.ts,
                            log_lines=result.log_lines,
                            success=True,
                        )
                    )
                    if result.ts is not None:
                        self._owe_transition(result.ts)
                    continue
            self._outbox.send(
                mutation_response(
                    message.request_id,
                    ts=None,
                    success=False,
                    log_lines=result.log_lines,
                    **_failure_fields(result),
                )
            )
            # The Rust/Python client completes a mutation that failed with ConvexError only on
            # the next Transition, so one must follow failures too.
            self._transition([])

    async def _run_action(self, message: Action) -> None:
        result, path = await self._call(
            "action", message.udf_path, message.args, message.component_path
        )
        if self.stopped:
            return
        if result.failure is None:
            try:
                encoded = encode_value(result.value)
            except ValueError as exc:
                result = _invalid_value_result(path, exc, result)
            else:
                self._outbox.send(
                    action_response(
                        message.request_id, result=encoded, log_lines=result.log_lines, success=True
                    )
                )
                return
        self._outbox.send(
            action_response(
                message.request_id,
                success=False,
                log_lines=result.log_lines,
                **_failure_fields(result),
            )
        )

    async def _call(
        self,
        kind: str,
        udf_path: str,
        raw_args: Any,
        component_path: str | None,
        *,
        request_id: int | None = None,
    ) -> tuple[FunctionResult, str]:
        try:
            path = normalize_path(udf_path)
        except ValueError as exc:
            return _failed(str(exc)), udf_path
        if component_path:
            return _failed(
                f"Component paths are not supported (got componentPath {component_path!r})."
            ), path
        try:
            args = decode_args(raw_args)
        except ValueError as exc:
            return _failed(f"Invalid arguments for {path}: {exc}"), path
        try:
            if kind == "mutation":
                assert self.session_id is not None and request_id is not None
                result = await self._deployment.run_mutation(
                    path,
                    args,
                    identity=self.identity,
                    idempotency_key=(self.session_id, request_id),
                )
            else:
                result = await self._deployment.run_action(path, args, identity=self.identity)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("%s %s crashed the engine", kind, path)
            return _failed(SERVER_ERROR), path
        log_function_lines(kind, path, result.log_lines)
        return result, path


def _failed(message: str) -> FunctionResult:
    return FunctionResult(failure=FunctionFailure(message))


def _invalid_value_result(path: str, exc: Exception, result: FunctionResult) -> FunctionResult:
    _log.error("%s returned a value that is not a Convex value: %s", path, exc)
    failed = _failed(f"{SERVER_ERROR}: {path} returned an invalid value: {exc}")
    failed.log_lines = result.log_lines
    return failed


def _failure_fields(result: FunctionResult) -> dict[str, Any]:
    failure = result.failure
    assert failure is not None
    if not failure.is_convex_error:
        return {"result": failure.message}
    try:
        data = encode_value(failure.data)
    except ValueError:
        data = None
    return {"result": failure.message, "error_data": data, "has_error_data": True}


async def run_sync_socket(
    receive: Callable[[], Any],
    transport: Transport,
    deployment: SyncDeployment,
    manager: SubscriptionManager,
    config: SyncConfig,
) -> SyncSession:
    """Drive one accepted socket until the client leaves or the session closes it.

    ``receive`` is an ASGI-style receive callable returning ``websocket.receive`` /
    ``websocket.disconnect`` messages.
    """
    outbox = Outbox(transport, config)
    session = SyncSession(deployment, manager, outbox)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            if outbox.closed:
                continue  # closing: drain until the client's close arrives
            text = message.get("text")
            if text is None:
                data = message.get("bytes")
                if data is None:
                    continue
                session.fail("Binary frames are not part of the sync protocol; send JSON text.")
                continue
            session.handle(text)
    finally:
        session.stop()
        await outbox.aclose()
    return session
