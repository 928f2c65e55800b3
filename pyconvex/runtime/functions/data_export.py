"""``pyconvex export``: every document of the chosen tables at ONE timestamp, into one ZIP.

The snapshot is the durable timestamp when the export starts; the store keeps the versions it
sees (:meth:`Store.pin`) while the documents are read in chunks, each chunk one step of the
event loop, so the server goes on serving and committing meanwhile. The ZIP is written on a
worker thread.

``format="zip"`` is Convex's snapshot layout (``README.md``, ``_tables/documents.jsonl``,
``<table>/documents.jsonl`` in Convex's export JSON, ``<table>/generated_schema.jsonl``, and with
``include_files`` ``_storage/documents.jsonl`` plus each blob as ``_storage/<id>``), which
``npx convex import`` and ``pyconvex import`` read. ``jsonl``, ``csv`` and ``parquet`` hold one
``<table>.<format>`` per table instead; CSV and Parquet get a typed column per top-level field
of the schema (a union, object, array or ``any`` field is JSON text), plus ``_id`` and
``_creationTime``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from pyconvex.errors import PyconvexError
from pyconvex.runtime.store.memory import Store, TableState
from pyconvex.values import Int64
from pyconvex.values.encoding import encode_export
from pyconvex.values.validators import ObjectValidator, Validator

FORMATS = ("zip", "jsonl", "csv", "parquet")
CHUNK = 2000
README = """# Convex snapshot export (written by pyconvex)

