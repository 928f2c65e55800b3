"""Mutations and actions called over one sync socket (PROTOCOL.md §1.5), for its session.

Mutations run one at a time in arrival order, each as soon as the one before it is applied to
memory (``Deployment.apply_mutation``), not once it is durable: the next runs while the
committer makes the previous one durable. Responses leave in arrival order, each once what it
wrote or read is durable, and always before the Transition that carries its writes: the npm
client drops an optimistic update only when a Transition at or after its ts follows the
response, and holds both documents until then. Actions run concurrently, as tasks.

Whatever a call's input, it gets an answer and the calls after it still run: a bad path or
args is a failed response; pyconvex itself failing is logged and answered as an internal error.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pyconvex.protocol import Action, Mutation, clip, function_response, log_function_lines
from pyconvex.runtime.functions.function_path import normalize_path
from pyconvex.runtime.functions.results import (
    AppliedMutation,
    FunctionFailure,
    FunctionResult,
    redacted,
    redacts_for_clients,
)
from pyconvex.runtime.net.call_bodies import decode_args, internal_error
from pyconvex.runtime.net.subscriptions import SubscriptionManager
from pyconvex.runtime.store.write_gate import WriteGate
from pyconvex.values import Value, encode_value

_log = logging.getLogger("pyconvex.sync")

#: Mutations a session runs in one turn of the event loop before letting other sockets in.
MUTATIONS_PER_TURN = 64


class CallDeployment(Protocol):
    """The part of the Deployment that runs a socket's calls."""

    @property
    def write_gate(self) -> WriteGate:
        """Held while an import puts its documents in: mutations wait for it."""
        ...

    def apply_mutation(
        self,
        path: str,
        args: dict[str, Value],
        *,
        identity: object = None,
        allow_internal: bool = False,
        idempotency_key: tuple[str, int] | None = None,
    ) -> AppliedMutation: ...

    def answer_when_durable(self, ts: int, callback: Callable[[], None]) -> None:
        """Call ``callback()`` in the loop turn that makes ``ts`` durable, after the commit
        listeners have told the subscriptions (not at all if that batch fails)."""
        ...

    async def run_action(
        self,
        path: str,
        args: dict[str, Value],
        *,
        identity: object = None,
        allow_internal: bool = False,
    ) -> FunctionResult: ...


class CallSink(Protocol):
    """The socket, as the calls use it."""

    def send(self, text: str) -> None: ...

    def flush(self) -> None:
        """Write what is queued now, not at the next loop turn."""
        ...

    def pause_input(self) -> None: ...

    def resume_input(self) -> None: ...


class CallHost(Protocol):
    """The session the calls belong to."""

    stopped: bool
    session_id: str | None

    def after_responses(self, owed_ts: int) -> None:
        """Responses went out: a Transition at ``owed_ts`` or later must follow them."""
        ...


@dataclass(slots=True)
class _Waiting:
    """A mutation received, with who sent it (the identity when it arrived, not when it runs:
    an Authenticate after it must not change it)."""

    message: Mutation
    identity: object
    admin: bool


@dataclass(slots=True)
class _InFlight:
    """A mutation that has run and whose response has not been sent."""

    request_id: int
    path: str
    applied: AppliedMutation
    admin: bool = False


