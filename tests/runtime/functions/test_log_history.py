"""The execution history behind ``pyconvex logs``: bounded, recorded by every query,
mutation and action, and followable live."""

from __future__ import annotations

import asyncio
import contextlib

from support.deployment import DeploymentFactory

from pyconvex.protocol import LogEntry
from pyconvex.runtime.functions.log_history import LogHistory
from pyconvex.runtime.functions.results import FunctionFailure

FUNCTIONS = {
    "jobs.py": """
        from pyconvex import ConvexError, action, mutation, query


        @query
        async def look(ctx) -> str:
            print("looking")
            return "ok"


        @mutation
        async def fail(ctx) -> None:
            print("about to fail")
            raise ConvexError("nope")


        @action
        async def work(ctx) -> str:
            return await ctx.run_query("jobs:look", {})
    """
}


def test_history_is_bounded_and_oldest_first() -> None:
    h = LogHistory(capacity=3)
    for i in range(5):
        h.record("query", f"m:f{i}", 1_000_000 * i, None, [f"[LOG] {i}"])
    assert [e.path for e in h.recent()] == ["m:f2", "m:f3", "m:f4"]
    assert [e.seq for e in h.recent(2)] == [3, 4]
    assert h.recent(0) == []
    assert h.total == 5 and h.first_seq == 2


def test_entries_round_trip_through_json() -> None:
    h = LogHistory()
    h.record("mutation", "m:f", 2_000_000, FunctionFailure("boom"), ["[ERROR] x"])
    entry = h.recent(1)[0]
    assert (entry.letter, entry.ok, entry.error, entry.started_ms) == ("M", False, "boom", 2.0)
    assert entry.duration_ms >= 0
    assert LogEntry.from_json(entry.to_json()) == entry
    assert entry.to_json()["status"] == "failure"


async def _next(queue: asyncio.Queue[str]) -> str:
    return await asyncio.wait_for(queue.get(), 5)


async def _read(h: LogHistory, history: int, into: asyncio.Queue[str]) -> None:
    async for entry in h.follow(history):
        into.put_nowait(entry.path)


async def test_follow_yields_history_then_new_entries() -> None:
    h = LogHistory()
    h.record("query", "m:old1", 0, None, [])
    h.record("query", "m:old2", 0, None, [])
    seen: asyncio.Queue[str] = asyncio.Queue()
    task = asyncio.create_task(_read(h, 1, seen))
    try:
        assert await _next(seen) == "m:old2"
        h.record("action", "m:new1", 0, None, [])
        h.record("action", "m:new2", 0, None, [])
        assert [await _next(seen), await _next(seen)] == ["m:new1", "m:new2"]
        h.record("action", "m:new3", 0, None, [])
        assert await _next(seen) == "m:new3"
    finally:
        task.cancel()


async def test_a_cancelled_reader_does_not_stop_the_others() -> None:
    h = LogHistory()
    first: asyncio.Queue[str] = asyncio.Queue()
    second: asyncio.Queue[str] = asyncio.Queue()
    h.record("query", "m:x", 0, None, [])
    a = asyncio.create_task(_read(h, 1, first))
    b = asyncio.create_task(_read(h, 1, second))
    try:
        assert (await _next(first), await _next(second)) == ("m:x", "m:x")
        a.cancel()  # both now wait on the same wake-up
        with contextlib.suppress(asyncio.CancelledError):
            await a
        h.record("query", "m:y", 0, None, [])
        assert await _next(second) == "m:y"
    finally:
        b.cancel()


async def test_every_execution_is_recorded_with_its_log_lines(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FUNCTIONS)
    dep.run_query("jobs:look")
    await dep.run_mutation("jobs:fail")
    await dep.run_action("jobs:work")
    dep.run_query("jobs:missing")
    entries = dep.log_history.recent()
    assert [(e.letter, e.path, e.ok) for e in entries] == [
        ("Q", "jobs:look", True),
        ("M", "jobs:fail", False),
        ("Q", "jobs:look", True),  # called by the action: its own execution
        ("A", "jobs:work", True),
        ("Q", "jobs:missing", False),  # runs nothing, but the developer sees what was asked
    ]
    assert entries[-1].error is not None and "Could not find" in entries[-1].error
    assert entries[0].log_lines == ["[LOG] looking"]
    assert entries[1].error is not None and "nope" in entries[1].error
    assert entries[1].log_lines == ["[LOG] about to fail"]
