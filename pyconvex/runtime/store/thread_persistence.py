"""Persistence on a thread of this process: DuckDB in memory (a deployment without a data
directory), or a file with ``PYCONVEX_WRITER=thread``.

One thread owns the connection, so everything runs in the order it was asked for. A batch's
SQL is rendered on the event loop (``DuckDBLog.prepare``) and run on the thread, which then
needs the GIL as rarely as DuckDB allows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from pyconvex.runtime.store.duckdb_log import DuckDBLog, PreparedBatch
from pyconvex.runtime.store.persistence import Batch, LoadedState, ViewColumns, ViewTable

T = TypeVar("T")


class ThreadPersistence:
    """:class:`~.persistence.Persistence` over a :class:`DuckDBLog` on one thread."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        #: The database (tests reach it to make writes fail).
        self.log = DuckDBLog(path)
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="pyconvex-duckdb")

    def run(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Run ``fn(*args)`` on the database's thread, after everything asked before it."""
        return asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @asynccontextmanager
    async def load(self, index_paths: dict[str, list[str]]) -> AsyncIterator[LoadedState]:
        yield await self.run(self.log.load, index_paths)

    def append(self, batch: Batch) -> asyncio.Future[int]:
        try:
            prepared = self.log.prepare(batch)
        except Exception as e:  # e.g. a value that does not serialize: the batch fails
            failed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            failed.set_exception(e)
            return failed
        return self.run(self._write, prepared, batch)

    def _write(self, prepared: PreparedBatch, batch: Batch) -> int:
        started = time.perf_counter_ns()
        self.log.write_prepared(prepared, batch)
        return time.perf_counter_ns() - started

    @property
    def durable_ts(self) -> int:
        return self.log.last_ts

    async def checkpoint(self) -> int:
        return await self.run(self.log.checkpoint)

    async def prune(self, results_before_ts: int) -> int:
        return await self.run(self.log.prune, results_before_ts)

    def set_view_columns(self, columns: ViewColumns) -> None:
        self.log.view_columns = columns

    async def create_views(self, tables: list[ViewTable]) -> None:
        await self.run(self.log.create_views, tables)

    async def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return await self.run(self.log.sql, query, params)

    async def stage_documents(
        self, key: str, table_number: int, docs: list[dict[str, Any]]
    ) -> list[int]:
        return await self.run(self.log.stage_documents, key, table_number, docs)

    async def stage_deletions(self, key: str, table_number: int, ids: list[str]) -> None:
        await self.run(self.log.stage_deletions, key, table_number, ids)

    async def drop_staged(self, key: str) -> None:
        await self.run(self.log.drop_staged, key)

    async def close(self) -> None:
        await self.run(self.log.close)
        self._executor.shutdown(wait=True)
