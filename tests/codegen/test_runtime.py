"""The generated modules at run time: the example project served by a deployment, its action
calling functions through ``api`` and ``internal`` references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyconvex.codegen import generate
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.results import FunctionResult


def _ok(result: FunctionResult) -> Any:
    assert result.failure is None, result.failure
    return result.value


async def test_the_typed_example_project_runs(chat_project: Path) -> None:
    functions = chat_project / "convex"
    generate(functions)
    dep = await Deployment.open(functions, None)
    try:
        channel = _ok(await dep.run_mutation("channels:create", {"name": "general"}))
        assert _ok(await dep.run_mutation("channels:create", {"name": "general"})) == channel
        # The action runs messages:send twice and admin/audit:record through references.
        assert _ok(await dep.run_action("actions:post_twice", {"channel": channel, "body": "hi"}))
        assert _ok(dep.run_query("messages:count")) == 2
        latest = _ok(dep.run_query("messages:list", {"channel": channel, "limit": 1}))
        assert latest[0]["body"] == "hi" and latest[0]["status"] == "sent"
        _ok(await dep.run_mutation("messages:edit", {"id": latest[0]["_id"], "body": "hey"}))
        page = _ok(
            dep.run_query(
                "messages:page",
                {"channel": channel, "pagination_opts": {"numItems": 10, "cursor": None}},
            )
        )
        assert sorted(page["page"]) == ["hey", "hi"] and page["isDone"] is True
        assert _ok(dep.run_query("channels:find", {"name": "general"}))["_id"] == channel
        assert _ok(dep.run_query("channels:lookup", {"id": channel}))["name"] == "general"
        assert _ok(dep.run_query("channels:lookup", {"id": "nope"})) is None
        audit = await dep.run_mutation("admin/audit:record", {"what": "x"})
        assert audit.failure is not None  # internal: not callable from outside
    finally:
        await dep.close()
