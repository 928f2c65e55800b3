"""A real server in the test's event loop (uvicorn on 127.0.0.1, port 0) over a real engine,
and a raw sync client that speaks the protocol frame by frame — for tests that send what no
official client would::

    async with live_server(deployment) as server:
        client = await RawSync.open(server.ws_url)
        await client.mutation(1, "messages:send", {"body": "hi"})
        assert (await client.recv_type("MutationResponse"))["success"]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pyconvex.runtime.net.app import serve
from pyconvex.runtime.net.subscriptions import SubscriptionManager
from pyconvex.runtime.net.sync_socket import SyncConfig


@dataclass
class LiveServer:
    url: str
    manager: SubscriptionManager

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/api/1.48.0/sync"

    @property
    def python_ws_url(self) -> str:
        """The path the Rust/Python client uses."""
        return self.url.replace("http://", "ws://") + "/api/sync"


@contextlib.asynccontextmanager
async def live_server(
    deployment: Any, config: SyncConfig | None = None
) -> AsyncIterator[LiveServer]:
    """Serve ``deployment`` until the block ends (then shut down gracefully)."""
    manager = SubscriptionManager(deployment)
    listening: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            deployment,
            host="127.0.0.1",
            port=0,
            on_listening=listening.set_result,
            sync_config=config,
            subscriptions=manager,
            stop=stop,
        )
    )
    try:
        yield LiveServer(await asyncio.wait_for(listening, 30), manager)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class RawSync:
    """A raw protocol client: sends any frame (dicts as JSON, strings as they are) and checks
    that every Transition starts where the previous one ended."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.version: dict[str, Any] = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
        self.query_set = 0
        self.identity = 0

    @classmethod
    async def open(cls, url: str, session_id: str = "session-1") -> RawSync:
        client = cls(await connect(url, max_size=None))
        await client.send(
            {
                "type": "Connect",
                "sessionId": session_id,
                "connectionCount": 0,
                "lastCloseReason": "InitialConnect",
                "clientTs": 0,
            }
        )
        return client

    async def send(self, message: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(message if isinstance(message, str | bytes) else json.dumps(message))

    async def modify(self, *modifications: dict[str, Any]) -> None:
        await self.send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": self.query_set,
                "newVersion": self.query_set + 1,
                "modifications": list(modifications),
            }
        )
        self.query_set += 1

    async def add(self, query_id: int, path: str, args: Any = None) -> None:
        await self.modify(
            {"type": "Add", "queryId": query_id, "udfPath": path, "args": [args or {}]}
        )

    async def mutation(self, request_id: int, path: str, args: Any) -> None:
        await self.send({"type": "Mutation", "requestId": request_id, "udfPath": path,
                         "args": args if isinstance(args, list) else [args]})  # fmt: skip

    async def action(self, request_id: int, path: str, args: Any) -> None:
        await self.send({"type": "Action", "requestId": request_id, "udfPath": path,
                         "args": args if isinstance(args, list) else [args]})  # fmt: skip

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if frame["type"] == "Transition":
            assert frame["startVersion"] == self.version, "Transition does not chain"
            self.version = frame["endVersion"]
        return frame

    async def recv_type(self, kind: str, timeout: float = 10) -> dict[str, Any]:
        """The next frame of type ``kind``, skipping Transitions and Pings."""
        while (frame := await self.recv(timeout))["type"] != kind:
            assert frame["type"] in ("Transition", "Ping"), frame
        return frame

    async def query_set_answer(self, timeout: float = 10) -> dict[str, Any]:
        """The Transition that reaches the query set version last sent (others skipped)."""
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == "Transition" and frame["endVersion"]["querySet"] == self.query_set:
                return frame
            assert frame["type"] in ("Transition", "Ping", "MutationResponse", "ActionResponse")

    async def answer_to(
        self, request_id: int, kind: str = "MutationResponse", timeout: float = 10
    ) -> dict[str, Any]:
        """The response to ``request_id`` (other frames skipped)."""
        while True:
            frame = await self.recv(timeout)
            if frame["type"] == kind and frame["requestId"] == request_id:
                return frame
            assert frame["type"] in ("Transition", "Ping", "MutationResponse", "ActionResponse")

    async def closed(self, timeout: float = 10) -> tuple[int | None, str]:
        """Read until the server closes the socket: its close code and reason."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        # The connection's own close_code arrived in websockets 13.1; its protocol has had it longer.
        return self.ws.protocol.close_code, self.ws.protocol.close_reason or ""

    async def close(self) -> None:
        await self.ws.close()


class Watcher:
    """Another client holding a subscription: :meth:`expect` waits until its query's value
    satisfies a condition (the proof that other clients are still served)."""

    def __init__(self, client: RawSync, query_id: int) -> None:
        self.client = client
        self.query_id = query_id
        self.value: Any = None

    @classmethod
    async def start(cls, url: str, path: str, args: Any = None) -> Watcher:
        client = await RawSync.open(url, "watcher")
        watcher = cls(client, 1)
        await client.add(1, path, args)
        await watcher.expect(lambda value: True)
        return watcher

    async def expect(self, condition: Any, timeout: float = 10) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.client.recv(max(deadline - loop.time(), 0.01))
            if frame["type"] != "Transition":
                continue
            for mod in frame["modifications"]:
                if mod.get("queryId") == self.query_id and mod["type"] == "QueryUpdated":
                    self.value = mod["value"]
                    if condition(self.value):
                        return self.value


async def http_call(
    url: str, kind: str, path: str, args: Any, **kw: Any
) -> httpx.Response:
    """POST ``/api/<kind>`` with ``{"path", "args", "format": "convex_encoded_json"}``."""
    async with httpx.AsyncClient(timeout=30) as client:
        body = {"path": path, "args": args, "format": "convex_encoded_json"}
        return await client.post(f"{url}/api/{kind}", json=body, **kw)
