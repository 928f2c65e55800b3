"""Every command and every option is documented (`--help` says what it does)."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from pyconvex.cli.main import app

# typer builds click-style command objects (its own vendored click): duck-typed here.
ROOT: Any = typer.main.get_command(app)


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        out.append((*prefix, name))
        if hasattr(command, "commands"):
            out += _commands(command, (*prefix, name))
    return out


COMMANDS = _commands(ROOT)


def _resolve(path: tuple[str, ...]) -> Any:
    command = ROOT
    for name in path:
        command = command.commands[name]
    return command


def test_the_documented_commands_exist() -> None:
    names = {path[0] for path in COMMANDS}
    assert {"init", "dev", "codegen", "run", "data", "logs", "env"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_and_option_has_help(path: tuple[str, ...]) -> None:
    command = _resolve(path)
    assert (command.help or "").strip(), f"pyconvex {' '.join(path)} has no help text"
    for param in command.params:
        if param.param_type_name == "option" and param.name != "help":
            assert (param.help or "").strip(), (
                f"pyconvex {' '.join(path)} {'/'.join(param.opts)} has no help text"
            )
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "pyconvex")
def test_help_names_what_options_take_without_type_tags(path: tuple[str, ...]) -> None:
    long = CliRunner().invoke(app, [*path, "--help"], terminal_width=200)
    short = CliRunner().invoke(app, [*path, "-h"], terminal_width=200)
    assert long.exit_code == short.exit_code == 0, long.output + short.output
    assert long.output == short.output
    for tag in ("<bool>", "<str>", "<int>", "<path>", "TEXT", "INTEGER"):
        assert tag not in long.output, f"{tag} in the help of pyconvex {' '.join(path)}"


def test_options_are_named_by_what_they_take() -> None:
    text = CliRunner().invoke(app, ["data", "--help"], terminal_width=200).output
    assert "--limit" in text and " N " in text
    assert "asc|desc" in text and "table|json|jsonl" in text
    assert "--admin-key" in text and " KEY " in text and " URL " in text
    run_help = CliRunner().invoke(app, ["run", "--help"], terminal_width=200).output
    assert "FUNCTION" in run_help and "JSON5" in run_help


def test_version() -> None:
    from pyconvex import __version__

    for flag in ("--version", "-V"):
        result = CliRunner().invoke(app, [flag])
        assert (result.exit_code, result.output) == (0, f"pyconvex {__version__}\n")
