"""``pyconvex serve``: run the project's data directory as a production deployment.

The server itself is :mod:`pyconvex.dev.production`; new code arrives with ``pyconvex deploy``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE, CliFailure, render_failure
from pyconvex.project import ProjectError, ProjectSettings


def serve(
    port: Annotated[
        int | None, typer.Option(help="API port (0 picks a free one). Default: 3210.")
    ] = None,
    site_port: Annotated[
        int | None,
        typer.Option(
            help="Port of the HTTP actions (Convex's site port). Default: the API port + 1.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0: every interface).")
    ] = "127.0.0.1",
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Log pyconvex's own frames in tracebacks, not only yours."
        ),
    ] = False,
) -> None:
    """Serve the deployed code and its data in production: no file watching, no codegen, errors
    redacted for clients, every admin route behind the admin key, GET /health for probes.

    At its first start it serves (a copy of) ./convex; after that, the code
    `pyconvex deploy` sends.
    """
    try:
        settings = ProjectSettings.load(Path.cwd())
    except ProjectError as exc:
        render_failure(CliFailure("Cannot start pyconvex serve", detail=str(exc), code=EXIT_USAGE))
        raise typer.Exit(EXIT_USAGE) from None
    from pyconvex.cli.dev import configure_server_logging
    from pyconvex.dev.production import run_serve
    from pyconvex.runtime.net.event_loop import run

    configure_server_logging()
    chosen = settings.port if port is None else port
    try:
        code = run(run_serve(settings, host, chosen, site_port=site_port, verbose=verbose))
    except KeyboardInterrupt:
        code = 0
    except CliFailure as failure:
        render_failure(failure)
        raise typer.Exit(failure.code) from None
    except OSError as exc:
        render_failure(
            CliFailure(
                f"Cannot listen on {host}:{chosen}",
                detail=str(exc),
                hint="Pick other ports with --port / --site-port, or stop what uses them.",
            )
        )
        raise typer.Exit(EXIT_FAILURE) from None
    if code:
        raise typer.Exit(code)
