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


def test_a_session_keeps_its_newest_results_only() -> None:
    results = SessionResults(per_session=3)
    results[("quiet", 0)] = (999, "q")
    for i in range(5):
        results[("busy", i)] = (1_000 + i, str(i))
    assert [("busy", i) in results for i in range(5)] == [False, False, True, True, True]
    assert ("quiet", 0) in results  # another session's results are its own
    results[("busy", 3)] = (1_003, "again")  # replacing one does not push another out
    assert [("busy", i) in results for i in range(5)] == [False, False, True, True, True]
    # The window still drops old ones, and a session with none left is forgotten.
    results[("new", 0)] = (1_000 + WINDOW_NS + 10, "late")
    assert len(results) == 1 and set(results._sessions) == {"new"}


def test_many_sessions_at_their_cap_stay_bounded_and_drop_oldest_first() -> None:
    results = SessionResults(window_ns=10**12, max_results=300, per_session=5)
    for i in range(20_000):  # 100 sessions, each far past its cap
        results[(f"s{i % 100}", i // 100)] = (i, "null")
    assert len(results) == 300  # max_results: the oldest went first...
    assert (f"s{19_999 % 100}", 19_999 // 100) in results
    assert ("s0", 196) not in results and ("s0", 197) in results  # ...newest 3 of each
    # What tracks the order stays within a constant factor of what is held.
    assert len(results._order) <= 2 * len(results) + 1025
    # A result dropped (its batch failed) and stored again counts from its new time.
    results.pop(("s99", 199))
    results[("s99", 199)] = (30_000, "again")
    for i in range(20_000, 20_290):
        results[(f"t{i}", 0)] = (i, "null")
    assert results.get(("s99", 199)) == (30_000, "again")


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


async def test_the_log_keeps_a_sessions_newest_results_only(
    deployment: DeploymentFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyconvex.runtime.store import duckdb_log

    monkeypatch.setattr(duckdb_log, "RESULTS_PER_SESSION", 5)
    monkeypatch.setenv("PYCONVEX_WRITER", "thread")  # DuckDB in this process, patched
    dep = await deployment(
        {"m.py": "from pyconvex import mutation\n\n@mutation\nasync def one(ctx) -> float:\n"
                 "    await ctx.db.insert('t', {'x': 1.0})\n    return 1.0\n"},
        persistent=True,
    )  # fmt: skip
    for session, count in (("busy", 12), ("quiet", 2)):
        for i in range(count):
            result = await dep.run_mutation("m:one", {}, idempotency_key=(session, i))
            assert result.failure is None
    await dep.checkpoint()
    await dep.persistence.prune(0)
    rows = await dep.sql("SELECT id FROM _documents WHERE table_number = -1")
    kept = sorted(r[0].replace("\x00", ":") for r in rows)
    assert kept == sorted([*(f"busy:{i}" for i in range(7, 12)), "quiet:0", "quiet:1"])