One consistent snapshot of a deployment at timestamp {ts}. `_tables/documents.jsonl` names the
tables; `<table>/documents.jsonl` holds one document per line in Convex's export JSON (an int64
is a bare integer, a float64 has a decimal point, bytes are {{"$bytes": base64}}).
Import it with `pyconvex import <this file>` or `npx convex import <this file>`.
"""


class ExportError(PyconvexError, ValueError):
    """What was asked cannot be exported (an unknown table, an unknown format)."""


@dataclass
class ExportSummary:
    ts: int
    format: str
    documents: dict[str, int] = field(default_factory=dict)
    files: int = 0


Progress = Callable[[str, int], None]


class _Columns:
    """Typed columns of one table for CSV / Parquet, from its schema (if any)."""

    def __init__(self, validator: Validator | None, docs_fields: list[str]) -> None:
        self.kinds: dict[str, str] = {"_id": "string", "_creationTime": "float64"}
        if isinstance(validator, ObjectValidator):
            for name, v in validator.fields.items():
                self.kinds[name] = _kind(v)
        for name in docs_fields:
            self.kinds.setdefault(name, "json")

    def arrow_schema(self) -> pa.Schema:
        types = {"string": pa.string(), "id": pa.string(), "float64": pa.float64(),
                 "int64": pa.int64(), "boolean": pa.bool_(), "bytes": pa.binary(),
                 "json": pa.string()}  # fmt: skip
        return pa.schema([(n, types[k]) for n, k in self.kinds.items()])

    def cell(self, name: str, value: Any) -> Any:
        if value is None:
            return None
        kind = self.kinds[name]
        if kind in ("string", "id"):
            return value if isinstance(value, str) else json.dumps(encode_export(value))
        if kind == "float64":
            return float(value) if isinstance(value, float | int) else None
        if kind == "int64":
            return int(value) if isinstance(value, Int64 | int) else None
        if kind == "boolean":
            return value if isinstance(value, bool) else None
        if kind == "bytes":
            return bytes(value) if isinstance(value, bytes) else None
        return json.dumps(encode_export(value), ensure_ascii=False)


def _kind(v: Validator) -> str:
    kind = v.kind  # (v.optional keeps the kind and sets is_optional)
    return kind if kind in ("string", "id", "float64", "int64", "boolean", "bytes") else "json"


async def export_snapshot(
    store: Store,
    schema: Any,
    out: BinaryIO,
    fmt: str,
    tables: list[str] | None = None,
    *,
    files: Any = None,
    progress: Progress | None = None,
) -> ExportSummary:
    """Write the export of ``tables`` (default: every table of the project) to ``out`` as one
    ZIP (see the module docstring); ``files`` (the FileStorage) adds ``_storage`` and the blobs."""
    if fmt not in FORMATS:
        raise ExportError(f"pyconvex does not export {fmt!r}: use one of {', '.join(FORMATS)}.")
    user = sorted(t.name for t in store.tables.values() if not t.is_system)
    if tables:
        unknown = [t for t in tables if t not in store.tables or store.tables[t].is_system]
        if unknown:
            raise ExportError(
                f"No table {', '.join(map(repr, unknown))} in this deployment "
                f"(tables: {', '.join(user) or 'none'})."
            )
        chosen = sorted(set(tables))
    else:
        chosen = user
    ts = store.durable_ts
    summary = ExportSummary(ts, fmt)
    store.pin(ts)
    loop = asyncio.get_running_loop()
    try:
        archive = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
        try:
            if fmt == "zip":
                await loop.run_in_executor(
                    None, archive.writestr, "README.md", README.format(ts=ts)
                )
                numbers = "".join(
                    json.dumps({"name": n, "id": store.tables[n].number}) + "\n" for n in chosen
                )
                if files is not None:
                    numbers += (
                        json.dumps({"name": "_storage", "id": store.tables["_storage"].number})
                        + "\n"
                    )
                await loop.run_in_executor(
                    None, archive.writestr, "_tables/documents.jsonl", numbers
                )
            for name in chosen:
                count = await _export_table(
                    store, store.tables[name], ts, fmt, schema, archive, loop, progress
                )
                summary.documents[name] = count
            if files is not None:
                summary.files = await _export_files(store, ts, files, archive, loop, progress)
        finally:
            await loop.run_in_executor(None, archive.close)
    finally:
        store.unpin(ts)
    return summary


def _ids(table: TableState) -> list[str]:
    ids = list(table.docs)
    seen = set(ids)
    ids.extend(i for i in table.history if i not in seen)
    return ids


async def _chunks(table: TableState, ts: int) -> Any:
    """Documents of ``table`` visible at ``ts``, a chunk per loop step."""
    ids = _ids(table)
    for start in range(0, len(ids), CHUNK):
        docs = [table.get(i, ts) for i in ids[start : start + CHUNK]]
        yield [d for d in docs if d is not None]
        await asyncio.sleep(0)


async def _export_table(
    store: Store,
    table: TableState,
    ts: int,
    fmt: str,
    schema: Any,
    archive: zipfile.ZipFile,
    loop: asyncio.AbstractEventLoop,
    progress: Progress | None,
) -> int:
    name = table.name
    count = 0
    if fmt in ("zip", "jsonl"):
        entry = f"{name}/documents.jsonl" if fmt == "zip" else f"{name}.jsonl"
        sink = archive.open(entry, "w", force_zip64=True)
        try:
            async for docs in _chunks(table, ts):
                text = "".join(
                    json.dumps(encode_export(d), ensure_ascii=False) + "\n" for d in docs
                )
                await loop.run_in_executor(None, sink.write, text.encode())
                count += len(docs)
                if progress is not None:
                    progress(name, len(docs))
        finally:
            await loop.run_in_executor(None, sink.close)
        if fmt == "zip":
            await loop.run_in_executor(
                None, archive.writestr, f"{name}/generated_schema.jsonl", '"uniform"\n'
            )
        return count
    validator = None
    definition = getattr(schema, "definition", None)
    if definition is not None and name in definition.tables:
        validator = definition.tables[name].document
    docs_all: list[dict[str, Any]] = []
    fields: dict[str, None] = {}
    async for docs in _chunks(table, ts):
        docs_all.extend(docs)
        for d in docs:
            fields.update(dict.fromkeys(d))
        if progress is not None:
            progress(name, len(docs))
    columns = _Columns(validator, list(fields))
    count = len(docs_all)
    data = await loop.run_in_executor(None, _tabular, columns, docs_all, fmt)
    await loop.run_in_executor(None, archive.writestr, f"{name}.{fmt}", data)
    return count


def _tabular(columns: _Columns, docs: list[dict[str, Any]], fmt: str) -> bytes:
    names = list(columns.kinds)
    if fmt == "csv":
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(names)
        for d in docs:
            row = [columns.cell(n, d.get(n)) for n in names]
            writer.writerow(["" if v is None else v for v in row])
        return text.getvalue().encode()
    arrays = {n: [columns.cell(n, d.get(n)) for d in docs] for n in names}
    table = pa.table(arrays, schema=columns.arrow_schema())
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


async def _export_files(
    store: Store,
    ts: int,
    files: Any,
    archive: zipfile.ZipFile,
    loop: asyncio.AbstractEventLoop,
    progress: Progress | None,
) -> int:
    table = store.tables["_storage"]
    count = 0
    lines: list[str] = []
    async for docs in _chunks(table, ts):
        for d in docs:
            lines.append(json.dumps(encode_export(d)) + "\n")
            sink = archive.open(f"_storage/{d['_id']}", "w", force_zip64=True)
            try:
                async for chunk in files.read(d):
                    await loop.run_in_executor(None, sink.write, chunk)
            finally:
                await loop.run_in_executor(None, sink.close)
            count += 1
        if progress is not None:
            progress("_storage", len(docs))
    await loop.run_in_executor(None, archive.writestr, "_storage/documents.jsonl", "".join(lines))
    return count
