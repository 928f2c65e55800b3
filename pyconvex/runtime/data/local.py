"""The data commands with no server running: the project's store opened in this process.

:class:`LocalData` answers like :class:`pyconvex.client.data_transfer.DataClient` (the same
methods, progress dicts and results), so the CLI uses whichever it has::

    data = LocalData(Path("convex"), Path(".pyconvex"))
    described = data.export(sink, "zip", [], include_files=False)

Each call opens the deployment (the schema and the data; no function runs: scheduled jobs and
crons stay where they are), does its work and closes it, so the DuckDB file is free again when
it returns. A server that starts meanwhile waits for the file; one already running holds it,
and opening fails saying so. Refusals raise the data layer's own errors (``ImportRefused``,
``ExportError``, ``SqlError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from pyconvex.runtime.data.service import DataProgress, DataService
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.loader import LoadedFunctions, load_functions

T = TypeVar("T")
OnProgress = Callable[[dict[str, Any]], None]
OnBytes = Callable[[int], None]


class _Stream:
    """The streamed answer of :meth:`LocalData.sql` (the shape of ``SqlStream``)."""

    def __init__(self, columns: list[str], types: list[str], ts: int) -> None:
        self.columns, self.types, self.ts = columns, types, ts
        self.batches: Iterator[list[list[Any]]] = iter(())
        self.rows = 0
        self.truncated = False


class LocalData:
    """See the module docstring."""

    def __init__(self, functions_dir: Path, data_dir: Path) -> None:
        self.functions_dir = functions_dir
        self.data_dir = data_dir

    async def _open(self) -> Deployment:
        loaded = load_functions(self.functions_dir)
        # The schema, without functions: nothing scheduled or cron runs while the data is open.
        quiet = LoadedFunctions(schema=loaded.schema, functions_dir=loaded.functions_dir)
        return await Deployment.open(None, self.data_dir, loaded=quiet)

    def _run(self, work: Callable[[DataService], Awaitable[T]]) -> T:
        async def main() -> T:
            dep = await self._open()
            data = DataService(dep)
            try:
                return await work(data)
            finally:
                await data.close()
                await dep.close()

        return asyncio.run(main())

    def export(
        self,
        dest: BinaryIO,
        fmt: str,
        tables: list[str],
        include_files: bool,
        on_progress: OnProgress | None = None,
        on_bytes: OnBytes | None = None,
    ) -> dict[str, Any]:
        async def work(data: DataService) -> dict[str, Any]:
            summary = await data.export(
                dest, fmt, tables or None, include_files=include_files,
                progress=_relay(on_progress),
            )  # fmt: skip
            return {"ts": str(summary.ts), "format": summary.format,
                    "documents": summary.documents, "files": summary.files,
                    "bytes": dest.tell()}  # fmt: skip

        return self._run(work)

    def import_file(
        self,
        path: Path,
        fmt: str | None,
        table: str | None,
        mode: str | None,
        on_progress: OnProgress | None = None,
        on_bytes: OnBytes | None = None,
    ) -> dict[str, Any]:
        async def work(data: DataService) -> dict[str, Any]:
            summary = await data.import_file(path, path.name, fmt, table, mode, _relay(on_progress))
            return {"documents": summary.documents, "files": summary.files,
                    "ts": str(summary.ts)}  # fmt: skip

        if on_bytes is not None:
            on_bytes(path.stat().st_size)
        return self._run(work)

    @contextlib.contextmanager
    def sql(self, query: str, max_rows: int | None = None) -> Iterator[_Stream]:
        """The query runs on a thread of its own with the store open; batches come through
        a small queue (the query waits while the reader is behind)."""
        items: queue.Queue[Any] = queue.Queue(maxsize=4)
        stop = threading.Event()

        async def work(data: DataService) -> None:
            async with data.sql(query) as q:
                items.put(("head", q.columns, q.types, q.ts))
                sent = 0
                async for rows in q.batches():
                    if stop.is_set():
                        return
                    if max_rows is not None and sent + len(rows) > max_rows:
                        items.put(("rows", rows[: max_rows - sent]))
                        items.put(("end", max_rows, True))
                        return
                    sent += len(rows)
                    items.put(("rows", rows))
                items.put(("end", sent, False))

        def run() -> None:
            try:
                self._run(work)
            except BaseException as e:  # handed to the reader
                items.put(("error", e))

        thread = threading.Thread(target=run, name="pyconvex-local-sql", daemon=True)
        thread.start()
        try:
            first = items.get()
            if first[0] == "error":
                raise first[1]
            stream = _Stream(first[1], first[2], first[3])

            def batches() -> Iterator[list[list[Any]]]:
                while True:
                    item = items.get()
                    if item[0] == "rows":
                        yield item[1]
                    elif item[0] == "end":
                        stream.rows, stream.truncated = item[1], item[2]
                        return
                    else:
                        raise item[1]

            stream.batches = batches()
            yield stream
        finally:
            stop.set()
            while thread.is_alive():  # let the worker finish (and close the store)
                with contextlib.suppress(queue.Empty):
                    items.get(timeout=0.05)
            thread.join()


def _relay(on_progress: OnProgress | None) -> Callable[[DataProgress], None] | None:
    if on_progress is None:
        return None
    callback = on_progress
    return lambda event: callback(event.to_json())
