"""A real sync server on port 0 (uvicorn, the app's own ``serve``) and a raw protocol client
for it on `websockets`, for the WebSocket tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from pyconvex.runtime.net.app import serve
from pyconvex.runtime.net.subscriptions import SubscriptionManager
from pyconvex.runtime.net.sync_socket import SyncConfig


class Server:
    def __init__(self, url: str, manager: SubscriptionManager) -> None:
        self.url = url
        self.ws_url = url.replace("http://", "ws://")
        self.manager = manager


async def start_server(
    deployment: Any, config: SyncConfig | None = None
) -> tuple[Server, asyncio.Event, asyncio.Task[None]]:
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
    return Server(await listening, manager), stop, task


class Sync:
    """A raw protocol client that checks Transition chaining."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.version: dict[str, Any] = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
        self.query_set = 0

    @classmethod
    async def open(cls, url: str, session_id: str = "session-1") -> Sync:
        client = cls(await connect(url))
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

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(message))

    async def add(self, query_id: int, path: str, args: dict[str, Any]) -> None:
        await self.send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": self.query_set,
                "newVersion": self.query_set + 1,
                "modifications": [
                    {"type": "Add", "queryId": query_id, "udfPath": path, "args": [args]}
                ],
            }
        )
        self.query_set += 1

    async def recv(self) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        if frame["type"] == "Transition":
            assert frame["startVersion"] == self.version
            self.version = frame["endVersion"]
        return frame

    async def recv_type(self, kind: str) -> dict[str, Any]:
        while (frame := await self.recv())["type"] != kind:
            assert frame["type"] in ("Transition", "Ping"), frame
        return frame
