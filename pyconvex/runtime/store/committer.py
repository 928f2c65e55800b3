"""Group commit: batches of mutations applied to memory made durable, in order.

Mutations are applied to memory one at a time on the event loop and handed here with their
commit timestamp. While one batch is being made durable, the next commits queue up and go
together in the following one — so the fixed cost of a durable write (~1-2 ms for a DuckDB
commit) is paid once per batch, not per mutation. When a batch is durable, the store's durable
timestamp moves (queries may now see it), listeners hear of the commits, and the waiting
mutations resolve. If a batch fails, it and every commit applied after it (which may have read
its writes) are taken out of memory and fail.

The committer talks to persistence only through :class:`~.persistence.Persistence`.
Failures reach clients without server paths or the database's own words (the log has those).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from pyconvex.errors import StorageError
from pyconvex.runtime.store.memory import Store, UndoRecord
from pyconvex.runtime.store.persistence import (
    Batch,
    DocumentWrite,
    Persistence,
    PersistenceUnavailable,
)
from pyconvex.runtime.store.read_set import Commit, CommitListener, WriteSet
from pyconvex.runtime.store.write_gate import WriteGate

#: Document versions written between two prunes of the log's superseded versions.
PRUNE_EVERY = 50_000
#: Mutation results are kept this long for re-sends (functions/session_results.py's window).
RESULTS_WINDOW_NS = 15 * 60 * 1_000_000_000

log = logging.getLogger("pyconvex.committer")

#: What a client is told when a batch it was in could not be written.
WRITE_FAILED = (
    "The database write failed, so this mutation was not committed (the server log says why)."
)
REFUSED_LOG_EVERY_S = 60.0


@dataclass(slots=True)
class PendingCommit:
    """A transaction applied to memory, waiting to be durable."""

    ts: int
    undo: UndoRecord
    writes: WriteSet
    documents: list[DocumentWrite]
    new_tables: list[tuple[int, str]] = field(default_factory=list)
    session_request: tuple[str, int, str] | None = None
    future: asyncio.Future[int] | None = None
    #: Keys of rows staged ahead in DuckDB (an import), moved into the log with this commit.
    staged: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _InFlight:
    """A batch handed to persistence, waiting for its answer."""

    commits: list[PendingCommit]
    started: int
    #: What the listeners are told of the batch (the preparers and the durable listeners
    #: get the same list).
    announced: list[Commit]
    abandoned: bool = False


class Committer:
    """The queue of applied commits and the batches on their way to persistence."""

    def __init__(self, store: Store, persistence: Persistence, max_batch: int = 4096) -> None:
        """Made after start-up has loaded ``store`` from ``persistence``."""
        self.store = store
        self.persistence = persistence
        self.max_batch = max_batch
        self.listeners: list[CommitListener] = []
        #: Told of a batch before it is durable (see Deployment.add_commit_listener).
        self.preparers: list[CommitListener] = []
        self._queue: list[PendingCommit] = []
        self._loop = asyncio.get_running_loop()
        #: Batches sent and not yet answered, oldest first.
        self._in_flight: deque[_InFlight] = deque()
        #: A second batch goes out while the first is being written once this many commits
        #: queued up: its answer would otherwise wait for the event loop to finish its current
        #: turn (several ms under load) while the writer sits idle. Small second batches are
        #: not worth a durable write of their own.
        self.max_in_flight = 2
        self.pipeline_min_batch = 64
        #: ``max_ts`` of the last batch sent (the next names it as ``after_ts``), and of the
        #: last durable one (what the next follows after a failure).
        self._sent_ts = self._durable_ts = store.durable_ts
        self._gone: PersistenceUnavailable | None = None  # no more writes: refused
        #: (ts, order, callback) of answer_when_durable, a heap by ts.
        self._answers: list[tuple[int, int, Callable[[], None]]] = []
        self._answer_order = itertools.count()
        self._refused = 0
        self._refused_logged_at = 0.0
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()
        #: Held while an import puts its documents in: new mutations wait for it.
        self.gate = WriteGate()
        #: Document versions written since the log was last pruned (see _durable).
        self._since_prune = 0
        self._pruning: asyncio.Task[None] | None = None
        self._collecting = False  # a call of _collect_more is queued
        self.pruned = 0
        # Counters for /api/_pyconvex/stats and the benchmarks.
        self.batches = 0
        self.committed = 0
        self.write_ns = 0
        self.writer_ns = 0  # of which inside the writer (as persistence reports it)

    def submit(self, pending: PendingCommit) -> asyncio.Future[int]:
        """Queue an applied commit; the future resolves with its ts once it is durable.

        If no batch is being written, this one starts at once: while it is made durable, the
        event loop goes on running the next mutations, which then form the following batch.
        """
        if self._closed:
            raise StorageError("The deployment is shutting down; the mutation was not committed.")
        if self._gone is not None:
            self._refuse()
            raise self._gone
        fut: asyncio.Future[int] = self._loop.create_future()
        pending.future = fut
        self._queue.append(pending)
        self._idle.clear()
        if self._may_start():
            self._start_write()
        return fut

    async def wait_durable(self, ts: int) -> None:
        """Wait until everything up to ``ts`` is durable (for read-only mutations)."""
        while self.store.durable_ts < ts and not self._idle.is_set():
            await self._idle.wait()

    async def wait_idle(self) -> None:
        """Wait until every commit handed over so far is durable (or failed)."""
        await self._idle.wait()

    def answer_when_durable(self, ts: int, callback: Callable[[], None]) -> None:
        """Call ``callback()`` in the loop turn that makes everything up to ``ts`` durable,
        right after the commit listeners: a session's responses go out then, not a turn later
        (the listeners have sent its Transition with those responses first, if it has one). Not
        called if that batch fails: the commit's future says so."""
        heapq.heappush(self._answers, (ts, next(self._answer_order), callback))

    def _may_start(self) -> bool:
        """Whether to send the queued commits now (see ``max_in_flight``)."""
        if not self._queue:
            return False
        in_flight = len(self._in_flight)
        return in_flight == 0 or (
            in_flight < self.max_in_flight and len(self._queue) >= self.pipeline_min_batch
        )

    def _start_write(self) -> None:
        commits = self._queue[: self.max_batch]
        del self._queue[: self.max_batch]
        batch = Batch(max_ts=commits[-1].ts, after_ts=self._sent_ts)
        self._sent_ts = batch.max_ts
        for c in commits:
            batch.documents.extend(c.documents)
            batch.new_tables.extend(c.new_tables)
            batch.staged.extend((key, c.ts) for key in c.staged)
            if c.session_request is not None:
                session, request, result = c.session_request
                batch.session_requests.append((session, request, c.ts, result))
        announced = [Commit(c.ts, c.writes) for c in commits]
        flight = _InFlight(commits, time.perf_counter_ns(), announced)
        self._in_flight.append(flight)
        if self.preparers and len(self._in_flight) == 1:
            # While the batch is made durable (the event loop has nothing else to do after
            # idle), listeners may get ready for it: a subscription re-runs its query then.
            # Queued before the batch is handed over: a sync that persistence does on the
            # loop's next turn comes after it (the disk writes meanwhile).
            self._loop.call_soon(self._prepare, flight)
        written = self.persistence.append(batch)
        written.add_done_callback(lambda done: self._written(flight, done))

    def _prepare(self, flight: _InFlight) -> None:
        if flight.abandoned or not self._in_flight or self._in_flight[0] is not flight:
            return  # already answered, or failed
        for listener in list(self.preparers):
            try:
                listener(flight.commits[-1].ts, flight.announced)
            except Exception:
                log.exception("commit preparer failed")

    def _written(self, flight: _InFlight, done: asyncio.Future[int]) -> None:
        if flight.abandoned:
            # A batch sent behind one that failed: already undone and reported (persistence
            # refuses it: it does not follow the last durable batch).
            self._in_flight.remove(flight)
            self._after_batch()
            return
        assert self._in_flight[0] is flight, "persistence answers batches in order"
        self._in_flight.popleft()
        error = done.exception()
        if error is None:
            self._durable(flight, done.result())
        elif isinstance(error, PersistenceUnavailable):
            self._gone = error
            self._fail_all(flight.commits, error)
            self._refused += len(flight.commits)
        else:  # not durable: take it, and everything after it, out of memory
            log.error("commit of %d mutations failed: %s", len(flight.commits), error)
            self._fail_all(flight.commits, StorageError(WRITE_FAILED))
        self._after_batch()

    def _durable(self, flight: _InFlight, inside: int) -> None:
        """``flight`` is durable: its mutations resolve and listeners hear of them."""
        commits = flight.commits
        self.batches += 1
        self.committed += len(commits)
        self.write_ns += time.perf_counter_ns() - flight.started
        self.writer_ns += inside
        latest = commits[-1].ts
        self._durable_ts = latest
        if self.store.mark_durable(latest):
            self._collect_soon()
        self._since_prune += sum(
            len(c.documents) + (c.session_request is not None) for c in commits
        )
        if self._since_prune >= PRUNE_EVERY and self._pruning is None and not self._closed:
            self._since_prune = 0
            self._pruning = self._loop.create_task(self._prune())
        announced = flight.announced
        for c in commits:
            if c.future is not None and not c.future.done():
                c.future.set_result(c.ts)
        for listener in list(self.listeners):
            try:
                listener(latest, announced)
            except Exception:
                log.exception("commit listener failed")
        answers = self._answers
        while answers and answers[0][0] <= latest:
            answer = heapq.heappop(answers)[2]
            try:
                answer()
            except Exception:
                log.exception("answering a durable mutation failed")

    def _collect_soon(self) -> None:
        """Forget the versions left to forget in later loop turns, a budget at a time, so
        clients are served in between (after a burst there are 100k+)."""
        if not self._collecting and not self._closed:
            self._collecting = True
            self._loop.call_soon(self._collect_more)

    def _collect_more(self) -> None:
        self._collecting = False
        if self.store.collect_more():
            self._collect_soon()

    async def _prune(self) -> None:
        """Drop superseded versions and old re-send results from the log, so history does
        not grow without bound under updates of the same documents."""
        try:
            before = self.store.durable_ts - RESULTS_WINDOW_NS
            self.pruned += await self.persistence.prune(before)
        except Exception:  # the log keeps its versions until the next try; nothing is lost
            log.warning("pruning superseded versions from the log failed", exc_info=True)
        finally:
            self._pruning = None

    def _fail_all(self, commits: list[PendingCommit], error: StorageError) -> None:
        """``commits`` were not written: undo them, every batch behind them and the queue."""
        failed = list(commits)
        for later in self._in_flight:
            later.abandoned = True
            failed += later.commits
        failed += self._queue
        self._queue = []
        self._answers = []  # (every commit not durable has failed: its future answers)
        self._sent_ts = self._durable_ts  # the next batch follows the last durable one
        for c in reversed(failed):
            self.store.undo(c.undo)
        for c in failed:
            if c.future is not None and not c.future.done():
                c.future.set_exception(error)

    def _refuse(self) -> None:
        """Count a write refused for want of persistence; say so at most once a minute."""
        self._refused += 1
        now = time.monotonic()
        if now - self._refused_logged_at >= REFUSED_LOG_EVERY_S:
            self._refused_logged_at = now
            log.error("%d writes refused so far: the database takes no more writes", self._refused)

    def _after_batch(self) -> None:
        if self._may_start():
            self._start_write()
        elif not self._queue and not self._in_flight:
            self._idle.set()

    async def close(self) -> None:
        """Wait until everything queued is durable (persistence is closed by its owner)."""
        self._closed = True
        await self.wait_idle()
        if self._pruning is not None:
            with contextlib.suppress(Exception):
                await self._pruning
