"""``pyconvex dev``: load the project's functions and serve them (API on --port).

Watching, codegen and hot reload arrive with the dev-loop issue; this serves the code as it
was at start until Ctrl-C.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pyconvex.cli.project import ProjectError, ProjectSettings

err = Console(stderr=True)


def dev(
    port: Annotated[
        int | None, typer.Option(help="API port (0 picks a free one). Default: 3210.")
    ] = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the functions in ./convex on http://HOST:PORT until Ctrl-C."""
    try:
        settings = ProjectSettings.load(Path.cwd())
        settings.check()
    except ProjectError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        from pyconvex.runtime.event_loop import run

        run(run_dev(settings, host, settings.port if port is None else port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        err.print(f"[red]error:[/red] cannot listen on {host}:{port}: {exc}")
        raise typer.Exit(1) from None


async def run_dev(settings: ProjectSettings, host: str, port: int) -> None:
    from pyconvex.runtime.app import serve
    from pyconvex.runtime.deployment import Deployment

    _configure_logging()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    deployment = await Deployment.open(settings.functions_dir, settings.data_dir)
    try:
        await serve(deployment, host=host, port=port, on_listening=_announce)
    finally:
        await deployment.close()


def _announce(url: str) -> None:
    # Tests and tools parse this exact line.
    print(f"pyconvex dev: serving {url}", flush=True)


def _configure_logging() -> None:
    import logging

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    functions = logging.getLogger("pyconvex.functions")
    functions.addHandler(handler)
    functions.setLevel(logging.INFO)
    functions.propagate = False
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
