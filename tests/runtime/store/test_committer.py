"""The committer forgets old versions a bounded number at a time: after a burst, the rest
goes in later loop turns, with clients served in between, not in one long stall."""

from __future__ import annotations

import asyncio

import pytest
from support.deployment import DeploymentFactory, ok

from pyconvex.runtime.store import memory

FUNCTIONS = """
from pyconvex import mutation, query


@mutation
async def seed(ctx) -> None:
    for i in range(100):
        await ctx.db.insert("docs", {"v": 0.0})


@mutation
async def bump(ctx, v: float) -> None:
    for doc in await ctx.db.query("docs").collect():
        await ctx.db.patch(doc["_id"], {"v": v})


@query
async def values(ctx) -> list[float]:
    return [d["v"] for d in await ctx.db.query("docs").collect()]
"""


async def test_versions_left_past_the_budget_are_forgotten_in_later_turns(
    deployment: DeploymentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory, "COLLECT_BUDGET", 5)
    dep = await deployment({"f.py": FUNCTIONS})
    dep.store.retention_ns = 0  # every superseded version may go once durable
    ok(await dep.run_mutation("f:seed"))
    ok(await dep.run_mutation("f:bump", {"v": 1.0}))  # 100 documents with an old version
    history = dep.store.tables["docs"].history
    assert 0 < len(history) < 100  # some forgotten by now, 5 a turn: not all at once
    for _ in range(50):  # no more commits: only the queued calls, a budget a turn
        await asyncio.sleep(0)
        if not history:
            break
    assert not history
    assert ok(dep.run_query("f:values")) == [1.0] * 100  # the newest versions stay
