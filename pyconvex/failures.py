"""How every command reports failure: one readable block, and a meaningful exit code.

    raise CliFailure("Schema push refused", where="convex/schema.py:12, table messages",
                     detail="document 'k57...' has no field 'author'",
                     hint="Make the field v.optional(...) or backfill it.", code=EXIT_DATA)

``main`` catches :class:`CliFailure` and renders it with :func:`render_failure`.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from pyconvex.errors import PyconvexError

#: Exit codes (sorted by how to recover, as Convex's CLI does).
EXIT_OK = 0
EXIT_FAILURE = 1  # the operation failed (function error, refused push): fix and retry
EXIT_USAGE = 2  # bad command line, options or project settings
EXIT_UNAVAILABLE = 3  # no running deployment to talk to: start `pyconvex dev`
EXIT_AUTH = 4  # the admin key is missing or wrong

err_console = Console(stderr=True)


@dataclass
class CliFailure(PyconvexError):
    """A failure a command reports to the user and exits with ``code``."""

    what: str
    where: str | None = None
    detail: str | None = None
    hint: str | None = None
    code: int = EXIT_FAILURE

    def __str__(self) -> str:
        return "\n".join(p for p in (self.what, self.where, self.detail, self.hint) if p)


def render_failure(failure: CliFailure, console: Console | None = None) -> None:
    """Print ``failure`` as one block: what failed, where, the details, and what to do."""
    body = Text()
    if failure.where:
        body.append("where: ", style="bold")
        body.append(failure.where + "\n")
    if failure.detail:
        body.append(failure.detail.rstrip() + "\n")
    if failure.hint:
        body.append("what to do: ", style="bold green")
        body.append(failure.hint)
    body.rstrip()
    (console or err_console).print(
        Panel(
            body,
            title=f"[bold red]error[/]: {failure.what}",
            title_align="left",
            border_style="red",
            expand=False,
        )
    )
