"""``pyconvex logs``: stream the deployment's function executions as they happen."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from pyconvex.cli.admin_command import (
    AdminKeyOption,
    UrlOption,
    admin_client,
    reported_failures,
)
from pyconvex.dev.console import ExecutionPrinter

out = Console(highlight=False, soft_wrap=True)  # a traceback line stays one line


def logs(
    history: Annotated[
        int,
        typer.Option(
            min=0, metavar="N", help="First print this many recent executions from the history."
        ),
    ] = 10,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Show pyconvex's own frames in tracebacks too."),
    ] = False,
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
        printer = ExecutionPrinter(out, verbose=verbose)
        try:
            for entry in entries:
                printer.print(entry)
        except KeyboardInterrupt:
            return
