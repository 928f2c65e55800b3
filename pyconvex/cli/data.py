"""``pyconvex data [TABLE]``: the tables with their document counts, or a table's documents."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pyconvex.cli.admin_command import (
    AdminKeyOption,
    UrlOption,
    admin_client,
    plain,
    reported_failures,
)
from pyconvex.errors import PyconvexError
from pyconvex.values import decode_id

out = Console()


class Order(StrEnum):
    asc = "asc"
    desc = "desc"


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"


def data(
    table: Annotated[
        str | None,
        typer.Argument(help="The table to show (default: list the tables).", show_default=False),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, metavar="N", help="How many documents to show.")
    ] = 100,
    order: Annotated[
        Order, typer.Option(help="desc: newest first; asc: oldest first (by _creationTime).")
    ] = Order.desc,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format", help="table (for people), json (one array) or jsonl (one per line)."
        ),
    ] = Format.table,
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """List the tables with their document counts, or show a table's documents."""
    with reported_failures():
        client = admin_client(url, admin_key)
        if table is None:
            rows: list[dict[str, Any]] = [
                {"table": name, "documents": count} for name, count in client.tables()
            ]
        else:
            rows = [plain(d) for d in client.documents(table, limit, order.value)]
    if fmt is Format.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif fmt is Format.jsonl:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
    elif table is None:
        _print_table(rows, "No tables yet: insert a document from a mutation.")
    else:
        _print_table(rows, f"Table {table} is empty.")


def _print_table(rows: list[dict[str, Any]], empty: str) -> None:
    if not rows:
        out.print(empty)
        return
    columns = list(dict.fromkeys(k for row in rows for k in row))
    # _id first, _creationTime last, like the dashboard.
    columns.sort(key=lambda c: (c != "_id", c == "_creationTime"))
    grid = Table(show_lines=False)
    for name in columns:
        # An id is copied whole into the next command: never wrapped across lines.
        width = _id_width([row.get(name) for row in rows])
        if width:
            grid.add_column(name, no_wrap=True, min_width=max(width, len(name)))
        else:
            grid.add_column(name, overflow="fold")
    for row in rows:
        grid.add_row(*(_cell(name, row.get(name, ...)) for name in columns))
    out.print(grid)


def _id_width(values: list[Any]) -> int:
    """The widest value when every value present is an id, else 0."""
    present = [value for value in values if value is not None]
    for value in present:
        try:
            decode_id(value)
        except PyconvexError:
            return 0
    return max((len(value) for value in present), default=0)


def _cell(column: str, value: Any) -> Text:
    return Text(_cell_text(column, value))


def _cell_text(column: str, value: Any) -> str:
    if value is ...:
        return ""
    if column == "_creationTime" and isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000).isoformat(sep=" ", timespec="milliseconds")
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)
