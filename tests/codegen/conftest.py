"""Fixtures for the codegen tests: the example project (``project/``) copied into ``tmp_path``,
and tiny projects written inline.

    def test_x(chat_project: Path) -> None:
        generate(chat_project / "convex")
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PROJECT = HERE / "project"
GOLDEN = HERE / "golden"


def write_project(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (path under ``convex/`` -> dedented source) and return ``root/convex``."""
    functions = root / "convex"
    functions.mkdir(parents=True, exist_ok=True)
    for rel, source in files.items():
        path = functions / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    return functions


@pytest.fixture
def chat_project(tmp_path: Path) -> Path:
    """A copy of ``tests/codegen/project`` (schema, typed functions, an action, an internal
    module) in ``tmp_path``; returns the project root."""
    root = tmp_path / "app"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("_generated", "__pycache__"))
    return root
