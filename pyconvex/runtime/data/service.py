"""The data operations of one deployment: export, import and read-only SQL, with progress.

The admin routes (``runtime/net/admin_routes.py``) serve them to ``pyconvex export`` /
``import`` / ``sql`` over HTTP; with no server running, the CLI opens the project's store and
calls them in its own process (:mod:`.local`)::

    data = DataService(deployment)
    summary = await data.export(sink, "zip", None, include_files=True, progress=print)
    summary = await data.import_file(path, "people.jsonl", None, "people", None, print)
    async with data.sql("SELECT count(*) FROM people") as query:
        async for rows in query.batches(): ...
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from pyconvex.runtime.data.export import ExportSummary, export_snapshot
from pyconvex.runtime.data.import_commit import (
    ImportDeployment,
    ImportSummary,
    run_import,
)
from pyconvex.runtime.data.import_files import detect_format, read_plan
from pyconvex.runtime.data.mirror import MirrorDeployment, SqlMirror
from pyconvex.runtime.data.sql import SqlQuery, read_only_query
from pyconvex.runtime.store.memory import Store


@dataclass(frozen=True)
class DataProgress:
    """How far an export or import is: ``phase`` is "reading" (the file, ``unit`` bytes),
    "checking" (rows checked and written ahead), "committing", "exporting" or "copying"
    (a table copied into the columnar snapshot); ``total`` is -1 when unknown."""

    phase: str
    table: str
    done: int
    total: int
    unit: str = "rows"

    def to_json(self) -> dict[str, Any]:
        return {"type": "progress", "phase": self.phase, "table": self.table,
                "done": self.done, "total": self.total, "unit": self.unit}  # fmt: skip


OnProgress = Callable[[DataProgress], None]


class DataDeployment(MirrorDeployment, ImportDeployment, Protocol):
    """What the data operations need of the deployment."""


class DataService:
    """See the module docstring."""

    def __init__(self, deployment: DataDeployment) -> None:
        self._dep = deployment
        self._mirror: SqlMirror | None = None

    @property
    def store(self) -> Store:
        return self._dep.store

    @property
    def mirror(self) -> SqlMirror:
        if self._mirror is None:
            self._mirror = SqlMirror(self._dep)
        return self._mirror

    async def export(
        self,
        out: BinaryIO,
        fmt: str,
        tables: list[str] | None,
        *,
        include_files: bool = False,
        progress: OnProgress | None = None,
    ) -> ExportSummary:
        """One snapshot of ``tables`` (default: all) as one ZIP into ``out``."""

        def exported(table: str, done: int, total: int) -> None:
            if progress is not None:
                phase = "exporting" if fmt in ("zip", "jsonl") else "copying"
                progress(DataProgress(phase, table, done, total))

        return await export_snapshot(
            self._dep.store,
            self.mirror,
            out,
            fmt,
            tables,
            files=getattr(self._dep, "storage", None) if include_files else None,
            progress=exported,
        )

    async def import_file(
        self,
        path: Path,
        name: str,
        fmt: str | None,
        table: str | None,
        mode: str | None,
        progress: OnProgress | None = None,
    ) -> ImportSummary:
        """Import the file at ``path`` (called ``name``); raises ImportRefused."""
        fmt = detect_format(name, fmt)
        loop = asyncio.get_running_loop()
        size = path.stat().st_size

        def read(done: int) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(
                    progress, DataProgress("reading", table or "", done, size, "bytes")
                )

        plan = await loop.run_in_executor(None, read_plan, path, name, fmt, table, read)

        def imported(phase: str, table: str, done: int, total: int) -> None:
            if progress is not None:
                progress(DataProgress(phase, table, done, total))

        return await run_import(
            self._dep,
            plan,
            mode,
            path if fmt == "zip" else None,
            getattr(self._dep, "storage", None),
            imported,
        )

    @contextlib.asynccontextmanager
    async def sql(self, query: str) -> AsyncIterator[SqlQuery]:
        """One read-only query at one snapshot (raises SqlError)."""
        async with read_only_query(self.mirror, query) as q:
            yield q

    async def close(self) -> None:
        if self._mirror is not None:
            await self._mirror.close()
            self._mirror = None
