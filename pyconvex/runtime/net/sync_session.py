"""One WebSocket sync session: the server side of PROTOCOL.md §1.

Each socket (:mod:`.sync_socket`) has a :class:`SyncSession`, the per-socket state machine,
which it feeds every text message as it arrives and which sends through the socket's
:class:`FrameSink`. Everything but mutations and actions is handled synchronously on the event
loop, so a Transition is always built from one consistent view: the subscription manager's
``ts``, at which every subscription's result is valid.

Rules the session keeps (the clients break otherwise):

* every Transition starts exactly where the previous one ended;
* each ModifyQuerySet and Authenticate is answered by a Transition, even an empty one;
* a successful mutation's response is followed by a Transition whose ts is at least the
  commit's ts (the npm client resolves the mutation only then);
* FatalError is kept for real protocol misuse: npm shuts down for good on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

from pyconvex.protocol import (
    Action,
    AddQuery,
    Authenticate,
    Connect,
    Event,
    Modification,
    ModifyQuerySet,
    Mutation,
    ProtocolError,
    StateVersion,
    auth_error,
    clip,
    fatal_error,
    function_response,
    log_function_lines,
    parse_client_message,
    query_modification,
    query_removed,
    transition_parts,
)
from pyconvex.runtime.auth.callers import AdminAuthError, admin_identity
from pyconvex.runtime.functions.function_path import normalize_path
from pyconvex.runtime.functions.results import AppliedMutation, FunctionFailure, FunctionResult
from pyconvex.runtime.net.subscriptions import (
    QueryRunner,
    Subscription,
    SubscriptionManager,
    decode_args,
    internal_error,
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
#: Mutations a session runs in one turn of the event loop before letting other sockets in.
MUTATIONS_PER_TURN = 64
#: The longest FatalError text sent (and logged): what the client sent is never echoed whole.
MAX_ERROR_CHARS = 1000

AUTH_NOT_CONFIGURED = (
    "Authentication is not configured in this deployment, so the {kind} token was rejected: "
    "pyconvex does not support sign-in providers (convex/auth_config.py). Stop sending a token "
    "(remove setAuth / set_auth)."
)


class SyncDeployment(QueryRunner, Protocol):
    """The part of the Deployment a session needs beyond queries."""

    def apply_mutation(
        self,
        path: str,
        args: dict[str, Value],
        *,
        identity: object = None,
        allow_internal: bool = False,
        idempotency_key: tuple[str, int] | None = None,
    ) -> AppliedMutation: ...

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


class FrameSink(Protocol):
    """Where a :class:`SyncSession` sends its frames: its socket."""

    @property
    def closed(self) -> bool:
        """No more frames are accepted (the socket is closing or gone)."""
        ...

    def send(self, text: str) -> None: ...

    def send_parts(self, parts: list[bytes]) -> None:
        """One text frame whose UTF-8 payload is ``parts`` back to back (written without
        joining them; the list is not changed)."""
        ...

    def close(self, code: int, reason: str, *, flush: bool = True) -> None: ...

    def pause_input(self) -> None:
        """Stop reading the client's frames (TCP backpressure) until :meth:`resume_input`."""
        ...

    def resume_input(self) -> None: ...


