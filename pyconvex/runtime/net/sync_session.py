"""One WebSocket sync session: the server side of PROTOCOL.md §1.

Each socket (:mod:`.sync_socket`) has a :class:`SyncSession`, the per-socket state machine,
which it feeds every text message as it arrives and which sends through the socket's
:class:`FrameSink`. A Transition is always built from one consistent view: the subscription
manager's ``ts``, at which every subscription's result is valid. Mutations and actions are
the session's :class:`~pyconvex.runtime.net.sync_calls.SyncCalls`.

Rules the session keeps (the clients break otherwise):

* every Transition starts exactly where the previous one ended;
* each ModifyQuerySet and Authenticate is answered by a Transition, even an empty one;
* a successful mutation's response is followed by a Transition whose ts is at least the
  commit's ts (the npm client resolves the mutation only then);
* FatalError is kept for real protocol misuse: npm shuts down for good on it.

Bounds, so that one client never stalls or swamps the others (issue 10):

* ModifyQuerySet and Authenticate are answered by jobs on the endpoint's
  :class:`~pyconvex.runtime.net.query_turns.QueryTurns`, one query per step, a few
  milliseconds of them per loop turn: other sockets are served in between. They are handled
  in arrival order; the identity a message is sent with is the one in force when it arrived.
* A Transition carries at most ``max_transition_bytes``: more modifications go out in several
  Transitions at the same ts (both official clients apply a QueryUpdated for any query they
  hold, whatever the version; only the last one moves the query set or identity version);
  while the socket's unsent bytes exceed that, a job waits for it to drain. A single result
  over the cap is answered as a failed query saying so.
* A connection holds at most ``max_subscriptions`` queries; more are answered as failed
  queries saying so.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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
    parse_client_message,
    query_modification,
    query_removed,
    query_result_body,
    shared_body,
    transition_parts,
)
from pyconvex.runtime.auth.callers import AdminAuthError, admin_identity
from pyconvex.runtime.functions.results import FunctionResult
from pyconvex.runtime.net.query_turns import BLOCKED, Job, QueryTurns
from pyconvex.runtime.net.subscriptions import QueryRunner, Subscription, SubscriptionManager
from pyconvex.runtime.net.sync_auth import UserSignIn
from pyconvex.runtime.net.sync_calls import CallDeployment, SyncCalls
from pyconvex.values import Value

_log = logging.getLogger("pyconvex.sync")

# Close codes and reasons. npm backs off by the reason's prefix (PROTOCOL §1.7); 1000/1001/
# 1005/4040 count as normal closes there, anything else is logged and reconnected.
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013
OVERLOADED_REASON = "SubscriptionsWorkerFullError"
#: The longest FatalError text sent (and logged): what the client sent is never echoed whole.
MAX_ERROR_CHARS = 1000
MIB = 1024 * 1024

TOO_MANY_SUBSCRIPTIONS = (
    "{path} was not subscribed: this connection already holds {limit} query subscriptions, "
    "the most pyconvex keeps for one client. Unsubscribe from queries the client no longer "
    "shows, or combine them into fewer queries."
)
RESULT_TOO_LARGE = (
    "pyconvex did not send this query's result: it is {size} bytes, over the {limit} one "
    "update of a client may carry. Return less from the query: paginate() it, or take(n)."
)


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """What one socket may hold: unanswered mutations (then its input pauses), query
    subscriptions, and bytes per Transition (also the unsent bytes past which a query job
    waits for the socket to drain)."""

    max_queued_mutations: int = 1024
    max_subscriptions: int = 2048
    max_transition_bytes: int = 16 * MIB


class SyncDeployment(QueryRunner, CallDeployment, Protocol):
    """The part of the Deployment a session (and the HTTP API) needs."""

    async def run_mutation(
        self,
        path: str,
        args: dict[str, Value],
        *,
        identity: object = None,
        allow_internal: bool = False,
        idempotency_key: tuple[str, int] | None = None,
    ) -> FunctionResult: ...


class FrameSink(Protocol):
    """Where a :class:`SyncSession` sends its frames: its socket."""

    @property
    def closed(self) -> bool:
        """No more frames are accepted (the socket is closing or gone)."""
        ...

    @property
    def backlog(self) -> int:
        """Bytes sent and not yet written to the network (queued, or in the transport)."""
        ...

    def send(self, text: str) -> None: ...

    def flush(self) -> None:
        """Write what is queued now, not at the next loop turn."""
        ...

    def send_parts(self, parts: list[bytes]) -> None:
        """One text frame whose UTF-8 payload is ``parts`` back to back (written without
        joining them; the list is not changed)."""
        ...

    def close(self, code: int, reason: str, *, flush: bool = True) -> None: ...

    def pause_input(self) -> None:
        """Stop reading the client's frames (TCP backpressure) until :meth:`resume_input`."""
        ...

    def resume_input(self) -> None: ...

    def when_drained(self, callback: Callable[[], None], below: int) -> None:
        """Call ``callback`` once :attr:`backlog` is at most ``below`` bytes."""
        ...


