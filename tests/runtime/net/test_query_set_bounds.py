"""One ModifyQuerySet cannot stall every client (issue 10, item 3): added queries run a slice
per loop turn with other sockets served in between, Transitions are capped in size (split at
one ts), a connection holds a bounded number of subscriptions, and a query reads at most
Convex's limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from support.deployment import DeploymentFactory
from support.live_sync import LiveServer, RawSync, Watcher, http_call, live_server

from pyconvex.runtime.net.sync_socket import SyncConfig
from pyconvex.runtime.query.transaction import Limits

MESSAGES = """
from pyconvex import mutation, query, v

@query(args={})
async def list(ctx):
    return [d["body"] for d in await ctx.db.query("messages").collect()]

@query(args={"slot": v.float64()})
async def scan(ctx, slot):
    # Reads the whole table: one distinct, expensive subscription per slot.
    docs = await ctx.db.query("items").collect()
    return [slot, len(docs)]

@query(args={"slot": v.float64(), "size": v.float64()})
async def blob(ctx, slot, size):
    messages = await ctx.db.query("messages").collect()  # changes with every message
    return f"{int(slot)}:{len(messages)}:" + "x" * int(size)

@query(args={})
async def everything(ctx):
    return len(await ctx.db.query("items").collect())

@mutation(args={"body": v.string()})
async def send(ctx, body):
    return await ctx.db.insert("messages", {"body": body})

@mutation(args={"n": v.float64()})
async def fill(ctx, n):
    for i in range(int(n)):
        await ctx.db.insert("items", {"i": float(i), "pad": "p" * 200})
