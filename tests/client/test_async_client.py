"""AsyncConvexClient against a real `pyconvex dev`: subscriptions, read-your-writes, consistent
Transitions across 100 subscriptions, optimistic updates, errors and values."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from pyconvex.client import (
    AsyncConvexClient,
    ClientClosedError,
    ConvexError,
    FunctionError,
    LocalStore,
)
from pyconvex.dev.launcher import DevServer
from pyconvex.values import Int64


def _name() -> str:
    return uuid.uuid4().hex[:8]


async def test_subscribe_then_mutate_updates_the_subscription(server: DevServer) -> None:
    author = _name()
    async with AsyncConvexClient(server.url) as client:
        sub = client.subscribe("messages:list", {"author": author})
        assert await sub.first() == []
        seen: list[list[str]] = []
        values = aiter(sub)
        seen.append([m["body"] for m in await anext(values)])
        new_id = await client.mutation("messages:send", {"author": author, "body": "hi"})
        # Read-your-writes: the mutation resolved once its write was visible here.
        assert [m["_id"] for m in sub.value or []] == [new_id]
        seen.append([m["body"] for m in await anext(values)])
        assert seen == [[], ["hi"]]
        assert await client.query("messages:count", {"author": author}) == 1.0


async def test_a_second_client_sees_the_first_clients_write(server: DevServer) -> None:
    author = _name()
    async with AsyncConvexClient(server.url) as reader, AsyncConvexClient(server.url) as writer:
        sub = reader.subscribe("messages:count", {"author": author})
        updates = aiter(sub)
        assert await anext(updates) == 0.0
        await writer.mutation("messages:send", {"author": author, "body": "one"})
        assert await asyncio.wait_for(anext(updates), 30) == 1.0


async def test_one_hundred_subscriptions_move_together(server: DevServer) -> None:
    slots = 100
    async with AsyncConvexClient(server.url) as watcher, AsyncConvexClient(server.url) as writer:
        await writer.mutation("counters:bump_all", {"slots": slots})
        subs = [watcher.subscribe("counters:get", {"slot": float(i)}) for i in range(slots)]
        snapshots: list[set[Any]] = []

        def record(_: Any) -> None:
            # Each callback runs after the whole Transition is applied: every subscription
            # must show the same number of bumps, never some old and some new.
            snapshots.append({s.value for s in subs})

        for sub in subs:
            await sub.first()
        listeners = [watcher.subscribe("counters:get", {"slot": 0.0}, on_update=record)]
        start = subs[0].value
        assert isinstance(start, float)
        for _ in range(10):
            await writer.mutation("counters:bump_all", {"slots": slots})
        final = start + 10
        last = aiter(subs[-1])
        while await asyncio.wait_for(anext(last), 30) != final:
            pass
        assert {s.value for s in subs} == {final}
        assert snapshots, "the callback never ran"
        assert all(len(values) == 1 for values in snapshots), snapshots
        assert [v for (v,) in snapshots] == sorted(v for (v,) in snapshots)
        for sub in [*subs, *listeners]:
            sub.close()


async def test_identical_subscriptions_share_one_query(server: DevServer) -> None:
    author = _name()
    async with AsyncConvexClient(server.url) as client:
        a = client.subscribe("messages:count", {"author": author})
        b = client.subscribe("messages:count", {"author": author})
        assert await a.first() == await b.first() == 0.0
        engine = client._engine
        assert len(engine.local.queries) == 1
        a.close()
        assert len(engine.local.queries) == 1 and b.value == 0.0
        b.close()
        assert engine.local.queries == {}


async def test_optimistic_update_is_shown_then_replaced_by_the_real_document(
    server: DevServer,
) -> None:
    author = _name()
    async with AsyncConvexClient(server.url) as client:
        seen: list[list[str]] = []
        sub = client.subscribe(
            "messages:list",
            {"author": author},
            on_update=lambda docs: seen.append([d["_id"] for d in docs]),
        )
        await sub.first()

        def add(store: LocalStore, args: dict[str, Any]) -> None:
            current = store.get_query("messages:list", {"author": args["author"]})
            assert current is not None
            store.set_query(
                "messages:list",
                {"author": args["author"]},
                [*current, {"_id": "optimistic", "author": args["author"], "body": args["body"]}],
            )

        pending = asyncio.ensure_future(
            client.mutation(
                "messages:send", {"author": author, "body": "hi"}, optimistic_update=add
            )
        )
        await asyncio.sleep(0)  # the mutation has started: its guess is already visible
        assert [d["_id"] for d in sub.value or []] == ["optimistic"]
        new_id = await pending
        assert [d["_id"] for d in sub.value or []] == [new_id]
        # Never both the guess and the real document, never neither.
        assert seen == [[], ["optimistic"], [new_id]]


async def test_optimistic_update_is_rolled_back_when_the_mutation_fails(
    server: DevServer,
) -> None:
    author = _name()
    async with AsyncConvexClient(server.url) as client:
        seen: list[int] = []
        sub = client.subscribe(
            "messages:count", {"author": author}, on_update=lambda n: seen.append(int(n))
        )
        assert await sub.first() == 0.0

        def bump(store: LocalStore, args: dict[str, Any]) -> None:
            n = store.get_query("messages:count", {"author": args["author"]})
            store.set_query("messages:count", {"author": args["author"]}, n + 1)

        pending = asyncio.ensure_future(
            client.mutation("messages:send", {"author": author, "body": ""}, optimistic_update=bump)
        )
        await asyncio.sleep(0)
        assert sub.value == 1.0
        with pytest.raises(ConvexError) as caught:
            await pending
        assert caught.value.data == {"code": "EMPTY_BODY"}
        assert sub.value == 0.0
        assert seen == [0, 1, 0]


async def test_errors_name_the_failure(server: DevServer) -> None:
    async with AsyncConvexClient(server.url) as client:
        with pytest.raises(ConvexError) as caught:
            await client.mutation("messages:send", {"author": "x", "body": ""})
        assert caught.value.data == {"code": "EMPTY_BODY"}
        assert "Server Error" in caught.value.message
        with pytest.raises(FunctionError, match="Could not find public function") as missing:
            await client.query("messages:nope")
        assert not isinstance(missing.value, ConvexError)
        # Internal functions are not callable without the admin key.
        with pytest.raises(FunctionError):
            await client.query("messages:secret")
        with pytest.raises(ValueError, match="not a Convex value"):
            await client.query("values:get", {"key": {1, 2}})


async def test_values_map_both_ways(server: DevServer) -> None:
    value = {
        "int64": Int64(-(2**62)),
        "float": 1.5,
        "int_as_float": 7,
        "bytes": b"\x00\xff",
        "nan_free": [float("inf"), -0.0],
        "none": None,
        "nested": {"a": [True, "s"]},
    }
    async with AsyncConvexClient(server.url) as client:
        echoed = await client.action("values:echo", {"value": value})
        assert echoed["int64"] == -(2**62) and type(echoed["int64"]) is Int64
        assert echoed["int_as_float"] == 7.0 and type(echoed["int_as_float"]) is float
        assert echoed["bytes"] == b"\x00\xff"
        assert echoed["nan_free"][0] == float("inf")
        assert str(echoed["nan_free"][1]) == "-0.0"
        assert echoed["none"] is None and echoed["nested"] == {"a": [True, "s"]}


async def test_close_ends_subscriptions_and_refuses_calls(server: DevServer) -> None:
    client = AsyncConvexClient(server.url)
    sub = client.subscribe("messages:count", {"author": _name()})
    values = aiter(sub)
    assert await anext(values) == 0.0
    waiting = asyncio.ensure_future(anext(values))
    await asyncio.sleep(0)
    await client.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, 10)
    with pytest.raises(ClientClosedError):
        await client.query("messages:count", {"author": "x"})
    assert not client.connection_state().is_connected