@dataclass(slots=True)
class _Modify:
    """A ModifyQuerySet waiting its turn, with the identity in force when it arrived."""

    message: ModifyQuerySet
    identity: object
    admin: bool


@dataclass(slots=True)
class _Reidentify:
    """After an Authenticate: move every query to ``identity``, then confirm ``version``."""

    identity: object
    admin: bool
    version: int


class SyncSession:
    """The per-socket protocol state machine (PROTOCOL §1.5).

    Feed it frames with :meth:`handle`; it writes to its :class:`FrameSink`.
    """

    def __init__(
        self,
        deployment: SyncDeployment,
        manager: SubscriptionManager,
        sink: FrameSink,
        limits: SessionLimits | None = None,
        turns: QueryTurns | None = None,
    ) -> None:
        self._deployment = deployment
        self._manager = manager
        self._sink = sink
        self._limits = limits = limits or SessionLimits()
        self._turns = turns or QueryTurns()
        self._calls = SyncCalls(deployment, manager, sink, self, limits.max_queued_mutations)
        self._sign_in = UserSignIn(self, sink, deployment)
        self.session_id: str | None = None
        self.connection_count = 0
        #: Versions received (checked as messages arrive) and answered (sent in Transitions).
        self.recv_query_set = 0
        self.recv_identity = 0
        self._answered_query_set = 0
        self._answered_identity = 0
        self.sent = StateVersion()
        self.identity: object = None
        self.admin = False  # authenticated with the admin key: internal functions allowed
        self.queries: dict[int, Subscription] = {}
        self._subscribed = 0  # queries counted against max_subscriptions
        self._owed_ts: int | None = None
        self._control: deque[_Modify | _Reidentify] = deque()
        self._job: Job | None = None  # answering the head of _control
        self._job_queued = False
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
        if not self._sign_in.hold(message):  # (held while a user token's keys are fetched)
            self.dispatch_held(message)

    def dispatch_held(self, message: object) -> None:
        """Act on one parsed client message (also a held one, in order, once released)."""
        try:
            self._dispatch(message)
        except ProtocolError as exc:
            self.fail(str(exc))
        except Exception as exc:
            self._internal_failure(exc, type(message).__name__)

    def _dispatch(self, message: object) -> None:
        if isinstance(message, ModifyQuerySet):
            self._receive_modify(message)
        elif isinstance(message, Mutation):
            self._calls.mutation(message, self.identity, self.admin)
        elif isinstance(message, Action):
            self._calls.action(message, self.identity, self.admin)
        elif isinstance(message, Authenticate):
            self._authenticate(message)
        elif isinstance(message, Connect):
            self._connect(message)
        elif isinstance(message, Event):
            pass  # client metrics only

    def fail(self, error: str) -> None:
        """Protocol misuse: send FatalError and close the socket."""
        if self.stopped:
            return
        error = clip(error, MAX_ERROR_CHARS)
        _log.warning("sync protocol error (session %s): %s", clip(self.session_id), error)
        self._sink.send(fatal_error(error))
        self._sink.close(CLOSE_PROTOCOL_ERROR, f"ProtocolError: {error}")
        self.stop()

    def _internal_failure(self, exc: BaseException, doing: str) -> None:
        # A bug in pyconvex, not the client's fault: no FatalError (npm gives up for good on
        # one); close so that the client reconnects to a fresh session.
        _log.error(
            "sync session %s failed handling a %s", clip(self.session_id), doing, exc_info=exc
        )
        self._sink.close(CLOSE_INTERNAL_ERROR, "InternalServerError: pyconvex failed")
        self.stop()

    def stop(self) -> None:
        """Forget this socket: drop its subscriptions and cancel its pending work."""
        if self.stopped:
            return
        self.stopped = True
        self._sign_in.cancel_expiry()
        for query_id, sub in self.queries.items():
            self._manager.unsubscribe(self, query_id, sub)
        self.queries.clear()
        self._control.clear()
        job, self._job = self._job, None
        if job is not None:
            with contextlib.suppress(ValueError):  # stopped from inside its own step
                job.close()
        self._calls.stop()

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
                clip(message.session_id),
                observed,
                latest,
            )
            self._sink.close(
                CLOSE_INTERNAL_ERROR,
                "ClientTimestampAhead: the client has seen a newer timestamp than this server "
                "holds; was the data directory reset?",
            )
            self.stop()

    # -- query set and identity: checked on arrival, answered by jobs in arrival order ---------

    def _receive_modify(self, message: ModifyQuerySet) -> None:
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
        self.recv_query_set = message.new_version
        self._control.append(_Modify(message, self.identity, self.admin))
        self._next_job()

    def _authenticate(self, message: Authenticate) -> None:
        if message.base_version != self.recv_identity:
            raise ProtocolError(
                f"BaseVersionMismatch: Authenticate has baseVersion {message.base_version}, "
                f"but the identity is at version {self.recv_identity}."
            )
        if message.token_type == "User":
            self._sign_in.check(message, lambda identity: self._identify(identity, False))
            return
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
        self._sign_in.cancel_expiry()
        self._identify(identity, message.token_type == "Admin")

    def _identify(self, identity: object, admin: bool) -> None:
        """Calls sent from now on run as ``identity``; queries move to it in order."""
        self.recv_identity += 1
        self.identity = identity
        self.admin = admin
        self._control.append(_Reidentify(identity, self.admin, self.recv_identity))
        self._next_job()

    def _next_job(self) -> None:
        if self._job is not None or not self._control or self.stopped:
            return
        work = self._control[0]
        self._job = self._modify(work) if isinstance(work, _Modify) else self._reidentify(work)
        self._queue_job()

    def _queue_job(self) -> None:
        if self._job is not None and not self._job_queued and not self.stopped:
            self._job_queued = True
            self._turns.submit(self._run_job(self._job), self._job_failed)

    def _run_job(self, job: Job) -> Job:
        """``job``'s steps; on BLOCKED, resubmitted once the socket has drained."""
        for outcome in job:
            if self.stopped:
                return
            if outcome is BLOCKED:
                self._job_queued = False
                self._sink.when_drained(self._queue_job, self._limits.max_transition_bytes)
                yield BLOCKED
                return
            yield outcome
        if self.stopped:
            return
        self._job_queued = False
        self._job = None
        self._control.popleft()
        self._next_job()

    def _job_failed(self, exc: BaseException) -> None:
        self._job_queued = False
        self._job = None
        if isinstance(exc, ProtocolError):
            self.fail(str(exc))
        else:
            self._internal_failure(exc, "query set change")

    def _blocked(self) -> bool:
        """The socket holds a Transition's worth of unsent bytes: wait for it to drain."""
        return self._sink.backlog > self._limits.max_transition_bytes

    def _modify(self, work: _Modify) -> Job:
        message = work.message
        modifications: list[Modification] = []
        size = 0
        cap = self._limits.max_transition_bytes
        for change in message.modifications:
            if isinstance(change, AddQuery):
                if change.query_id in self.queries:
                    raise ProtocolError(
                        f"ModifyQuerySet adds queryId {change.query_id}, which is already in "
                        "the query set."
                    )
                while self._blocked():
                    yield BLOCKED
                sub = self._subscribe(change, work.identity, work.admin)
                self.queries[change.query_id] = sub
                modification = query_modification(change.query_id, sub.shared)
                modifications.append(modification)
                size += len(modification[0]) + len(modification[1])
                if size >= cap:  # part of the answer now, at the same ts (see the docstring)
                    self._transition(modifications)
                    modifications, size = [], 0
                yield None
            else:
                removed = self.queries.pop(change.query_id, None)
                if removed is None:
                    raise ProtocolError(
                        f"ModifyQuerySet removes queryId {change.query_id}, which is not in "
                        "the query set."
                    )
                if removed.key is not None:
                    self._subscribed -= 1
                self._manager.unsubscribe(self, change.query_id, removed)
                modifications.append(query_removed(change.query_id))
        self._answered_query_set = message.new_version
        self._transition(modifications)

    def _subscribe(self, change: AddQuery, identity: object, admin: bool) -> Subscription:
        limit = self._limits.max_subscriptions
        if self._subscribed >= limit:
            return self._manager.failed(
                change.udf_path,
                TOO_MANY_SUBSCRIPTIONS.format(path=clip(change.udf_path, 200), limit=limit),
            )
        sub = self._manager.subscribe(
            self,
            change.query_id,
            change.udf_path,
            change.args,
            identity=identity,
            journal=change.journal,
            component_path=change.component_path,
            allow_internal=admin,
        )
        if sub.key is not None:
            self._subscribed += 1
        return sub

    def _reidentify(self, work: _Reidentify) -> Job:
        # Any result may depend on who asks: move every query to the new identity.
        modifications: list[Modification] = []
        size = 0
        cap = self._limits.max_transition_bytes
        for query_id in list(self.queries):
            old = self.queries.get(query_id)
            if old is None:
                continue
            while self._blocked():
                yield BLOCKED
            sub = self._manager.resubscribe(
                self, query_id, old, identity=work.identity, allow_internal=work.admin
            )
            self.queries[query_id] = sub
            if sub.body != old.body:
                modification = query_modification(query_id, sub.shared)
                modifications.append(modification)
                size += len(modification[0]) + len(modification[1])
                if size >= cap:
                    self._transition(modifications)
                    modifications, size = [], 0
            yield None
        self._answered_identity = work.version
        self._transition(modifications)

    # -- transitions ------------------------------------------------------------------------

    def _transition(self, modifications: list[Modification]) -> None:
        """Send ``modifications`` in Transitions of at most ``max_transition_bytes`` each: all
        at the manager's ts, the last one moving to the answered query set and identity."""
        ts = max(self._manager.ts, self.sent.ts)
        groups = split_modifications(modifications, self._limits.max_transition_bytes)
        for i, group in enumerate(groups):
            if i == len(groups) - 1:
                end = StateVersion(self._answered_query_set, self._answered_identity, ts)
            else:
                end = StateVersion(self.sent.query_set, self.sent.identity, ts)
            self._sink.send_parts(transition_parts(self.sent, end, group))
            self.sent = end
        if self._owed_ts is not None and ts >= self._owed_ts:
            self._owed_ts = None

    def _transition_one(self, query_id: int, shared: bytes) -> None:
        """:meth:`_transition` of one changed query, as a commit's fan-out sends it to every
        subscriber: most sockets are at the same version, so the Transition they all get is
        built once (the last one built is kept, keyed by all it depends on)."""
        global _last_one
        sent = self.sent
        ts = self._manager.ts
        key = (sent, self._answered_query_set, self._answered_identity, ts, query_id, shared)
        last_key, end, parts = _last_one
        if key != last_key:
            modification = query_modification(query_id, shared)
            if len(modification[0]) + len(shared) > self._limits.max_transition_bytes:
                self._transition([modification])  # answered as too large
                return
            end = StateVersion(self._answered_query_set, self._answered_identity, max(ts, sent.ts))
            parts = transition_parts(sent, end, [modification])
            _last_one = (key, end, parts)
        self._sink.send_parts(parts)
        self.sent = end
        owed = self._owed_ts
        if owed is not None and end.ts >= owed:
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
        sent = self._calls.in_flight and self._calls.send_responses(ts) is not None
        if self.stopped:
            return
        queries = self.queries
        if len(changed) == 1 and not sent:  # the usual fan-out: one shared query changed
            query_id, sub = changed[0]
            if queries.get(query_id) is sub:
                self._transition_one(query_id, sub.shared)
            return
        modifications = [
            query_modification(query_id, sub.shared)
            for query_id, sub in changed
            if queries.get(query_id) is sub
        ]
        if modifications or sent:
            self._transition(modifications)

    def after_responses(self, owed_ts: int) -> None:
        """Mutation responses went out: a Transition at ``owed_ts`` or later follows them."""
        if owed_ts <= self._manager.ts:
            self._transition([])
        else:  # the subscriptions have not caught up with the commit yet
            self._owed_ts = owed_ts if self._owed_ts is None else max(self._owed_ts, owed_ts)
            self._manager.when_ts_reached(owed_ts, self._pay_transition)

    def _pay_transition(self) -> None:
        if self.stopped or self._owed_ts is None or self._manager.ts < self._owed_ts:
            return
        self._transition([])


