"""The typer app and command classes every command module uses, so help reads the same
everywhere: ``-h`` and ``--help``, and options named by what they take (``--port PORT``,
``--order asc|desc``) rather than tagged with Python types (``<int>``, ``<bool>``)::

    env_app = typer_app("env", "Manage the deployment's environment variables.")

    @env_app.command("list", cls=Command)
    def list_() -> None: ...
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def _without_type_tags(params: list[Any]) -> list[Any]:
    for param in params:
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = (param.name or "").upper()
            # The name column already says what it is; the type column would add "<str>".
            param.display_type_rich = _no_type  # type: ignore[method-assign]
        elif param.metavar is None:
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                param.metavar = ""
            else:
                param.metavar = _choices(param) or _option_name(param)
    return params


def _no_type(ctx: Any) -> None:
    return None


def _choices(param: Any) -> str | None:
    descriptor = getattr(param, "type_descriptor", None)
    choices = getattr(descriptor, "choices", None) or getattr(
        getattr(param, "type", None), "choices", None
    )
    if not choices:
        return None
    return "|".join(str(getattr(c, "value", c)) for c in choices)


def _option_name(param: Any) -> str:
    longest = str(max(param.opts, key=len))
    return longest.lstrip("-").replace("-", "_").upper()


class Command(TyperCommand):
    """A command whose help shows no type tags (see the module docstring)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_type_tags(super().get_params(ctx))


class Group(TyperGroup):
    """A command group whose help shows no type tags (see the module docstring)."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _without_type_tags(super().get_params(ctx))


def typer_app(name: str, help: str) -> typer.Typer:
    """A command group (``pyconvex`` itself, ``pyconvex env``) with the shared help settings."""
    return typer.Typer(
        name=name,
        help=help,
        cls=Group,
        context_settings=CONTEXT_SETTINGS,
        no_args_is_help=True,
        add_completion=False,
    )
