"""``pyconvex logs``: stream the deployment's function executions as they happen."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pyconvex.cli.admin_command import (
    AdminKeyOption,
    UrlOption,
    admin_client,
    reported_failures,
)
from pyconvex.protocol import LogEntry

out = Console(highlight=False)


def logs(
    history: Annotated[
        int,
        typer.Option(
            min=0, metavar="N", help="First print this many recent executions from the history."
        ),
    ] = 10,
    follow: Annotated[
        bool,
        typer.Option(help="Keep streaming new executions until Ctrl-C (--no-follow: stop)."),
    ] = True,
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Show function executions (kind, path, duration, outcome, log lines) live."""
    with reported_failures():
        client = admin_client(url, admin_key)

        def opened() -> None:
            out.print(f"[dim]Watching logs of {client.url} (Ctrl-C to stop)...[/dim]")

        entries = client.follow_logs(history, opened) if follow else client.log_history(history)
        try:
            for entry in entries:
                print_entry(entry)
        except KeyboardInterrupt:
            return


def print_entry(entry: LogEntry) -> None:
    """One execution: ``time kind path duration outcome``, then its log lines indented."""
    when = datetime.fromtimestamp(entry.started_ms / 1000).isoformat(
        sep=" ", timespec="milliseconds"
    )
    outcome = "[green]success[/green]" if entry.ok else "[red]failure[/red]"
    out.print(
        f"[dim]{when}[/dim] [bold]{entry.letter}[/bold] {escape(entry.path)} "
        f"[dim]{entry.duration_ms:.1f} ms[/dim] {outcome}"
    )
    for line in entry.log_lines:
        out.print(f"    {escape(line)}")
    if entry.error is not None:
        for line in entry.error.splitlines():
            out.print(f"    [red]{escape(line)}[/red]")