#: The last Transition :meth:`SyncSession._transition_one` built: (its key, end, parts).
_last_one: tuple[tuple[object, ...] | None, StateVersion, list[bytes]] = (None, StateVersion(), [])


def split_modifications(modifications: list[Modification], cap: int) -> list[list[Modification]]:
    """``modifications`` in groups of at most ``cap`` bytes each, in order (at least one
    group). A single result over ``cap`` is replaced by a QueryFailed saying so.

    >>> [len(g) for g in split_modifications([(b"p", b"x" * 6)] * 3, 15)]
    [2, 1]
    """
    groups: list[list[Modification]] = [[]]
    size = 0
    for modification in modifications:
        prefix, shared = modification
        n = len(prefix) + len(shared)
        if n > cap:
            modification = (prefix, _too_large(n, cap))
            n = len(prefix) + len(modification[1])
        if size + n > cap and groups[-1]:
            groups.append([])
            size = 0
        groups[-1].append(modification)
        size += n
    return groups


def _too_large(size: int, cap: int) -> bytes:
    limit = f"{cap / MIB:g} MiB" if cap >= MIB else f"{cap} bytes"
    message = RESULT_TOO_LARGE.format(size=size, limit=limit)
    return shared_body(query_result_body(None, [], None, error_message=message))
