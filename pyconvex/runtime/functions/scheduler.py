"""``ctx.scheduler``: schedule a mutation or action to run later, or cancel it.

A scheduled function is a document of the system table ``_scheduled_functions``, with Convex's
fields::

    {"name": "messages:destruct", "args": [{"id": "..."}], "scheduledTime": 1718000000000.0,
     "state": {"kind": "pending"}}      # later "inProgress" (actions), "success",
                                         # "failed" (+ "error"), "canceled"; + "completedTime"

In a mutation the document is written by the mutation's own transaction, so a job exists exactly
when the mutation committed; an action schedules through a built-in internal mutation (durable
before ``run_after`` returns). ``job_runner.py`` runs the jobs::

    job_id = await ctx.scheduler.run_after(0, internal.emails.send, {"to": email})
    await ctx.scheduler.run_at(datetime(2030, 1, 1, tzinfo=UTC), "reports:yearly", {})
    await ctx.scheduler.cancel(job_id)
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from pyconvex.errors import ConvexError, InvalidValueError, PyconvexError
from pyconvex.runtime.functions.function_path import function_ref_path, normalize_path
from pyconvex.runtime.functions.results import FunctionKind
from pyconvex.runtime.query.transaction import Transaction
from pyconvex.runtime.store.index import Document
from pyconvex.server.functions import FunctionDefinition, internal_mutation
from pyconvex.values import dumps_value, to_value
from pyconvex.values.validators import v

SCHEDULED_TABLE = "_scheduled_functions"
#: Convex's limits per transaction.
MAX_SCHEDULED_PER_TRANSACTION = 1000
MAX_SCHEDULED_ARGS_BYTES = 16 * 1024 * 1024
_FIVE_YEARS_MS = 5 * 366 * 24 * 3600 * 1000

PENDING = {"kind": "pending"}
IN_PROGRESS = {"kind": "inProgress"}

#: The kind of the function at a path (None: there is none), for checking what is scheduled.
KindOf = Callable[[str], "FunctionKind | None"]


class SchedulerError(PyconvexError, ValueError):
    """A scheduling call was given something it cannot schedule (the message says what)."""


def state_of(doc: Document) -> str:
    """A job document's state kind: "pending", "inProgress", "success", "failed", "canceled"."""
    state = doc.get("state")
    return str(state.get("kind")) if isinstance(state, dict) else ""


def when_ms(when: Any, what: str) -> float:
    """A ``run_at`` time as ms since the epoch: a number of ms, or a ``datetime`` (naive ones
    are local time, as ``datetime.timestamp()`` reads them)."""
    if isinstance(when, datetime):
        return when.timestamp() * 1000.0
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise SchedulerError(
            f"{what} takes a timestamp in milliseconds since the epoch or a datetime, got {when!r}."
        )
    return float(when)


def delay_ms(delay_s: Any) -> float:
    """A ``run_after`` delay (seconds) in ms."""
    if isinstance(delay_s, bool) or not isinstance(delay_s, int | float):
        raise SchedulerError(f"run_after takes a delay in seconds, got {delay_s!r}.")
    if not math.isfinite(delay_s) or delay_s < 0:
        raise SchedulerError(
            f"run_after takes a finite, non-negative delay in seconds, got {delay_s!r}."
        )
    return float(delay_s) * 1000.0