class SyncSession:
    """The per-socket protocol state machine (PROTOCOL §1.5).

    Feed it frames with :meth:`handle`; it writes to its :class:`FrameSink`.
    """

    def __init__(
        self,
        deployment: SyncDeployment,
        manager: SubscriptionManager,
        sink: FrameSink,
        max_queued_mutations: int = 1024,
    ) -> None:
        self._deployment = deployment
        self._manager = manager
        self._sink = sink
        self.session_id: str | None = None
        self.connection_count = 0
        self.recv_query_set = 0
        self.recv_identity = 0
        self.sent = StateVersion()
        self.identity: object = None
        self.admin = False  # authenticated with the admin key: internal queries allowed
        self.queries: dict[int, Subscription] = {}
        self._owed_ts: int | None = None
        self._waiting: deque[Mutation] = deque()  # received, not run yet
        self._in_flight: deque[_InFlight] = deque()  # run, response not sent yet
        self._turn_runs = 0  # mutations run in this turn of the event loop
        self._next_turn_scheduled = False
        self._max_queued = max_queued_mutations
        self._input_paused = False
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
        except Exception:
            # A bug in pyconvex, not the client's fault: no FatalError (npm gives up for good
            # on one); close so that the client reconnects to a fresh session.
            _log.exception("sync session %s failed handling a %s", self.session_id,
                           type(message).__name__)  # fmt: skip
            self._sink.close(CLOSE_INTERNAL_ERROR, "InternalServerError: pyconvex failed")
            self.stop()

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
        error = clip(error, MAX_ERROR_CHARS)
        _log.warning("sync protocol error (session %s): %s", clip(self.session_id), error)
        self._sink.send(fatal_error(error))
        self._sink.close(CLOSE_PROTOCOL_ERROR, f"ProtocolError: {error}")
        self.stop()

    def stop(self) -> None:
        """Forget this socket: drop its subscriptions and cancel its pending work."""
        if self.stopped:
            return
        self.stopped = True
        for query_id, sub in self.queries.items():
            self._manager.unsubscribe(self, query_id, sub)
        self.queries.clear()
        self._waiting.clear()
        self._in_flight.clear()
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
            self._sink.close(
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
        modifications: list[Modification] = []
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
                    allow_internal=self.admin,
                )
                self.queries[change.query_id] = sub
                modifications.append(query_modification(change.query_id, sub.shared))
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
        identity: object = None
        if message.token_type == "Admin":
            try:
                admin_key = getattr(self._deployment, "admin_key", None)
                identity = admin_identity(message.value, message.acting_as, admin_key)
            except AdminAuthError as exc:
                self._sink.send(auth_error(exc.message, self.recv_identity))
                self._sink.close(CLOSE_NORMAL, "AuthError: admin key refused")
                self.stop()
                return
        elif message.token_type != "None":
            self._sink.send(
                auth_error(
                    AUTH_NOT_CONFIGURED.format(kind=message.token_type.lower()),
                    self.recv_identity,
                )
            )
            self._sink.close(CLOSE_NORMAL, "AuthError: authentication is not configured")
            self.stop()
            return
        if message.base_version != self.recv_identity:
            raise ProtocolError(
                f"BaseVersionMismatch: Authenticate has baseVersion {message.base_version}, "
                f"but the identity is at version {self.recv_identity}."
            )
        self.recv_identity += 1
        self.identity = identity
        self.admin = message.token_type == "Admin"
        # Any result may depend on who asks: move every query to the new identity.
        modifications: list[Modification] = []
        for query_id, old in list(self.queries.items()):
            sub = self._manager.resubscribe(
                self, query_id, old, identity=self.identity, allow_internal=self.admin
            )
            self.queries[query_id] = sub
            if sub.body != old.body:
                modifications.append(query_modification(query_id, sub.shared))
        self._transition(modifications)

    # -- transitions ------------------------------------------------------------------------

    def _transition(self, modifications: list[Modification]) -> None:
        end = StateVersion(
            self.recv_query_set, self.recv_identity, max(self._manager.ts, self.sent.ts)
        )
        self._sink.send_parts(transition_parts(self.sent, end, modifications))
        self.sent = end
        if self._owed_ts is not None and end.ts >= self._owed_ts:
            self._owed_ts = None

    def subscriptions_updated(self, ts: int, changed: list[tuple[int, Subscription]]) -> None:
        """Called by the manager after a commit batch: push one Transition with the changes."""
        if self.stopped:
            return
        if self._sink.closed:  # closing (e.g. overloaded): stop costing re-runs
            self.stop()
            return
        # This session's own mutations in the batch are reported first: their responses must
        # precede the Transition that shows their writes.
        sent = bool(self._in_flight) and self._send_responses(ts) is not None
        queries = self.queries
        modifications = [
            query_modification(query_id, sub.shared)
            for query_id, sub in changed
            if queries.get(query_id) is sub
        ]
        if modifications or sent:
            self._transition(modifications)

    def _owe_transition(self, ts: int) -> None:
        """After a MutationResponse: make sure a Transition at >= ts follows it."""
        self._owed_ts = ts if self._owed_ts is None else max(self._owed_ts, ts)
        self._manager.when_ts_reached(ts, self._pay_transition)

    def _pay_transition(self) -> None:
        if self.stopped or self._owed_ts is None or self._manager.ts < self._owed_ts:
            return
        self._transition([])

    # -- mutations: a pipeline per session ---------------------------------------------------
    #
    # Mutations run one at a time in arrival order (PROTOCOL §1.5), each as soon as the one
    # before it is applied to memory (Deployment.apply_mutation), not once it is durable: the
    # next runs while the committer makes the previous one durable. Responses leave in arrival
    # order, each once what it wrote or read is durable, and always before the Transition that
    # carries its writes: the npm client drops an optimistic update only when a Transition at
    # or after its ts follows the response, and holds both documents until then.

    def _enqueue_mutation(self, message: Mutation) -> None:
        self._waiting.append(message)
        self._run_waiting()
        if not self._input_paused and self._backlog() >= self._max_queued:
            self._input_paused = True
            self._sink.pause_input()

    def _backlog(self) -> int:
        return len(self._waiting) + len(self._in_flight)

    def _run_waiting(self) -> None:
        """Run the mutations received so far, at once, but at most ``MUTATIONS_PER_TURN`` per
        loop turn: a client flooding mutations must not hold the event loop (and every other
        socket); the rest run in the following turns."""
        waiting = self._waiting
        while waiting and not self.stopped and self._turn_runs < MUTATIONS_PER_TURN:
            if not self._next_turn_scheduled:
                self._next_turn_scheduled = True
                asyncio.get_running_loop().call_soon(self._next_turn)
            self._turn_runs += 1
            self._run(waiting.popleft())

    def _next_turn(self) -> None:
        self._next_turn_scheduled = False
        self._turn_runs = 0
        self._run_waiting()

    def _run(self, message: Mutation) -> None:
        path = message.udf_path
        try:
            path, args = _call_target(path, message.args, message.component_path)
            if isinstance(args, str):
                applied = AppliedMutation(_failed(args))
            else:
                applied = self._deployment.apply_mutation(
                    path,
                    args,
                    identity=self.identity,
                    allow_internal=self.admin,
                    idempotency_key=(self.session_id or "", message.request_id),
                )
                log_function_lines("mutation", path, applied.result.log_lines)
        except Exception:
            # Whatever happens, this mutation gets its answer and the next ones run.
            _log.exception("mutation %s crashed the engine", clip(path))
            applied = AppliedMutation(FunctionResult(failure=internal_error()))
        self._in_flight.append(_InFlight(message.request_id, path, applied))
        if applied.durable is None or applied.durable.done():
            self._responses_ready()
        else:
            applied.durable.add_done_callback(self._responses_ready)

    def _responses_ready(self, _: object = None) -> None:
        """A mutation may be reported: send what can go, then a Transition after it."""
        if self.stopped:
            return
        owed = self._send_responses(self._manager.ts)
        if owed is None:
            return
        if owed <= self._manager.ts:
            self._transition([])
        else:  # the subscriptions have not caught up with the commit yet
            self._owe_transition(owed)

    def _send_responses(self, durable_ts: int) -> int | None:
        """Send the responses at the head of the pipeline that may be reported (everything up
        to ``durable_ts`` is durable). Returns None if none was sent, else the ts a Transition
        must reach after them (0 if only failures were sent: the Rust/Python client completes
        a failed mutation only on the next Transition, so one must follow those too)."""
        in_flight = self._in_flight
        owed: int | None = None
        while in_flight:
            head = in_flight[0]
            applied = head.applied
            durable = applied.durable
            if durable is not None and not durable.done() and applied.wait_ts > durable_ts:
                break
            in_flight.popleft()
            result = applied.settle()
            frame, ok = _response_frame("Mutation", head.request_id, result, head.path)
            self._sink.send(frame)
            ts = result.ts if ok and result.ts is not None else 0
            owed = ts if owed is None else max(owed, ts)
        if self._input_paused and self._backlog() <= self._max_queued // 2:
            self._input_paused = False
            self._sink.resume_input()
        return owed

    # -- actions ----------------------------------------------------------------------------

    async def _run_action(self, message: Action) -> None:
        path = message.udf_path
        try:
            path, args = _call_target(path, message.args, message.component_path)
            if isinstance(args, str):
                result = _failed(args)
            else:
                result = await self._deployment.run_action(
                    path,
                    args,
                    identity=self.identity,
                    allow_internal=self.admin,
                )
                log_function_lines("action", path, result.log_lines)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("action %s crashed the engine", clip(path))
            result = FunctionResult(failure=internal_error())
        if self.stopped:
            return
        self._sink.send(_response_frame("Action", message.request_id, result, path)[0])


