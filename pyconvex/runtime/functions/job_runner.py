"""Running scheduled functions when they are due.

The runner keeps the pending jobs of ``_scheduled_functions`` in a heap by scheduled time. It
learns of new ones from durable commits (so a job exists only once the mutation that scheduled
it is durable) and, at start, from the table itself: pending jobs survive a restart, and overdue
ones run at once. Guarantees, as Convex's:

* a scheduled **mutation runs exactly once**: its "success" is written by its own transaction
  (``run_mutation(..., in_transaction=...)``), so after a crash it either committed with its
  writes or runs again; a failed one is recorded with its error, a commit that failed is retried;
* a scheduled **action runs at most once**: it is marked ``inProgress`` (durably) before it
  starts, and one that was running when the server stopped is recorded as failed, not re-run;
* a job whose function no longer exists fails with an error saying so.

Each run is in ``pyconvex logs`` marked as what started it: "scheduled", or "cron <name>" for a
run of a cron job.

Finished jobs are deleted after a week (Convex's retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Callable
from typing import Any, Protocol

from pyconvex.errors import PyconvexError
from pyconvex.runtime.functions.cron_runner import CRON_TABLE
from pyconvex.runtime.functions.log_history import triggered_by
from pyconvex.runtime.functions.results import FunctionKind, FunctionResult
from pyconvex.runtime.functions.sandbox import real_time_ns
from pyconvex.runtime.functions.scheduler import (
    CLEANUP_PATH,
    COMPLETE_PATH,
    SCHEDULED_TABLE,
    START_PATH,
    finish,
    state_of,
)
from pyconvex.runtime.query.transaction import Transaction
from pyconvex.runtime.store.memory import BY_CREATION_TIME, Store
from pyconvex.runtime.store.read_set import Commit, CommitListener

log = logging.getLogger("pyconvex.scheduler")

RETENTION_MS = 7 * 24 * 3600 * 1000
CLEANUP_INTERVAL_S = 3600.0
CLEANUP_BATCH = 1000
INTERRUPTED = (
    "The server stopped while this scheduled action was running. Scheduled actions run at "
    "most once, so it was not run again."
)


class JobHost(Protocol):
    """What the runner needs of the deployment."""

    store: Store

    def function_kind(self, path: str) -> FunctionKind | None: ...

    def add_commit_listener(self, listener: CommitListener) -> Callable[[], None]: ...

    async def run_mutation(
        self, path: str, args: dict[str, Any] | None = None, *, identity: Any = None,
        allow_internal: bool = False,
        in_transaction: Callable[[Transaction], None] | None = None,
    ) -> FunctionResult: ...  # fmt: skip

    async def run_action(
        self, path: str, args: dict[str, Any] | None = None, *, identity: Any = None,
        allow_internal: bool = False,
    ) -> FunctionResult: ...  # fmt: skip


class _NotPending(PyconvexError):
    """The job was canceled or finished while its mutation ran (its writes are undone)."""


def _now_ms() -> float:
    return real_time_ns() / 1e6


class JobRunner:
    """Runs the deployment's scheduled functions (see the module docstring)."""

    def __init__(self, host: JobHost, *, max_parallel: int = 256) -> None:
        self.host = host
        self.max_parallel = max_parallel
        #: The clock jobs fall due by, in ms since the epoch (ConvexTest moves it forward;
        #: call :meth:`wake` after changing it).
        self.clock: Callable[[], float] = _now_ms
        #: Counters for stats and benchmarks.
        self.succeeded = 0
        self.failed = 0
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._queued: set[str] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._attempts: dict[str, int] = {}
        self._interrupted: list[str] = []
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._ready = False
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._remove_listener: Callable[[], None] | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, *, ready: bool) -> None:
        """Load the pending jobs and start running them once ``ready`` (the functions are
        loaded; see :meth:`functions_changed`)."""
        if self._task is not None:
            return
        self._ready = ready
        self._remove_listener = self.host.add_commit_listener(self._on_commit)
        table = self.host.store.tables[SCHEDULED_TABLE]
        for _, doc in table.scan(BY_CREATION_TIME, None, None, False, None):
            state = state_of(doc)
            if state == "pending":
                self._push(doc["_id"], float(doc["scheduledTime"]))
            elif state == "inProgress":
                self._interrupted.append(doc["_id"])
        self._task = asyncio.create_task(self._loop(), name="pyconvex-scheduler")

    def functions_changed(self) -> None:
        """New code is serving: jobs may run (and are resolved against it)."""
        self._ready = True
        self._wake.set()

    async def close(self) -> None:
        """Stop running jobs (an action still running is recorded as interrupted at the next
        start)."""
        self._closed = True
        if self._remove_listener is not None:
            self._remove_listener()
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def wake(self) -> None:
        """Look at the clock again: jobs may have fallen due (see :attr:`clock`)."""
        self._wake.set()

    @property
    def pending(self) -> int:
        """Jobs waiting for their time (or for a free slot)."""
        return len(self._queued)

    @property
    def running(self) -> int:
        return len(self._running)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until no job is due or running (jobs scheduled meanwhile included)."""
        async with asyncio.timeout(timeout):
            while self._running or (
                self._ready and self._heap and self._heap[0][0] <= self.clock()
            ):
                self._progress.clear()
                await self._progress.wait()

    # -- the queue -------------------------------------------------------------------------
    def _push(self, job_id: str, at_ms: float) -> None:
        if job_id in self._queued or job_id in self._running:
            return
        self._seq += 1
        heapq.heappush(self._heap, (at_ms, self._seq, job_id))
        self._queued.add(job_id)
        self._wake.set()

    def _on_commit(self, latest_ts: int, commits: list[Commit]) -> None:
        table = None
        for commit in commits:
            if SCHEDULED_TABLE not in commit.writes.tables():
                continue
            for entry in commit.writes.entries:
                if entry.table != SCHEDULED_TABLE:
                    continue
                if table is None:
                    table = self.host.store.tables[SCHEDULED_TABLE]
                doc = table.get(entry.doc_id, latest_ts)
                if doc is not None and state_of(doc) == "pending":
                    self._push(entry.doc_id, float(doc["scheduledTime"]))

    async def _loop(self) -> None:
        for job_id in self._interrupted:
            await self._system(COMPLETE_PATH, {"id": job_id, "error": INTERRUPTED})
        self._interrupted = []
        next_cleanup = 0.0
        loop = asyncio.get_running_loop()
        while not self._closed:
            self._wake.clear()
            now = self.clock()
            if self._ready:
                self._start_due(now)
            if loop.time() >= next_cleanup:
                next_cleanup = loop.time() + CLEANUP_INTERVAL_S
                await self._cleanup(now)
            timeout = CLEANUP_INTERVAL_S
            if self._ready and self._heap and len(self._running) < self.max_parallel:
                timeout = min(timeout, max(0.0, (self._heap[0][0] - now) / 1000.0))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _start_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now and len(self._running) < self.max_parallel:
            _, _, job_id = heapq.heappop(heap)
            self._queued.discard(job_id)
            task = asyncio.create_task(self._execute(job_id))
            self._running[job_id] = task
            task.add_done_callback(lambda _, j=job_id: self._finished(j))  # type: ignore[misc]

    def _finished(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        self._wake.set()
        self._progress.set()

    # -- running one job -------------------------------------------------------------------
    async def _execute(self, job_id: str) -> None:
        table = self.host.store.tables[SCHEDULED_TABLE]
        doc = table.get(job_id, None)
        if doc is None or state_of(doc) != "pending":
            return  # canceled (or finished) since it was queued
        path = str(doc["name"])
        args = doc["args"][0] if doc.get("args") else {}
        kind = self.host.function_kind(path)
        if kind == "mutation":
            await self._run_mutation(job_id, path, args)
        elif kind == "action":
            await self._run_action(job_id, path, args)
        else:
            self.failed += 1
            await self._system(COMPLETE_PATH, {"id": job_id, "error": _missing(path, kind)})

    async def _run_mutation(self, job_id: str, path: str, args: Any) -> None:
        reached = False

        def mark_success(tx: Transaction) -> None:
            nonlocal reached
            doc = tx.get(job_id)
            if doc is None or state_of(doc) != "pending":
                raise _NotPending(f"scheduled function {job_id} is no longer pending")
            finish(tx, doc, {"kind": "success"})
            reached = True

        with triggered_by(self._trigger(job_id)):
            result = await self.host.run_mutation(
                path, args, allow_internal=True, in_transaction=mark_success
            )
        if result.failure is None:
            self.succeeded += 1
            self._attempts.pop(job_id, None)
            return
        if reached:
            # The mutation ran to the end but its commit failed: a transient error. Run it
            # again later (it has not happened).
            attempts = self._attempts[job_id] = self._attempts.get(job_id, 0) + 1
            delay_ms = min(60_000.0, 1000.0 * 2 ** (attempts - 1))
            log.warning("scheduled %s (%s) not committed, retrying: %s", path, job_id, result)
            self._push(job_id, self.clock() + delay_ms)
            return
        self.failed += 1
        await self._system(COMPLETE_PATH, {"id": job_id, "error": result.failure.message})

    async def _run_action(self, job_id: str, path: str, args: Any) -> None:
        if await self._system(START_PATH, {"id": job_id}) is not True:
            return
        with triggered_by(self._trigger(job_id)):
            result = await self.host.run_action(path, args, allow_internal=True)
        error = None if result.failure is None else result.failure.message
        if error is None:
            self.succeeded += 1
        else:
            self.failed += 1
        await self._system(COMPLETE_PATH, {"id": job_id, "error": error})

    def _trigger(self, job_id: str) -> str:
        """How the logs name what started the job: a cron job's run, or "scheduled"."""
        crons = self.host.store.tables.get(CRON_TABLE)
        if crons is not None:
            for _, doc in crons.scan(BY_CREATION_TIME, None, None, False, None):
                if doc.get("lastJob") == job_id:
                    return f"cron {doc['name']}"
        return "scheduled"

    async def _system(self, path: str, args: dict[str, Any]) -> Any:
        result = await self.host.run_mutation(path, args, allow_internal=True)
        if result.failure is not None:
            log.error("scheduler bookkeeping %s%s failed: %s", path, args, result.failure.message)
            return None
        return result.value

    async def _cleanup(self, now: float) -> None:
        """Delete finished jobs older than the retention period."""
        table = self.host.store.tables[SCHEDULED_TABLE]
        horizon = now - RETENTION_MS
        old = [
            doc["_id"]
            for _, doc in table.scan(BY_CREATION_TIME, None, None, False, None)
            if state_of(doc) in ("success", "failed", "canceled")
            and float(doc.get("completedTime", now)) < horizon
        ]
        for i in range(0, len(old), CLEANUP_BATCH):
            await self._system(CLEANUP_PATH, {"ids": old[i : i + CLEANUP_BATCH]})


def _missing(path: str, kind: FunctionKind | None) -> str:
    if kind is None:
        return (
            f"Scheduled function {path} no longer exists: it was deleted or renamed after it "
            "was scheduled."
        )
    return (
        f"Scheduled function {path} is now a {kind}; only mutations and actions can run as "
        "scheduled functions."
    )