class TransactionScheduler:
    """``ctx.scheduler`` in a mutation: jobs are written by the mutation's transaction."""

    __slots__ = ("_args_bytes", "_count", "_kind_of", "_tx")

    def __init__(self, tx: Transaction, kind_of: KindOf) -> None:
        self._tx = tx
        self._kind_of = kind_of
        self._count = 0
        self._args_bytes = 0

    async def run_after(self, delay_s: float, fn: Any, args: dict[str, Any] | None = None) -> str:
        """Run ``fn(args)`` ``delay_s`` seconds after this mutation commits (0: right after);
        returns the job's ``_scheduled_functions`` id."""
        return self.schedule(_now_ms() + delay_ms(delay_s), fn, args)

    async def run_at(self, when: Any, fn: Any, args: dict[str, Any] | None = None) -> str:
        """Run ``fn(args)`` at ``when`` (ms since the epoch, or a ``datetime``)."""
        return self.schedule(when_ms(when, "run_at"), fn, args)

    async def cancel(self, job_id: str) -> None:
        """Cancel a pending job (a running action finishes, but is recorded as canceled);
        a job that already finished is left as it is."""
        tx = self._tx
        doc = job_document(tx, job_id, "cancel")
        if state_of(doc) in ("pending", "inProgress"):
            finish(tx, doc, {"kind": "canceled"})

    def schedule(self, at_ms: float, fn: Any, args: dict[str, Any] | None) -> str:
        """Write a pending job running ``fn(args)`` at ``at_ms``; returns its id."""
        tx = self._tx
        path = checked_path(fn, self._kind_of)
        value = checked_args(path, args)
        now = _now_ms()
        if abs(at_ms - now) > _FIVE_YEARS_MS:
            raise SchedulerError(
                f"Scheduling {path} at {at_ms!r} ms since the epoch is more than 5 years away "
                "from now; run_at takes milliseconds (or a datetime), run_after seconds."
            )
        size = len(dumps_value(value))
        self._count += 1
        self._args_bytes += size
        if self._count > MAX_SCHEDULED_PER_TRANSACTION:
            raise SchedulerError(
                f"{tx.where} scheduled more than {MAX_SCHEDULED_PER_TRANSACTION} functions, "
                "Convex's limit per mutation. Schedule one function that schedules the rest "
                "in batches."
            )
        if self._args_bytes > MAX_SCHEDULED_ARGS_BYTES:
            raise SchedulerError(
                f"{tx.where} scheduled functions whose arguments total more than 16 MiB, "
                "Convex's limit per mutation. Store large data in a table or file storage and "
                "pass its id."
            )
        table = tx.table(SCHEDULED_TABLE)
        assert table is not None, "the store creates the system tables"
        job_id = tx.new_id(table)
        doc = {
            "_id": job_id,
            "_creationTime": tx.store.next_creation_time(now),
            "name": path,
            "args": [value],
            "scheduledTime": at_ms,
            "state": dict(PENDING),
        }
        tx.put(table, job_id, doc)
        return job_id


class ActionScheduler:
    """``ctx.scheduler`` in an action: each call is a built-in mutation, durable on return."""

    __slots__ = ("_kind_of", "_run_mutation")

    def __init__(
        self, run_mutation: Callable[[str, dict[str, Any]], Awaitable[Any]], kind_of: KindOf
    ) -> None:
        self._run_mutation = run_mutation
        self._kind_of = kind_of

    async def run_after(self, delay_s: float, fn: Any, args: dict[str, Any] | None = None) -> str:
        """Run ``fn(args)`` ``delay_s`` seconds from now; returns the job's id."""
        return await self._schedule(time.time() * 1000.0 + delay_ms(delay_s), fn, args)

    async def run_at(self, when: Any, fn: Any, args: dict[str, Any] | None = None) -> str:
        """Run ``fn(args)`` at ``when`` (ms since the epoch, or a ``datetime``)."""
        return await self._schedule(when_ms(when, "run_at"), fn, args)

    async def cancel(self, job_id: str) -> None:
        """Cancel a pending job (see :meth:`TransactionScheduler.cancel`)."""
        await self._run_mutation(CANCEL_PATH, {"id": job_id})

    async def _schedule(self, at_ms: float, fn: Any, args: dict[str, Any] | None) -> str:
        path = checked_path(fn, self._kind_of)
        value = checked_args(path, args)
        job_id: str = await self._run_mutation(
            SCHEDULE_PATH, {"name": path, "args": value, "at": at_ms}
        )
        return job_id


def checked_path(fn: Any, kind_of: KindOf) -> str:
    """The normalised path of a schedulable function (a mutation or an action)."""
    try:
        path = normalize_path(function_ref_path(fn))
    except (PyconvexError, ValueError) as e:
        raise SchedulerError(f"Cannot schedule {fn!r}: {e}") from None
    kind = kind_of(path)
    if kind is None:
        raise SchedulerError(
            f"Cannot schedule {path}: no such function. Name a mutation or action as "
            "'module:function' or with a reference from _generated/api.py."
        )
    if kind not in ("mutation", "action"):
        raise SchedulerError(
            f"Cannot schedule {path}: it is a {kind}; only mutations and actions can be scheduled."
        )
    return path


def checked_args(path: str, args: Any) -> dict[str, Any]:
    if args is None:
        return {}
    if not isinstance(args, dict):
        raise SchedulerError(
            f"The arguments of scheduled {path} must be a dict, got {type(args).__name__}."
        )
    try:
        value = to_value(args)
    except (InvalidValueError, ValueError) as e:
        raise SchedulerError(
            f"The arguments of scheduled {path} are not Convex values: {e}"
        ) from None
    assert isinstance(value, dict)
    return value


