"""Reading the files ``pyconvex import`` takes into documents, each with where it came from.

* CSV: a header row, then rows of text cells (:class:`~.columns.CellReader` reads them: a
  field the schema declares as its typed column was written, any other cell as Convex's import
  reads it, a float64 if it parses as a number, else a string).
* JSONL and a JSON array: plain JSON, where every number is a float64; Convex's
  ``{"$integer": ...}`` / ``{"$bytes": ...}`` / ``{"$float": ...}`` encodings are read too.
* Parquet: typed columns (int64 stays int64, binary is bytes, a null is a missing field; the
  text of a declared JSON column is decoded by :class:`~.columns.CellReader`).
* A Convex snapshot ZIP (``pyconvex export``, ``npx convex export``): export JSON, where a bare
  integer is an int64; ``_tables/documents.jsonl`` gives each table's number (ids carry it), and
  ``_storage/documents.jsonl`` with ``_storage/<id>`` the stored files.

Nothing here checks documents against the schema (:mod:`.import_commit` does); a line that is
not JSON, a row with the wrong number of cells, or a file of the wrong kind is an
:class:`ImportRefused` naming the file and line.
"""

from __future__ import annotations

import csv
import itertools
import json
import zipfile
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyconvex.errors import PyconvexError
from pyconvex.values import Int64
from pyconvex.values.encoding import decode_export, decode_value

FORMATS = ("csv", "jsonl", "json", "parquet", "zip")
#: ``progress(bytes read so far)`` while a file is parsed.
ReadProgress = Callable[[int], None]


