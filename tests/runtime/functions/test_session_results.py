"""Mutation results kept for re-sends are bounded: by age (the re-send window) and by count,
in memory, at start-up, and in the DuckDB log when it is pruned."""

from __future__ import annotations

import pytest
from support.deployment import DeploymentFactory

from pyconvex.runtime.functions.session_results import WINDOW_NS, SessionResults
from pyconvex.runtime.store import committer


def test_old_and_excess_results_are_dropped() -> None:
    results = SessionResults(max_results=3)
    for i in range(5):
        results[("s", i)] = (1_000 + i, str(i))
    assert [("s", i) in results for i in range(5)] == [False, False, True, True, True]
    results[("s", 9)] = (1_000 + WINDOW_NS + 4, "late")  # everything before it is too old
    assert len(results) == 2 and results.get(("s", 9)) == (1_000 + WINDOW_NS + 4, "late")
    loaded = SessionResults({("a", 1): (0, "old"), ("a", 2): (WINDOW_NS + 10, "new")})
    assert ("a", 1) not in loaded and ("a", 2) in loaded


async def test_the_log_forgets_results_past_the_window(
    deployment: DeploymentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(committer, "PRUNE_EVERY", 50)
    monkeypatch.setattr(committer, "RESULTS_WINDOW_NS", 0)  # every result is already old
    dep = await deployment(
        {"m.py": "from pyconvex import mutation\n\n@mutation\nasync def one(ctx) -> float:\n"
                 "    await ctx.db.insert('t', {'x': 1.0})\n    return 1.0\n"},
        persistent=True,
    )  # fmt: skip
    for i in range(120):
        result = await dep.run_mutation("m:one", {}, idempotency_key=("session", i))
        assert result.failure is None
    rows = await dep.sql("SELECT count(*) FROM _documents WHERE table_number = -1")
    assert rows[0][0] < 120  # pruned as it went (at most what came since the last prune)
