"""Persistence in a DuckDB file written by the writer process, which is replaced if it dies.

Start-up reads the file in this process (the documents go into this process's memory), then
hands it to a writer process (``writer_process.py``) started meanwhile: from then on each batch
goes over a pipe and is durable once the child has committed it.

If the writer dies (the OOM killer, a crash in DuckDB), a new one is started; it reads from the
file which of the batches in flight were committed (``committed_ts``): those are durable, the
others are written again, in order — no batch is lost or written twice, and the committer never
hears of it. A writer that dies ``MAX_RESPAWNS`` times within ``RESPAWN_WINDOW_S`` is not
restarted again: appends fail with :class:`~.persistence.PersistenceUnavailable` and the server
should be restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyconvex.errors import StorageError
from pyconvex.runtime.store.persistence import (
    Batch,
    LoadedState,
    PersistenceUnavailable,
    ViewColumns,
    ViewTable,
)
from pyconvex.runtime.store.thread_persistence import ThreadPersistence
from pyconvex.runtime.store.writer_process import WriterExited, WriterProcess

log = logging.getLogger("pyconvex.writer")

MAX_RESPAWNS = 3
RESPAWN_WINDOW_S = 60.0
WRITER_GONE = (
    "pyconvex cannot write to its database: its writer process stopped {n} times within "
    "{window:g} s, so it is not started again. This mutation was not committed. Restart the "
    "server (the server log says why the writer stopped)."
)


@dataclass(slots=True)
class _Append:
    """A batch handed to the writer, waiting for its answer."""

    batch: Batch
    future: asyncio.Future[int]


class ProcessPersistence:
    """:class:`~.persistence.Persistence` over a DuckDB file and its writer process."""

    def __init__(self, path: Path, *, nice: int = 0) -> None:
        """``nice``: the writer's scheduling niceness — behind a write-ahead log its work is
        background work, and it should not take the CPU from the server's event loop."""
        self.path = path
        self.nice = nice
        self._writer: WriterProcess | None = None
        self._view_columns: ViewColumns = {}
        #: Appends sent and not yet answered, oldest first.
        self._in_flight: deque[_Append] = deque()
        self._durable_ts = 0
        self._recovering: asyncio.Task[None] | None = None
        self._deaths: list[float] = []  # when writers died (monotonic)
        self._gone: PersistenceUnavailable | None = None
        #: Writer processes started after one died.
        self.respawns = 0

    @asynccontextmanager
    async def load(self, index_paths: dict[str, list[str]]) -> AsyncIterator[LoadedState]:
        # The writer process imports DuckDB while this process reads the file.
        spawning = asyncio.ensure_future(WriterProcess.spawn(self.path, nice=self.nice))
        try:
            local = ThreadPersistence(self.path)
            try:
                async with local.load(index_paths) as state:
                    yield state
                self._durable_ts = state.max_ts
            finally:
                await local.close()  # hand the file over
            writer = await spawning
            writer.on_exit = self._writer_died
            self._writer = writer
            await writer.open()
        except BaseException:
            with contextlib.suppress(BaseException):
                await (await spawning).close()
            raise

    # -- the commit path -----------------------------------------------------------------
    def append(self, batch: Batch) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        if self._gone is not None:
            future.set_exception(self._gone)
            return future
        entry = _Append(batch, future)
        self._in_flight.append(entry)
        if self._recovering is None:
            self._send(entry)
        return future

    def _send(self, entry: _Append) -> None:
        writer = self._current()
        sent = writer.write(entry.batch)
        sent.add_done_callback(lambda done: self._answered(writer, entry, done))

    def _answered(self, writer: WriterProcess, entry: _Append, done: asyncio.Future[Any]) -> None:
        if entry.future.done() or writer is not self._writer:
            return  # settled by a recovery, or sent to a writer since replaced
        error = done.exception()
        if isinstance(error, WriterExited):
            self._writer_died(writer)
            return
        assert self._in_flight[0] is entry, "the writer answers batches in order"
        self._in_flight.popleft()
        if error is not None:
            entry.future.set_exception(error)
        else:
            self._durable_ts = max(self._durable_ts, entry.batch.max_ts)
            entry.future.set_result(int(done.result()))

    @property
    def durable_ts(self) -> int:
        return self._durable_ts

    async def checkpoint(self) -> int:
        return int(await self._call("checkpoint"))

    async def prune(self, results_before_ts: int) -> int:
        return int(await self._call("prune", results_before_ts))

    # -- the SQL face --------------------------------------------------------------------
    def set_view_columns(self, columns: ViewColumns) -> None:
        self._view_columns = columns
        if self._writer is not None and self._recovering is None:
            self._writer.set_view_columns(columns)

    async def create_views(self, tables: list[ViewTable]) -> None:
        await self._call("create_views", tables)

    async def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = await self._call("sql", query, params)
        return rows

    async def stage_documents(
        self, key: str, table_number: int, docs: list[dict[str, Any]]
    ) -> list[int]:
        lengths: list[int] = await self._call("stage_documents", key, table_number, docs)
        return lengths

    async def stage_deletions(self, key: str, table_number: int, ids: list[str]) -> None:
        await self._call("stage_deletions", key, table_number, ids)

    async def drop_staged(self, key: str) -> None:
        await self._call("drop_staged", key)

    async def close(self) -> None:
        if self._recovering is not None:
            with contextlib.suppress(Exception):
                await self._recovering
        if self._writer is not None:
            await self._writer.close()

    # -- the writer process ----------------------------------------------------------------
    @property
    def pid(self) -> int:
        """The current writer process's id."""
        return self._current().pid

    @property
    def exited(self) -> bool:
        """Whether the current writer process has been found dead (not replaced yet)."""
        return self._current().exited

    def _current(self) -> WriterProcess:
        if self._writer is None:
            raise StorageError("The database is not loaded yet.")
        return self._writer

    async def _call(self, method: str, *args: Any) -> Any:
        if self._recovering is not None:
            await asyncio.shield(self._recovering)
        if self._gone is not None:
            raise self._gone
        return await self._current().call(method, *args)

    def _writer_died(self, writer: WriterProcess) -> None:
        if writer is self._writer and self._recovering is None and self._gone is None:
            self._recovering = asyncio.get_running_loop().create_task(
                self._recover(writer), name="pyconvex-writer-respawn"
            )

    async def _recover(self, old: WriterProcess) -> None:
        """Start another writer, keep what the file holds, write the rest again."""
        try:
            await self._take_over(old)
        finally:
            self._recovering = None

    async def _take_over(self, old: WriterProcess) -> None:
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < RESPAWN_WINDOW_S] + [now]
        log.error(
            "the DuckDB writer process for %s stopped (exit code %s) with %d batches in flight",
            self.path, old.exit_code, len(self._in_flight),
        )  # fmt: skip
        new: WriterProcess | None = None
        committed = 0
        if len(self._deaths) <= MAX_RESPAWNS:
            try:
                new = await WriterProcess.spawn(self.path, nice=self.nice)
                new.on_exit = self._writer_died
                await new.open()
                new.set_view_columns(self._view_columns)
                committed = int(await new.call("committed_ts"))
            except Exception as e:
                log.error("could not start a new DuckDB writer process: %s", e)
                if new is not None:
                    await new.close()
                new = None
        with contextlib.suppress(Exception):
            await old.close()
        pending = list(self._in_flight)
        self._in_flight.clear()
        if new is None:
            self._gone = PersistenceUnavailable(
                WRITER_GONE.format(n=len(self._deaths), window=RESPAWN_WINDOW_S)
            )
            log.error(
                "no DuckDB writer process any more (it stopped %d times within %g s): writes "
                "are refused until the server is restarted",
                len(self._deaths), RESPAWN_WINDOW_S,
            )  # fmt: skip
            for entry in pending:
                entry.future.set_exception(self._gone)
            return
        self._writer = new
        self.respawns += 1
        kept = 0
        for entry in pending:
            if not self._in_flight and entry.batch.max_ts <= committed:
                kept += 1
                self._durable_ts = max(self._durable_ts, entry.batch.max_ts)
                entry.future.set_result(0)
            else:
                self._in_flight.append(entry)
                self._send(entry)
        log.warning(
            "a new DuckDB writer process took over: %d batches were already durable, %d are "
            "written again",
            kept, len(self._in_flight),
        )  # fmt: skip
