"""The floor under pyconvex's mutation round trip on this machine: a server that does nothing
but what any durable server must. It answers each sync `Mutation` the way the official
clients need (`MutationResponse`, then a `Transition` at its ts) after appending the message
to a file and `fdatasync`-ing it on the event loop (or not, with `--no-sync`). No engine, no
validation, no indexes: whatever pyconvex's round trip costs above this floor, measured with
the same client in the same run, is its own.

Subscriptions are as bare: every query a socket adds gets `null` at first, then, after each
durable mutation and before its response, `{"seq": <the mutation's seq argument>}` in a
Transition: the floor under pyconvex's write-to-subscriber latency.

    python -m realtime.floor_server --log FILE [--no-sync]   # prints its port, serves until killed

Same stack as `pyconvex dev`: uvloop, `websockets`' Sans-I/O protocol on the transport.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

from pyconvex.protocol import encode_ts
from pyconvex.runtime.net.event_loop import run

#: Every socket with a query, and its queries' ids.
SUBSCRIBERS: dict[FloorSocket, list[int]] = {}


class FloorSocket(asyncio.Protocol):
    def __init__(self, log_fd: int, sync: bool) -> None:
        self.ws = ServerProtocol(max_size=None)
        self.log_fd = log_fd
        self.sync = sync
        self.transport: asyncio.Transport | None = None
        self.ts = 0
        self.query_set = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                ws.send_response(ws.accept(event))
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self.message(bytes(event.data))
        self.flush()

    def message(self, payload: bytes) -> None:
        msg: dict[str, Any] = json.loads(payload)
        if msg.get("type") == "ModifyQuerySet":
            self.subscribe(msg)
            return
        if msg.get("type") != "Mutation":
            return
        os.write(self.log_fd, payload + b"\n")
        if self.sync:
            os.fdatasync(self.log_fd)
        seq = msg["args"][0].get("seq") if msg.get("args") else None
        for sub in list(SUBSCRIBERS):
            sub.updated({"seq": seq})
            if sub is not self:
                sub.flush()
        start = self.version()
        self.ts += 1
        response = {
            "type": "MutationResponse",
            "requestId": msg["requestId"],
            "success": True,
            "result": None,
            "ts": encode_ts(self.ts),
            "logLines": [],
        }
        self.ws.send_text(json.dumps(response).encode())
        self.transition(start, [])

    def subscribe(self, msg: dict[str, Any]) -> None:
        """Add the queries ``msg`` adds; answer with their first result (``null``)."""
        added = [m["queryId"] for m in msg["modifications"] if m.get("type") == "Add"]
        SUBSCRIBERS.setdefault(self, []).extend(added)
        start = self.version()
        self.query_set = msg["newVersion"]
        self.transition(start, [_updated(q, None) for q in added])

    def updated(self, value: Any) -> None:
        """A Transition with ``value`` as every query's new result, at the next ts."""
        start = self.version()
        self.ts += 1
        self.transition(start, [_updated(q, value) for q in SUBSCRIBERS.get(self, [])])

    def version(self) -> dict[str, Any]:
        """This socket's state version now (its query set; no identity)."""
        return {"querySet": self.query_set, "identity": 0, "ts": encode_ts(self.ts)}

    def transition(self, start: dict[str, Any], modifications: list[dict[str, Any]]) -> None:
        """A Transition from ``start`` to the version now."""
        message = {
            "type": "Transition",
            "startVersion": start,
            "endVersion": self.version(),
            "modifications": modifications,
        }
        self.ws.send_text(json.dumps(message, separators=(",", ":")).encode())

    def flush(self) -> None:
        if self.transport is not None:
            self.transport.writelines(self.ws.data_to_send())

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        SUBSCRIBERS.pop(self, None)


def _updated(query_id: int, value: Any) -> dict[str, Any]:
    return {"type": "QueryUpdated", "queryId": query_id, "value": value, "logLines": []}


async def serve(log_path: str, sync: bool) -> None:
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FloorSocket(log_fd, sync), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True, help="the file each mutation is appended to")
    parser.add_argument("--no-sync", action="store_true", help="append without fdatasync")
    args = parser.parse_args()
    try:
        run(serve(args.log, not args.no_sync))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
