"""``pyconvex import PATH``: documents from CSV, JSONL, JSON, Parquet or a snapshot ZIP."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pyconvex.cli.admin_command import AdminKeyOption, UrlOption, reported_failures
from pyconvex.cli.data_target import ProgressView, data_target, local_failures
from pyconvex.failures import EXIT_USAGE, CliFailure

out = Console(stderr=True)


def import_(
    path: Annotated[
        Path,
        typer.Argument(
            help="The file: .csv, .jsonl, .json (an array of objects), .parquet, or a snapshot "
            ".zip from pyconvex export or npx convex export.",
            show_default=False,
        ),
    ],
    table: Annotated[
        str | None,
        typer.Option("--table", help="The table to import into (not for a .zip).", metavar="T"),
    ] = None,
    append: Annotated[
        bool, typer.Option("--append", help="Add to tables that already hold documents.")
    ] = False,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace the documents of the imported tables.")
    ] = False,
    replace_all: Annotated[
        bool,
        typer.Option(
            "--replace-all",
            help="Make the deployment exactly this import: every other table is emptied too.",
        ),
    ] = False,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="csv, jsonl, json, parquet or zip (default: from the file's extension).",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("-y", "--yes", help="Replace without asking for confirmation.")
    ] = False,
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Import documents into the deployment: every row is checked against the schema first
    (one bad row: nothing is imported, the error names file, line and field), then all of
    them are committed at once, so no query sees half an import. With no deployment running,
    the project's data is opened directly."""
    with reported_failures(), local_failures("Cannot import"):
        chosen = [m for m, on in (("append", append), ("replace", replace),
                                  ("replace-all", replace_all)) if on]  # fmt: skip
        if len(chosen) > 1:
            _usage("Pass at most one of --append, --replace, --replace-all.")
        mode = chosen[0] if chosen else None
        if not path.is_file():
            _usage(f"{path} is not a file.")
        if mode in ("replace", "replace-all") and not yes:
            what = "every table" if mode == "replace-all" else "the imported tables"
            if not out.is_terminal:
                _usage(f"--{mode} deletes the documents of {what}: pass -y to confirm.")
            if not typer.confirm(f"This deletes the documents of {what} first. Continue?"):
                raise typer.Exit(1)
        target = data_target(url, admin_key, out)
        started = time.monotonic()
        with ProgressView("import", out, total_bytes=path.stat().st_size) as view:
            done = target.import_file(
                path, fmt, table, mode, on_progress=view.progress, on_bytes=view.bytes
            )
    documents = done["documents"]
    total = sum(documents.values())
    per_table = ", ".join(f"{n} into {t}" for t, n in documents.items()) or "none"
    files = f" and {done['files']} files" if done.get("files") else ""
    seconds = max(time.monotonic() - started, 1e-6)
    print(f"Imported {total} documents ({per_table}){files}, {total / seconds:,.0f} documents/s.")


def _usage(message: str) -> None:
    raise CliFailure("Cannot import", detail=message, code=EXIT_USAGE)