class ImportRefused(PyconvexError, ValueError):
    """The import was refused; nothing was written. ``code`` says what kind of refusal."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Source:
    """The documents of one table in the file: ``(position, document)`` pairs, where the
    position is a line (JSONL, CSV, ZIP entries), an item (JSON arrays) or a row (Parquet).

    They are in ``rows``, or — a JSONL file — read as they are checked (:meth:`chunks`), so
    that parsing a chunk and the writer process storing the one before go on at once."""

    label: str
    unit: str = "line"
    #: "csv" or "parquet": rows of cells, which :class:`~.columns.CellReader` reads into
    #: documents (None: rows are documents already).
    cells: str | None = None
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: A JSONL file read by :meth:`chunks` (``rows`` stays empty) and its number of lines.
    path: Path | None = None
    lines: int = 0

    def where(self, position: int) -> str:
        if self.unit == "line":
            return f"{self.label}:{position}"
        return f"{self.label}: {self.unit} {position}"

    @property
    def total(self) -> int:
        """How many rows :meth:`chunks` gives (a JSONL file: its lines, blank ones too)."""
        return self.lines if self.path is not None else len(self.rows)

    def chunks(self, size: int) -> Generator[list[tuple[int, dict[str, Any]]], None, None]:
        """The rows, ``size`` at a time; with a file, each chunk parsed when asked for (raises
        :class:`ImportRefused` at a line that is not a JSON object)."""
        if self.path is None:
            for start in range(0, len(self.rows), size):
                yield self.rows[start : start + size]
            return
        with self.path.open(encoding="utf-8-sig", newline="\n") as f:
            parsed = _parse_lines(f, self.label, plain=True)
            while chunk := list(itertools.islice(parsed, size)):
                yield chunk


@dataclass
class ImportPlan:
    tables: dict[str, Source] = field(default_factory=dict)
    #: Table numbers a snapshot ZIP gives its tables (ids carry them).
    numbers: dict[str, int] = field(default_factory=dict)
    #: ``_storage`` documents of a snapshot ZIP (their bytes are the entries ``_storage/<id>``).
    files: Source | None = None

    @property
    def rows(self) -> int:
        return sum(s.total for s in self.tables.values())


def detect_format(name: str, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ImportRefused(
                "BadFormat", f"pyconvex does not import {fmt!r}: use one of {', '.join(FORMATS)}."
            )
        return fmt
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    raise ImportRefused(
        "BadFormat",
        f"Cannot tell the format of {name!r} from its name: pass --format ({', '.join(FORMATS)}).",
    )


def read_plan(
    path: Path, name: str, fmt: str, table: str | None, progress: ReadProgress | None = None
) -> ImportPlan:
    """Parse the file (on a worker thread); raises :class:`ImportRefused` naming the line."""
    plan = ImportPlan()
    if fmt == "zip":
        if table is not None:
            raise ImportRefused("BadTable", "A snapshot ZIP names its tables: drop --table.")
        _read_zip(path, name, plan)
        return plan
    if table is None or not table or table.startswith("_"):
        raise ImportRefused(
            "BadTable", f"Importing {fmt} needs --table NAME (a user table: not empty, no '_')."
        )
    if fmt == "jsonl":
        source = Source(name, path=path, lines=_count_lines(path, progress))
    elif fmt == "json":
        source = _read_array(path, name)
    elif fmt == "csv":
        source = _read_csv(path, name)
    else:
        source = _read_parquet(path, name)
    plan.tables[table] = source
    return plan


def _count_lines(path: Path, progress: ReadProgress | None) -> int:
    """The number of lines in the file (a last one without a newline counts)."""
    lines = 0
    last = b"\n"
    done = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
            done += len(block)
            if progress is not None:
                progress(done)
    return lines + (last != b"\n")


def _parse_lines(f: Any, label: str, *, plain: bool) -> Iterator[tuple[int, dict[str, Any]]]:
    """JSON lines: plain JSON (numbers float64) or export JSON (bare integers int64); blank
    lines are skipped."""
    decode = (_PLAIN if plain else _EXPORT).decode
    for n, raw in enumerate(f, 1):
        line = raw.decode() if type(raw) is bytes else raw
        try:
            obj = decode(line)
        except ValueError as e:
            if not line.strip():
                continue
            raise ImportRefused("BadJson", f"{label}:{n}: not JSON: {e}") from None
        if type(obj) is not dict:
            raise ImportRefused("BadRow", f"{label}:{n}: a document must be a JSON object.")
        if '"$' in line:
            obj = _decode(obj, label, n, plain)
        yield n, obj


#: Plain JSON (every number a float64) and export JSON (a bare integer is an int64).
_PLAIN = json.JSONDecoder(parse_int=float)
_EXPORT = json.JSONDecoder(parse_int=Int64)


def _decode(obj: Any, label: str, n: int, plain: bool) -> dict[str, Any]:
    try:
        value = _decode_plain(obj) if plain else decode_export(obj)
    except (ValueError, PyconvexError) as e:
        raise ImportRefused("BadRow", f"{label}:{n}: {e}") from None
    assert isinstance(value, dict)
    return value


def _decode_plain(obj: Any) -> Any:
    """Plain JSON as Convex's JSON import reads it (numbers already float64), with Convex's
    ``$integer`` / ``$bytes`` / ``$float`` encodings decoded."""
    if isinstance(obj, list):
        return [_decode_plain(x) for x in obj]
    if isinstance(obj, dict):
        if len(obj) == 1 and next(iter(obj)) in ("$integer", "$bytes", "$float"):
            return decode_value(obj)
        return {k: _decode_plain(v) for k, v in obj.items()}
    return obj


def _read_array(path: Path, name: str) -> Source:
    try:
        data = json.loads(path.read_bytes(), parse_int=float)
    except ValueError as e:
        raise ImportRefused("BadJson", f"{name}: not JSON: {e}") from None
    if not isinstance(data, list):
        raise ImportRefused("BadFile", f"{name}: a .json import is one JSON array of objects.")
    source = Source(name, "item")
    for n, item in enumerate(data, 1):
        if type(item) is not dict:
            raise ImportRefused("BadRow", f"{name}: item {n}: a document must be a JSON object.")
        source.rows.append((n, _decode(item, name, n, True)))
    return source


def _read_csv(path: Path, name: str) -> Source:
    source = Source(name, cells="csv")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            return source
        width = len(header)
        for cells in reader:
            if len(cells) != width:
                raise ImportRefused(
                    "BadRow", f"{name}:{reader.line_num}: {len(cells)} cells, but the header "
                    f"has {width}.",
                )  # fmt: skip
            source.rows.append((reader.line_num, dict(zip(header, cells, strict=True))))
    return source


def _read_parquet(path: Path, name: str) -> Source:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several kinds for a bad file
        raise ImportRefused("BadFile", f"{name} is not a Parquet file: {e}") from None
    source = Source(name, "row", cells="parquet")
    n = 0
    for batch in table.to_batches(50_000):
        for record in batch.to_pylist():
            n += 1
            source.rows.append(
                (n, {k: _parquet_value(v) for k, v in record.items() if v is not None})
            )
    return source


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


def _read_zip(path: Path, name: str, plan: ImportPlan) -> None:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as e:
        raise ImportRefused("BadFile", f"{name} is not a ZIP file: {e}") from None
    with archive:
        entries = set(archive.namelist())
        if "_tables/documents.jsonl" not in entries:
            raise ImportRefused(
                "BadFile",
                f"{name} is not a Convex snapshot export: it has no _tables/documents.jsonl.",
            )
        label = f"{name}/_tables/documents.jsonl"
        for n, line in enumerate(archive.read("_tables/documents.jsonl").splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
                plan.numbers[str(obj["name"])] = int(obj["id"])
            except (ValueError, KeyError, TypeError):
                raise ImportRefused(
                    "BadFile", f'{label}:{n}: expected {{"name": ..., "id": ...}}.'
                ) from None
        for table in plan.numbers:
            entry = f"{table}/documents.jsonl"
            if entry not in entries or (table.startswith("_") and table != "_storage"):
                continue
            source = Source(f"{name}/{entry}")
            with archive.open(entry) as f:
                source.rows = list(_parse_lines(f, source.label, plain=False))
            if table == "_storage":
                plan.files = source
            else:
                plan.tables[table] = source
