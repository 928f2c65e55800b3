"""``pyconvex import``: documents from a file into tables, all checked before anything is written.

Inputs: CSV (a header row; a cell that parses as a number is a float64, else a string, as
Convex's import reads it), JSONL and a JSON array (plain JSON: numbers are float64; Convex's
``{"$integer"}`` / ``{"$bytes"}`` encodings are read too), Parquet (typed columns: int64 stays
int64, binary is bytes), and Convex snapshot ZIPs (``pyconvex export``, ``npx convex export``:
export JSON, where a bare integer is an int64; ``_id`` and ``_creationTime`` kept, tables
created with the snapshot's numbers so ids between tables stay valid, ``_storage`` files
restored).

Every row is validated against the schema first; the first bad row is an
:class:`ImportError_` naming the file, the line (or row) and the field, and nothing is written.
Then the whole import is ONE commit: no query sees half of it, each subscription updates once.
Without a mode, a table that already holds documents is refused; ``append`` adds to it,
``replace`` empties the imported tables first, ``replace-all`` every table of the deployment.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyconvex.errors import PyconvexError, ValidationError
from pyconvex.runtime.query.transaction import mint_id
from pyconvex.runtime.store.committer import PendingCommit
from pyconvex.runtime.store.memory import UndoRecord
from pyconvex.runtime.store.read_set import WriteSet
from pyconvex.values import Int64
from pyconvex.values.encoding import decode_export, decode_value
from pyconvex.values.ids import decode_id

FORMATS = ("csv", "jsonl", "json", "parquet", "zip")
MODES = ("append", "replace", "replace-all")
#: Rows checked per loop step (others are served in between).
CHUNK = 2000


class ImportError_(PyconvexError, ValueError):
    """The import was refused; nothing was written. ``code`` says what kind of refusal."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Row:
    where: str  # "file:line"
    doc: dict[str, Any]


@dataclass
class ImportPlan:
    tables: dict[str, list[Row]] = field(default_factory=dict)
    #: Table numbers a snapshot ZIP gives its tables (ids carry them).
    numbers: dict[str, int] = field(default_factory=dict)
    #: ``_storage`` documents and the ZIP entries holding their bytes.
    files: list[Row] = field(default_factory=list)


@dataclass
class ImportSummary:
    documents: dict[str, int]
    files: int
    ts: int


