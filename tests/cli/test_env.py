"""`pyconvex env set|get|list|remove`: functions see changes at once, without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cli import assert_all_documented, flat, invoke, serve_project

from pyconvex.dev.launcher import DevServer
from pyconvex.failures import EXIT_FAILURE, EXIT_UNAVAILABLE, EXIT_USAGE


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    yield from serve_project(tmp_path_factory)


@pytest.mark.parametrize("command", ["set", "get", "list", "remove"])
def test_every_option_is_documented(command: str) -> None:
    assert_all_documented("env", command)


def test_set_get_list_remove_and_functions_see_it(
    dev: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    def cli(*args: str) -> str:
        r = invoke(dev.project, *args, monkeypatch=monkeypatch)
        assert r.exit_code == 0, r.output
        return r.stdout

    assert cli("run", "messages:greeting") == '"hello"\n'
    assert cli("env", "set", "GREETING", "hi there") == "Set GREETING.\n"
    assert cli("run", "messages:greeting") == '"hi there"\n'  # no restart
    assert cli("env", "set", "GREETING=bonjour") == "Updated GREETING.\n"
    assert cli("env", "set", "GREETING", "bonjour") == "GREETING already had that value.\n"
    assert cli("env", "set", "API_KEY", "a=b c") == "Set API_KEY.\n"
    assert cli("env", "get", "GREETING") == "bonjour\n"
    assert cli("env", "list") == "API_KEY=a=b c\nGREETING=bonjour\n"
    assert cli("run", "messages:greeting") == '"bonjour"\n'
    assert cli("env", "remove", "GREETING") == "Removed GREETING.\n"
    assert cli("env", "remove", "GREETING") == "GREETING was not set.\n"
    assert cli("run", "messages:greeting") == '"hello"\n'


def test_aliases_and_a_value_from_stdin(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    def cli(*args: str, input: str | None = None) -> str:
        r = invoke(dev.project, *args, monkeypatch=monkeypatch, input=input)
        assert r.exit_code == 0, r.output
        return r.stdout

    # `env set NAME` reads the value from stdin (one trailing newline dropped): no secret in
    # the shell history.
    assert cli("env", "set", "TOKEN", input="s3cret value\n") == "Set TOKEN.\n"
    assert cli("env", "get", "TOKEN") == "s3cret value\n"
    assert cli("env", "rm", "TOKEN") == "Removed TOKEN.\n"
    assert cli("env", "set", "TOKEN", input="two\nlines\n") == "Set TOKEN.\n"
    assert cli("env", "get", "TOKEN") == "two\nlines\n"
    assert cli("env", "unset", "TOKEN") == "Removed TOKEN.\n"
    assert cli("env", "unset", "TOKEN") == "TOKEN was not set.\n"
    help_text = cli("env", "--help")
    assert "rm" not in help_text.split() and "also: env rm, env unset" in flat(help_text)


def test_missing_variable(dev: DevServer, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(dev.project, "env", "get", "NOPE", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_FAILURE
    assert "No environment variable NOPE" in flat(r.stderr)
    assert "pyconvex env set NOPE VALUE" in flat(r.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["9LIVES", "x"], "Invalid environment variable name '9LIVES'"),
        (["A" * 41, "x"], "the limit is 40"),
        (["BIG", "x" * 9000], "the limit is 8192 bytes"),
        (["NOVALUE"], "No value for NOVALUE"),
    ],
)
def test_bad_names_and_values_are_refused(
    dev: DevServer, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    r = invoke(dev.project, "env", "set", *args, monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_USAGE
    assert message in flat(r.stderr)


def test_no_deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    r = invoke(tmp_path, "env", "list", monkeypatch=monkeypatch)
    assert r.exit_code == EXIT_UNAVAILABLE
    assert "pyconvex dev" in flat(r.stderr)
