"""Group commit: one writer thread makes batches of mutations durable in DuckDB.

Mutations are applied to memory one at a time on the event loop and handed here with their
commit timestamp. While one DuckDB transaction is in flight, the next commits queue up and
go together in the following one — so the fixed ~1-2 ms DuckDB commit cost is paid once per
batch, not per mutation. When a batch is durable, the store's durable timestamp moves (queries
may now see it), listeners hear of the commits, and the waiting mutations resolve.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyconvex.errors import StorageError
from pyconvex.runtime.persistence import Batch, DocumentWrite, Persistence
from pyconvex.runtime.read_set import WriteSet
from pyconvex.runtime.results import Commit
from pyconvex.runtime.store import Store, UndoRecord
from pyconvex.runtime.writer_process import ProcessPersistence

log = logging.getLogger("pyconvex.committer")
T = TypeVar("T")


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


CommitsListener = Callable[[int, list[Commit]], None]


class Committer:
    """Owns the DuckDB connection's thread and the queue of commits waiting for it."""

    def __init__(
        self, store: Store, persistence: Persistence | ProcessPersistence, max_batch: int = 4096
    ) -> None:
        self.store = store
        #: In-process DuckDB written by this object's thread, or the writer process.
        self.persistence: Persistence | ProcessPersistence = persistence
        self.max_batch = max_batch
        self.listeners: list[CommitsListener] = []
        self._queue: list[PendingCommit] = []
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pyconvex-duckdb")
        self._loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()
        self._writing = False
        self._calls = 0  # call()s running on the DuckDB thread
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()
        # Counters for /api/_pyconvex/stats and the benchmarks.
        self.batches = 0
        self.committed = 0
        self.write_ns = 0
        self.writer_ns = 0  # of which inside the writer process (DuckDB itself)
        self._write_started = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the DuckDB thread (the only thread that may touch the connection).

        No batch is prepared while it runs (preparing registers tables on the connection).
        """
        self._calls += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        finally:
            self._calls -= 1
            if self._calls == 0 and self._queue and not self._writing:
                self._start_write()

    def submit(self, pending: PendingCommit) -> asyncio.Future[int]:
        """Queue an applied commit; the future resolves with its ts once it is durable.

        If no batch is being written, this one starts at once: while DuckDB commits it, the
        event loop goes on running the next mutations, which then form the following batch.
        """
        if self._closed:
            raise StorageError("The deployment is shutting down; the mutation was not committed.")
        fut: asyncio.Future[int] = self._loop.create_future()
        pending.future = fut
        self._queue.append(pending)
        self._idle.clear()
        if not self._writing and not self._calls:
            self._start_write()
        return fut

    async def wait_durable(self, ts: int) -> None:
        """Wait until everything up to ``ts`` is durable (for read-only mutations)."""
        while self.store.durable_ts < ts and not self._idle.is_set():
            await self._idle.wait()

    def _start_write(self) -> None:
        commits = self._queue[: self.max_batch]
        del self._queue[: self.max_batch]
        batch = Batch(max_ts=commits[-1].ts)
        for c in commits:
            batch.documents.extend(c.documents)
            batch.new_tables.extend(c.new_tables)
            if c.session_request is not None:
                session, request, result = c.session_request
                batch.session_requests.append((session, request, c.ts, result))
        self._writing = True
        self._write_started = time.perf_counter_ns()
        persistence = self.persistence
        if isinstance(persistence, ProcessPersistence):
            written = persistence.write(batch)
            written.add_done_callback(lambda f: self._written(commits, f))
            return
        try:
            prepared = persistence.prepare(batch)
        except Exception as e:  # e.g. a value that does not serialize: fail the batch
            failed: asyncio.Future[None] = self._loop.create_future()
            failed.set_exception(e)
            self._written(commits, failed)
            return
        done = self._loop.run_in_executor(
            self._executor, persistence.write_prepared, prepared, batch.new_tables
        )
        done.add_done_callback(lambda f: self._written(commits, f))

    def _written(self, commits: list[PendingCommit], done: asyncio.Future[Any]) -> None:
        self._writing = False
        error = done.exception()
        if error is not None:  # not durable: take every queued commit back out of memory
            log.error("commit of %d mutations failed: %s", len(commits), error)
            failed = commits + self._queue
            self._queue = []
            for c in reversed(failed):
                self.store.undo(c.undo)
            err = error if isinstance(error, StorageError) else StorageError(str(error))
            for c in failed:
                if c.future is not None and not c.future.done():
                    c.future.set_exception(err)
            self._idle.set()
            return
        self.batches += 1
        self.committed += len(commits)
        self.write_ns += time.perf_counter_ns() - self._write_started
        inside = done.result()
        if isinstance(inside, int):
            self.writer_ns += inside
        latest = commits[-1].ts
        self.store.mark_durable(latest)
        announced = [Commit(c.ts, c.writes) for c in commits]
        for c in commits:
            if c.future is not None and not c.future.done():
                c.future.set_result(c.ts)
        for listener in list(self.listeners):
            try:
                listener(latest, announced)
            except Exception:
                log.exception("commit listener failed")
        if self._queue and not self._calls:
            self._start_write()
        elif not self._queue:
            self._idle.set()

    async def close(self) -> None:
        """Flush what is queued, then stop the writer thread."""
        self._closed = True
        await self._idle.wait()
        self._executor.shutdown(wait=True)
