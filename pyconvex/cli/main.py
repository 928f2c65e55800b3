"""The ``pyconvex`` command line (typer): one small module per command."""

from __future__ import annotations

import typer

from pyconvex.cli.codegen import codegen
from pyconvex.cli.data import data
from pyconvex.cli.dev import dev
from pyconvex.cli.env import env_app
from pyconvex.cli.init import init
from pyconvex.cli.logs import logs
from pyconvex.cli.run import run

app = typer.Typer(
    name="pyconvex",
    help="A reactive backend for Python in the model of Convex.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """A reactive backend for Python in the model of Convex."""


app.command()(dev)
app.command()(init)
app.command()(codegen)
app.command()(run)
app.command()(data)
app.command()(logs)
app.add_typer(env_app)
