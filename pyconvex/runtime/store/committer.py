"""Group commit: one writer — the DuckDB writer process for a file, a thread of this process
for an in-memory database — makes batches of mutations durable.

Mutations are applied to memory one at a time on the event loop and handed here with their
commit timestamp. While one DuckDB transaction is in flight, the next commits queue up and
go together in the following one — so the fixed ~1-2 ms DuckDB commit cost is paid once per
batch, not per mutation. When a batch is durable, the store's durable timestamp moves (queries
may now see it), listeners hear of the commits, and the waiting mutations resolve.

If the writer process dies (the OOM killer, a crash in DuckDB), a new one is started; it
reads from the file which of the batches in flight were committed (``committed_ts``): those
are durable, the others are written again, and no mutation is lost or reported twice. A writer
that dies ``MAX_RESPAWNS`` times within ``RESPAWN_WINDOW_S`` is not restarted again: writes are
refused (logged once, then counted), and the server should be restarted.

Failures reach clients without server paths or DuckDB's own words (the log has those).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyconvex.errors import StorageError
from pyconvex.runtime.store.duckdb_log import Batch, DocumentWrite, Persistence
from pyconvex.runtime.store.memory import Store, UndoRecord
from pyconvex.runtime.store.read_set import Commit, CommitListener, WriteSet
from pyconvex.runtime.store.writer_process import ProcessPersistence, WriterExited

#: Document versions written between two prunes of the log's superseded versions.
PRUNE_EVERY = 50_000
#: Mutation results are kept this long for re-sends (functions/session_results.py's window).
RESULTS_WINDOW_NS = 15 * 60 * 1_000_000_000

log = logging.getLogger("pyconvex.committer")
T = TypeVar("T")

MAX_RESPAWNS = 3
RESPAWN_WINDOW_S = 60.0
#: What a client is told when a batch it was in could not be written.
WRITE_FAILED = (
    "The database write failed, so this mutation was not committed (the server log says why)."
)
WRITER_GONE = (
    "pyconvex cannot write to its database: its writer process stopped {n} times within "
    "{window:g} s, so it is not started again. This mutation was not committed. Restart the "
    "server (the server log says why the writer stopped)."
)


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
    """A batch handed to the writer, waiting for its answer."""

    commits: list[PendingCommit]
    started: int
    abandoned: bool = False


class Committer:
    """Owns the DuckDB connection's thread and the queue of commits waiting for it."""

    def __init__(
        self, store: Store, persistence: Persistence | ProcessPersistence, max_batch: int = 4096
    ) -> None:
        self.store = store
        #: In-process DuckDB written by this object's thread, or the writer process.
        self.persistence: Persistence | ProcessPersistence = persistence
        self.max_batch = max_batch
        self.listeners: list[CommitListener] = []
        self._queue: list[PendingCommit] = []
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pyconvex-duckdb")
        self._loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()
        #: Batches sent and not yet answered, oldest first.
        self._in_flight: deque[_InFlight] = deque()
        self.max_in_flight = 2
        self.pipeline_min_batch = 64
        self._failed_epoch = False  # a batch failed; waiting for the writer to reset
        self._recovering = False  # the writer died: a new one is starting
        self._deaths: list[float] = []  # when writers died (monotonic)
        self._gone: StorageError | None = None  # no writer any more: writes refused
        self._refused = 0
        self._refused_logged_at = 0.0
        #: Writer processes started after one died.
        self.respawns = 0
        self._calls = 0  # call()s running on the DuckDB thread
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()
        #: Document versions written since the log was last pruned (see _maybe_prune).
        self._since_prune = 0
        self._pruning: asyncio.Task[None] | None = None
        self.pruned = 0
        # Counters for /api/_pyconvex/stats and the benchmarks.
        self.batches = 0
        self.committed = 0
        self.write_ns = 0
        self.writer_ns = 0  # of which inside the writer process (DuckDB itself)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the DuckDB thread (the only thread that may touch the connection).

        No batch is sent while it runs, so it sees the database between two batches.
        """
        self._calls += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._calls -= 1
            if self._may_start():
                self._start_write()

    def submit(self, pending: PendingCommit) -> asyncio.Future[int]:
        """Queue an applied commit; the future resolves with its ts once it is durable.

        If no batch is being written, this one starts at once: while DuckDB commits it, the
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

    def _may_start(self) -> bool:
        """Whether to send the queued commits now.

        One batch at a time through the thread. The writer process takes a second batch while
        it commits the first once enough has queued up: the reply to the first would otherwise
        wait for the event loop to finish its current turn (several ms under load) while the
        writer sits idle. Small second batches are not worth a DuckDB commit of their own.
        """
        if not self._queue or self._calls or self._failed_epoch or self._recovering:
            return False
        in_flight = len(self._in_flight)
        if in_flight == 0:
            return True
        return (
            in_flight < self.max_in_flight
            and len(self._queue) >= self.pipeline_min_batch
            and isinstance(self.persistence, ProcessPersistence)
        )

    def _start_write(self) -> None:
        commits = self._queue[: self.max_batch]
        del self._queue[: self.max_batch]
        batch = Batch(max_ts=commits[-1].ts)
        for c in commits:
            batch.documents.extend(c.documents)
            batch.new_tables.extend(c.new_tables)
            batch.staged.extend((key, c.ts) for key in c.staged)
            if c.session_request is not None:
                session, request, result = c.session_request
                batch.session_requests.append((session, request, c.ts, result))
        flight = _InFlight(commits, time.perf_counter_ns())
        self._in_flight.append(flight)
        persistence = self.persistence
        if isinstance(persistence, ProcessPersistence):
            written = persistence.write(batch)
            written.add_done_callback(lambda f: self._written(flight, f))
            return
        try:
            prepared = persistence.prepare(batch)
        except Exception as e:  # e.g. a value that does not serialize: fail the batch
            failed: asyncio.Future[None] = self._loop.create_future()
            failed.set_exception(e)
            self._written(flight, failed)
            return
        done = self._loop.run_in_executor(
            self._executor, persistence.write_prepared, prepared, batch.new_tables
        )
        done.add_done_callback(lambda f: self._written(flight, f))

    def _written(self, flight: _InFlight, done: asyncio.Future[Any]) -> None:
        if flight.abandoned:
            # A batch sent behind one that failed: already undone and reported.
            self._in_flight.remove(flight)
            self._after_batch()
            return
        error = done.exception()
        if isinstance(error, WriterExited):
            # Every batch in flight fails the same way: one recovery deals with all of them.
            if not self._recovering:
                self._recovering = True
                self._loop.create_task(self._recover(error), name="pyconvex-writer-respawn")
            return
        assert self._in_flight[0] is flight, "the writer answers batches in order"
        self._in_flight.popleft()
        commits = flight.commits
        if error is not None:  # not durable: take it, and everything after it, out of memory
            log.error("commit of %d mutations failed: %s", len(commits), error)
            self._fail_all(commits, StorageError(WRITE_FAILED))
            if isinstance(self.persistence, ProcessPersistence):
                # The writer refuses the batches behind the failed one until told to go on.
                self._failed_epoch = True
                reset = self.persistence.reset()
                reset.add_done_callback(self._reset_done)
            self._after_batch()
            return
        self._durable(flight, done.result())
        self._after_batch()

    def _durable(self, flight: _InFlight, inside: object) -> None:
        """``flight`` is committed: its mutations resolve and listeners hear of them."""
        commits = flight.commits
        self.batches += 1
        self.committed += len(commits)
        self.write_ns += time.perf_counter_ns() - flight.started
        if isinstance(inside, int):
            self.writer_ns += inside
        latest = commits[-1].ts
        self.store.mark_durable(latest)
        self._since_prune += sum(
            len(c.documents) + (c.session_request is not None) for c in commits
        )
        if self._since_prune >= PRUNE_EVERY and self._pruning is None and not self._closed:
            self._since_prune = 0
            self._pruning = asyncio.get_running_loop().create_task(self._prune())
        announced = [Commit(c.ts, c.writes) for c in commits]
        for c in commits:
            if c.future is not None and not c.future.done():
                c.future.set_result(c.ts)
        for listener in list(self.listeners):
            try:
                listener(latest, announced)
            except Exception:
                log.exception("commit listener failed")

    async def _prune(self) -> None:
        """Drop superseded versions from the DuckDB log (between two batches), so history
        does not grow without bound under updates of the same documents."""
        try:
            persistence = self.persistence
            before = self.store.durable_ts - RESULTS_WINDOW_NS
            if isinstance(persistence, ProcessPersistence):
                removed = await persistence.call("prune", before)
            else:
                removed = await self.call(persistence.prune, before)
            self.pruned += int(removed)
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
        for c in reversed(failed):
            self.store.undo(c.undo)
        for c in failed:
            if c.future is not None and not c.future.done():
                c.future.set_exception(error)

    async def _recover(self, error: WriterExited) -> None:
        """The writer died: start another, keep what the file holds, write the rest again."""
        old = self.persistence
        assert isinstance(old, ProcessPersistence)
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < RESPAWN_WINDOW_S] + [now]
        log.error(
            "the DuckDB writer process for %s stopped (exit code %s) with %d batches in flight",
            old.path, error.code, len(self._in_flight),
        )  # fmt: skip
        new: ProcessPersistence | None = None
        committed = 0
        if len(self._deaths) <= MAX_RESPAWNS:
            try:
                new = await ProcessPersistence.spawn(old.path)
                await new.open()
                new.view_columns = old.view_columns
                committed = int(await new.call("committed_ts"))
            except Exception as e:
                log.error("could not start a new DuckDB writer process: %s", e)
                if new is not None:
                    await new.close()
                new = None
        with contextlib.suppress(Exception):
            await old.close()
        flights = list(self._in_flight)
        self._in_flight.clear()
        if new is None:
            self._gone = StorageError(
                WRITER_GONE.format(n=len(self._deaths), window=RESPAWN_WINDOW_S)
            )
            log.error(
                "no DuckDB writer process any more (it stopped %d times within %g s): writes "
                "are refused until the server is restarted",
                len(self._deaths), RESPAWN_WINDOW_S,
            )  # fmt: skip
            lost = [c for f in flights for c in f.commits]
            self._fail_all(lost, self._gone)
            self._refused += len(lost)
        else:
            self.persistence = new
            self.respawns += 1
            again: list[PendingCommit] = []
            for flight in flights:
                if not again and flight.commits[-1].ts <= committed:
                    self._durable(flight, None)
                else:
                    again += flight.commits
            self._queue = again + self._queue
            log.warning(
                "a new DuckDB writer process took over: %d batches were already durable, %d "
                "mutations are written again",
                sum(1 for f in flights if f.commits[-1].ts <= committed), len(again),
            )  # fmt: skip
        self._recovering = False
        self._after_batch()

    def _refuse(self) -> None:
        """Count a write refused for want of a writer; say so at most once a minute."""
        self._refused += 1
        now = time.monotonic()
        if now - self._refused_logged_at >= RESPAWN_WINDOW_S:
            self._refused_logged_at = now
            log.error("%d writes refused so far: no DuckDB writer process", self._refused)

    def _reset_done(self, done: asyncio.Future[Any]) -> None:
        if done.exception() is not None:  # the writer is gone: later writes fail with that
            log.error("the writer did not reset after a failed batch: %s", done.exception())
        self._failed_epoch = False
        self._after_batch()

    def _after_batch(self) -> None:
        if self._may_start():
            self._start_write()
        elif not self._queue and not self._in_flight:
            self._idle.set()

    async def close(self) -> None:
        """Flush what is queued, then stop the writer thread."""
        self._closed = True
        await self._idle.wait()
        if self._pruning is not None:
            with contextlib.suppress(Exception):
                await self._pruning
        self._executor.shutdown(wait=True)
