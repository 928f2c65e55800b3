"""Fixtures for the engine tests: deployments over tiny projects in ``tmp_path`` that close at
teardown (helpers in :mod:`support.deployment`).

    async def test_x(tmp_path, deployment):
        dep = await deployment({"schema.py": SCHEMA, "messages.py": MESSAGES})
        r = await dep.run_mutation("messages:send", {"body": "hi"})
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from support.deployment import DeploymentFactory, make_project

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.query.transaction import Limits


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[DeploymentFactory]:
    """Open deployments over a project in ``tmp_path/convex``; all are closed at teardown.

    ``await deployment(files)`` writes ``files`` (if given) and opens an in-memory deployment;
    ``persistent=True`` keeps its DuckDB file in ``tmp_path/data`` (reopen with the same call);
    ``limits=Limits(...)`` sets per-transaction limits.
    """
    opened: list[Deployment] = []

    async def factory(
        files: dict[str, str] | None = None,
        *,
        persistent: bool = False,
        data_dir: Path | None = None,
        limits: Limits | None = None,
    ) -> Deployment:
        functions_dir = make_project(tmp_path, files or {})
        if persistent and data_dir is None:
            data_dir = tmp_path / "data"
        dep = await Deployment.open(functions_dir, data_dir, limits=limits)
        opened.append(dep)
        return dep

    yield factory
    for dep in opened:
        if not dep.committer._closed:
            await dep.close()
