"""Fixtures for the client tests: a real `pyconvex dev` (pyconvex.dev.launcher.DevServer) serving
a copy of tests/client/project/, one per module, or one per test for tests that kill it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyconvex.dev.launcher import DevServer

PROJECT = Path(__file__).parent / "project"


def copy_project(tmp: Path) -> Path:
    project = tmp / "project"
    shutil.copytree(
        PROJECT, project, ignore=shutil.ignore_patterns("__pycache__", ".pyconvex", "_generated")
    )
    return project


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    """One server per test module (tests keep apart by author, tag or slot)."""
    with DevServer(copy_project(tmp_path_factory.mktemp("client"))) as srv:
        yield srv


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[DevServer]:
    """A server of the test's own, for tests that stop or kill it."""
    with DevServer(copy_project(tmp_path)) as srv:
        yield srv


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A copy of the project, for a test that starts its server itself."""
    return copy_project(tmp_path)
