"""WebSocket sync end to end: a real uvicorn server on port 0 and raw `websockets` clients.

The reactive tests run against the real engine (``Deployment`` over a tmp ``convex/`` dir);
the backpressure test uses the fake deployment so it can make results as big as it likes.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from support.channel_messages import SCHEMA
from support.fake_deployment import FakeDeployment, FakeReader
from support.live_sync import LiveServer, RawSync, live_server
from websockets.asyncio.client import connect

from pyconvex.protocol import decode_ts
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.net.subscriptions import SubscriptionManager
from pyconvex.runtime.net.sync_session import OVERLOADED_REASON
from pyconvex.runtime.net.sync_socket import SyncConfig

#: The shared channel project's schema; these functions log and refuse an empty body too.
MESSAGES = """
from pyconvex import ConvexError, mutation, query, v

@query(args={"channel": v.string()})
async def list(ctx, channel):
    print("listing", channel)
    docs = await ctx.db.query("messages").with_index(
        "by_channel", lambda q: q.eq("channel", channel)).collect()
    return [d["body"] for d in docs]

@mutation(args={"channel": v.string(), "body": v.string()})
async def send(ctx, channel, body):
    if not body:
        raise ConvexError({"code": "EMPTY"})
    return await ctx.db.insert("messages", {"channel": channel, "body": body})
"""


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Deployment]:
    functions = tmp_path / "convex"
    functions.mkdir()
    (functions / "schema.py").write_text(textwrap.dedent(SCHEMA))
    (functions / "messages.py").write_text(textwrap.dedent(MESSAGES))
    deployment = await Deployment.open(functions, None)
    yield deployment
    await deployment.close()


@pytest.fixture
async def server(engine: Deployment) -> AsyncIterator[LiveServer]:
    async with live_server(engine) as srv:
        yield srv


@pytest.mark.parametrize("path", ["/api/sync", "/api/1.48.0/sync", "//api/1.48.0/sync"])
async def test_sync_endpoints_answer_modify_query_set(server: LiveServer, path: str) -> None:
    client = await RawSync.open(server.url.replace("http://", "ws://") + path)
    await client.send(
        {"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1, "modifications": []}
    )
    t = await client.recv()
    assert t["type"] == "Transition" and t["endVersion"]["querySet"] == 1
    await client.ws.close()


async def test_subscription_follows_mutations_exactly(server: LiveServer) -> None:
    watcher = await RawSync.open(server.ws_url, "watcher")
    await watcher.add(1, "messages:list", {"channel": "a"})
    first = (await watcher.recv_type("Transition"))["modifications"][0]
    assert first["value"] == [] and first["logLines"] == ["[LOG] listing a"]
    writer = await RawSync.open(server.python_ws_url, "writer")
    runs = server.manager.executions

    await writer.send(
        {
            "type": "Mutation",
            "requestId": 0,
            "udfPath": "messages.js:send",
            "args": [{"channel": "b", "body": "elsewhere"}],
        }
    )
    outside = await writer.recv_type("MutationResponse")
    assert outside["success"] is True
    await writer.recv_type("Transition")  # the writer's own read-your-writes Transition
    await writer.send(
        {
            "type": "Mutation",
            "requestId": 1,
            "udfPath": "messages:send",
            "args": [{"channel": "a", "body": "hello"}],
        }
    )
    inside = await writer.recv_type("MutationResponse")
    t = await writer.recv_type("Transition")
    assert decode_ts(t["endVersion"]["ts"]) >= decode_ts(inside["ts"])

    update = await watcher.recv_type("Transition")
    assert [m["value"] for m in update["modifications"]] == [["hello"]]
    assert decode_ts(update["endVersion"]["ts"]) >= decode_ts(inside["ts"])
    # The write to channel "b" was outside the read range: no re-run, nothing sent for it.
    assert server.manager.executions == runs + 1

    await writer.send(
        {
            "type": "Mutation",
            "requestId": 2,
            "udfPath": "messages:send",
            "args": [{"channel": "a", "body": ""}],
        }
    )
    failed = await writer.recv_type("MutationResponse")
    assert failed["success"] is False and failed["errorData"] == {"code": "EMPTY"}
    await watcher.ws.close()
    await writer.ws.close()


async def test_resent_mutation_after_reconnect_applies_once(server: LiveServer) -> None:
    message = {
        "type": "Mutation",
        "requestId": 5,
        "udfPath": "messages:send",
        "args": [{"channel": "c", "body": "once"}],
    }
    first = await RawSync.open(server.ws_url, "npm-session")
    await first.send(message)
    r1 = await first.recv_type("MutationResponse")
    await first.ws.close()
    again = await RawSync.open(server.ws_url, "npm-session")
    await again.send(message)
    r2 = await again.recv_type("MutationResponse")
    assert (r2["result"], r2["ts"]) == (r1["result"], r1["ts"])
    await again.recv_type("Transition")
    await again.add(1, "messages:list", {"channel": "c"})
    t = await again.recv_type("Transition")
    assert t["modifications"][0]["value"] == ["once"]
    await again.ws.close()


async def test_slow_reader_is_closed_and_others_keep_up() -> None:
    deployment = FakeDeployment()

    @deployment.query("big:list")
    def big(db: FakeReader, args: dict[str, Any]) -> Any:
        return [d["blob"] for d in db.all("blobs")][-3:]

    config = SyncConfig(max_outbound_bytes=256 * 1024, close_timeout=60)
    async with live_server(deployment, config) as srv:
        # max_queue=1: once a frame waits unread, the client stops reading its TCP socket. (No
        # compression: the blobs would deflate to almost nothing.)
        slow = RawSync(await connect(srv.python_ws_url, max_queue=1, compression=None))
        await slow.send(
            {
                "type": "Connect",
                "sessionId": "slow",
                "connectionCount": 0,
                "lastCloseReason": None,
                "clientTs": 0,
            }
        )
        fast = await RawSync.open(srv.python_ws_url, "fast")
        for client in (slow, fast):
            await client.add(1, "big:list", {})
        await fast.recv_type("Transition")
        await asyncio.sleep(0)

        def insert(n: int) -> Any:
            return lambda db: db.insert("blobs", {"blob": f"{n}:" + "x" * 200_000})

        closed_at = None
        for n in range(400):  # until the slow socket's queue overflows (kernel buffers included)
            deployment.write(insert(n))
            t = await fast.recv_type("Transition")
            assert t["modifications"][0]["value"][-1].startswith(f"{n}:")
            if _closed(srv.manager, "slow"):
                closed_at = n
                break
        assert closed_at is not None, "the slow reader was never disconnected"
        # The slow client reads again: after the backlog it gets a close it can back off on.
        with pytest.raises(websockets.ConnectionClosed) as info:
            while True:
                await asyncio.wait_for(slow.ws.recv(), 30)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 1013
        assert info.value.rcvd.reason.startswith(OVERLOADED_REASON)
        deployment.write(insert(999))
        assert (await fast.recv_type("Transition"))["modifications"][0]["value"][-1].startswith(
            "999:"
        )
        await fast.ws.close()


def _closed(manager: SubscriptionManager, session_id: str) -> bool:
    """Whether no live session with ``session_id`` still watches a subscription."""
    for sub in list(manager._subs.values()):
        for watcher in sub.watchers:
            if getattr(watcher, "session_id", None) == session_id:
                return False
    return True
