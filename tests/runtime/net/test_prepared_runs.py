"""Queries re-run while their batch is made durable: a subscription's new result is computed
as soon as the batch is handed to persistence, and handed out when the batch is durable; a
batch that fails never reaches a subscriber, and a subscription that ran again meanwhile is
run again at the batch's timestamp."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest
from support.channel_messages import FILES
from support.deployment import ok

import pyconvex.runtime.store.logged_persistence as logged_module
from pyconvex.errors import StorageError
from pyconvex.runtime.net.subscriptions import Subscription, SubscriptionManager


class Recorder:
    def __init__(self) -> None:
        self.updates: list[tuple[int, list[str]]] = []

    def subscriptions_updated(self, ts: int, changed: list[tuple[int, Subscription]]) -> None:
        self.updates += [(ts, [sub.body]) for _, sub in changed]


async def subscribed(deployment: Any) -> tuple[Any, SubscriptionManager, Recorder, Subscription]:
    """A persistent deployment of the channel project, its subscription manager, and one
    subscriber to ``messages:list`` of channel "a": (deployment, manager, recorder, sub)."""
    dep = await deployment(FILES, persistent=True)
    manager = SubscriptionManager(dep)
    recorder = Recorder()
    return (
        dep,
        manager,
        recorder,
        manager.subscribe(recorder, 1, "messages:list", [{"channel": "a"}]),
    )


def hold_appends(monkeypatch: pytest.MonkeyPatch, dep: Any) -> threading.Event:
    """Every write-ahead log append waits (on the log's thread) until the event is set."""
    # Never on the event loop (a first write after a pause is: see INLINE_AFTER_IDLE_S).
    monkeypatch.setattr(logged_module, "INLINE_AFTER_IDLE_S", float("inf"))
    log = dep.persistence._log
    append: Callable[..., Any] = log.append
    release = threading.Event()

    def held(*args: Any) -> Any:
        release.wait(30)
        return append(*args)

    monkeypatch.setattr(log, "append", held)
    return release


async def until(cond: Callable[[], bool]) -> None:
    for _ in range(500):
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("timed out")


async def send_held(
    dep: Any, manager: SubscriptionManager, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Future[Any], threading.Event]:
    """``messages:send`` to channel "a" with the log's appends held, once the queries it
    invalidates have been run ahead: the send, and the event that lets the log go on."""
    runs = manager.executions
    release = hold_appends(monkeypatch, dep)
    sent = asyncio.ensure_future(dep.run_mutation("messages:send", {"channel": "a", "body": "hi"}))
    await until(lambda: manager.executions == runs + 1)
    return sent, release


async def test_query_is_rerun_before_the_batch_is_durable_and_shown_after(
    deployment: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep, manager, recorder, sub = await subscribed(deployment)
    runs = manager.executions
    sent, release = await send_held(dep, manager, monkeypatch)  # re-run while not durable...
    assert not sent.done() and recorder.updates == []  # ...and not shown yet
    assert '"value":[]' in sub.body
    release.set()
    result = ok(await sent)
    await until(lambda: bool(recorder.updates))
    assert recorder.updates == [(manager.ts, [sub.body])]
    assert '"value":["hi"]' in sub.body and manager.ts >= dep.latest_ts
    assert manager.executions == runs + 1  # not run again at durability
    assert isinstance(result, str)
    manager.close()


async def test_a_failed_batch_never_reaches_subscribers(
    deployment: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep, manager, recorder, sub = await subscribed(deployment)
    runs = manager.executions
    log = dep.persistence._log

    def fail(*args: Any) -> None:
        raise StorageError("Appending to the write-ahead log failed: [Errno 28] No space left")

    monkeypatch.setattr(log, "append", fail)
    monkeypatch.setattr(logged_module, "INLINE_AFTER_IDLE_S", float("inf"))  # on its thread
    lost = await dep.run_mutation("messages:send", {"channel": "a", "body": "lost"})
    assert lost.failure is not None
    assert manager.executions == runs + 1  # it was run ahead, over the lost write
    assert recorder.updates == [] and '"value":[]' in sub.body
    monkeypatch.undo()
    ok(await dep.run_mutation("messages:send", {"channel": "a", "body": "kept"}))
    await until(lambda: bool(recorder.updates))
    assert '"value":["kept"]' in sub.body
    assert [body for _, bodies in recorder.updates for body in bodies] == [sub.body]
    manager.close()


async def test_a_subscription_added_while_the_batch_is_in_flight_sees_it(
    deployment: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    dep, manager, early, first = await subscribed(deployment)
    late = Recorder()
    runs = manager.executions
    sent, release = await send_held(dep, manager, monkeypatch)
    # Subscribed now (allowed internal functions: a subscription of its own), at the last
    # durable timestamp: it does not show the write yet and was not among the queries run
    # ahead, so it runs at the batch's timestamp once the batch is durable.
    second = manager.subscribe(late, 1, "messages:list", [{"channel": "a"}], allow_internal=True)
    assert second is not first and '"value":[]' in second.body
    release.set()
    ok(await sent)
    await until(lambda: bool(early.updates) and bool(late.updates))
    assert '"value":["hi"]' in first.body and '"value":["hi"]' in second.body
    assert manager.executions == runs + 3  # ahead; the new one; the new one again
    manager.close()
