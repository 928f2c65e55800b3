"""Mutations and actions in flight, and when each may resolve (PROTOCOL.md §1.6-1.7).

A failed call rejects when its response arrives; an action resolves at its response; a
successful mutation is *completed at* its commit ts and resolves only once a Transition at or
after that ts has been applied, so whoever awaited it then sees its writes in every
subscription. On a new socket every mutation not resolved yet is sent again, in request-id
order, under the same session: the server answers a request it has already run with the
stored result, so each applies once. An action in flight is not sent again (it may have had
effects): it fails with :class:`ConnectionLostError`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from pyconvex.client.errors import ConnectionLostError
from pyconvex.client.results import response_error
from pyconvex.protocol.client_side import FunctionResponse
from pyconvex.values import decode_value


@dataclass(slots=True, eq=False)
class Request:
    request_id: int
    kind: str  # "Mutation" | "Action"
    path: str
    text: str  # the frame, sent again as it is after a reconnect
    future: asyncio.Future[Any]
    started: float = field(default_factory=time.monotonic)
    #: Written to a socket (an action not sent yet is sent when one opens).
    sent: bool = False
    #: A successful mutation's response arrived: it resolves at ``ts`` with ``result``.
    completed: bool = False
    ts: int | None = None
    result: Any = None


class RequestManager:
    def __init__(self) -> None:
        self.requests: dict[int, Request] = {}
        self.next_request_id = 0
        #: Mutations completed at some ts, waiting for a Transition that reaches it.
        self._completed: list[Request] = []

    def new_id(self) -> int:
        request_id = self.next_request_id
        self.next_request_id += 1
        return request_id

    def add(self, request: Request) -> None:
        self.requests[request.request_id] = request

    def on_response(self, response: FunctionResponse) -> Request | None:
        """Settle what a response settles. Returns the request when it failed or is an action
        (done now), None when unknown or a mutation now waiting for its Transition."""
        request = self.requests.get(response.request_id)
        if request is None or request.completed:
            return None  # a duplicate answer to a re-sent mutation
        if request.kind == "Mutation" and response.success:
            request.completed = True
            request.ts = response.ts
            try:
                request.result = decode_value(response.result)
            except ValueError as exc:
                request.result = exc
            self._completed.append(request)
            return None
        del self.requests[request.request_id]
        if request.future.done():
            return request
        if response.success:
            try:
                request.future.set_result(decode_value(response.result))
            except ValueError as exc:
                request.future.set_exception(exc)
        else:
            request.future.set_exception(response_error(request.path, response))
        return request

    def reached(self, ts: int) -> list[Request]:
        """The completed mutations a Transition ending at ``ts`` makes visible (removed from
        flight; resolve them with :meth:`resolve` once the Transition is applied). A
        mutation answered without a ts resolves at the next Transition."""
        if not self._completed:
            return []
        done: list[Request] = []
        waiting: list[Request] = []
        for request in self._completed:
            (done if request.ts is None or request.ts <= ts else waiting).append(request)
        self._completed = waiting
        for request in done:
            self.requests.pop(request.request_id, None)
        return done

    @staticmethod
    def resolve(requests: list[Request]) -> None:
        for request in requests:
            if request.future.done():
                continue
            if isinstance(request.result, ValueError):
                request.future.set_exception(request.result)
            else:
                request.future.set_result(request.result)

    def resend(self) -> list[str]:
        """The frames to send on a new socket, in order: every mutation not resolved, and
        the actions made while no socket was open."""
        out = []
        for request in sorted(self.requests.values(), key=_id):
            if request.kind == "Mutation" or not request.sent:
                request.sent = True
                out.append(request.text)
        return out

    def connection_lost(self) -> None:
        """Fail the actions in flight (they are not sent again)."""
        for request in [r for r in self.requests.values() if r.kind == "Action" and r.sent]:
            del self.requests[request.request_id]
            if not request.future.done():
                request.future.set_exception(
                    ConnectionLostError(
                        f"Connection lost while action {request.path} was in flight; it may "
                        "or may not have run."
                    )
                )

    def fail_all(self, error: BaseException) -> None:
        for request in self.requests.values():
            if not request.future.done():
                request.future.set_exception(error)
        self.requests.clear()
        self._completed.clear()

    def forget(self, request_id: int) -> None:
        """The caller stopped waiting (cancelled): the request stays in flight (the server
        may run it), but nobody is told the outcome."""
        request = self.requests.get(request_id)
        if request is not None and request.kind == "Action":
            del self.requests[request_id]

    def count(self, kind: str) -> int:
        return sum(1 for r in self.requests.values() if r.kind == kind)

    def oldest_start(self) -> float | None:
        return min((r.started for r in self.requests.values()), default=None)


def _id(request: Request) -> int:
    return request.request_id
