"""Shared helpers for the engine tests: tiny projects written into ``tmp_path`` and
deployments over them that close at teardown.

    async def test_x(tmp_path, deployment):
        dep = await deployment({"schema.py": SCHEMA, "messages.py": MESSAGES})
        r = await dep.run_mutation("messages:send", {"body": "hi"})
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.results import FunctionResult
from pyconvex.runtime.query.transaction import Limits
from pyconvex.runtime.store.read_set import Commit


def make_project(tmp_path: Path, files: dict[str, str], name: str = "convex") -> Path:
    """Write ``files`` (relative path -> source, dedented) under ``tmp_path/name``."""
    root = tmp_path / name
    root.mkdir(parents=True, exist_ok=True)
    for rel, source in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source).lstrip("\n"))
    return root


def ok(result: FunctionResult) -> Any:
    """The value of a successful call; fails the test with the failure message otherwise."""
    assert result.failure is None, result.failure
    return result.value


def failure_message(result: FunctionResult) -> str:
    assert result.failure is not None, f"expected a failure, got value {result.value!r}"
    return result.failure.message


class CommitLog:
    """Collects every durable commit announced by a deployment."""

    def __init__(self, dep: Deployment) -> None:
        self.commits: list[Commit] = []
        self.remove = dep.add_commit_listener(self._on_commit)

    def _on_commit(self, latest_ts: int, commits: list[Commit]) -> None:
        self.commits.extend(commits)

    def for_ts(self, ts: int) -> Commit:
        found = [c for c in self.commits if c.ts == ts]
        assert len(found) == 1, f"no single commit at ts {ts}: {[c.ts for c in self.commits]}"
        return found[0]


DeploymentFactory = Callable[..., Awaitable[Deployment]]


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
