"""``pyconvex env set|get|list|remove``: the deployment's environment variables.

Functions read them with ``from pyconvex import env`` (``env["NAME"]``, ``env.get("NAME")``);
a change applies at once, without a restart. ``remove`` is also ``rm`` and ``unset``;
``env set NAME`` with no value reads it from stdin (a secret stays out of the shell history).
"""

from __future__ import annotations

import sys
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
from pyconvex.cli.command import Command, typer_app
from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE, CliFailure

env_app = typer_app(
    "env", "Manage the deployment's environment variables (read in functions as pyconvex.env)."
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_SET = {
    "created": "Set {name}.",
    "updated": "Updated {name}.",
    "unchanged": "{name} already had that value.",
}


@env_app.command("set", cls=Command)
def set_(
    name: Annotated[str, typer.Argument(help="Variable name (letters, digits, _), or NAME=VALUE.")],
    value: Annotated[
        str | None,
        typer.Argument(
            help="Its value (up to 8 KiB). Left out: read from stdin (prompted on a terminal).",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Set a variable (functions see the new value at once)."""
    with reported_failures():
        if value is None:
            name, eq, value = name.partition("=")
            if not eq:
                value = _read_value(name)
        outcome = admin_client(url, admin_key).env_set(name, value)
    out.print(escape(_SET.get(outcome, "{name}: " + outcome).format(name=name)))


@env_app.command("get", cls=Command)
def get(
    name: Annotated[str, typer.Argument(help="Variable name.")],
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Print a variable's value."""
    with reported_failures():
        variables = admin_client(url, admin_key).env_list()
        if name not in variables:
            raise CliFailure(
                f"No environment variable {name}",
                detail=f"Set: {', '.join(sorted(variables)) or 'none'}.",
                hint=f"pyconvex env set {name} VALUE",
                code=EXIT_FAILURE,
            )
    print(variables[name])


@env_app.command("list", cls=Command)
def list_(url: UrlOption = None, admin_key: AdminKeyOption = None) -> None:
    """Print every variable as NAME=VALUE."""
    with reported_failures():
        variables = admin_client(url, admin_key).env_list()
    if not variables:
        err.print("No environment variables set: pyconvex env set NAME VALUE")
    for name in sorted(variables):
        print(f"{name}={variables[name]}")


@env_app.command("remove", cls=Command)
def remove(
    name: Annotated[str, typer.Argument(help="Variable name.")],
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Remove a variable (also: env rm, env unset)."""
    with reported_failures():
        outcome = admin_client(url, admin_key).env_set(name, None)
    out.print(f"Removed {name}." if outcome == "removed" else f"{name} was not set.")


for alias in ("rm", "unset"):
    env_app.command(alias, cls=Command, hidden=True, help="Remove a variable (as env remove).")(
        remove
    )


def _read_value(name: str) -> str:
    """The value of ``name`` from stdin: prompted (hidden) on a terminal, else all of it minus
    one trailing newline (``echo $KEY | pyconvex env set NAME``)."""
    if sys.stdin is not None and sys.stdin.isatty():
        return str(typer.prompt(f"Value of {name}", hide_input=True))
    text = "" if sys.stdin is None else sys.stdin.read()
    if not text:
        raise CliFailure(
            f"No value for {name}",
            hint=f"pyconvex env set {name} VALUE (or {name}=VALUE, or the value on stdin).",
            code=EXIT_USAGE,
        )
    return text[:-1] if text.endswith("\n") else text
