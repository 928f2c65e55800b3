"""``pyconvex export``: every document of the chosen tables at ONE timestamp, into one ZIP.

The snapshot is the durable timestamp when the export starts. ``zip`` and ``jsonl`` read the
in-memory store at that timestamp, which keeps the versions it shows (:meth:`Store.pin`) while
the documents are read a chunk per loop turn, so the server goes on serving and committing
meanwhile; ``csv`` and ``parquet`` read the typed columnar copy (:mod:`.mirror`) in one DuckDB
snapshot. Compressing and writing happen on worker threads.

``format="zip"`` is Convex's snapshot layout (``README.md``, ``_tables/documents.jsonl``,
``<table>/documents.jsonl`` in Convex's export JSON, ``<table>/generated_schema.jsonl``, and with
``files`` ``_storage/documents.jsonl`` plus each blob as ``_storage/<id>``), which
``npx convex import`` and ``pyconvex import`` read. ``jsonl``, ``csv`` and ``parquet`` hold one
``<table>.<format>`` per table instead; CSV and Parquet have a typed column per top-level field
of the schema (:mod:`.columns`: an object, array, record, null, ``any`` or mixed union field is
export JSON text, a union of string literals plain text; bytes are base64 in CSV), plus ``_id``
and ``_creationTime``. ``pyconvex import`` reads both back (:class:`~.columns.CellReader`).
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
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pyconvex.errors import PyconvexError
from pyconvex.runtime.data.mirror import SqlMirror, quote, table_ids
from pyconvex.runtime.store.memory import Store, TableState, parse_document
from pyconvex.values.encoding import encode_export

FORMATS = ("zip", "jsonl", "csv", "parquet")
#: Documents read per loop turn.
CHUNK = 5_000
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


#: ``progress(table, rows done, rows in the table)``.
Progress = Callable[[str, int, int], None]

_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def export_line(doc: Any) -> str:
    """One document as a line of Convex's export JSON. Most documents hold only strings,
    finite floats, int64s (an ``int``: a bare integer), booleans, null, lists and objects,
    which the JSON encoder writes as export JSON directly; bytes, NaN / infinities and -0.0
    go through :func:`encode_export`."""
    if type(doc) is str:  # kept as Convex JSON text: the same text unless it has $-forms
        if '"$' not in doc:
            return doc + "\n"
        doc = parse_document(doc)
    try:
        text = _dumps(doc)
    except (TypeError, ValueError):
        return _dumps(encode_export(doc)) + "\n"
    if "-0.0" in text:
        return _dumps(encode_export(doc)) + "\n"
    return text + "\n"


def choose_tables(store: Store, tables: list[str] | None) -> list[str]:
    """The user tables to export: ``tables`` (checked), or all of them."""
    user = sorted(t.name for t in store.tables.values() if not t.is_system)
    if not tables:
        return user
    unknown = [t for t in tables if t not in store.tables or store.tables[t].is_system]
    if unknown:
        raise ExportError(
            f"No table {', '.join(map(repr, unknown))} in this deployment "
            f"(tables: {', '.join(user) or 'none'})."
        )
    return sorted(set(tables))


async def export_snapshot(
    store: Store,
    mirror: SqlMirror,
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
    if files is not None and fmt != "zip":
        raise ExportError("Stored files are exported with --format zip only.")
    chosen = choose_tables(store, tables)
    loop = asyncio.get_running_loop()
    archive = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1)
    try:
        if fmt in ("csv", "parquet"):
            return await _export_columns(mirror, chosen, fmt, archive, progress)
        ts = store.durable_ts
        summary = ExportSummary(ts, fmt)
        store.pin(ts)
        try:
            if fmt == "zip":
                await loop.run_in_executor(
                    None, archive.writestr, "README.md", README.format(ts=ts)
                )
                names = chosen + (["_storage"] if files is not None else [])
                numbers = "".join(
                    json.dumps({"name": n, "id": store.tables[n].number}) + "\n" for n in names
                )
                await loop.run_in_executor(
                    None, archive.writestr, "_tables/documents.jsonl", numbers
                )
            for name in chosen:
                summary.documents[name] = await _export_documents(
                    store.tables[name], ts, fmt, archive, progress
                )
            if files is not None:
                summary.files = await _export_files(store, ts, files, archive, progress)
        finally:
            store.unpin(ts)
        return summary
    finally:
        await loop.run_in_executor(None, archive.close)


async def _chunks(table: TableState, ts: int) -> Any:
    """Documents of ``table`` visible at ``ts`` (JSON text where the store keeps it so),
    a chunk per loop turn."""
    ids = table_ids(table)
    history = table.history
    docs = table.docs
    for start in range(0, len(ids), CHUNK):
        chunk = []
        for doc_id in ids[start : start + CHUNK]:
            d = table.get(doc_id, ts) if doc_id in history else docs.get(doc_id)
            if d is not None:
                chunk.append(d)
        yield chunk
        await asyncio.sleep(0)


async def _export_documents(
    table: TableState,
    ts: int,
    fmt: str,
    archive: zipfile.ZipFile,
    progress: Progress | None,
) -> int:
    loop = asyncio.get_running_loop()
    name = table.name
    total = len(table.docs)
    count = 0
    entry = f"{name}/documents.jsonl" if fmt == "zip" else f"{name}.jsonl"
    sink = archive.open(entry, "w", force_zip64=True)
    writing: asyncio.Future[Any] | None = None
    try:
        async for docs in _chunks(table, ts):
            data = "".join([export_line(d) for d in docs]).encode()
            if writing is not None:
                await writing  # one write in flight while the next chunk is encoded
            writing = loop.run_in_executor(None, sink.write, data)
            count += len(docs)
            if progress is not None:
                progress(name, count, max(total, count))
        if writing is not None:
            await writing
    finally:
        await loop.run_in_executor(None, sink.close)
    if fmt == "zip":
        await loop.run_in_executor(
            None, archive.writestr, f"{name}/generated_schema.jsonl", '"uniform"\n'
        )
    if progress is not None:
        progress(name, count, count)
    return count


async def _export_columns(
    mirror: SqlMirror,
    chosen: list[str],
    fmt: str,
    archive: zipfile.ZipFile,
    progress: Progress | None,
) -> ExportSummary:
    loop = asyncio.get_running_loop()
    async with mirror.snapshot(chosen, progress) as snap:
        summary = ExportSummary(snap.ts, fmt)
        for name in chosen:
            kinds = mirror.columns(name)
            if fmt == "csv":
                select = ", ".join(
                    f"base64({quote(n)}) AS {quote(n)}" if k == "bytes" else quote(n)
                    for n, k in kinds.items()
                )
            else:
                select = ", ".join(quote(n) for n in kinds)
            relation = await snap.relation(f"SELECT {select} FROM _mirror.{quote(name)}")
            reader = await loop.run_in_executor(None, relation.to_arrow_reader, 100_000)
            counted: list[int] = [0]

            def on_rows(n: int, name: str = name, counted: list[int] = counted) -> None:
                counted[0] += n
                if progress is not None:
                    loop.call_soon_threadsafe(progress, name, counted[0], -1)

            await loop.run_in_executor(
                None, _write_table, archive, f"{name}.{fmt}", fmt, reader, on_rows
            )
            summary.documents[name] = counted[0]
            if progress is not None:
                progress(name, counted[0], counted[0])
    return summary


def _write_table(
    archive: zipfile.ZipFile,
    entry: str,
    fmt: str,
    reader: pa.RecordBatchReader,
    on_rows: Callable[[int], None],
) -> None:
    """Write a table's rows as one CSV or Parquet entry (on a worker thread). Parquet is
    compressed already: its entry is stored as it is."""
    info = zipfile.ZipInfo(entry)
    info.compress_type = zipfile.ZIP_STORED if fmt == "parquet" else zipfile.ZIP_DEFLATED
    with archive.open(info, "w", force_zip64=True) as sink:
        if fmt == "parquet":
            with pq.ParquetWriter(sink, reader.schema) as writer:
                for batch in reader:
                    writer.write_batch(batch)
                    on_rows(batch.num_rows)
            return
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(reader.schema.names)
        sink.write(header.getvalue().encode())
        options = pa_csv.WriteOptions(include_header=False)
        with pa_csv.CSVWriter(sink, reader.schema, write_options=options) as csv_writer:
            for batch in reader:
                csv_writer.write_batch(batch)
                on_rows(batch.num_rows)


async def _export_files(
    store: Store,
    ts: int,
    files: Any,
    archive: zipfile.ZipFile,
    progress: Progress | None,
) -> int:
    loop = asyncio.get_running_loop()
    table = store.tables["_storage"]
    count = 0
    lines: list[str] = []
    async for docs in _chunks(table, ts):
        for d in docs:
            if type(d) is str:
                d = parse_document(d)
            lines.append(export_line(d))
            sink = archive.open(f"_storage/{d['_id']}", "w", force_zip64=True)
            try:
                async for chunk in files.read(d):
                    await loop.run_in_executor(None, sink.write, chunk)
            finally:
                await loop.run_in_executor(None, sink.close)
            count += 1
        if progress is not None:
            progress("_storage", count, len(table.docs))
    await loop.run_in_executor(None, archive.writestr, "_storage/documents.jsonl", "".join(lines))
    return count
