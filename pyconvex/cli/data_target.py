"""What ``pyconvex export`` / ``import`` / ``sql`` share: the deployment they talk to (or the
project's store opened here when none runs), their progress display, and their failures.

Progress comes as dicts ``{"phase", "table", "done", "total", "unit"}`` (from the server, or
from the store opened here) and bytes sent or received. On a terminal it is a rich bar per
phase and table (rows, rows/s) plus one for the bytes (MB, MB/s); otherwise the same as plain
lines, at most one every ``PLAIN_EVERY_S`` per bar, and one when it ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from pyconvex.cli.admin_command import admin_client
from pyconvex.client.data_transfer import DataClient
from pyconvex.client.errors import DeploymentNotFoundError
from pyconvex.errors import PyconvexError, StorageError
from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE, CliFailure
from pyconvex.project import ProjectSettings
from pyconvex.runtime.data.local import LocalData

PLAIN_EVERY_S = 1.0
_PHASES = {"reading": "reading", "checking": "checking", "committing": "committing",
           "exporting": "exporting", "copying": "copying"}  # fmt: skip


def data_target(url: str | None, admin_key: str | None, err: Console) -> DataClient | LocalData:
    """The running deployment (``--url`` / ``--admin-key``, else the project's), or — when
    the project has none running — its store, opened in this process."""
    try:
        return DataClient(admin_client(url, admin_key))
    except DeploymentNotFoundError:
        if url is not None:
            raise
        settings = ProjectSettings.load(Path.cwd())
        settings.check()
        err.print(
            f"No deployment is running: using the project's data in {settings.data_dir} directly.",
            highlight=False,
        )
        return LocalData(settings.functions_dir, settings.data_dir)


@contextmanager
def local_failures(title: str) -> Iterator[None]:
    """The data layer's refusals (with the store opened here) as usage errors."""
    try:
        yield
    except StorageError as e:
        raise CliFailure(title, detail=str(e), code=EXIT_FAILURE) from None
    except PyconvexError as e:
        raise CliFailure(title, detail=str(e), code=EXIT_USAGE) from None


def _label(event: dict[str, Any]) -> str:
    phase = _PHASES.get(str(event.get("phase")), str(event.get("phase")))
    table = str(event.get("table") or "")
    return f"{phase} {table}".strip()


class ProgressView:
    """Rows and bytes as they go (see the module docstring). ``total_bytes``: how many bytes
    the transfer will be, when known (an import's file)."""

    def __init__(
        self, what: str, console: Console, plain: TextIO | None = None, total_bytes: int = -1
    ) -> None:
        self.what = what
        self.console = console
        self.terminal = console.is_terminal
        self.plain = plain or sys.stderr
        self._bar: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        #: label -> (started, last line shown, last update, done, total, unit)
        self._plain: dict[str, tuple[float, float, float, int, int, str]] = {}
        self._bytes = 0
        self._total_bytes = total_bytes
        self._bytes_started = 0.0

    def __enter__(self) -> ProgressView:
        if self.terminal:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[amount]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._bar.__enter__()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            return
        if exc_type is not None:
            return  # (the failure says what happened)
        for label, (started, _, updated, done, total, unit) in self._plain.items():
            final_total = total if total > 0 else done
            self._line(label, done, final_total, unit, started, updated, final=True)

    # -- rows -----------------------------------------------------------------------------
    def progress(self, event: dict[str, Any]) -> None:
        label = _label(event)
        done, total = int(event.get("done", 0)), int(event.get("total", -1))
        unit = str(event.get("unit", "rows"))
        if event.get("phase") == "committing":
            done, total, unit = 0, 0, ""  # one step: a bar with no figures
        self._show(label, done, total, unit)

    # -- bytes ----------------------------------------------------------------------------
    def bytes(self, n: int) -> None:
        if not self._bytes:
            self._bytes_started = time.monotonic()
        self._bytes += n
        self._show(_TRANSFER, self._bytes, self._total_bytes, "bytes", self._bytes_started)

    @property
    def bytes_total(self) -> int:
        return self._bytes

    # -- showing --------------------------------------------------------------------------
    def _show(self, label: str, done: int, total: int, unit: str, started: float = 0.0) -> None:
        if self._bar is not None:
            task = self._tasks.get(label)
            if task is None:
                task = self._tasks[label] = self._bar.add_task(
                    f"{self.what}: {label}", total=None, amount="", rate="",
                    start_time=started or time.monotonic(),
                )  # fmt: skip
            elapsed = self._bar.tasks[task].elapsed or 0.0
            self._bar.update(
                task, completed=done, total=total if total > 0 else None,
                amount=_amount(done, total, unit), rate=_rate(done, elapsed, unit),
            )  # fmt: skip
            return
        now = time.monotonic()
        began, shown, *_ = self._plain.get(label, (started or now, 0.0))
        if now - shown >= PLAIN_EVERY_S:
            shown = now
            self._line(label, done, total, unit, began, now)
        self._plain[label] = (began, shown, now, done, total, unit)

    def _line(
        self,
        label: str,
        done: int,
        total: int,
        unit: str,
        started: float,
        now: float,
        final: bool = False,
    ) -> None:
        if label.startswith("committing"):
            if final:
                return
            print(f"{self.what}: committing", file=self.plain, flush=True)
            return
        rate = _rate(done, now - started, unit)
        rate = f" ({rate})" if rate else ""
        end = ", done" if final else ""
        print(
            f"{self.what}: {label} {_amount(done, total, unit)}{rate}{end}",
            file=self.plain,
            flush=True,
        )


_TRANSFER = "transfer"


def _amount(done: int, total: int, unit: str) -> str:
    if not unit:
        return ""
    if unit == "bytes":
        return f"{done / 1e6:,.1f}/{total / 1e6:,.1f} MB" if total > 0 else f"{done / 1e6:,.1f} MB"
    return f"{done:,}/{total:,} rows" if total > 0 else f"{done:,} rows"


#: A rate is shown once this much time has passed (a first event would show nonsense).
RATE_AFTER_S = 0.1


def _rate(done: int, elapsed: float, unit: str) -> str:
    if elapsed < RATE_AFTER_S or not done:
        return ""
    per_s = done / elapsed
    return f"{per_s / 1e6:,.1f} MB/s" if unit == "bytes" else f"{per_s:,.0f} rows/s"
