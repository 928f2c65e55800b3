"""The data commands' transport: ``pyconvex sql``, ``export`` and ``import`` against a running
deployment, with the admin key (the routes of ``runtime/net/data_routes.py``)::

    data = DataClient(AdminClient.locate())
    with data.sql("SELECT body FROM messages") as result:
        result.columns, result.types
        for rows in result.batches: ...          # as the server streams them
    described = data.export(sink, "zip", [], include_files=False, on_progress=print)
    done = data.import_file(Path("people.jsonl"), None, "people", None, on_progress=print)

Progress arrives as dicts ``{"phase", "table", "done", "total", "unit"}`` while the server
works; ``on_bytes`` counts what went over the wire. A refusal raises
:class:`~pyconvex.client.errors.RequestRefusedError` with the server's code and message.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pyconvex.client.admin import AdminClient
from pyconvex.client.errors import RequestRefusedError

if TYPE_CHECKING:
    import httpx

OnProgress = Callable[[dict[str, Any]], None]
OnBytes = Callable[[int], None]


@dataclass
class SqlStream:
    """A ``pyconvex sql`` answer as it streams: columns and DuckDB types first, then batches
    of rows (JSON values); ``rows`` and ``truncated`` are known once the batches are read."""

    columns: list[str]
    types: list[str]
    ts: int
    batches: Iterator[list[list[Any]]] = field(default_factory=lambda: iter(()))
    rows: int = 0
    truncated: bool = False


class DataClient:
    """See the module docstring."""

    def __init__(self, admin: AdminClient) -> None:
        self.admin = admin

    def _stream(self, method: str, path: str, doing: str, **kwargs: Any) -> Any:
        import httpx

        timeout = httpx.Timeout(self.admin.timeout, read=None, write=None)
        return httpx.stream(
            method, self.admin.url + path, headers=self.admin._headers(), timeout=timeout,
            **kwargs,
        )  # fmt: skip

    def _lines(self, response: httpx.Response, doing: str) -> Iterator[dict[str, Any]]:
        if response.status_code >= 400:
            response.read()
            self.admin._check(response, doing)
        for line in response.iter_lines():
            if line.strip():
                obj: dict[str, Any] = json.loads(line)
                if obj.get("type") == "error":
                    raise RequestRefusedError(
                        doing, self.admin.url, 400, str(obj.get("code")), str(obj.get("message"))
                    )
                yield obj

    @contextlib.contextmanager
    def sql(self, query: str, max_rows: int | None = None) -> Iterator[SqlStream]:
        """Run one read-only query; the rows stream while the block reads ``batches``."""
        import httpx

        doing = "run the SQL query"
        body: dict[str, Any] = {"query": query}
        if max_rows is not None:
            body["maxRows"] = max_rows
        try:
            with self._stream("POST", "/api/_pyconvex/sql", doing, json=body) as response:
                lines = self._lines(response, doing)
                head = next(lines)
                result = SqlStream(
                    [str(c) for c in head["columns"]], [str(t) for t in head["types"]],
                    int(head["ts"]),
                )  # fmt: skip

                def batches() -> Iterator[list[list[Any]]]:
                    for obj in lines:
                        if obj.get("type") == "rows":
                            yield obj["rows"]
                        elif obj.get("type") == "end":
                            result.rows = int(obj["rows"])
                            result.truncated = bool(obj["truncated"])

                result.batches = batches()
                yield result
        except httpx.TransportError as e:
            raise self.admin._unreachable(e) from None

    def export(
        self,
        dest: BinaryIO,
        fmt: str,
        tables: list[str],
        include_files: bool,
        on_progress: OnProgress | None = None,
        on_bytes: OnBytes | None = None,
    ) -> dict[str, Any]:
        """Export one snapshot (a ZIP, see ``pyconvex export``) into ``dest``; returns its
        description (``ts``, ``format``, ``documents`` per table, ``files``, ``bytes``)."""
        import httpx

        doing = "export the data"
        body = {"format": fmt, "tables": tables, "includeFileStorage": include_files}
        described: dict[str, Any] = {}
        try:
            with self._stream("POST", "/api/_pyconvex/export", doing, json=body) as response:
                for obj in self._lines(response, doing):
                    if obj.get("type") == "progress" and on_progress is not None:
                        on_progress(obj)
                    elif obj.get("type") == "done":
                        described = obj
            download = f"/api/_pyconvex/export/{described['download']}"
            with self._stream("GET", download, doing) as response:
                if response.status_code >= 400:
                    response.read()
                    self.admin._check(response, doing)
                for chunk in response.iter_bytes(1024 * 1024):
                    dest.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
        except httpx.TransportError as e:
            raise self.admin._unreachable(e) from None
        return described

    def import_file(
        self,
        path: Path,
        fmt: str | None,
        table: str | None,
        mode: str | None,
        on_progress: OnProgress | None = None,
        on_bytes: OnBytes | None = None,
    ) -> dict[str, Any]:
        """Send a file to import (streamed); returns ``documents`` per table, ``files``, ``ts``."""
        import httpx

        params = {"name": path.name}
        for key, value in (("format", fmt), ("table", table), ("mode", mode)):
            if value is not None:
                params[key] = value

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as f:
                while chunk := f.read(1024 * 1024):
                    if on_bytes is not None:
                        on_bytes(len(chunk))
                    yield chunk

        doing = f"import {path.name}"
        done: dict[str, Any] = {}
        try:
            with self._stream(
                "POST", "/api/_pyconvex/import", doing, params=params, content=chunks()
            ) as response:
                for obj in self._lines(response, doing):
                    if obj.get("type") == "progress" and on_progress is not None:
                        on_progress(obj)
                    elif obj.get("type") == "done":
                        done = obj
        except httpx.TransportError as e:
            raise self.admin._unreachable(e) from None
        return done