"""


async def open_server(
    deployment: DeploymentFactory, config: SyncConfig, limits: Limits | None = None
) -> Any:
    dep = await deployment({"messages.py": MESSAGES}, limits=limits)
    return live_server(dep, config)


@pytest.fixture
async def busy(deployment: DeploymentFactory) -> AsyncIterator[LiveServer]:
    async with await open_server(deployment, SyncConfig(query_turn_seconds=0.002)) as srv:
        r = await http_call(srv.url, "mutation", "messages:fill", {"n": 2000.0})
        assert r.json()["status"] == "success"
        yield srv


async def test_a_big_query_set_does_not_stall_other_clients(busy: LiveServer) -> None:
    events: list[str] = []
    watcher = await Watcher.start(busy.ws_url, "messages:list")
    big = await RawSync.open(busy.ws_url, "big")
    # 300 distinct subscriptions, each reading 2,000 documents, in one ModifyQuerySet.
    await big.modify(
        *(
            {"type": "Add", "queryId": i, "udfPath": "messages:scan", "args": [{"slot": i}]}
            for i in range(300)
        )
    )
    other = await RawSync.open(busy.ws_url, "other")
    await other.mutation(1, "messages:send", {"body": "while busy"})

    async def other_side() -> None:
        answer = await other.answer_to(1, timeout=60)
        assert answer["success"] is True
        events.append("other mutation answered")
        await watcher.expect(lambda value: value == ["while busy"], timeout=60)
        events.append("watcher updated")

    async def big_side() -> dict[str, Any]:
        results: dict[int, Any] = {}
        while True:
            t = await big.recv_type("Transition", timeout=60)
            for mod in t["modifications"]:
                results[mod["queryId"]] = mod["value"]
            if t["endVersion"]["querySet"] == 1:
                events.append("big query set answered")
                return results

    _, results = await asyncio.gather(other_side(), big_side())
    assert results == {i: [float(i), 2000.0] for i in range(300)}
    # The other clients were served while the 300 queries ran, not after them.
    assert events.index("other mutation answered") < events.index("big query set answered")
    assert events.index("watcher updated") < events.index("big query set answered")
    assert busy.manager.executions >= 300
    # The same sockets are still served.
    await big.mutation(5, "messages:send", {"body": "after"})
    assert (await big.answer_to(5))["success"] is True
    await watcher.expect(lambda value: value == ["while busy", "after"])


async def read_transitions(client: RawSync, cap: int, until: Any) -> list[dict[str, Any]]:
    """Transitions (raw, each checked to be at most ``cap`` bytes plus its own fields) until
    ``until(frame)``; other frames are skipped."""
    frames = []
    while True:
        raw = await asyncio.wait_for(client.ws.recv(), 10)
        frame = json.loads(raw)
        if frame["type"] != "Transition":
            continue
        assert len(raw) <= cap + 1024, len(raw)
        assert frame["startVersion"] == client.version, "Transition does not chain"
        client.version = frame["endVersion"]
        frames.append(frame)
        if until(frame):
            return frames


def results(frames: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    return {m["queryId"]: m for f in frames for m in f["modifications"]}


async def test_transitions_are_capped_and_split_at_one_ts(deployment: DeploymentFactory) -> None:
    cap = 64 * 1024
    async with await open_server(deployment, SyncConfig(max_transition_bytes=cap)) as srv:
        for url in (srv.python_ws_url, srv.ws_url):
            await check_split_transitions(srv, url, cap)


async def check_split_transitions(srv: LiveServer, url: str, cap: int) -> None:
    client = await RawSync.open(url, f"split-{url}")  # a new client, a new session
    blob = [{"type": "Add", "queryId": i, "udfPath": "messages:blob",
             "args": [{"slot": i, "size": 10_000}]} for i in range(20)]  # fmt: skip
    blob.append({"type": "Add", "queryId": 99, "udfPath": "messages:blob",
                 "args": [{"slot": 99, "size": cap * 2}]})  # fmt: skip
    count = len((await http_call(srv.url, "query", "messages:list", {})).json()["value"])
    await client.modify(*blob)
    frames = await read_transitions(
        client, cap, lambda f: f["endVersion"]["querySet"] == client.query_set
    )
    assert len(frames) >= 4  # 200 KB of results in parts of at most 64 KiB
    assert len({f["endVersion"]["ts"] for f in frames}) == 1  # all at one ts
    assert all(f["endVersion"]["querySet"] == client.query_set - 1 for f in frames[:-1])
    values = results(frames)
    for i in range(20):
        assert values[i]["value"] == f"{i}:{count}:" + "x" * 10_000
    too_big = values[99]
    assert too_big["type"] == "QueryFailed", too_big
    assert str(cap) in too_big["errorMessage"] and "paginate" in too_big["errorMessage"]
    # A commit that changes all 20 results is split the same way, after the response.
    await client.mutation(1, "messages:send", {"body": "change"})
    answer = await client.recv_type("MutationResponse")
    assert answer["success"] is True
    updated: dict[int, dict[str, Any]] = {}

    def all_updated(frame: dict[str, Any], seen: dict[int, Any] = updated) -> bool:
        seen.update(results([frame]))
        return all(
            i in seen and seen[i]["value"].startswith(f"{i}:{count + 1}:")
            for i in range(20)
        )

    frames = await read_transitions(client, cap, all_updated)
    assert len(frames) >= 4 and len({f["endVersion"]["ts"] for f in frames}) == 1
    await client.close()


async def test_subscriptions_per_connection_are_bounded(deployment: DeploymentFactory) -> None:
    async with await open_server(deployment, SyncConfig(max_subscriptions=5)) as srv:
        client = await RawSync.open(srv.ws_url, "many")
        await client.modify(
            *(
                {"type": "Add", "queryId": i, "udfPath": "messages:scan", "args": [{"slot": i}]}
                for i in range(8)
            )
        )
        mods = {m["queryId"]: m for m in (await client.query_set_answer())["modifications"]}
        assert [mods[i]["type"] for i in range(8)] == ["QueryUpdated"] * 5 + ["QueryFailed"] * 3
        assert "already holds 5 query subscriptions" in mods[5]["errorMessage"]
        # Removing one makes room for another; the socket lives on.
        await client.modify(
            {"type": "Remove", "queryId": 0},
            {"type": "Add", "queryId": 10, "udfPath": "messages:scan", "args": [{"slot": 10}]},
        )
        mods = {m["queryId"]: m for m in (await client.query_set_answer())["modifications"]}
        assert mods[0]["type"] == "QueryRemoved" and mods[10]["type"] == "QueryUpdated"
        await client.mutation(1, "messages:send", {"body": "ok"})
        assert (await client.answer_to(1))["success"] is True


async def test_a_query_reading_too_much_fails_with_convex_s_text(
    deployment: DeploymentFactory,
) -> None:
    limits = Limits(documents_read=1000)
    async with await open_server(deployment, SyncConfig(), limits) as srv:
        r = await http_call(srv.url, "mutation", "messages:fill", {"n": 1500.0})
        assert r.json()["status"] == "success"
        client = await RawSync.open(srv.ws_url, "reader")
        await client.add(1, "messages:everything")
        (mod,) = (await client.query_set_answer())["modifications"]
        assert mod["type"] == "QueryFailed"
        assert (
            "Too many documents read in a single function execution (limit: 1000). Consider "
            "using smaller limits in your queries" in mod["errorMessage"]
        )
        await client.mutation(1, "messages:send", {"body": "ok"})
        assert (await client.answer_to(1))["success"] is True
