"""A lean client of Convex's WebSocket sync protocol (PROTOCOL.md §1) on `websockets` asyncio.

Just enough for the benchmark: Connect, ModifyQuerySet (Add), Mutation, and Transition parsing
with version chaining; a mutation counts as done when its MutationResponse has arrived and then a
Transition at or past its commit ts (what the official clients wait for).
"""

from __future__ import annotations

import asyncio
import base64
import json
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

import websockets


def decode_ts(b64: str) -> int:
    return int(struct.unpack("<Q", base64.b64decode(b64))[0])


def sync_url(http_url: str) -> str:
    return http_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1) + "/api/sync"


class SyncConnection:
    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self.query_set = 0
        self.next_query_id = 0
        self.next_request_id = 0
        self.ts = 0
        self.on_transition: Callable[[dict[str, Any], float], None] | None = None
        self._qs_waiters: list[tuple[int, asyncio.Future[dict[str, Any]]]] = []
        # requestId -> (response future, resolved future); see mutation().
        self._responses: dict[int, tuple[asyncio.Future[Any], asyncio.Future[float]]] = {}
        self._ts_waiters: list[tuple[int, asyncio.Future[float]]] = []
        self._reader: asyncio.Task[None] | None = None
        self.closed: BaseException | None = None

    async def open(self) -> SyncConnection:
        self.ws = await websockets.connect(
            sync_url(self.url), compression=None, max_size=None, ping_interval=None, open_timeout=60
        )
        await self.ws.send(
            json.dumps(
                {
                    "type": "Connect",
                    "sessionId": str(uuid.uuid4()),
                    "connectionCount": 0,
                    "lastCloseReason": "InitialConnect",
                    "clientTs": 0,
                }
            )
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                now = time.monotonic()
                msg = json.loads(raw)
                kind = msg["type"]
                if kind == "Transition":
                    end = msg["endVersion"]
                    self.ts = max(self.ts, decode_ts(end["ts"]))
                    if self._qs_waiters:
                        keep = []
                        for target, fut in self._qs_waiters:
                            if end["querySet"] >= target and not fut.done():
                                fut.set_result(msg)
                            else:
                                keep.append((target, fut))
                        self._qs_waiters = keep
                    if self._ts_waiters:
                        keep_ts = []
                        for ts, fut2 in self._ts_waiters:
                            if self.ts >= ts and not fut2.done():
                                fut2.set_result(now)
                            else:
                                keep_ts.append((ts, fut2))
                        self._ts_waiters = keep_ts
                    if self.on_transition is not None:
                        self.on_transition(msg, now)
                elif kind == "MutationResponse":
                    pair = self._responses.pop(msg["requestId"], None)
                    if pair is not None:
                        responded, resolved = pair
                        responded.set_result((msg, now))
                        if msg["success"]:
                            # Register here, not in mutation(): the Transition may already be
                            # the next message, read before that coroutine resumes.
                            self._ts_waiters.append((decode_ts(msg["ts"]), resolved))
                        else:
                            resolved.set_result(now)
                elif kind == "FatalError":
                    raise RuntimeError(f"FatalError from server: {msg.get('error')}")
        except BaseException as e:
            self.closed = e
            for _, f in self._qs_waiters:
                if not f.done():
                    f.set_exception(ConnectionError(f"socket closed: {e!r}"))
            for pair in self._responses.values():
                for f3 in pair:
                    if not f3.done():
                        f3.set_exception(ConnectionError(f"socket closed: {e!r}"))
            for _, f2 in self._ts_waiters:
                if not f2.done():
                    f2.set_exception(ConnectionError(f"socket closed: {e!r}"))
            if not isinstance(e, (asyncio.CancelledError, websockets.ConnectionClosed)):
                raise

    async def subscribe(self, udf_path: str, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Add one query; return its id and the Transition that answered."""
        qid = self.next_query_id
        self.next_query_id += 1
        base, self.query_set = self.query_set, self.query_set + 1
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._qs_waiters.append((self.query_set, fut))
        await self.ws.send(
            json.dumps(
                {
                    "type": "ModifyQuerySet",
                    "baseVersion": base,
                    "newVersion": base + 1,
                    "modifications": [
                        {"type": "Add", "queryId": qid, "udfPath": udf_path, "args": [args]}
                    ],
                }
            )
        )
        return qid, await fut

    async def mutation(self, udf_path: str, args: dict[str, Any]) -> tuple[Any, float, float]:
        """Run a mutation; return (result, response time, resolved time) in time.monotonic().

        Resolved = its MutationResponse and then a Transition at or past its commit ts; a
        Transition that came before the response does not count (PROTOCOL §1.6).
        """
        rid = self.next_request_id
        self.next_request_id += 1
        loop = asyncio.get_running_loop()
        responded: asyncio.Future[Any] = loop.create_future()
        resolved: asyncio.Future[float] = loop.create_future()
        self._responses[rid] = (responded, resolved)
        await self.ws.send(
            json.dumps({"type": "Mutation", "requestId": rid, "udfPath": udf_path, "args": [args]})
        )
        msg, responded_at = await responded
        if not msg["success"]:
            raise RuntimeError(f"{udf_path} failed: {msg.get('result')}")
        return msg["result"], responded_at, await resolved

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            await self.ws.close()
