"""Group commit: one writer thread makes batches of mutations durable in DuckDB.

Mutations are applied to memory one at a time on the event loop and handed here with their
commit timestamp. While one DuckDB transaction is in flight, the next commits queue up and
go together in the following one — so the fixed ~1–2 ms DuckDB commit cost is paid once per
batch, not per mutation. When a batch is durable, the store's durable timestamp moves (queries
may now see it), listeners hear of the commits, and the waiting mutations resolve.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyconvex.errors import StorageError
from pyconvex.runtime.persistence import Batch, DocumentWrite, Persistence
from pyconvex.runtime.read_set import WriteSet
from pyconvex.runtime.results import Commit
from pyconvex.runtime.store import Store, UndoRecord

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

    def __init__(self, store: Store, persistence: Persistence, max_batch: int = 4096) -> None:
        self.store = store
        self.persistence = persistence
        self.max_batch = max_batch
        self.listeners: list[CommitsListener] = []
        self._queue: list[PendingCommit] = []
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pyconvex-duckdb")
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._idle = asyncio.Event()
        self._idle.set()
        self.batches = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pyconvex-committer")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` on the DuckDB thread (the only thread that may touch the connection)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def submit(self, pending: PendingCommit) -> asyncio.Future[int]:
        """Queue an applied commit; the future resolves with its ts once it is durable."""
        if self._closed:
            raise StorageError("The deployment is shutting down; the mutation was not committed.")
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        pending.future = fut
        self._queue.append(pending)
        self._idle.clear()
        self._wakeup.set()
        return fut

    async def wait_durable(self, ts: int) -> None:
        """Wait until everything up to ``ts`` is durable (for read-only mutations)."""
        while self.store.durable_ts < ts and self._queue_or_inflight():
            await self._idle.wait()

    def _queue_or_inflight(self) -> bool:
        return not self._idle.is_set()

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                batch_commits = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
                await self._write(batch_commits)
            self._idle.set()
            if self._closed:
                return

    async def _write(self, commits: list[PendingCommit]) -> None:
        batch = Batch(max_ts=commits[-1].ts)
        for c in commits:
            batch.documents.extend(c.documents)
            batch.new_tables.extend(c.new_tables)
            if c.session_request is not None:
                session, request, result = c.session_request
                batch.session_requests.append((session, request, c.ts, result))
        try:
            await self.call(self.persistence.write_batch, batch)
        except Exception as e:  # not durable: take every queued commit back out of memory
            log.error("commit of %d mutations failed: %s", len(commits), e)
            failed = commits + self._queue
            self._queue = []
            for c in reversed(failed):
                self.store.undo(c.undo)
            err = e if isinstance(e, StorageError) else StorageError(str(e))
            for c in failed:
                if c.future is not None and not c.future.done():
                    c.future.set_exception(err)
            return
        self.batches += 1
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

    async def close(self) -> None:
        """Flush what is queued, then stop the writer thread."""
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)
