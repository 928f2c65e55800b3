"""Helpers for tests over a real engine: tiny projects written into ``tmp_path``, results
unwrapped, commits collected. The ``deployment`` fixture (tests/runtime/conftest.py) opens
deployments over such projects::

    from support.deployment import failure_message, ok

    async def test_x(deployment):
        dep = await deployment({"schema.py": SCHEMA, "messages.py": MESSAGES})
        assert ok(await dep.run_mutation("messages:send", {"body": "hi"}))
"""

from __future__ import annotations

import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.results import FunctionResult
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
