"""An in-process sync client: the real :class:`SyncSocket` over a fake transport, spoken to by
`websockets`' client-side Sans-I/O protocol — every byte goes through the one production path
(handshake, framing, the per-loop-turn flush), without a TCP socket.

    endpoint = SyncEndpoint(deployment, SubscriptionManager(deployment))
    client = LoopbackClient(endpoint)
    client.send({"type": "Connect", ...})
    frame = await client.recv()
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from pyconvex.runtime.net.sync_socket import SyncEndpoint, SyncSocket


class FakeTransport(asyncio.Transport):
    """Delivers what the server writes to the client protocol at once, unless ``stuck`` (a
    peer that reads nothing): then the bytes pile up in the write buffer."""

    def __init__(self, client: LoopbackClient) -> None:
        super().__init__()
        self._client = client
        self.stuck = False
        self._pending = bytearray()
        self.closing = False
        self.aborted = False
        self.reading = True
        self.writes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        assert not self.closing, "write after close"
        self.writes += 1
        if self.stuck:
            self._pending += data
        else:
            self._client.deliver(bytes(data))

    def unstick(self) -> None:
        """The peer reads again: hand it the backlog."""
        self.stuck = False
        data, self._pending = bytes(self._pending), bytearray()
        if data:
            self._client.deliver(data)

    def get_write_buffer_size(self) -> int:
        return len(self._pending)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self._client.lost)

    def abort(self) -> None:
        self.aborted = True
        self._pending.clear()
        self.close()

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


class LoopbackClient:
    """A sync client connected to ``endpoint`` in process; ``recv()`` checks Transition
    chaining (every Transition must start where the previous one ended)."""

    def __init__(self, endpoint: SyncEndpoint, path: str = "/api/1.48.0/sync") -> None:
        self.socket: SyncSocket = endpoint.socket()
        self.transport = FakeTransport(self)
        self.protocol = ClientProtocol(parse_uri("ws://127.0.0.1" + path), max_size=None)
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.close_frame: Close | None = None
        self.gone = asyncio.Event()
        self.response: Response | None = None
        self.version = {"querySet": 0, "identity": 0, "ts": "AAAAAAAAAAA="}
        self.query_set = 0
        self.socket.connection_made(self.transport)
        self.protocol.send_request(self.protocol.connect())
        self._to_server()

    @property
    def session(self) -> Any:
        return self.socket._session

    def _to_server(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.socket.data_received(data)

    def deliver(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Response):
                self.response = event
            elif isinstance(event, Frame):
                if event.opcode is Opcode.TEXT:
                    self.frames.put_nowait(json.loads(bytes(event.data)))
                elif event.opcode is Opcode.CLOSE:
                    self.close_frame = Close.parse(bytes(event.data))
        self._to_server()  # e.g. the client's answer to a close frame

    def lost(self) -> None:
        self.socket.connection_lost(None)
        self.gone.set()

    # -- protocol helpers ------------------------------------------------------------------

    def send(self, message: dict[str, Any] | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self.protocol.send_text(text.encode())
        self._to_server()

    def connect(
        self, session_id: str = "4d6c0c4e-2f3a-4c55-9d0e-000000000001", **extra: Any
    ) -> None:
        self.send(
            {
                "type": "Connect",
                "sessionId": session_id,
                "connectionCount": 0,
                "lastCloseReason": "InitialConnect",
                "clientTs": 0,
                **extra,
            }
        )

    def modify(self, *modifications: dict[str, Any]) -> None:
        self.send(
            {
                "type": "ModifyQuerySet",
                "baseVersion": self.query_set,
                "newVersion": self.query_set + 1,
                "modifications": list(modifications),
            }
        )
        self.query_set += 1

    def add(self, query_id: int, path: str, args: dict[str, Any] | None = None) -> None:
        self.modify({"type": "Add", "queryId": query_id, "udfPath": path, "args": [args or {}]})

    def mutation(self, request_id: int, path: str, args: dict[str, Any]) -> None:
        self.send({"type": "Mutation", "requestId": request_id, "udfPath": path, "args": [args]})

    async def recv(self) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.frames.get(), 10)
        if frame["type"] == "Transition":
            assert frame["startVersion"] == self.version, "Transition does not chain"
            self.version = frame["endVersion"]
        return frame

    async def transition(self) -> dict[str, Any]:
        frame = await self.recv()
        assert frame["type"] == "Transition", frame
        return frame

    def pending(self) -> list[dict[str, Any]]:
        frames = []
        while not self.frames.empty():
            frames.append(self.frames.get_nowait())
        return frames

    async def stop(self) -> None:
        """Drop the connection, as a client going away would."""
        if not self.transport.closing:
            self.transport.close()
        await asyncio.wait_for(self.gone.wait(), 10)
