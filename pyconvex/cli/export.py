"""``pyconvex export --path P``: one consistent snapshot of the deployment's tables."""

from __future__ import annotations

import shutil
import tempfile
import time
import zipfile
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from pyconvex.cli.admin_command import AdminKeyOption, UrlOption, reported_failures
from pyconvex.cli.data_target import ProgressView, data_target, local_failures
from pyconvex.failures import EXIT_USAGE, CliFailure

out = Console(stderr=True)


class Format(StrEnum):
    zip = "zip"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


def export(
    path: Annotated[
        Path,
        typer.Option(
            "--path",
            help="Where to write: a .zip file for --format zip (in a directory: "
            "snapshot_<ts>.zip there); otherwise a directory with one <table>.<format> per "
            "table, or the file itself when one --table is given and the path ends in "
            ".<format>.",
            show_default=False,
        ),
    ],
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            help="zip: Convex's snapshot layout (pyconvex import and npx convex import read "
            "it); jsonl: Convex's export JSON per table; csv, parquet: typed columns.",
        ),
    ] = Format.zip,
    table: Annotated[
        list[str] | None,
        typer.Option("--table", help="Export only this table (repeat for more).", metavar="T"),
    ] = None,
    include_file_storage: Annotated[
        bool,
        typer.Option(
            "--include-file-storage",
            help="Also export the stored files and the _storage table (zip only).",
        ),
    ] = False,
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Export the tables at one timestamp, while the deployment keeps serving."""
    tables = list(table or [])
    started = time.monotonic()
    with reported_failures(), local_failures("Cannot export"), tempfile.TemporaryDirectory() as tmp:
        if include_file_storage and fmt is not Format.zip:
            _usage("--include-file-storage works with --format zip only.")
        target = data_target(url, admin_key, out)
        download = Path(tmp) / "export.zip"
        with download.open("wb") as sink, ProgressView("export", out) as view:
            described = target.export(
                sink, fmt.value, tables, include_file_storage,
                on_progress=view.progress, on_bytes=view.bytes,
            )  # fmt: skip
        size = download.stat().st_size
        written = _place(download, path, fmt, tables, described)
    documents = described["documents"]
    total = sum(documents.values())
    files = f" and {described['files']} files" if include_file_storage else ""
    seconds = max(time.monotonic() - started, 1e-6)
    print(
        f"Exported {total} documents from {len(documents)} tables{files} at timestamp "
        f"{described['ts']} to {written} ({size / 1e6:.1f} MB, {total / seconds:,.0f} "
        "documents/s)."
    )


def _place(download: Path, path: Path, fmt: Format, tables: list[str], described: Any) -> Path:
    if fmt is Format.zip:
        target = path / f"snapshot_{described['ts']}.zip" if path.is_dir() else path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(download, target)
        return target
    with zipfile.ZipFile(download) as archive:
        names = archive.namelist()
        if len(tables) == 1 and path.suffix == f".{fmt.value}":
            path.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(names[0]) as src, path.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            return path
        if path.exists() and not path.is_dir():
            _usage(f"{path} is a file; exporting several tables as {fmt.value} needs a directory.")
        path.mkdir(parents=True, exist_ok=True)
        for name in names:
            with archive.open(name) as src, (path / name).open("wb") as dst:
                shutil.copyfileobj(src, dst)
    return path


def _usage(message: str) -> None:
    raise CliFailure("Cannot export", detail=message, code=EXIT_USAGE)
