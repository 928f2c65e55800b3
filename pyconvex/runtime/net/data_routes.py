"""Admin routes for ``pyconvex sql``, ``export`` and ``import`` (admin key only, like the rest
of ``/api/_pyconvex``). Long operations answer in newline-delimited JSON, so the CLI can show
progress while they run::

    POST /api/_pyconvex/sql {"query", "maxRows"?}
        -> 400 {"code", "message"} (refused, bad SQL), or lines:
           {"type": "columns", "columns", "types", "ts"}, {"type": "rows", "rows"}...,
           {"type": "end", "rows", "truncated"} | {"type": "error", "code", "message"}
    POST /api/_pyconvex/export {"format", "tables"?, "includeFileStorage"?}
        -> 400 {"code", "message"}, or lines: {"type": "progress", ...}...,
           {"type": "done", "download", "ts", "format", "documents", "files", "bytes"} | error
    GET  /api/_pyconvex/export/<download>  -> the ZIP (once; dropped after DOWNLOAD_TTL_S)
    POST /api/_pyconvex/import?name=&format=&table=&mode=   (the body is the file, any size)
        -> lines: {"type": "progress", ...}..., {"type": "done", "documents", "files", "ts"}
           | {"type": "error", "code", "message"}

The work itself is :class:`~pyconvex.runtime.data.service.DataService`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from pyconvex.errors import PyconvexError
from pyconvex.runtime.data.export import FORMATS, ExportError, choose_tables
from pyconvex.runtime.data.import_files import ImportRefused
from pyconvex.runtime.data.service import DataProgress, DataService
from pyconvex.runtime.data.sql import SqlError

PREFIX = "/api/_pyconvex"
#: Imports stream whole files: the request body limit does not apply here.
IMPORT_PATH = f"{PREFIX}/import"
#: The most rows one ``pyconvex sql`` answer may be asked to stop at.
MAX_SQL_ROWS = 10_000_000
#: An export not downloaded within this long is dropped.
DOWNLOAD_TTL_S = 600.0
#: At most this often a progress line.
PROGRESS_EVERY_S = 0.2

Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(PyconvexError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _line(content: Any) -> str:
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False, allow_nan=False) + "\n"


def _ndjson(lines: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(lines, media_type="application/x-ndjson")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as e:
        raise BadRequest(400, "BadJsonBody", f"The body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "BadJsonBody", "The body must be a JSON object.")
    return body


async def with_progress(
    work: Callable[[Callable[[DataProgress], None]], Awaitable[dict[str, Any]]],
) -> AsyncIterator[str]:
    """Run ``work(progress)``, yielding its progress (at most every PROGRESS_EVERY_S, the
    newest of each phase and table), then its result as a "done" line — or an "error" line
    for a refusal. If the client goes away, the work is cancelled."""
    latest: dict[tuple[str, str], DataProgress] = {}

    def progress(event: DataProgress) -> None:
        latest[(event.phase, event.table)] = event

    task = asyncio.ensure_future(work(progress))
    try:
        while not task.done():
            await asyncio.wait({task}, timeout=PROGRESS_EVERY_S)
            if latest:
                for event in latest.values():
                    yield _line(event.to_json())
                latest.clear()
        try:
            result = task.result()
        except (ImportRefused, ExportError, SqlError) as e:
            code = getattr(e, "code", "BadExport")
            yield _line({"type": "error", "code": code, "message": str(e)[:4000]})
            return
        yield _line({"type": "done", **result})
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


class DataRoutes:
    """The routes above, over one deployment's :class:`DataService`."""

    def __init__(self, data: DataService) -> None:
        self.data = data
        self._downloads: dict[str, tuple[Path, asyncio.TimerHandle]] = {}

    def routes(self, wrap: Callable[[Handler], Handler]) -> list[BaseRoute]:
        return [
            Route(f"{PREFIX}/sql", wrap(self.sql), methods=["POST"]),
            Route(f"{PREFIX}/export", wrap(self.export), methods=["POST"]),
            Route(f"{PREFIX}/export/{{download}}", wrap(self.download), methods=["GET"]),
            Route(IMPORT_PATH, wrap(self.import_), methods=["POST"]),
        ]

    # -- SQL --------------------------------------------------------------------------------
    async def sql(self, request: Request) -> Response:
        body = await _json_body(request)
        query, max_rows = body.get("query"), body.get("maxRows")
        if not isinstance(query, str) or not query.strip():
            raise BadRequest(400, "BadSqlRequest", 'The body must be {"query": "SELECT ..."}.')
        if max_rows is not None and (
            not isinstance(max_rows, int) or not 1 <= max_rows <= MAX_SQL_ROWS
        ):
            raise BadRequest(
                400, "BadSqlRequest", f"maxRows must be a whole number from 1 to {MAX_SQL_ROWS}."
            )
        stack = contextlib.AsyncExitStack()
        try:
            q = await stack.enter_async_context(self.data.sql(query))
        except SqlError as e:
            await stack.aclose()
            raise BadRequest(400, e.code, e.message[:4000]) from None

        async def lines() -> AsyncIterator[str]:
            sent = 0
            truncated = False
            try:
                yield _line({"type": "columns", "columns": q.columns, "types": q.types,
                             "ts": str(q.ts)})  # fmt: skip
                async for rows in q.batches():
                    if max_rows is not None and sent + len(rows) > max_rows:
                        rows = rows[: max_rows - sent]
                        truncated = True
                    sent += len(rows)
                    if rows:
                        yield _line({"type": "rows", "rows": rows})
                    if truncated:
                        break
                yield _line({"type": "end", "rows": sent, "truncated": truncated})
            except SqlError as e:
                yield _line({"type": "error", "code": e.code, "message": e.message[:4000]})
            finally:
                await stack.aclose()

        return _ndjson(lines())

    # -- export -----------------------------------------------------------------------------
    async def export(self, request: Request) -> Response:
        body = await _json_body(request)
        fmt = body.get("format", "zip")
        tables = body.get("tables") or None
        include = bool(body.get("includeFileStorage", False))
        if fmt not in FORMATS:
            raise BadRequest(
                400,
                "BadExport",
                f"pyconvex does not export {fmt!r}: use one of {', '.join(FORMATS)}.",
            )
        if tables is not None and not (
            isinstance(tables, list) and all(isinstance(t, str) for t in tables)
        ):
            raise BadRequest(400, "BadExport", "tables must be a list of table names.")
        if include and fmt != "zip":
            raise BadRequest(400, "BadExport", "Stored files are exported with --format zip only.")
        try:
            choose_tables(self.data.store, tables)
        except ExportError as e:
            raise BadRequest(400, "BadExport", str(e)) from None

        async def work(progress: Callable[[DataProgress], None]) -> dict[str, Any]:
            fd, name = tempfile.mkstemp(prefix="pyconvex-export-", suffix=".zip")
            spool = Path(name)
            try:
                with open(fd, "wb") as sink:
                    summary = await self.data.export(
                        sink, fmt, tables, include_files=include, progress=progress
                    )
            except BaseException:
                spool.unlink(missing_ok=True)
                raise
            token = self._keep(spool)
            return {"download": token, "ts": str(summary.ts), "format": summary.format,
                    "documents": summary.documents, "files": summary.files,
                    "bytes": spool.stat().st_size}  # fmt: skip

        return _ndjson(with_progress(work))

    def _keep(self, path: Path) -> str:
        token = secrets.token_hex(16)
        handle = asyncio.get_running_loop().call_later(DOWNLOAD_TTL_S, self._drop, token)
        self._downloads[token] = (path, handle)
        return token

    def _drop(self, token: str) -> None:
        kept = self._downloads.pop(token, None)
        if kept is not None:
            kept[1].cancel()
            kept[0].unlink(missing_ok=True)

    async def download(self, request: Request) -> Response:
        token = request.path_params["download"]
        kept = self._downloads.pop(token, None)
        if kept is None:
            raise BadRequest(
                404, "ExportNotFound", "No such export (each is downloaded once, within "
                f"{DOWNLOAD_TTL_S:g} s of being made): export again.",
            )  # fmt: skip
        path, handle = kept
        handle.cancel()
        loop = asyncio.get_running_loop()
        f = path.open("rb")
        size = path.stat().st_size

        async def body() -> AsyncIterator[bytes]:
            try:
                while chunk := await loop.run_in_executor(None, f.read, 1024 * 1024):
                    yield chunk
            finally:
                f.close()
                path.unlink(missing_ok=True)

        return StreamingResponse(
            body(), media_type="application/zip", headers={"Content-Length": str(size)}
        )

    # -- import -----------------------------------------------------------------------------
    async def import_(self, request: Request) -> Response:
        params = request.query_params
        name = params.get("name", "upload")
        loop = asyncio.get_running_loop()
        tmp = tempfile.TemporaryDirectory(prefix="pyconvex-import-")
        path = Path(tmp.name) / "import"
        try:
            with path.open("wb") as sink:
                async for chunk in request.stream():
                    await loop.run_in_executor(None, sink.write, chunk)
        except BaseException:
            tmp.cleanup()
            raise

        async def work(progress: Callable[[DataProgress], None]) -> dict[str, Any]:
            started = time.perf_counter()
            summary = await self.data.import_file(
                path, name, params.get("format"), params.get("table"), params.get("mode"),
                progress,
            )  # fmt: skip
            return {"documents": summary.documents, "files": summary.files,
                    "ts": str(summary.ts), "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip

        async def lines() -> AsyncIterator[str]:
            try:
                async for line in with_progress(work):
                    yield line
            finally:
                tmp.cleanup()

        return _ndjson(lines())

    async def close(self) -> None:
        for token in list(self._downloads):
            self._drop(token)
        await self.data.close()
