"""What every admin command (``run``, ``data``, ``logs``, ``env``) shares: the ``--url`` /
``--admin-key`` options, the client they locate, and the exit code each failure ends with::

    def data(url: UrlOption = None, admin_key: AdminKeyOption = None) -> None:
        with reported_failures():
            client = admin_client(url, admin_key)
            ...

The transport is :class:`pyconvex.client.admin.AdminClient`; this module only turns its errors
into one readable block and an exit code (:mod:`pyconvex.failures`).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from pyconvex.client.admin import ADMIN_KEY_ENV, URL_ENV, AdminClient
from pyconvex.client.errors import (
    AdminKeyError,
    ClientError,
    DeploymentNotFoundError,
    RequestRefusedError,
    UnreachableError,
)
from pyconvex.failures import (
    EXIT_AUTH,
    EXIT_FAILURE,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliFailure,
    render_failure,
)
from pyconvex.project import ProjectError
from pyconvex.values import Int64, Value

START_DEV = "Start it with `pyconvex dev` in the project directory (or pass --url and --admin-key)."

#: The options every admin command takes.
UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar=URL_ENV,
        show_default=False,
        help="The deployment's URL (default: the one `pyconvex dev` serves for this project).",
    ),
]
AdminKeyOption = Annotated[
    str | None,
    typer.Option(
        "--admin-key",
        metavar="KEY",
        envvar=ADMIN_KEY_ENV,
        show_default=False,
        help="The deployment's admin key (default: .pyconvex/admin_key of this project).",
    ),
]


def admin_client(url: str | None, admin_key: str | None) -> AdminClient:
    """The deployment the options name, else the one serving this project."""
    return AdminClient.locate(url, admin_key)


@contextmanager
def reported_failures() -> Iterator[None]:
    """Render a failure (a :class:`CliFailure`, or an error talking to the deployment) as one
    error block and exit with its code."""
    try:
        yield
    except (CliFailure, ClientError, ProjectError) as e:
        failure = e if isinstance(e, CliFailure) else failure_of(e)
        render_failure(failure)
        raise typer.Exit(failure.code) from None


def failure_of(error: ClientError | ProjectError) -> CliFailure:
    """How a command reports ``error``: what, where, what to do, and the exit code."""
    if isinstance(error, ProjectError):
        return CliFailure("Cannot read the project settings", detail=str(error), code=EXIT_USAGE)
    if isinstance(error, DeploymentNotFoundError):
        return CliFailure(
            str(error),
            where=f"project {error.project} ({error.reason})" if error.project else None,
            hint=START_DEV,
            code=EXIT_UNAVAILABLE,
        )
    if isinstance(error, UnreachableError):
        return CliFailure(
            f"Cannot reach the deployment at {error.url}",
            detail=error.cause,
            hint=START_DEV,
            code=EXIT_UNAVAILABLE,
        )
    if isinstance(error, AdminKeyError):
        if error.url is None:
            return CliFailure(
                str(error),
                where=error.detail or None,
                hint="`pyconvex dev` creates it at first start; for another deployment pass "
                "--admin-key (or set PYCONVEX_ADMIN_KEY).",
                code=EXIT_AUTH,
            )
        return CliFailure(str(error), where=error.url, detail=error.detail, code=EXIT_AUTH)
    if isinstance(error, RequestRefusedError):
        if error.status == 0:
            return CliFailure(
                "The deployment closed the subscription", detail=error.message, code=EXIT_FAILURE
            )
        return CliFailure(
            f"Cannot {error.doing}",
            where=f"{error.url} ({error.code})",
            detail=error.message,
            code=EXIT_USAGE if error.status in (400, 404) else EXIT_FAILURE,
        )
    return CliFailure(str(error), code=EXIT_FAILURE)


def plain(value: Value) -> Any:
    """A Convex value as plain JSON for people to read, numbers as Python shows them (and as
    ``ConvexTest`` returns them): a float64 keeps its decimal point (``2.0``), an int64 is an
    integer (``5``); bytes become ``{"$bytes": base64}``, NaN and infinities strings::

        plain({"n": Int64(5), "x": 2.0, "b": b"hi"})  # {'n': 5, 'x': 2.0, 'b': {'$bytes': 'aGk='}}
    """
    if isinstance(value, Int64):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value).replace("inf", "Infinity").replace("nan", "NaN")
        return value
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value
