"""Pipelined mutations (issue 11): a mutation runs as soon as the previous one is applied to
memory, not once it is durable; each is reported once what it wrote or read is durable; a
failed batch fails every mutation that ran after it and leaves nothing of them in memory."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from support.deployment import ok

from pyconvex.errors import StorageError
from pyconvex.runtime.net.app import create_app

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"channel": v.string(), "body": v.string()})
        .index("by_channel", ["channel"]),
})
"""

MESSAGES = """
from pyconvex import ConvexError, mutation, query, v


@mutation(args={"channel": v.string(), "body": v.string()})
async def send(ctx, channel, body):
    return await ctx.db.insert("messages", {"channel": channel, "body": body})


@mutation(args={"channel": v.string()})
async def count(ctx, channel):
    docs = await ctx.db.query("messages").with_index(
        "by_channel", lambda q: q.eq("channel", channel)).collect()
    return len(docs)


@mutation(args={"channel": v.string()})
async def refuse_if_any(ctx, channel):
    if await ctx.db.query("messages").with_index(
            "by_channel", lambda q: q.eq("channel", channel)).first():
        raise ConvexError({"code": "NOT_EMPTY"})


@query(args={"channel": v.string()})
async def list(ctx, channel):
    docs = await ctx.db.query("messages").with_index(
        "by_channel", lambda q: q.eq("channel", channel)).collect()
    return [d["body"] for d in docs]
"""

FILES = {"schema.py": SCHEMA, "messages.py": MESSAGES}


def fail_to_append(*args: Any) -> None:
    raise StorageError("Appending to the write-ahead log failed: [Errno 28] No space left")


async def test_the_next_mutation_runs_before_the_previous_one_is_durable(deployment: Any) -> None:
    dep = await deployment(FILES)
    batches = dep.committer.batches
    first = dep.apply_mutation("messages:send", {"channel": "a", "body": "1"})
    assert first.durable is not None and not first.durable.done()
    # Runs now, reading the first one's write although it is not durable yet...
    second = dep.apply_mutation("messages:count", {"channel": "a"})
    assert second.result.value == 1
    # ...which queries (at the durable timestamp) do not see yet.
    assert ok(dep.run_query("messages:list", {"channel": "a"})) == []
    third = dep.apply_mutation("messages:send", {"channel": "a", "body": "2"})
    results = [await m.outcome() for m in (first, second, third)]
    assert [r.failure for r in results] == [None, None, None]
    # The read-only one is reported at a timestamp that includes what it read.
    assert results[0].ts is not None and results[1].ts is not None
    assert results[1].ts >= results[0].ts
    assert ok(dep.run_query("messages:list", {"channel": "a"})) == ["1", "2"]
    assert dep.committer.batches - batches <= 2  # not one durable commit per mutation


async def test_a_failed_batch_fails_everything_that_ran_after_it(
    deployment: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep = await deployment(FILES, persistent=True)
    ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "kept"}))
    ok(await dep.run_mutation("messages:send", {"channel": "b", "body": "kept"}))
    log = dep.persistence._log  # the write-ahead log's file: every append now fails
    monkeypatch.setattr(log, "append", fail_to_append)
    applied = [
        dep.apply_mutation("messages:send", {"channel": "c", "body": "lost"}),
        dep.apply_mutation("messages:count", {"channel": "c"}),  # read the lost write
        dep.apply_mutation("messages:refuse_if_any", {"channel": "c"}),  # failed because of it
        dep.apply_mutation("messages:send", {"channel": "c", "body": "lost too"}),
    ]
    assert applied[1].result.value == 1
    assert applied[2].result.failure is not None and applied[2].result.failure.is_convex_error
    results = await asyncio.gather(*(m.outcome() for m in applied))
    for r in results:
        assert r.failure is not None and re.match(
            r"\[Request ID: \w+\] Server Error\n", r.failure.message
        )
        assert not r.failure.is_convex_error
    assert ok(dep.run_query("messages:list", {"channel": "c"})) == []
    monkeypatch.undo()
    assert ok(await dep.run_mutation("messages:count", {"channel": "c"})) == 0  # nothing in memory
    ok(await dep.run_mutation("messages:send", {"channel": "c", "body": "after"}))
    assert ok(dep.run_query("messages:list", {"channel": "c"})) == ["after"]


async def test_a_mutation_that_read_nothing_pending_is_answered_at_once(deployment: Any) -> None:
    dep = await deployment(FILES)
    ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "1"}))
    counted = dep.apply_mutation("messages:count", {"channel": "a"})
    assert counted.durable is None and counted.settle().value == 1


async def test_concurrent_http_mutations_pipeline(deployment: Any) -> None:
    dep = await deployment(FILES)
    app = create_app(dep)
    batches = dep.committer.batches
    n = 50
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        responses = await asyncio.gather(
            *(
                http.post(
                    "/api/mutation",
                    json={"path": "messages:send", "args": {"channel": "h", "body": str(i)}},
                )
                for i in range(n)
            )
        )
    assert all(r.json()["status"] == "success" for r in responses)
    assert sorted(ok(dep.run_query("messages:list", {"channel": "h"})), key=int) == [
        str(i) for i in range(n)
    ]
    assert dep.committer.batches - batches < n  # they did not wait for each other's commit
