"""The ``pyconvex`` command line (typer): one small module per command, assembled here."""

from __future__ import annotations

from typing import Annotated

import typer

from pyconvex import __version__
from pyconvex.cli.codegen import codegen
from pyconvex.cli.command import Command, typer_app
from pyconvex.cli.dashboard import dashboard
from pyconvex.cli.data import data
from pyconvex.cli.deploy import deploy
from pyconvex.cli.dev import dev
from pyconvex.cli.env import env_app
from pyconvex.cli.export import export
from pyconvex.cli.import_data import import_
from pyconvex.cli.init import init
from pyconvex.cli.logs import logs
from pyconvex.cli.run import run
from pyconvex.cli.serve import serve
from pyconvex.cli.sql import sql

app = typer_app("pyconvex", "A reactive backend for Python in the model of Convex.")


def _print_version(value: bool) -> None:
    if value:
        print(f"pyconvex {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_print_version,
            is_eager=True,
            help="Print pyconvex's version and exit.",
        ),
    ] = False,
) -> None:
    """A reactive backend for Python in the model of Convex."""


for command in (dev, init, codegen, run, data, logs, sql, export, serve, deploy, dashboard):
    app.command(cls=Command)(command)
app.command("import", cls=Command)(import_)
app.add_typer(env_app)
