"""``pyconvex run FN [ARGS]``: run a function on the running deployment and print its result.

Arguments and ``--identity`` are JSON5, as in Convex's CLI: ``'{body: "hi", n: 2}'``.
"""

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
from pyconvex.errors import PyconvexError
from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE, CliFailure, render_failure
from pyconvex.values import decode_value, encode_value

out = Console()
err = Console(stderr=True)


def run(
    function: Annotated[
        str, typer.Argument(help="The function's path: module:name, e.g. messages:send.")
    ],
    args: Annotated[
        str | None,
        typer.Argument(
            help="Its arguments as a JSON5 object, e.g. '{body: \"hi\"}' (default: {}).",
            show_default=False,
        ),
    ] = None,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch", help="For a query: print the result again on every change (Ctrl-C)."
        ),
    ] = False,
    identity: Annotated[
        str | None,
        typer.Option(
            metavar="JSON",
            help='Run as this user: a JSON5 object of claims, e.g. \'{subject: "u1", '
            'name: "Ann"}\' (ctx.auth.get_user_identity() returns it).',
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    admin_key: AdminKeyOption = None,
) -> None:
    """Run a query, mutation or action (internal ones too) and print its result as JSON."""
    with reported_failures():
        fn_args = _wire_args(_json5_object(args, "The arguments"))
        claims = None if identity is None else _json5_object(identity, "--identity")
        client = admin_client(url, admin_key)
        if watch:
            try:
                for outcome in client.watch_query(function, fn_args, claims):
                    _show(function, outcome)
            except KeyboardInterrupt:
                return
        elif not _show(function, client.run_function(function, fn_args, claims)):
            raise typer.Exit(EXIT_FAILURE)


def _json5_object(text: str | None, what: str) -> dict[str, Any]:
    import json5

    if text is None:
        return {}
    try:
        value = json5.loads(text)
    except ValueError as e:
        raise CliFailure(
            f"{what} are not valid JSON5" if what.endswith("s") else f"{what} is not valid JSON5",
            detail=f"{e}\n  {text}",
            hint="Write an object, e.g. '{body: \"hi\", n: 2}' (keys may be unquoted).",
            code=EXIT_USAGE,
        ) from None
    if not isinstance(value, dict):
        raise CliFailure(
            f"{what} must be an object",
            detail=f"got {type(value).__name__}: {text}",
            hint="Wrap the values in an object, e.g. '{body: \"hi\"}'.",
            code=EXIT_USAGE,
        )
    return value


def _wire_args(args: dict[str, Any]) -> dict[str, Any]:
    """The arguments in Convex's JSON: ``{"$integer": ...}`` read as an int64, Infinity and
    NaN sent as the floats they are."""
    try:
        encoded = encode_value(decode_value(args))
    except PyconvexError as e:
        raise CliFailure(
            "The arguments are not Convex values", detail=str(e), code=EXIT_USAGE
        ) from None
    assert isinstance(encoded, dict)
    return encoded


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
