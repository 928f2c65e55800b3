"""Fixtures for the codegen tests: the example project (``project/``) copied into ``tmp_path``
(helpers in :mod:`support.codegen`).

    def test_x(chat_project: Path) -> None:
        generate(chat_project / "convex")
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from support.codegen import PROJECT


@pytest.fixture
def chat_project(tmp_path: Path) -> Path:
    """A copy of ``tests/codegen/project`` (schema, typed functions, an action, an internal
    module) in ``tmp_path``; returns the project root."""
    root = tmp_path / "app"
    shutil.copytree(PROJECT, root, ignore=shutil.ignore_patterns("_generated", "__pycache__"))
    return root