@dataclass(slots=True)
class _InFlight:
    """A mutation that has run and whose response has not been sent."""

    request_id: int
    path: str
    applied: AppliedMutation


def _call_target(
    udf_path: str, raw_args: Any, component_path: str | None
) -> tuple[str, dict[str, Value] | str]:
    """``(normalised path, decoded args)``, or ``(path, what is wrong)``."""
    try:
        path = normalize_path(udf_path)
    except ValueError as exc:
        return udf_path, str(exc)
    if component_path:
        return (
            path,
            f"Component paths are not supported (got componentPath {clip(component_path)!r}).",
        )
    try:
        return path, decode_args(raw_args)
    except ValueError as exc:
        return path, f"Invalid arguments for {path}: {exc}"


def _response_frame(
    kind: str, request_id: int, result: FunctionResult, path: str
) -> tuple[str, bool]:
    """The Mutation/ActionResponse frame for a result, and whether it reports success (a value
    that cannot be Convex-encoded turns into a failure)."""
    if result.failure is None:
        try:
            encoded = encode_value(result.value)
        except ValueError as exc:
            result = _invalid_value_result(path, exc, result)
        else:
            frame = function_response(
                kind, request_id, result=encoded, ts=result.ts,
                log_lines=result.log_lines, success=True,
            )  # fmt: skip
            return frame, True
    frame = function_response(
        kind, request_id, ts=None, success=False, log_lines=result.log_lines,
        **_failure_fields(result),
    )  # fmt: skip
    return frame, False


def _failed(message: str) -> FunctionResult:
    return FunctionResult(failure=FunctionFailure(message))


def _invalid_value_result(path: str, exc: Exception, result: FunctionResult) -> FunctionResult:
    _log.error("%s returned a value that is not a Convex value: %s", path, exc)
    failure = FunctionFailure.server_error(f"{path} returned an invalid value: {exc}")
    return FunctionResult(failure=failure, log_lines=result.log_lines)


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
