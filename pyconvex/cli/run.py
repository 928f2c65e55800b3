"""``pyconvex run FN [JSON]``: run a function on the running deployment and print its result."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from pyconvex.cli.admin_command import (
    AdminKeyOption,
    UrlOption,
    admin_client,
    plain,
    reported_failures,
)
from pyconvex.client.admin import FunctionOutcome
from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE, CliFailure, render_failure

out = Console()
err = Console(stderr=True)


def run(
    function: Annotated[
        str, typer.Argument(help="The function's path: module:name, e.g. messages:send.")
    ],
    args: Annotated[
        str | None,
        typer.Argument(
            help='Its arguments as a JSON object, e.g. \'{"body": "hi"}\' (default: {}).',
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="For a public query: print the result again on every change (Ctrl-C)."
        ),
    ] = False,
    identity: Annotated[
        str | None,
        typer.Option(
            help='Run as this user: a JSON object of claims, e.g. \'{"subject": "u1", '
            '"name": "Ann"}\' (ctx.auth.get_user_identity() returns it).',
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Run a query, mutation or action (internal ones too) and print its result as JSON."""
    with reported_failures():
        fn_args = _json_object(args, "the arguments (JSON)", "{}")
        claims = None if identity is None else _json_object(identity, "--identity", None)
        client = admin_client(url, admin_key)
        if watch:
            try:
                for outcome in client.watch_query(function, fn_args, claims):
                    _show(function, outcome)
            except KeyboardInterrupt:
                return
        elif not _show(function, client.run_function(function, fn_args, claims)):
            raise typer.Exit(EXIT_FAILURE)


def _json_object(text: str | None, what: str, default: Any) -> Any:
    if text is None:
        return json.loads(default)
    try:
        value = json.loads(text)
    except ValueError as e:
        raise CliFailure(
            f"{what} is not valid JSON", detail=f"{e}\n  {text}", code=EXIT_USAGE
        ) from None
    if not isinstance(value, dict):
        raise CliFailure(
            f"{what} must be a JSON object",
            detail=f"got {type(value).__name__}: {text}",
            hint='Wrap the values in an object, e.g. \'{"body": "hi"}\'.',
            code=EXIT_USAGE,
        )
    return value


def _show(function: str, outcome: FunctionOutcome) -> bool:
    """Print the log lines (stderr), then the result (stdout) or one error block."""
    for line in outcome.log_lines:
        err.print(f"[dim]{escape(line)}[/dim]", highlight=False)
    if outcome.ok:
        out.print_json(json.dumps(plain(outcome.value)))
        return True
    detail = outcome.error_message
    if outcome.has_error_data:
        detail += "\nerror data: " + json.dumps(plain(outcome.error_data), indent=2)
    render_failure(CliFailure(f"{function} failed", detail=detail))
    return False
