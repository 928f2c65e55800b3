"""History stays bounded: under 100,000 updates of the same 100 documents the DuckDB log is
pruned of superseded versions as it goes, so its rows and its file stop growing, and a restart
still loads the newest version of every document."""

from __future__ import annotations

import pytest
from support.deployment import DeploymentFactory

from pyconvex.runtime.store import committer

FUNCTIONS = """
from pyconvex import mutation, query


@mutation
async def seed(ctx) -> None:
    for i in range(100):
        await ctx.db.insert("docs", {"i": float(i), "v": 0.0})


@mutation
async def bump(ctx, v: float) -> None:
    for doc in await ctx.db.query("docs").collect():
        await ctx.db.patch(doc["_id"], {"v": v})


@query
async def values(ctx) -> list[float]:
    return sorted({d["v"] for d in await ctx.db.query("docs").collect()})
"""


async def test_updates_of_the_same_documents_keep_the_log_flat(
    deployment: DeploymentFactory, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(committer, "PRUNE_EVERY", 5_000)
    dep = await deployment({"f.py": FUNCTIONS}, persistent=True)
    assert (await dep.run_mutation("f:seed")).failure is None
    sizes = []
    for round_ in range(1, 1001):  # 1,000 x 100 = 100,000 updates
        result = await dep.run_mutation("f:bump", {"v": float(round_)})
        assert result.failure is None
        if round_ % 250 == 0:
            rows = (await dep.sql("SELECT count(*) FROM _documents WHERE table_number >= 0"))[0][0]
            sizes.append(rows)
    # Never more than the live 100 plus what was written since the last prune began: a prune
    # runs in the background, so on a busy machine the next 5,000 may be written before it ends.
    assert max(sizes) <= 100 + 2 * 5_000 + 100, sizes
    assert dep.committer.pruned >= 90_000
    assert dep.run_query("f:values").value == [1000.0]
    await dep.close()
    reopened = await deployment(persistent=True)
    assert reopened.run_query("f:values").value == [1000.0]