class SyncCalls:
    """One socket's mutation pipeline and running actions."""

    def __init__(
        self,
        deployment: CallDeployment,
        manager: SubscriptionManager,
        sink: CallSink,
        host: CallHost,
        max_queued_mutations: int = 1024,
    ) -> None:
        self._deployment = deployment
        self._manager = manager
        self._sink = sink
        self._host = host
        self._waiting: deque[_Waiting] = deque()  # received, not run yet
        self._in_flight: deque[_InFlight] = deque()  # run, response not sent yet
        self._turn_runs = 0  # mutations run in this turn of the event loop
        self._next_turn_scheduled = False
        self._gate_wait = False  # waiting for an import to let mutations run
        self._max_queued = max_queued_mutations
        self._input_paused = False
        self._actions: set[asyncio.Task[None]] = set()

    @property
    def in_flight(self) -> bool:
        """Mutations have run whose responses have not been sent."""
        return bool(self._in_flight)

    def stop(self) -> None:
        self._waiting.clear()
        self._in_flight.clear()
        for task in list(self._actions):
            task.cancel()

    # -- mutations ----------------------------------------------------------------------------

    def mutation(self, message: Mutation, identity: object, admin: bool) -> None:
        self._waiting.append(_Waiting(message, identity, admin))
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
        gate = self._deployment.write_gate
        if gate.held:  # an import is putting its documents in: run them once it is done
            if waiting and not self._gate_wait:
                self._gate_wait = True
                gate.when_open(self._gate_opened)
            return
        while waiting and not self._host.stopped and self._turn_runs < MUTATIONS_PER_TURN:
            if not self._next_turn_scheduled:
                self._next_turn_scheduled = True
                asyncio.get_running_loop().call_soon(self._next_turn)
            self._turn_runs += 1
            self._run(waiting.popleft())

    def _gate_opened(self) -> None:
        self._gate_wait = False
        self._run_waiting()

    def _next_turn(self) -> None:
        self._next_turn_scheduled = False
        self._turn_runs = 0
        self._run_waiting()

    def _run(self, waiting: _Waiting) -> None:
        message = waiting.message
        path = message.udf_path
        try:
            path, args = call_target(path, message.args, message.component_path)
            if isinstance(args, str):
                applied = AppliedMutation(failed(args))
            else:
                applied = self._deployment.apply_mutation(
                    path,
                    args,
                    identity=waiting.identity,
                    allow_internal=waiting.admin,
                    idempotency_key=(self._host.session_id or "", message.request_id),
                )
                log_function_lines("mutation", path, applied.result.log_lines)
        except Exception:
            # Whatever happens, this mutation gets its answer and the next ones run.
            _log.exception("mutation %s crashed the engine", clip(path))
            applied = AppliedMutation(FunctionResult(failure=internal_error()))
        self._in_flight.append(_InFlight(message.request_id, path, applied, waiting.admin))
        durable = applied.durable
        if durable is None or durable.done():
            self._responses_ready()
            return
        durable.add_done_callback(self._responses_ready)  # (a failure: the batch's future)
        if len(self._in_flight) == 1:
            self._deployment.answer_when_durable(applied.wait_ts, self._answer)

    def _answer(self) -> None:
        """The head of the pipeline is durable (``answer_when_durable``): its responses, and
        the Transition that follows them, go out in this loop turn rather than the next two
        (the durable future's callback, then the socket's flush); then the next head waits."""
        self._responses_ready()
        if self._host.stopped:
            return
        self._sink.flush()
        if self._in_flight:
            head = self._in_flight[0].applied
            if head.durable is not None and not head.durable.done():
                self._deployment.answer_when_durable(head.wait_ts, self._answer)

    def _responses_ready(self, _: object = None) -> None:
        """A mutation may be reported: send what can go, then a Transition after it."""
        if self._host.stopped:
            return
        owed = self.send_responses(self._manager.ts)
        if owed is not None:
            self._host.after_responses(owed)

    def send_responses(self, durable_ts: int) -> int | None:
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
            if not head.admin and redacts_for_clients(self._deployment):
                result = redacted(result)
            frame, ok = response_frame("Mutation", head.request_id, result, head.path)
            self._sink.send(frame)
            ts = result.ts if ok and result.ts is not None else 0
            owed = ts if owed is None else max(owed, ts)
        if self._input_paused and self._backlog() <= self._max_queued // 2:
            self._input_paused = False
            self._sink.resume_input()
        return owed

    # -- actions ------------------------------------------------------------------------------

    def action(self, message: Action, identity: object, admin: bool) -> None:
        task = asyncio.create_task(self._run_action(message, identity, admin))
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)

    async def _run_action(self, message: Action, identity: object, admin: bool) -> None:
        path = message.udf_path
        try:
            path, args = call_target(path, message.args, message.component_path)
            if isinstance(args, str):
                result = failed(args)
            else:
                result = await self._deployment.run_action(
                    path, args, identity=identity, allow_internal=admin
                )
                log_function_lines("action", path, result.log_lines)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("action %s crashed the engine", clip(path))
            result = FunctionResult(failure=internal_error())
        if self._host.stopped:
            return
        if not admin and redacts_for_clients(self._deployment):
            result = redacted(result)
        self._sink.send(response_frame("Action", message.request_id, result, path)[0])


def call_target(
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


def response_frame(
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


def failed(message: str) -> FunctionResult:
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