def detect_format(name: str, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ImportError_(
                "BadFormat", f"pyconvex does not import {fmt!r}: use one of {', '.join(FORMATS)}."
            )
        return fmt
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise ImportError_(
        "BadFormat",
        f"Cannot tell the format of {name!r} from its name: pass --format ({', '.join(FORMATS)}).",
    )


def read_plan(path: Path, name: str, fmt: str, table: str | None) -> ImportPlan:
    """Parse the file (on a worker thread); raises :class:`ImportError_` naming the line."""
    plan = ImportPlan()
    if fmt == "zip":
        if table is not None:
            raise ImportError_("BadTable", "A snapshot ZIP names its tables: drop --table.")
        _read_zip(path, name, plan)
        return plan
    if table is None or not table or table.startswith("_"):
        raise ImportError_(
            "BadTable", f"Importing {fmt} needs --table NAME (a user table: not empty, no '_')."
        )
    rows = list(_read_rows(path, name, fmt))
    plan.tables[table] = rows
    return plan


def _read_rows(path: Path, name: str, fmt: str) -> Iterator[Row]:
    if fmt == "jsonl":
        with path.open("rb") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    yield Row(f"{name}:{n}", _object(_json(line, name, n), name, n, plain=True))
    elif fmt == "json":
        data = _json(path.read_bytes(), name, 1)
        if not isinstance(data, list):
            raise ImportError_("BadFile", f"{name}: a .json import is one JSON array of objects.")
        for n, item in enumerate(data, 1):
            yield Row(f"{name}: item {n}", _object(item, name, n, plain=True))
    elif fmt == "csv":
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if not header:
                return
            for n, cells in enumerate(reader, 2):
                if len(cells) != len(header):
                    raise ImportError_(
                        "BadRow",
                        f"{name}:{n}: {len(cells)} cells, but the header has {len(header)}.",
                    )
                yield Row(
                    f"{name}:{n}", {h: _csv_cell(c) for h, c in zip(header, cells, strict=True)}
                )
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several kinds for a bad file
            raise ImportError_("BadFile", f"{name} is not a Parquet file: {e}") from None
        for n, record in enumerate(table.to_pylist(), 1):
            yield Row(
                f"{name}: row {n}",
                {k: _parquet_value(v) for k, v in record.items() if v is not None},
            )


def _read_zip(path: Path, name: str, plan: ImportPlan) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ImportError_("BadFile", f"{name} is not a ZIP file: {e}") from None
    with archive:
        entries = set(archive.namelist())
        if "_tables/documents.jsonl" not in entries:
            raise ImportError_(
                "BadFile",
                f"{name} is not a Convex snapshot export: it has no _tables/documents.jsonl.",
            )
        for n, line in enumerate(archive.read("_tables/documents.jsonl").splitlines(), 1):
            if line.strip():
                obj = _json(line, f"{name}/_tables/documents.jsonl", n)
                plan.numbers[str(obj["name"])] = int(obj["id"])
        for table in plan.numbers:
            entry = f"{table}/documents.jsonl"
            if entry not in entries:
                continue
            where = f"{name}/{entry}"
            rows = []
            with archive.open(entry) as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        rows.append(
                            Row(
                                f"{where}:{n}",
                                _object(_json(line, where, n), where, n, plain=False),
                            )
                        )
            if table == "_storage":
                plan.files = rows
            elif not table.startswith("_"):
                plan.tables[table] = rows


def _json(raw: bytes, name: str, line: int) -> Any:
    try:
        return json.loads(raw)
    except ValueError as e:
        raise ImportError_("BadJson", f"{name}:{line}: not JSON: {e}") from None


def _object(obj: Any, name: str, line: int, *, plain: bool) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise ImportError_("BadRow", f"{name}:{line}: a document must be a JSON object.")
    try:
        value = _decode_plain(obj) if plain else decode_export(obj)
    except (ValueError, PyconvexError) as e:
        raise ImportError_("BadRow", f"{name}:{line}: {e}") from None
    assert isinstance(value, dict)
    return value


def _decode_plain(obj: Any) -> Any:
    """Plain JSON as Convex's JSON import reads it: every number a float64."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int | float):
        return float(obj)
    if isinstance(obj, list):
        return [_decode_plain(x) for x in obj]
    if len(obj) == 1 and next(iter(obj)) in ("$integer", "$bytes", "$float"):
        return decode_value(obj)
    return {k: _decode_plain(v) for k, v in obj.items()}


def _csv_cell(cell: str) -> Any:
    try:
        return float(cell)
    except ValueError:
        return cell


def _parquet_value(v: Any) -> Any:
    if isinstance(v, bool | str | float | bytes):
        return v
    if isinstance(v, int):
        return Int64(v)
    if isinstance(v, list):
        return [_parquet_value(x) for x in v if x is not None]
    if isinstance(v, dict):
        return {k: _parquet_value(x) for k, x in v.items() if x is not None}
    return str(v)


async def run_import(
    dep: Any, plan: ImportPlan, mode: str | None, files_zip: Path | None
) -> ImportSummary:
    """Check every row of ``plan`` against the schema, then write it all as one commit."""
    store = dep.store
    schema = dep.schema
    if mode is not None and mode not in MODES:
        raise ImportError_("BadMode", f"mode must be one of {', '.join(MODES)}, got {mode!r}.")
    for table in plan.tables:
        declared = schema.undeclared(table)
        if declared is not None:
            raise ImportError_(
                "UnknownTable",
                f"The schema declares no table {table!r} (tables: {', '.join(declared)}). Add it "
                "to convex/schema.py or import into one of those.",
            )
        existing = store.tables.get(table)
        if mode is None and existing is not None and existing.docs:
            raise ImportError_(
                "TableNotEmpty",
                f"Table {table!r} already holds {len(existing.docs)} documents. Pass --append to "
                "add to it, --replace to replace it, or --replace-all to make the deployment "
                "exactly this import.",
            )
        number = plan.numbers.get(table)
        if number is not None and existing is not None and existing.number != number:
            raise ImportError_(
                "TableNumberMismatch",
                f"Table {table!r} has number {existing.number} here but {number} in the "
                "snapshot, so the snapshot's ids would point at the wrong table. Import it into "
                "a deployment where that table does not exist yet (a fresh project).",
            )
        if number is not None and existing is None:
            other = store.tables_by_number.get(number)
            if other is not None:
                raise ImportError_(
                    "TableNumberMismatch",
                    f"The snapshot's table {table!r} has number {number}, which is table "
                    f"{other.name!r} here. Import it into a fresh project.",
                )
    # Check every row before writing anything (a chunk per loop step).
    checked: dict[str, list[tuple[str | None, dict[str, Any]]]] = {}
    for table, rows in plan.tables.items():
        validator = schema.document_validator(table)
        number = plan.numbers.get(table) or (
            store.tables[table].number if table in store.tables else None
        )
        out = checked[table] = []
        for start in range(0, len(rows), CHUNK):
            for row in rows[start : start + CHUNK]:
                out.append(_check_row(row, table, validator, number))
            await asyncio.sleep(0)
    return await _commit(dep, plan, checked, mode, files_zip)


def _check_row(
    row: Row, table: str, validator: Any, number: int | None
) -> tuple[str | None, dict[str, Any]]:
    doc = dict(row.doc)
    doc_id = doc.pop("_id", None)
    created = doc.pop("_creationTime", None)
    if doc_id is not None:
        try:
            decoded = decode_id(doc_id)[0] if isinstance(doc_id, str) else None
        except (PyconvexError, ValueError):
            decoded = None
        if decoded is None or (number is not None and decoded != number):
            raise ImportError_(
                "BadRow", f"{row.where}: field _id: {doc_id!r} is not an id of table {table!r}."
            )
    if created is not None and not isinstance(created, float | int):
        raise ImportError_("BadRow", f"{row.where}: field _creationTime must be a number.")
    if validator is not None:
        try:
            doc = validator.validate(doc)
        except ValidationError as e:
            field_name = (e.path or "").lstrip(".") or "(the document)"
            raise ImportError_("BadRow", f"{row.where}: field {field_name}: {e.convex}") from None
    if created is not None:
        doc["_creationTime"] = float(created)
    return doc_id, doc


async def _commit(
    dep: Any,
    plan: ImportPlan,
    checked: dict[str, list[tuple[str | None, dict[str, Any]]]],
    mode: str | None,
    files_zip: Path | None,
) -> ImportSummary:
    store = dep.store
    file_ids: list[str] = []
    blobs: list[Any] = []
    if plan.files and files_zip is not None:
        blobs = await _store_blobs(dep, plan, files_zip)
    ts = store.next_ts()
    undo = UndoRecord(ts)
    new_tables: list[tuple[int, str]] = []
    try:
        targets = set(checked)
        if mode == "replace-all":
            targets |= {t.name for t in store.tables.values() if not t.is_system}
        for name in sorted(targets):
            table = store.tables.get(name)
            if table is None:
                table = store.create_table(name, plan.numbers.get(name))
                store.set_indexes(table, dep.schema.index_specs(name))
                undo.created_tables.append(name)
                new_tables.append((table.number, name))
            if mode in ("replace", "replace-all") and table.docs:
                for doc_id in list(table.docs):
                    store.write(table, doc_id, None, 0, undo)
        for name, rows in checked.items():
            table = store.tables[name]
            for doc_id, doc in rows:
                doc_id = doc_id or mint_id(table.number)
                if doc_id in table.docs:
                    raise ImportError_(
                        "DuplicateId", f"Table {name!r} already holds a document with _id {doc_id}."
                    )
                created = doc.pop("_creationTime", None)
                if created is None:
                    created = store.next_creation_time(time.time() * 1000)
                doc["_id"] = doc_id  # (system fields last, as an insert writes them)
                doc["_creationTime"] = created
                store.write(table, doc_id, doc, len(json.dumps(str(doc))), undo)
        storage = store.tables["_storage"]
        for row, blob in zip(plan.files, blobs, strict=True):
            doc = dict(row.doc)
            doc_id = str(doc["_id"])
            if doc_id not in storage.docs:
                store.write(storage, doc_id, doc, blob.size, undo)
                file_ids.append(doc_id)
    except BaseException:
        store.undo(undo)
        raise
    documents = [dw for dw in _document_writes(undo)]
    durable = dep.committer.submit(
        PendingCommit(ts, undo, WriteSet(store.write_entries(undo)), documents, new_tables)
    )
    await asyncio.shield(durable)
    return ImportSummary({n: len(r) for n, r in checked.items()}, len(file_ids), ts)


def _document_writes(undo: UndoRecord) -> list[Any]:
    from pyconvex.runtime.store.duckdb_log import DocumentWrite

    return [
        DocumentWrite(undo.ts, t.number, doc_id, t.history[doc_id][-1][1])
        for t, doc_id in undo.touched
    ]


async def _store_blobs(dep: Any, plan: ImportPlan, files_zip: Path) -> list[Any]:
    blobs = dep.storage._blobs()
    stored = []
    with zipfile.ZipFile(files_zip) as archive:
        for row in plan.files:
            entry = f"_storage/{row.doc.get('_id')}"
            if entry not in archive.namelist():
                raise ImportError_(
                    "BadFile", f"{row.where}: the snapshot has no {entry} for this file."
                )

            async def chunks(entry: str = entry) -> Any:
                with archive.open(entry) as f:
                    while chunk := f.read(1024 * 1024):
                        yield chunk

            stored.append(await blobs.write(chunks()))
    return stored
