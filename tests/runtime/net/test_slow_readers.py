"""Memory for unsent messages is bounded over all sockets together, and given back (issue 10,
item 5): slow readers are closed as overloaded once they hold the server-wide cap between
them, while a client that reads keeps its updates."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
from collections.abc import AsyncIterator

import pytest
from support.deployment import DeploymentFactory
from support.live_sync import LiveServer, Watcher, http_call, live_server
from websockets.asyncio.client import ClientConnection, connect

from pyconvex.runtime.net import sync_socket
from pyconvex.runtime.net.event_loop import release_free_memory
from pyconvex.runtime.net.sync_socket import SyncConfig

MESSAGES = """
from pyconvex import mutation, query, v

@query(args={"k": v.float64()})
async def big(ctx, k):
    return [d["s"] for d in await ctx.db.query("b").collect()] + [k]

@query(args={})
async def count(ctx):
    return len(await ctx.db.query("b").collect())

@mutation(args={"n": v.float64()})
async def put(ctx, n):
    await ctx.db.insert("b", {"s": "y" * 50_000 + str(n)})
"""

MIB = 1024 * 1024


@pytest.fixture
async def server(deployment: DeploymentFactory) -> AsyncIterator[LiveServer]:
    dep = await deployment({"m.py": MESSAGES})
    # Each socket alone may hold 32 MiB; all of them together only 4 MiB.
    config = SyncConfig(max_total_outbound_bytes=4 * MIB)
    async with live_server(dep, config) as srv:
        yield srv


async def slow_reader(server: LiveServer, k: int) -> ClientConnection:
    """A client that subscribes and then reads nothing (a tiny receive buffer, one queued
    message): the server's frames pile up on its side."""
    ws = await connect(server.python_ws_url, max_queue=1, max_size=None)
    ws.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    await ws.send(json.dumps({"type": "Connect", "sessionId": f"slow-{k}", "connectionCount": 0,
                              "lastCloseReason": "InitialConnect", "clientTs": 0}))  # fmt: skip
    await ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                              "modifications": [{"type": "Add", "queryId": 1,
                                                 "udfPath": "m:big", "args": [{"k": k}]}]}))  # fmt: skip
    return ws


async def test_slow_readers_are_closed_at_the_server_wide_cap(
    server: LiveServer, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    releases: list[bool] = []
    monkeypatch.setattr(
        sync_socket, "release_free_memory", lambda: releases.append(release_free_memory())
    )
    caplog.set_level(logging.WARNING, "pyconvex.sync")
    watcher = await Watcher.start(server.ws_url, "m:count")
    readers = [await slow_reader(server, k) for k in range(4)]
    for _ in range(500):  # the readers' subscriptions are made (they read no answer)
        if len(server.manager) == 5:  # 4 readers + the watcher
            break
        await asyncio.sleep(0.01)
    assert len(server.manager) == 5
    n = 0
    while len(server.manager) > 1:  # until the server has dropped every slow reader
        n += 1
        assert n <= 200, "slow readers were never closed"
        r = await http_call(server.url, "mutation", "m:put", {"n": float(n)})
        assert r.json()["status"] == "success"
        await watcher.expect(lambda value, want=n: value == want)  # the reader is served
    closed = [r.getMessage() for r in caplog.records if "not reading" in r.getMessage()]
    assert len(closed) == 4 and all("slow clients in all" in m for m in closed), closed
    for reader in readers:
        reader.transport.abort()
    # Once they are gone, what they held goes back to the OS.
    for _ in range(300):
        if releases:
            break
        await asyncio.sleep(0.01)
    assert releases, "release_free_memory was not called"
    # Far below what the readers could hold alone (4 x 32 MiB): the cap over all of them held.
    assert n * 50_000 * 4 < 4 * 32 * MIB
    r = await http_call(server.url, "mutation", "m:put", {"n": 0.0})
    assert r.json()["status"] == "success"
    await watcher.expect(lambda value: value == n + 1)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_freed_memory_can_go_back_to_the_os() -> None:
    assert release_free_memory() is True
