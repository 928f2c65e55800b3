"""What running a function returns: the seam between the engine and the server.

The sync protocol and the HTTP API turn a :class:`FunctionResult` into wire messages; the
engine produces them. Nothing here knows about WebSockets or DuckDB.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import traceback as tb
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pyconvex.runtime.store.read_set import ReadSet

FunctionKind = Literal["query", "mutation", "action", "http_action"]


#: pyconvex's own source files: frames there are hidden from a user's traceback.
PACKAGE_DIR = str(Path(__file__).resolve().parents[2]) + "/"


@dataclass(slots=True)
class FunctionFailure:
    """Why a function failed, as the client should see it.

    ``message`` is Convex's text (``[Request ID: <id>] Server Error`` then ``error``; see
    ``call_errors.py``). ``data`` is the ConvexError payload (a Convex value) when
    ``is_convex_error`` is true, else None. ``traceback`` (the user's frames only) and
    ``full_traceback`` (pyconvex's frames too) are set for an uncaught exception other than
    ConvexError: they are for the developer's console and ``pyconvex logs``, never sent to a
    client. ``request_id`` is the call's id (also in its log entry); ``error`` is the message
    without the request line, as a calling action sees it.
    """

    message: str
    is_convex_error: bool = False
    data: Any = None
    traceback: str | None = None
    full_traceback: str | None = None
    request_id: str | None = None
    error: str | None = None

    @classmethod
    def server_error(
        cls,
        message: str,
        frames: list[str] | None = None,
        request_id: str | None = None,
        **kw: Any,
    ) -> FunctionFailure:
        """The failure Convex reports for an error of a call: ``message`` (and the frames,
        innermost first) under the request line::

            FunctionFailure.server_error("Uncaught ValueError: boom", ["send (convex/m.py:3)"])
        """
        error = message + "\n" + "".join(f"    at {frame}\n" for frame in frames or ())
        rid = request_id or new_request_id()
        return cls(f"[Request ID: {rid}] Server Error\n{error}", request_id=rid, error=error, **kw)


_ids = random.Random()  # its own generator: the sandbox seeds the module's for determinism


def new_request_id() -> str:
    """A request id as Convex makes them: 16 hex digits."""
    return f"{_ids.getrandbits(64):016x}"


def traceback_texts(error: BaseException) -> tuple[str, str]:
    """``error``'s traceback with the user's frames only, and with every frame::

    user, full = traceback_texts(e)   # user: "Traceback ...\n  File "convex/m.py" ..."
    """
    full = "".join(tb.format_exception(error))
    report = tb.TracebackException.from_exception(error)
    _drop_own_frames(report, set())
    return "".join(report.format()), full


def _drop_own_frames(report: tb.TracebackException, seen: set[int]) -> None:
    if id(report) in seen:
        return
    seen.add(id(report))
    frames = [f for f in report.stack if not f.filename.startswith(PACKAGE_DIR)]
    report.stack = tb.StackSummary.from_list(frames)
    for linked in (report.__cause__, report.__context__):
        if linked is not None:
            _drop_own_frames(linked, seen)


@dataclass(slots=True)
class FunctionResult:
    """The outcome of one function call.

    ``value`` is a Convex value (valid only when ``failure`` is None). ``ts`` is the snapshot
    timestamp a query read at, or the commit timestamp of a mutation (None for actions and for
    mutations that failed). ``read_set`` is set for queries: what they read, to intersect with
    later commits. ``log_lines`` are already formatted ("[LOG] 'hello'").
    """

    value: Any = None
    failure: FunctionFailure | None = None
    log_lines: list[str] = field(default_factory=list)
    ts: int | None = None
    read_set: ReadSet | None = None
    journal: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


def redacted(result: FunctionResult) -> FunctionResult:
    """``result`` as a client of a production deployment (``pyconvex serve``) sees it, as
    Convex's production deployments answer: no log lines, and a failure of a call reduced to
    ``[Request ID: <id>] Server Error`` (a ConvexError keeps its data). The request id is the
    one in the server's log, which has the whole error::

        redacted(result).failure.message   # "[Request ID: 0a8b5f0b3f9e1c2d] Server Error"

    Failures of the request itself (no request id: malformed arguments, an unsupported
    component path) say what was wrong and are kept."""
    failure = result.failure
    if failure is None and not result.log_lines:
        return result
    if failure is not None and failure.request_id is not None:
        failure = FunctionFailure(
            f"[Request ID: {failure.request_id}] Server Error",
            is_convex_error=failure.is_convex_error,
            data=failure.data,
            request_id=failure.request_id,
            error="Server Error",
        )
    return FunctionResult(result.value, failure, [], result.ts, result.read_set, result.journal)


def redacts_for_clients(deployment: object) -> bool:
    """Whether ``deployment`` serves production clients (its ``redact_for_clients``)."""
    return bool(getattr(deployment, "redact_for_clients", False))


@dataclass(slots=True)
class AppliedMutation:
    """A mutation that has run and whose writes are applied to memory, but that may not be
    reported yet: until ``wait_ts`` is durable, the batch it wrote or read from may still fail.

    ``durable`` resolves once ``wait_ts`` is durable (None: nothing to wait for), or raises
    the ``StorageError`` of the batch that failed; :meth:`settle` then gives what to report::

        applied = deployment.apply_mutation("messages:send", {"body": "hi"})
        result = await applied.outcome()   # once durable: the value, or the storage failure
    """

    result: FunctionResult
    wait_ts: int = 0
    durable: asyncio.Future[int] | None = None

    def settle(self) -> FunctionResult:
        """What to report, once ``durable`` is done (or ``wait_ts`` is known to be durable):
        the result, or the failure of the batch it depended on."""
        fut = self.durable
        if fut is None or not fut.done():
            return self.result
        error = fut.exception() if not fut.cancelled() else asyncio.CancelledError()
        if error is None:
            return self.result
        return FunctionResult(
            failure=FunctionFailure.server_error(str(error)), log_lines=self.result.log_lines
        )

    async def outcome(self) -> FunctionResult:
        """Wait until it may be reported; then :meth:`settle`."""
        fut = self.durable
        if fut is not None and not fut.done():
            # shield: a caller giving up must not cancel a future other mutations share.
            with contextlib.suppress(Exception):
                await asyncio.shield(fut)
        return self.settle()
