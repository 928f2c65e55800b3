"""Persistence with a write-ahead log in front: durable at the log's ``fdatasync``, DuckDB behind.

A batch is acknowledged once its record is in the log (``wal.py``) — one append and one
``fdatasync`` on the log's own thread, a fraction of a DuckDB commit. The batches then go on
to the DuckDB file (the ``inner`` persistence: the writer process) merged, as many as have
piled up in one transaction, while the next ones are logged. Segments DuckDB holds are deleted.

Start-up reads the log first: the records after the newest batch the DuckDB file holds are
written into it (one transaction), then the file is loaded as before. A crash therefore loses
nothing acknowledged, and replays each record once.

**What lags.** DuckDB is behind the log by the batches not yet applied: under steady load a
few milliseconds, more while a big import is applied. Queries never see it (they read the
in-memory store). The SQL face (``sql``, schema pushes) first waits until DuckDB holds every
batch logged so far, and :meth:`checkpoint` brings the file up to date on demand
(``Deployment.checkpoint()``), so a reader of the file gets one consistent snapshot.

If DuckDB refuses a batch the log holds (a full disk, say), nothing is lost: the error is
logged, the batches stay in the log and in memory, and applying is retried every
``RETRY_S``; a restart replays them as well.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from pyconvex.errors import StorageError
from pyconvex.project import ensure_private_dir
from pyconvex.runtime.store.duckdb_log import DuckDBLog
from pyconvex.runtime.store.persistence import (
    Batch,
    LoadedState,
    Persistence,
    PersistenceUnavailable,
    ViewColumns,
    ViewTable,
)
from pyconvex.runtime.store.wal import WalDamaged, WalWriter, encode_batch, read_segment
from pyconvex.runtime.store.wal import segment_paths as wal_segments

log = logging.getLogger("pyconvex.wal")

#: Document versions applied to DuckDB in one transaction at most.
MAX_APPLY_DOCS = 100_000
#: After DuckDB refused a batch: wait this long before trying again.
RETRY_S = 1.0
#: How long after a batch is logged, when DuckDB is idle, it is sent what is new: the write's
#: responses and subscription updates go out first, and the batches of a few hundred ms merge
#: into one DuckDB transaction (one commit's CPU per write cost ~1.5 ms at a write every 50
#: ms). While DuckDB is busy, the next catch-up starts as soon as the last one ends.
APPLY_DELAY_S = 0.2
#: A record of at most this many bytes, when the log has synced nothing for
#: ``INLINE_AFTER_IDLE_S``, is written and synced on the event loop rather than on the log's
#: thread. After a quiet spell the loop has nothing else to do, and handing the sync to the
#: thread and back costs ~0.2 ms of GIL hand-offs (the thread waits for the loop to finish its
#: turn before it can start, the loop for the thread before it can answer) on a path of ~1 ms:
#: a user's first write after a pause. Under load syncs follow each other, and go to the thread
#: so the loop runs the next mutations meanwhile.
INLINE_MAX_BYTES = 16 * 1024
INLINE_AFTER_IDLE_S = 0.005
#: ``INLINE_SLOW_RUN`` syncs in a row on the loop that took longer than this (a slow disk, not
#: one hiccup) send every sync to the log's thread for ``INLINE_PAUSE_S``: the loop must not
#: wait for such a disk.
INLINE_MAX_S = 0.002
INLINE_SLOW_RUN = 3
INLINE_PAUSE_S = 60.0
#: How long the SQL face and checkpoints wait for a DuckDB that refuses batches.
CATCH_UP_S = 30.0


def wal_dir(db_path: Path) -> Path:
    """The log of the DuckDB file at ``db_path``: ``commit_log/`` beside it (DuckDB's own
    journal is ``<db_path>.wal``)."""
    return db_path.with_name("commit_log")


def merge(batches: list[Batch], after_ts: int) -> Batch:
    """Consecutive batches as one (applied to DuckDB in one transaction)."""
    if len(batches) == 1:
        only = batches[0]
        only.after_ts = after_ts
        return only
    merged = Batch(max_ts=batches[-1].max_ts, after_ts=after_ts)
    for b in batches:
        merged.documents.extend(b.documents)
        merged.new_tables.extend(b.new_tables)
        merged.session_requests.extend(b.session_requests)
        merged.staged.extend(b.staged)
    return merged


class LoggedPersistence:
    """:class:`~.persistence.Persistence`: a write-ahead log, then ``inner`` (DuckDB)."""

    def __init__(self, inner: Persistence, db_path: Path) -> None:
        self.inner = inner
        self.db_path = db_path
        self.directory = wal_dir(db_path)
        self._log = WalWriter(self.directory)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="pyconvex-wal")
        #: The last piece of work handed to the log's thread (its queue is done when it is).
        self._thread_last: Future[Any] | None = None
        #: When the last sync finished (``time.perf_counter()``): see ``INLINE_AFTER_IDLE_S``.
        self._synced_at = 0.0
        #: Until when syncs stay off the loop, and the slow ones in a row (``INLINE_MAX_S``).
        self._inline_paused_until = 0.0
        self._inline_slow = 0
        #: Records waiting for the log's thread: (record, batch, future).
        self._queue: list[tuple[bytes, Batch, asyncio.Future[int]]] = []
        self._syncing = False
        #: ``max_ts`` of the last batch taken (the next must follow it) and the last durable.
        self._accepted_ts = self._durable_ts = 0
        #: Durable batches DuckDB does not hold yet, oldest first.
        self._unapplied: list[Batch] = []
        self._applying = False
        self._apply_soon = False
        self.applied_ts = 0
        self._applied = asyncio.Event()
        self._apply_error: BaseException | None = None
        self._error_logged_at = 0.0
        self._closed = False
        #: DuckDB takes no more writes (its writer keeps dying): new appends are refused
        #: (what the log holds is replayed at the next start).
        self._gone: PersistenceUnavailable | None = None
        self._loaded = False  # until then, close() leaves the log's files alone
        #: Records replayed into DuckDB at start-up (tests and the log).
        self.replayed = 0

    # -- start-up ------------------------------------------------------------------------
    @asynccontextmanager
    async def load(self, index_paths: dict[str, list[str]]) -> AsyncIterator[LoadedState]:
        loop = asyncio.get_running_loop()
        self.replayed = await loop.run_in_executor(self._thread, self._replay)
        async with self.inner.load(index_paths) as state:
            yield state
        self._accepted_ts = self._durable_ts = self.applied_ts = state.max_ts
        self._loaded = True

    def _replay(self) -> int:
        """Write the log's records that the DuckDB file lacks into it, then start a fresh
        log. Raises :class:`WalDamaged` (changing nothing) if the log cannot be trusted."""
        ensure_private_dir(self.directory)
        paths = wal_segments(self.directory)
        batches: list[Batch] = []
        torn: tuple[Path, int] | None = None
        for i, path in enumerate(paths):
            newest = i == len(paths) - 1
            end = 0
            for end, batch in read_segment(path, newest):  # noqa: B007 (the last end is kept)
                batches.append(batch)
            if newest and end and end < path.stat().st_size:
                torn = (path, end)
        if not batches:
            self._remove(paths)
            return 0
        db = DuckDBLog(self.db_path)
        try:
            committed = db.committed_ts()
            tail = [b for b in batches if b.max_ts > committed]
            if tail and tail[0].after_ts != committed:
                raise WalDamaged(
                    f"The write-ahead log in {self.directory} does not continue the database "
                    f"{self.db_path}: the database holds commits up to {committed}, the log's "
                    f"next record follows {tail[0].after_ts}. A log segment is missing or the "
                    "database was replaced. Nothing was changed; restore the data directory "
                    "from a backup, or move the log directory aside to start from the database "
                    "alone."
                )
            for before, after in itertools.pairwise(tail):
                if after.after_ts != before.max_ts:
                    raise WalDamaged(
                        f"The write-ahead log in {self.directory} has a gap after commit "
                        f"{before.max_ts}. Nothing was changed; restore the data directory from "
                        "a backup."
                    )
            if tail:
                db.write_batch(merge(tail, committed))
                db.checkpoint()
                log.info("replayed %d log records into %s", len(tail), self.db_path)
        finally:
            db.close()
        if torn is not None:
            log.warning("dropped a torn record at the end of %s (byte %d)", *torn)
        self._remove(paths)  # DuckDB holds all of it now
        return len(tail)

    @staticmethod
    def _remove(paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)

    # -- the commit path -----------------------------------------------------------------
    def append(self, batch: Batch) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._gone is not None:
            future.set_exception(self._gone)
            return future
        if batch.after_ts != self._accepted_ts:
            future.set_exception(
                StorageError(
                    "Not written: the batch before it was not written (it failed, and this "
                    "one may depend on it)."
                )
            )
            return future
        try:
            record = encode_batch(batch)
        except Exception as e:  # a value that does not pickle: this batch fails alone
            future.set_exception(StorageError(f"Could not encode the commit for the log: {e}"))
            return future
        self._accepted_ts = batch.max_ts
        self._queue.append((record, batch, future))
        if not self._syncing:
            self._sync()
        return future

    def _sync(self) -> None:
        """Hand every queued record to the log's thread (or, after a quiet spell, write it here:
        see ``INLINE_AFTER_IDLE_S``): one write, one ``fdatasync``."""
        entries, self._queue = self._queue, []
        self._syncing = True
        first, last = entries[0][1].max_ts, entries[-1][1].max_ts
        records = [e[0] for e in entries]
        loop = asyncio.get_running_loop()
        append = self._log.append

        def sync() -> None:  # on the log's thread; the answer goes straight to the loop
            error: BaseException | None = None
            try:
                append(records, first, last)
            except BaseException as e:
                error = e
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(self._synced, entries, error)

        now = time.perf_counter()
        if (
            len(records) == 1
            and len(records[0]) <= INLINE_MAX_BYTES
            and now - self._synced_at >= INLINE_AFTER_IDLE_S
            and now >= self._inline_paused_until
            and (self._thread_last is None or self._thread_last.done())
        ):
            # After a quiet spell, one small record: written and synced here, on the loop,
            # which has nothing else to do (see INLINE_AFTER_IDLE_S). The sync waits for the
            # loop's next turn: the disk writes the record meanwhile, while the mutation ends
            # and the subscriptions it changes re-run (Committer._prepare, queued before it).
            try:
                written = self._log.write(records, first, start_writeback=True)
            except Exception as e:
                self._synced(entries, e)
                return
            spent = time.perf_counter() - now
            loop.call_soon(self._sync_inline, entries, written, last, spent)
            return
        self._thread_last = self._thread.submit(sync)

    def _sync_inline(
        self,
        entries: list[tuple[bytes, Batch, asyncio.Future[int]]],
        written: int,
        last: int,
        spent: float,
    ) -> None:
        """Make the record written on the loop durable (see ``_sync``); a run of slow syncs
        sends the next ones to the log's thread (see ``INLINE_MAX_S``)."""
        started = time.perf_counter()
        error: BaseException | None = None
        try:
            self._log.sync(written, last)
        except Exception as e:
            error = e
        slow = spent + time.perf_counter() - started > INLINE_MAX_S
        self._inline_slow = self._inline_slow + 1 if slow else 0
        if self._inline_slow >= INLINE_SLOW_RUN:
            self._inline_slow = 0
            self._inline_paused_until = time.perf_counter() + INLINE_PAUSE_S
        self._synced(entries, error)

    def _on_thread(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn`` on the log's thread (all that touches the log file goes there)."""
        self._thread_last = self._thread.submit(fn, *args)
        return self._thread_last

    def _synced(
        self, entries: list[tuple[bytes, Batch, asyncio.Future[int]]], error: BaseException | None
    ) -> None:
        self._syncing = False
        self._synced_at = time.perf_counter()
        if error is None:
            self._durable_ts = entries[-1][1].max_ts
            for _, batch, future in entries:
                self._unapplied.append(batch)
                if not future.done():
                    future.set_result(0)
            if not self._apply_soon:
                # After the responses and the subscribers' updates have gone out.
                self._apply_soon = True
                asyncio.get_running_loop().call_later(APPLY_DELAY_S, self._apply)
        else:  # none of them is durable, nor anything queued behind them
            failed = entries + self._queue
            self._queue = []
            self._accepted_ts = self._durable_ts
            for _, _, future in failed:
                if not future.done():
                    future.set_exception(error)
        if self._queue:
            self._sync()

    @property
    def durable_ts(self) -> int:
        return self._durable_ts

    # -- applying to DuckDB behind the log ----------------------------------------------
    def _apply(self) -> None:
        self._apply_soon = False
        if self._applying or not self._unapplied or self._closed:
            return
        take, docs = 0, 0
        for batch in self._unapplied:
            if take and docs + len(batch.documents) > MAX_APPLY_DOCS:
                break
            take += 1
            docs += len(batch.documents)
        batches = self._unapplied[:take]
        merged = merge(batches, self.applied_ts)
        self._applying = True
        self.inner.append(merged).add_done_callback(lambda d: self._applied_one(batches, merged, d))

    def _applied_one(self, batches: list[Batch], merged: Batch, done: asyncio.Future[int]) -> None:
        self._applying = False
        error = done.exception()
        if isinstance(error, PersistenceUnavailable):
            self._gone = error
        if error is not None:
            self._apply_error = error
            now = time.monotonic()
            if now - self._error_logged_at >= 60:
                self._error_logged_at = now
                log.error(
                    "writing logged commits into %s failed (they are safe in the write-ahead "
                    "log; retrying every %g s): %s",
                    self.db_path,
                    RETRY_S,
                    error,
                )
            if not self._closed and self._gone is None:
                asyncio.get_running_loop().call_later(RETRY_S, self._apply)
            self._applied.set()  # waiters see the error
            self._applied = asyncio.Event()
            return
        self._apply_error = None
        del self._unapplied[: len(batches)]
        self.applied_ts = merged.max_ts
        if not self._closed:
            self._on_thread(self._log.remove_applied, merged.max_ts)
        self._applied.set()
        self._applied = asyncio.Event()
        self._apply()

    async def _caught_up(self) -> None:
        """Wait until DuckDB holds every batch logged so far (while it refuses them, for
        ``CATCH_UP_S`` at most)."""
        target = self._accepted_ts
        deadline = time.monotonic() + CATCH_UP_S
        # (A batch that fails to be logged lowers what there is to wait for.)
        while self.applied_ts < min(target, self._accepted_ts):
            if self._closed:
                raise StorageError("The deployment is shutting down.")
            error = self._gone or (self._apply_error if time.monotonic() > deadline else None)
            if error is not None:
                raise StorageError(
                    "The database file is behind the write-ahead log (no write is lost: they "
                    f"are in the log, and a restart applies them): {error}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._applied.wait(), RETRY_S)

    async def checkpoint(self) -> int:
        await self._caught_up()
        ts = await self.inner.checkpoint()
        if self._durable_ts <= ts:  # start a new segment, so the applied ones can go
            await asyncio.wrap_future(self._on_thread(self._rotate, ts))
        return ts

    def _rotate(self, applied_ts: int) -> None:
        if self._log.last_ts <= applied_ts and self._log.path is not None:
            self._log.open_new(self._log.last_ts + 1)
            self._log.remove_applied(applied_ts)

    async def prune(self, results_before_ts: int) -> int:
        await self._caught_up()  # prune what is durable now, not what DuckDB has so far
        return await self.inner.prune(results_before_ts)

    # -- the SQL face and staged rows: DuckDB's, after what was logged -------------------
    def set_view_columns(self, columns: ViewColumns) -> None:
        self.inner.set_view_columns(columns)

    async def create_views(self, tables: list[ViewTable]) -> None:
        await self._caught_up()
        await self.inner.create_views(tables)

    async def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        await self._caught_up()
        return await self.inner.sql(query, params)

    async def stage_documents(
        self, key: str, table_number: int, docs: list[dict[str, Any]]
    ) -> list[int]:
        return await self.inner.stage_documents(key, table_number, docs)

    async def stage_deletions(self, key: str, table_number: int, ids: list[str]) -> None:
        await self.inner.stage_deletions(key, table_number, ids)

    async def drop_staged(self, key: str) -> None:
        await self.inner.drop_staged(key)

    async def close(self) -> None:
        if self._closed:
            return
        try:
            if self._loaded and self._apply_error is None:
                await self.checkpoint()  # DuckDB holds everything: the log can go
        finally:
            self._closed = True
            self._applied.set()
            await self.inner.close()
            await asyncio.wrap_future(self._on_thread(self._close_log))
            self._thread.shutdown(wait=True)

    def _close_log(self) -> None:
        self._log.close()
        if self._loaded and self._apply_error is None and self._log.last_ts <= self.applied_ts:
            self._remove(wal_segments(self.directory))
