"""``pyconvex codegen``: what it writes and says, and its errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.codegen import write_project
from typer.testing import CliRunner, Result

from pyconvex.cli.main import app
from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE


def _invoke(root: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.chdir(root)
    return CliRunner().invoke(app, ["codegen", *args], catch_exceptions=False)


def _flat(text: str) -> str:
    return " ".join(re.sub(r"[╭╮╰╯│─]", " ", text).split())


def test_writes_the_generated_modules_then_says_they_are_up_to_date(
    chat_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = _invoke(chat_project, monkeypatch)
    assert first.exit_code == 0, first.output
    assert first.output.splitlines() == [
        f"wrote convex/_generated/{name}"
        for name in (
            "__init__.py",
            "data_model.py",
            "server.py",
            "dataModel.d.ts",
            "api.py",
            "api.js",
            "api.d.ts",
        )
    ]
    again = _invoke(chat_project, monkeypatch)
    assert again.exit_code == 0
    assert again.output.strip() == "convex/_generated/ is up to date."


def test_uses_the_functions_directory_from_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.pyconvex]\nfunctions = "backend"\n')
    (tmp_path / "backend").mkdir()
    result = _invoke(tmp_path, monkeypatch)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "backend" / "_generated" / "server.py").is_file()


def test_outside_a_project_says_where_to_run_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _invoke(tmp_path, monkeypatch)
    assert result.exit_code == EXIT_USAGE
    text = _flat(result.output)
    assert "No pyconvex project here" in text and "No functions directory" in text


def test_an_import_error_names_the_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_project(
        tmp_path,
        {
            "schema.py": "from pyconvex import define_schema\n\nschema = define_schema({})\n",
            "broken.py": "from pyconvex import query\n\nx = 1 +\n",
        },
    )
    result = _invoke(tmp_path, monkeypatch)
    assert result.exit_code == EXIT_FAILURE
    text = _flat(result.output)
    assert "Could not load your functions" in text
    assert "where: convex/broken.py:3" in text and "SyntaxError" in text
    # The schema imported, so its modules are there for the fixed code to import.
    assert (tmp_path / "convex" / "_generated" / "server.py").is_file()


def test_has_help() -> None:
    result = CliRunner().invoke(app, ["codegen", "--help"])
    assert result.exit_code == 0
    assert "convex/_generated/" in _flat(result.output)
