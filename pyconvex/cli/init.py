"""``pyconvex init [DIR] --template chat|tasks|blank``: a new project, ready for ``pyconvex dev``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE, CliFailure, render_failure
from pyconvex.scaffold import (
    DEFAULT_TEMPLATE,
    InitResult,
    ScaffoldError,
    TemplateExistsError,
    create_project,
    template_names,
)
from pyconvex.scaffold.next_steps import next_steps

TEMPLATE_HELP = (
    "The project to start from: 'chat' (default) a real-time chat with users, conversations, "
    "messages with reactions and read receipts, typing indicators and search; 'tasks' a task "
    "board with projects and tasks by status, priority, assignee and due date; 'blank' one "
    "table, one query and one mutation."
)


def init(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Where to create the project (created if missing). Default: the current "
            "directory.",
            show_default=False,
        ),
    ] = Path("."),
    template: Annotated[str, typer.Option("--template", "-t", help=TEMPLATE_HELP)] = (
        DEFAULT_TEMPLATE
    ),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite the template's files if they exist.")
    ] = False,
) -> None:
    """Create a pyconvex project: convex/ functions, schema, tests and a README.

    Renders the template into DIRECTORY without touching other files there, writes
    convex/_generated/ (as `pyconvex codegen` does) and prints the next steps.
    """
    try:
        result = _create(directory, template, force)
    except CliFailure as failure:
        render_failure(failure)
        raise typer.Exit(failure.code) from None
    _next_steps(result)


def _create(directory: Path, template: str, force: bool) -> InitResult:
    if template not in template_names():
        raise CliFailure(
            f"Unknown template {template!r}",
            detail=f"The templates are: {', '.join(template_names())}.",
            hint=f"Run e.g. `pyconvex init {directory} --template {DEFAULT_TEMPLATE}`.",
            code=EXIT_USAGE,
        )
    try:
        return create_project(directory, template, force=force)
    except TemplateExistsError as e:
        raise CliFailure(
            "Some of the template's files already exist, with other contents",
            where=str(directory),
            detail="Would overwrite: " + ", ".join(e.existing),
            hint="Choose a new or empty directory, or pass --force to overwrite these files.",
            code=EXIT_FAILURE,
        ) from None
    except (ScaffoldError, OSError) as e:
        raise CliFailure(
            f"Could not create the {template} project", where=str(directory), detail=str(e)
        ) from None


def _next_steps(result: InitResult) -> None:
    console = Console(highlight=False, soft_wrap=True)  # commands are copied: never wrapped
    console.print(
        f"[green]Created[/] the [bold]{result.template}[/] project [bold]{result.project_name}"
        f"[/] in {result.root} ({len(result.files)} files, convex/_generated/ written)."
    )
    console.print("\nNext steps:")
    steps = next_steps(result.root, cwd=Path.cwd())
    width = max(len(step.command) for step in steps)
    for step in steps:
        console.print(f"  [bold]{escape(step.command.ljust(width))}[/]  {escape(step.what)}")
    console.print("See README.md in the project for what is there and how to call it.")
