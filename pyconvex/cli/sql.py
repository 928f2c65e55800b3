"""``pyconvex sql "SELECT ..."``: a read-only DuckDB query over the deployment's tables.

Rows are printed as they stream in. ``--format table`` prints blocks of rows with the widths
the first block set (the type of each column under its name); on a terminal the output goes
through the pager (``$PAGER``, else ``less -SRFX``, which quits at once when it fits).
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from enum import StrEnum
from typing import IO, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pyconvex.cli.admin_command import AdminKeyOption, UrlOption, reported_failures
from pyconvex.cli.data_target import data_target, local_failures

err = Console(stderr=True)
#: Widest a column gets in table format (longer values wrap).
MAX_WIDTH = 60


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def sql(
    query: Annotated[
        str,
        typer.Argument(
            help="One SELECT (or WITH ... SELECT) over the tables: each table has _id, "
            "_creationTime, a typed column per top-level field of the schema (a union, object, "
            "array or any field is JSON), and _document (the whole document as JSON).",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        Format,
        typer.Option("--format", help="table (for people), csv, or json (one array of objects)."),
    ] = Format.table,
    limit: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="At most this many rows (the rest are left out)."),
    ] = None,
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Run a read-only SQL query (DuckDB's dialect) over the live tables, at one snapshot.

    Anything that would write (INSERT, DELETE, COPY, ATTACH, ...) is refused, and so is
    reading files. With no deployment running, the project's data is opened directly."""
    with reported_failures(), local_failures("Cannot run the SQL query"):
        target = data_target(url, admin_key, err)
        with target.sql(query, limit) as result, _output(fmt) as sink:
            if fmt is Format.json:
                _json(result.columns, result.batches, sink)
            elif fmt is Format.csv:
                writer = csv.writer(sink, lineterminator="\n")
                writer.writerow(result.columns)
                for rows in result.batches:
                    writer.writerows([_csv_cell(v) for v in row] for row in rows)
            else:
                _table(result.columns, result.types, result.batches, sink)
                n = result.rows
                print(f"{n} row{'s' if n != 1 else ''}", file=sink)
        if result.truncated:
            print(
                f"(only the first {result.rows} rows: add a LIMIT, or raise --limit)",
                file=sys.stderr,
            )


@contextmanager
def _output(fmt: Format) -> Iterator[IO[str]]:
    """stdout, or on a terminal (table format) the pager's input."""
    pager = os.environ.get("PAGER") or ("less -SRFX" if shutil.which("less") else "")
    if fmt is not Format.table or not sys.stdout.isatty() or not pager:
        yield sys.stdout
        sys.stdout.flush()
        return
    proc = subprocess.Popen(shlex.split(pager), stdin=subprocess.PIPE, text=True)
    assert proc.stdin is not None
    try:
        with suppress(BrokenPipeError):  # the pager was closed before the end
            yield proc.stdin
    finally:
        with suppress(BrokenPipeError):
            proc.stdin.close()
        proc.wait()


def _json(columns: list[str], batches: Iterator[list[list[Any]]], sink: IO[str]) -> None:
    first = True
    sink.write("[")
    for rows in batches:
        for row in rows:
            text = json.dumps(dict(zip(columns, row, strict=True)), ensure_ascii=False)
            sink.write(("\n  " if first else ",\n  ") + text)
            first = False
    sink.write("\n]\n" if not first else "]\n")


def _csv_cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _table(
    columns: list[str], types: list[str], batches: Iterator[list[list[Any]]], sink: IO[str]
) -> None:
    """Each batch as a block of one table: the first sets the column widths."""
    console = Console(file=sink, width=max(shutil.get_terminal_size().columns, 40), soft_wrap=False)
    widths: list[int] | None = None
    printed = False
    for rows in batches:
        texts = [[_text(v) for v in row] for row in rows]
        if widths is None:
            widths = [
                min(MAX_WIDTH, max([len(c), len(t)] + [len(r[i]) for r in texts]))
                for i, (c, t) in enumerate(zip(columns, types, strict=True))
            ]
        console.print(_grid(columns, types, widths, texts, header=not printed))
        printed = True
    if not printed:
        widths = [min(MAX_WIDTH, max(len(c), len(t))) for c, t in zip(columns, types, strict=True)]
        console.print(_grid(columns, types, widths, [], header=True))


def _grid(
    columns: list[str], types: list[str], widths: list[int], rows: list[list[str]], header: bool
) -> Table:
    grid = Table(box=box.SIMPLE_HEAD, show_header=header, show_edge=False, pad_edge=False)
    for name, kind, width in zip(columns, types, widths, strict=True):
        grid.add_column(Text(f"{name}\n{kind}"), width=width, overflow="fold")
    for row in rows:
        grid.add_row(*(Text(v) for v in row))
    return grid


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
