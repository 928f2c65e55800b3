"""``pyconvex sql "SELECT ..."``: a read-only DuckDB query over the deployment's tables."""

from __future__ import annotations

import csv
import json
import sys
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pyconvex.cli.admin_command import AdminKeyOption, UrlOption, admin_client, reported_failures
from pyconvex.client.admin import SqlResult

out = Console()
#: More rows than this go through the terminal's pager (on a terminal, table format).
PAGE_ABOVE = 50


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def sql(
    query: Annotated[
        str,
        typer.Argument(
            help="One SELECT (or WITH ... SELECT) over the tables: each table is a view with "
            "_id, _creationTime, a typed column per top-level field of the schema, and "
            "_document (the whole document as JSON).",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        Format,
        typer.Option("--format", help="table (for people), csv, or json (one array of objects)."),
    ] = Format.table,
    limit: Annotated[
        int,
        typer.Option(
            min=1, max=100_000, metavar="N", help="At most this many rows (the rest are left out)."
        ),
    ] = 10_000,
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Run a read-only SQL query (DuckDB's dialect) over the live tables, at one snapshot.

    Anything that would write (INSERT, DELETE, COPY, ATTACH, ...) is refused. The views show
    what is durable on disk, so a write shows as soon as its mutation has been acknowledged."""
    with reported_failures():
        result = admin_client(url, admin_key).sql(query, limit)
    if fmt is Format.json:
        rows = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif fmt is Format.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        writer.writerows([_csv_cell(v) for v in row] for row in result.rows)
    else:
        _print_table(result)
    if result.truncated:
        print(
            f"(only the first {len(result.rows)} rows: add a LIMIT, or raise --limit)",
            file=sys.stderr,
        )


def _csv_cell(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else value


def _print_table(result: SqlResult) -> None:
    grid = Table(show_lines=False)
    for name, kind in zip(result.columns, result.types, strict=True):
        grid.add_column(Text(f"{name}\n{kind}"), overflow="fold")
    for row in result.rows:
        grid.add_row(*(Text(_text(v)) for v in row))
    summary = f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"
    if out.is_terminal and len(result.rows) > PAGE_ABOVE:
        with out.pager():
            out.print(grid)
            out.print(summary)
    else:
        out.print(grid)
        out.print(summary)


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
