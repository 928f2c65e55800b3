"""Function executions as the developer reads them, in ``pyconvex dev`` and ``pyconvex logs``.

One execution is one block: a header (time, kind letter Q, M, A or H for an HTTP action, path,
what started it when no client did, duration, outcome), its log lines indented under it, and for
a failure the error and the traceback — the user's own frames only (pyconvex's appear with
``verbose``)::

    printer = ExecutionPrinter(Console(), verbose=False)
    printer.print(entry)                                  # a protocol.LogEntry
    await ExecutionFeed(deployment.log_history, printer).run()      # pyconvex dev

The dev console shows each execution once, as the deployment records it (so a query re-run by
a subscription shows again, a client's invalid call shows too), and skips quiet successes.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from pyconvex.protocol import LogEntry

if TYPE_CHECKING:
    from pyconvex.runtime.functions.log_history import LogHistory


class ExecutionPrinter:
    """Prints :class:`~pyconvex.protocol.LogEntry` blocks on ``console``."""

    def __init__(self, console: Console, *, verbose: bool = False, full_date: bool = True) -> None:
        self.console = console
        self.verbose = verbose
        self.full_date = full_date

    def print(self, entry: LogEntry) -> None:
        """One execution: ``time kind path duration outcome``, then its lines indented."""
        when = datetime.fromtimestamp(entry.started_ms / 1000)
        shown = (
            when.isoformat(sep=" ", timespec="milliseconds")
            if self.full_date
            else when.strftime("%H:%M:%S")
        )
        outcome = "[green]success[/green]" if entry.ok else "[red]failure[/red]"
        if not entry.ok and entry.request_id:
            # The id the client's error names, so a user can find this call from it.
            outcome += f" [dim]{escape(f'[Request ID: {entry.request_id}]')}[/dim]"
        # A run nobody's client asked for says what started it: "(scheduled)", "(cron x)".
        trigger = f" [cyan]({escape(entry.trigger)})[/cyan]" if entry.trigger else ""
        out = self.console
        out.print(
            f"[dim]{shown}[/dim] [bold]{entry.letter}[/bold] {escape(entry.path)}{trigger} "
            f"[dim]{entry.duration_ms:.1f} ms[/dim] {outcome}",
            highlight=False,
        )
        for line in entry.log_lines:
            out.print(f"    {escape(line)}", highlight=False)
        if entry.error is None:
            return
        trace = entry.full_traceback if self.verbose else entry.traceback
        if trace:
            for line in trace.rstrip().splitlines():
                out.print(f"    [red]{escape(line)}[/red]", highlight=False)
            if not self.verbose and trace.startswith("Traceback"):
                out.print("    [dim](pyconvex's own frames hidden: --verbose shows them)[/dim]")
        else:
            for line in entry.error.splitlines():
                out.print(f"    [red]{escape(line)}[/red]", highlight=False)


def worth_showing(entry: LogEntry) -> bool:
    """What the dev console shows: executions that logged something, and every failure."""
    return bool(entry.log_lines) or not entry.ok


class ExecutionFeed:
    """Prints the deployment's executions worth showing as they are recorded::

    feed = ExecutionFeed(deployment.log_history, printer)
    task = asyncio.create_task(feed.run())
    ...
    task.cancel(); feed.drain()    # at exit: what was recorded but not printed yet
    """

    def __init__(self, history: LogHistory, printer: ExecutionPrinter) -> None:
        self.history = history
        self.printer = printer
        self.next_seq = history.total

    async def run(self) -> None:
        """Print every new execution worth showing (until cancelled)."""
        async for entry in self.history.follow(since=self.next_seq):
            self._show(entry)

    def drain(self) -> None:
        """Print what was recorded since the last one printed."""
        for entry in self.history.recent():
            if entry.seq >= self.next_seq:
                self._show(entry)

    def _show(self, entry: LogEntry) -> None:
        self.next_seq = entry.seq + 1
        if worth_showing(entry):
            self.printer.print(entry)