def job_document(tx: Transaction, job_id: Any, op: str) -> Document:
    """The job ``job_id`` (raises a clear error for anything else)."""
    table = tx.table_for_id(job_id) if isinstance(job_id, str) else None
    if table is None or table.name != SCHEDULED_TABLE:
        raise SchedulerError(
            f"scheduler.{op}() takes the id of a scheduled function (what run_after / run_at "
            f"returned), got {job_id!r}."
        )
    doc = tx.get(job_id)
    if doc is None:
        raise SchedulerError(f"scheduler.{op}({job_id!r}): no such scheduled function.")
    return doc


def finish(tx: Transaction, doc: Document, state: dict[str, Any]) -> None:
    """Record a job's final state (and completion time) in ``tx``."""
    table = tx.table(SCHEDULED_TABLE)
    assert table is not None
    tx.put(table, doc["_id"], {**doc, "state": state, "completedTime": _now_ms()})


def _now_ms() -> float:
    # Inside a transaction time.time is the sandbox's frozen clock: the transaction's start.
    return time.time() * 1000.0


# -- built-in internal mutations: scheduling from actions, and the runner's bookkeeping -------

SCHEDULE_PATH = "_system/scheduler:schedule"
CANCEL_PATH = "_system/scheduler:cancel"
START_PATH = "_system/scheduler:start"
COMPLETE_PATH = "_system/scheduler:complete"
CLEANUP_PATH = "_system/scheduler:cleanup"


async def _schedule(ctx: Any, name: str, args: dict[str, Any], at: float) -> str:
    try:
        return str(ctx.scheduler.schedule(at, name, args))
    except SchedulerError as e:
        raise ConvexError(str(e)) from None


async def _cancel(ctx: Any, id: str) -> None:
    try:
        await ctx.scheduler.cancel(id)
    except SchedulerError as e:
        raise ConvexError(str(e)) from None


async def _start(ctx: Any, id: str) -> bool:
    """pending -> inProgress (an action is about to run); False if it is not pending."""
    tx: Transaction = ctx.db._tx
    doc = job_document(tx, id, "start")
    if state_of(doc) != "pending":
        return False
    table = tx.table(SCHEDULED_TABLE)
    assert table is not None
    tx.put(table, id, {**doc, "state": dict(IN_PROGRESS)})
    return True


async def _complete(ctx: Any, id: str, error: str | None) -> None:
    """pending/inProgress -> success or failed (a canceled job stays canceled)."""
    tx: Transaction = ctx.db._tx
    doc = job_document(tx, id, "complete")
    if state_of(doc) not in ("pending", "inProgress"):
        return
    state = {"kind": "success"} if error is None else {"kind": "failed", "error": error}
    finish(tx, doc, state)


async def _cleanup(ctx: Any, ids: list[str]) -> int:
    """Delete finished jobs (the runner picks those past the retention period)."""
    tx: Transaction = ctx.db._tx
    table = tx.table(SCHEDULED_TABLE)
    assert table is not None
    deleted = 0
    for job_id in ids:
        doc = tx.get(job_id)
        if doc is not None and state_of(doc) in ("success", "failed", "canceled"):
            tx.put(table, job_id, None)
            deleted += 1
    return deleted


def _system(path: str, handler: Any, args: dict[str, Any]) -> FunctionDefinition:
    definition: FunctionDefinition = internal_mutation(args=args)(handler)
    definition.path = path
    return definition


#: The scheduler's built-in functions (internal: only pyconvex itself and the admin key reach
#: them).
FUNCTIONS: dict[str, FunctionDefinition] = {
    SCHEDULE_PATH: _system(
        SCHEDULE_PATH, _schedule, {"name": v.string(), "args": v.any(), "at": v.float64()}
    ),
    CANCEL_PATH: _system(CANCEL_PATH, _cancel, {"id": v.string()}),
    START_PATH: _system(START_PATH, _start, {"id": v.string()}),
    COMPLETE_PATH: _system(
        COMPLETE_PATH, _complete, {"id": v.string(), "error": v.union(v.string(), v.null())}
    ),
    CLEANUP_PATH: _system(CLEANUP_PATH, _cleanup, {"ids": v.array(v.string())}),
}
