"""Rendering the templates of pyconvex/templates/: file lists, context, never clobbering."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyconvex.scaffold import (
    ScaffoldError,
    TemplateExistsError,
    planned_files,
    render_template,
    template_names,
)

COMMON = [
    ".gitignore",
    "README.md",
    "convex/__init__.py",
    "convex/schema.py",
    "pyproject.toml",
    "tests/conftest.py",
]
WEB = [
    "index.html",
    "package-lock.json",
    "package.json",
    "src/App.tsx",
    "src/auth.ts",
    "src/convex.ts",
    "src/main.tsx",
    "src/styles.css",
    "tsconfig.json",
    "vite.config.js",
]
GOLDEN = {
    "blank": [*COMMON, "convex/notes.py", "tests/test_notes.py"],
    "chat": [
        *COMMON,
        *WEB,
        "src/Room.tsx",
        "convex/conversations.py",
        "convex/files.py",
        "convex/messages.py",
        "convex/notifications.py",
        "convex/presence.py",
        "convex/users.py",
        "tests/test_conversations.py",
        "tests/test_files.py",
        "tests/test_messages.py",
        "tests/test_notifications.py",
        "tests/test_presence.py",
    ],
    "tasks": [
        *COMMON,
        *WEB,
        "convex/crons.py",
        "convex/http.py",
        "convex/projects.py",
        "convex/tasks.py",
        "convex/users.py",
        "tests/test_automation.py",
        "tests/test_projects.py",
        "tests/test_tasks.py",
    ],
}
CONTEXT = {"project_name": "my-app", "pyconvex_version": "9.9.9", "template": "x"}


def test_the_three_templates_ship() -> None:
    assert template_names() == ["blank", "chat", "tasks"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_each_template_renders_its_golden_file_list(tmp_path: Path, name: str) -> None:
    written = render_template(name, tmp_path / "app", CONTEXT)
    on_disk = sorted(p.relative_to(tmp_path / "app").as_posix() for p in written)
    assert on_disk == sorted(GOLDEN[name])
    assert planned_files(name) == sorted(GOLDEN[name])
    found = sorted(
        p.relative_to(tmp_path / "app").as_posix()
        for p in (tmp_path / "app").rglob("*")
        if p.is_file()
    )
    assert found == sorted(GOLDEN[name])


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_context_reaches_the_files_and_nothing_is_left_unrendered(
    tmp_path: Path, name: str
) -> None:
    render_template(name, tmp_path, CONTEXT)
    pyproject = (tmp_path / "pyproject.toml").read_text()
    assert 'name = "my-app"' in pyproject
    assert '"pyconvex>=9.9.9"' in pyproject
    assert (tmp_path / "README.md").read_text().startswith("# my-app\n")
    assert ".pyconvex/" in (tmp_path / ".gitignore").read_text().splitlines()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert "{{" not in text and "{%" not in text, path


def test_unknown_template_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match=r"Unknown template 'todo'.*blank, chat, tasks"):
        render_template("todo", tmp_path, CONTEXT)
    assert list(tmp_path.iterdir()) == []


def test_existing_files_are_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "convex").mkdir()
    (tmp_path / "convex" / "schema.py").write_text("# mine\n")
    (tmp_path / "notes.txt").write_text("unrelated\n")
    with pytest.raises(TemplateExistsError) as info:
        render_template("blank", tmp_path, CONTEXT)
    assert info.value.existing == ["convex/schema.py"]
    assert "convex/schema.py" in str(info.value)
    # Nothing was written: not even the files that did not exist.
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["convex", "notes.txt", "schema.py"]
    assert (tmp_path / "convex" / "schema.py").read_text() == "# mine\n"


def test_force_overwrites_the_templates_files_only(tmp_path: Path) -> None:
    (tmp_path / "convex").mkdir()
    (tmp_path / "convex" / "schema.py").write_text("# mine\n")
    (tmp_path / "notes.txt").write_text("unrelated\n")
    render_template("blank", tmp_path, CONTEXT, force=True)
    assert "define_schema" in (tmp_path / "convex" / "schema.py").read_text()
    assert (tmp_path / "notes.txt").read_text() == "unrelated\n"


def test_rendering_again_into_an_untouched_project_changes_nothing(tmp_path: Path) -> None:
    first = render_template("chat", tmp_path, CONTEXT)
    (tmp_path / "convex" / "_generated").mkdir()  # what codegen adds is not the template's
    again = render_template("chat", tmp_path, CONTEXT)
    assert again == first
    # One edited file is a conflict again.
    (tmp_path / "README.md").write_text("# mine\n")
    with pytest.raises(TemplateExistsError) as info:
        render_template("chat", tmp_path, CONTEXT)
    assert info.value.existing == ["README.md"]


def test_other_files_in_the_directory_are_fine(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "LICENSE").write_text("MIT\n")
    render_template("blank", tmp_path, CONTEXT)
    assert (tmp_path / "LICENSE").read_text() == "MIT\n"


def test_a_file_as_destination_is_refused(tmp_path: Path) -> None:
    (tmp_path / "app").write_text("")
    with pytest.raises(ScaffoldError, match="not a directory"):
        render_template("blank", tmp_path / "app", CONTEXT)


def test_a_missing_context_variable_is_an_error_not_an_empty_string(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldError, match="project_name"):
        render_template("blank", tmp_path, {"pyconvex_version": "1"})
    assert list(tmp_path.iterdir()) == []
