"""``pyconvex dev``: serve the project's functions, and push every save to the running server.

The loop itself (watch, load, codegen, schema push, swap) is :mod:`pyconvex.dev.loop`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from pyconvex.dev.typecheck import TypecheckMode
from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE, CliFailure, render_failure
from pyconvex.project import ProjectError, ProjectSettings


def dev(
    port: Annotated[
        int | None, typer.Option(help="API port (0 picks a free one). Default: 3210.")
    ] = None,
    site_port: Annotated[
        int | None,
        typer.Option(
            help="Port of the HTTP actions of convex/http.py (Convex's site port). Default: the "
            "API port + 1 (3211); a free one when --port is 0.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Load the functions, run codegen and push the schema once, then exit "
            "(exit code 0: pushed, 1: refused or failed to load).",
        ),
    ] = False,
    typecheck: Annotated[
        TypecheckMode,
        typer.Option(
            help="After each push, type-check convex/ with mypy (pyright when configured) in the "
            "background: enable (mypy required; --once fails on errors), try (when installed), "
            "disable.",
        ),
    ] = TypecheckMode.try_,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Show pyconvex's own frames in tracebacks, not only yours."
        ),
    ] = False,
) -> None:
    """Serve the functions in ./convex on http://HOST:PORT and push every save until Ctrl-C."""
    try:
        settings = ProjectSettings.load(Path.cwd())
        settings.check()
    except ProjectError as exc:
        render_failure(CliFailure("Cannot start pyconvex dev", detail=str(exc), code=EXIT_USAGE))
        raise typer.Exit(EXIT_USAGE) from None
    from pyconvex.dev.serve import run_dev, stopped_message
    from pyconvex.runtime.net.event_loop import run

    configure_server_logging()
    chosen = settings.port if port is None else port
    try:
        code = run(
            run_dev(
                settings,
                host,
                chosen,
                once=once,
                verbose=verbose,
                typecheck=typecheck,
                site_port=site_port,
            )
        )
    except KeyboardInterrupt:
        print(stopped_message(settings), flush=True)
        code = 0
    except CliFailure as failure:
        render_failure(failure)
        raise typer.Exit(failure.code) from None
    except OSError as exc:
        render_failure(
            CliFailure(
                f"Cannot listen on {host}:{chosen}",
                detail=str(exc),
                hint="Pick other ports with --port / --site-port (0 picks a free one), or stop "
                "what uses them.",
            )
        )
        raise typer.Exit(EXIT_FAILURE) from None
    if code:
        raise typer.Exit(code)


def configure_server_logging() -> None:
    # Function executions are printed from the deployment's log history (dev/console.py), once
    # each; the engine's per-call echo is for servers without a console.
    logging.getLogger("pyconvex.functions").propagate = False
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
