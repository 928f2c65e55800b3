"""Shared subscriptions and exact invalidation, against the real engine."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support.channel_messages import MESSAGES, SCHEMA

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.net.subscriptions import Subscription, SubscriptionManager, decode_args


class Recorder:
    def __init__(self) -> None:
        self.updates: list[tuple[int, list[int]]] = []

    def subscriptions_updated(self, ts: int, changed: list[tuple[int, Subscription]]) -> None:
        self.updates.append((ts, sorted(qid for qid, _ in changed)))


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Deployment]:
    functions = tmp_path / "convex"
    functions.mkdir()
    (functions / "schema.py").write_text(textwrap.dedent(SCHEMA))
    (functions / "messages.py").write_text(textwrap.dedent(MESSAGES))
    deployment = await Deployment.open(functions, None)
    yield deployment
    await deployment.close()


async def send(engine: Deployment, channel: str, body: str) -> Any:
    result = await engine.run_mutation("messages:send", {"channel": channel, "body": body})
    assert result.ok, result.failure
    return result


async def test_identical_subscriptions_execute_once(engine: Deployment) -> None:
    manager = SubscriptionManager(engine)
    subscribers = [Recorder() for _ in range(50)]
    subs = {manager.subscribe(s, 1, "messages:list", [{"channel": "a"}]) for s in subscribers}
    assert len(subs) == 1 and manager.executions == 1
    await send(engine, "a", "hi")
    assert manager.executions == 2
    assert all(s.updates and s.updates[-1][1] == [1] for s in subscribers)
    manager.close()


async def test_distinct_subscriptions_a_write_reruns_only_its_own(engine: Deployment) -> None:
    manager = SubscriptionManager(engine)
    recorder = Recorder()
    for i in range(1000):
        manager.subscribe(recorder, i, "messages:list", [{"channel": f"c{i}"}])
    assert manager.executions == 1000
    checks = manager.range_checks
    result = await send(engine, "c500", "hello")
    assert manager.executions == 1001
    # (Probed twice: when the query is re-run ahead of the batch's durability, and when the
    # batch is durable, for subscriptions added meanwhile.)
    assert manager.range_checks - checks <= 10, "a write should not probe every subscription"
    assert recorder.updates == [(manager.ts, [500])]
    assert manager.ts >= result.ts
    manager.close()


async def test_subscribers_hear_of_a_commit_before_the_other_listeners(engine: Deployment) -> None:
    # The engine's own listeners (scheduler, crons, file storage) are added when it opens,
    # before any subscription manager: the updates clients wait for still go out first.
    order: list[str] = []
    engine.add_commit_listener(lambda ts, commits: order.append("listener"))
    manager = SubscriptionManager(engine)
    recorder = Recorder()
    manager.subscribe(recorder, 1, "messages:list", [{"channel": "a"}])
    original = recorder.subscriptions_updated

    def updated(ts: int, changed: list[tuple[int, Subscription]]) -> None:
        order.append("subscriber")
        original(ts, changed)

    recorder.subscriptions_updated = updated  # type: ignore[method-assign]
    await send(engine, "a", "hi")
    assert order == ["subscriber", "listener"]
    manager.close()


async def test_write_outside_range_does_not_rerun(engine: Deployment) -> None:
    manager = SubscriptionManager(engine)
    recorder = Recorder()
    manager.subscribe(recorder, 1, "messages:latest", [{"channel": "a"}])
    await send(engine, "b", "elsewhere")
    assert manager.executions == 1 and recorder.updates == []
    await send(engine, "a", "first")
    assert manager.executions == 2 and recorder.updates[-1][1] == [1]
    manager.close()


async def test_unsubscribe_drops_shared_subscription(engine: Deployment) -> None:
    manager = SubscriptionManager(engine)
    a, b = Recorder(), Recorder()
    sub = manager.subscribe(a, 1, "messages:list", [{"channel": "a"}])
    assert manager.subscribe(b, 9, "messages.js:list", {"channel": "a"}) is sub
    manager.unsubscribe(a, 1, sub)
    assert len(manager) == 1
    manager.unsubscribe(b, 9, sub)
    assert len(manager) == 0
    await send(engine, "a", "nobody listens")
    assert manager.executions == 1
    manager.close()


def test_decode_args_forms() -> None:
    assert decode_args([{"n": 1}]) == {"n": 1.0}
    assert decode_args({"n": 1}) == {"n": 1.0}
    assert decode_args([]) == {}
    for bad in ([1], [{}, {}], "x", 3):
        with pytest.raises(ValueError, match="args"):
            decode_args(bad)
