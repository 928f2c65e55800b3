"""`pyconvex init`: the command a new user runs first (typer's CliRunner, in process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pyconvex.cli.main import app
from pyconvex.failures import EXIT_FAILURE, EXIT_USAGE

runner = CliRunner()

GENERATED = ["__init__.py", "api.py", "data_model.py", "server.py"]


def flat(text: str) -> str:
    """Output without rich's box drawing and line wrapping, for substring checks."""
    for box in "│╭╮╰╯─":
        text = text.replace(box, " ")
    return " ".join(text.split())


def test_help_documents_the_templates_and_options() -> None:
    result = runner.invoke(app, ["init", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = flat(result.output)
    for expected in (
        "'chat' (default)",
        "'tasks'",
        "'blank'",
        "--template",
        "--force",
        "DIRECTORY",
    ):
        assert expected in out
    assert "init" in runner.invoke(app, ["--help"]).output


def test_init_renders_the_template_runs_codegen_and_prints_next_steps(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "notes"), "--template", "blank"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "notes"
    assert (root / "convex" / "notes.py").is_file()
    assert (root / ".gitignore").is_file()
    for name in GENERATED:
        assert (root / "convex" / "_generated" / name).is_file(), name
    out = flat(result.output)
    assert "Created the blank project notes" in out
    assert "cd " in out and "pyconvex dev" in out and "pytest" in out


def test_chat_is_the_default_template(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path / "app")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "app" / "convex" / "messages.py").is_file()


def test_init_without_a_directory_uses_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["init", "-t", "tasks"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "convex" / "tasks.py").is_file()
    assert "cd " not in flat(result.output)


def test_init_refuses_to_overwrite_and_force_overwrites(tmp_path: Path) -> None:
    root = tmp_path / "app"
    assert runner.invoke(app, ["init", str(root), "-t", "blank"]).exit_code == 0
    notes = root / "convex" / "notes.py"
    notes.write_text("# my own work\n")

    result = runner.invoke(app, ["init", str(root), "-t", "blank"], env={"COLUMNS": "200"})
    assert result.exit_code == EXIT_FAILURE
    out = flat(result.output)
    assert "already exist" in out and "convex/notes.py" in out and "--force" in out
    assert notes.read_text() == "# my own work\n"

    # Running it again on the untouched files alone would be fine: only the edit conflicts.
    assert "convex/schema.py" not in out
    result = runner.invoke(app, ["init", str(root), "-t", "blank", "--force"])
    assert result.exit_code == 0, result.output
    assert "# my own work" not in notes.read_text()


def test_an_unknown_template_is_a_usage_error_listing_the_templates(tmp_path: Path) -> None:
    result = runner.invoke(app, ["init", str(tmp_path), "-t", "todo"], env={"COLUMNS": "200"})
    assert result.exit_code == EXIT_USAGE
    assert "Unknown template 'todo'" in flat(result.output)
    assert "blank, chat, tasks" in flat(result.output)
    assert list(tmp_path.iterdir()) == []


def test_init_again_on_an_untouched_project_succeeds(tmp_path: Path) -> None:
    # So `pyconvex init myapp && cd myapp && pyconvex dev` can be run twice.
    assert runner.invoke(app, ["init", str(tmp_path / "app")]).exit_code == 0
    result = runner.invoke(app, ["init", str(tmp_path / "app")])
    assert result.exit_code == 0, result.output


def test_next_steps_are_commands_that_work_from_where_init_ran(tmp_path: Path) -> None:
    # Run as a user would: the venv's pyconvex by path, not on PATH; every printed command
    # then works as printed (pyconvex dev is started and stopped; mypy runs in test_projects).
    env = {k: v for k, v in os.environ.items() if k not in ("PYCONVEX_URL", "VIRTUAL_ENV")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(p) != Path(sys.executable).parent
    )
    scripts = Path(sys.executable).parent
    done = subprocess.run(
        [str(scripts / "pyconvex"), "init", "app", "-t", "blank"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    steps = done.stdout.split("Next steps:\n")[1].splitlines()
    commands = [line.strip().split("  ")[0] for line in steps if line.startswith("  ")]
    assert commands[0] == "cd app"
    assert commands[1].endswith("pyconvex dev") and commands[1] != "pyconvex dev"
    assert commands[-1].endswith("python -m mypy convex tests")
    project = tmp_path / "app"
    for command in commands[1:-1]:
        if command.endswith("pyconvex dev"):
            command += " --once"  # the same server start, exiting after the first push
        if "pip install" in command:
            continue  # the test extra's tools are installed already (next test)
        run = subprocess.run(
            command, shell=True, cwd=project, env=env, capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, f"{command}:\n{run.stdout}\n{run.stderr}"


def test_next_steps_install_the_dev_extra_when_its_tools_are_missing(tmp_path: Path) -> None:
    from pyconvex.scaffold.next_steps import next_steps

    venv = tmp_path / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "pyconvex").write_text("")
    steps = next_steps(
        tmp_path / "app", cwd=tmp_path, executable=venv / "python", missing_tools=["mypy"]
    )
    commands = [s.command for s in steps]
    assert commands == [
        "cd app",
        "../.venv/bin/pyconvex dev",
        "../.venv/bin/python -m pip install -e '.[dev]'",
        "../.venv/bin/python -m pytest",
        "../.venv/bin/python -m mypy convex tests",
    ]
    pyproject = Path(__file__).parents[2] / "pyconvex/templates/blank/pyproject.toml.jinja"
    text = pyproject.read_text()
    assert "[project.optional-dependencies]" in text and '"mypy>=' in text
    assert "bypass-selection = true" in text  # installing the project installs no package
