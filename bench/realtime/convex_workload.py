"""pyconvex workloads (run in worker processes) over the raw WebSocket sync protocol."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
import uuid
from typing import Any

from .convex_ws import SyncConnection
from .raw_ws import RawWebSocket

SEQ = re.compile(rb'"seq":(\d+)')
RESPONSE = re.compile(rb'"type":"MutationResponse","requestId":(\d+),"success":(true|false)')


def subscribe_message(udf_path: str) -> str:
    return json.dumps(
        {
            "type": "ModifyQuerySet",
            "baseVersion": 0,
            "newVersion": 1,
            "modifications": [{"type": "Add", "queryId": 0, "udfPath": udf_path, "args": [{}]}],
        }
    )


def connect_message() -> str:
    return json.dumps(
        {
            "type": "Connect",
            "sessionId": str(uuid.uuid4()),
            "connectionCount": 0,
            "lastCloseReason": "InitialConnect",
            "clientTs": 0,
        }
    )


async def _open_many(url: str, n: int, batch: int = 50) -> list[SyncConnection]:
    conns: list[SyncConnection] = []
    for i in range(0, n, batch):
        conns += await asyncio.gather(
            *(SyncConnection(url).open() for _ in range(min(batch, n - i)))
        )
    return conns


def _commit_counters(url: str, authorization: str) -> tuple[int, float]:
    """(batches, seconds inside the DuckDB writer process) from the server's stats (read with
    the admin key: ``authorization`` is the whole header value)."""
    req = urllib.request.Request(
        f"{url}/api/_pyconvex/stats", headers={"Authorization": authorization}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        stats = json.loads(resp.read())
    return int(stats["batches"]), float(stats["writerProcessSeconds"])


async def rtt(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """Sequential mutations on one socket: one in flight, ``pause`` seconds apart (0: back to
    back). With ``split_commit``, the server's commit counters are read after each mutation
    (outside the timed span): ``commit_s[i]`` is the time DuckDB spent on mutation i's own
    batch, None when its batch could not be told apart (not exactly one batch in between)."""
    conn = await SyncConnection(p["url"]).open()
    for i in range(p["warmup"]):
        await conn.mutation("bench:write", {"seq": float(i), "body": "warmup"})
    split = p.get("split_commit", False)
    auth = p.get("admin_key", "")
    counters = await asyncio.to_thread(_commit_counters, p["url"], auth) if split else (0, 0.0)
    ctl.ready()
    await ctl.receive("go")
    resolved_lat: list[float] = []
    response_lat: list[float] = []
    commit_s: list[float | None] = []
    deadline = time.monotonic() + p["max_seconds"]
    pause = p.get("pause", 0)
    for i in range(p["count"]):
        if pause:
            await asyncio.sleep(pause)
        t0 = time.monotonic()
        _, responded, resolved = await conn.mutation(
            "bench:write", {"seq": float(i), "body": "rtt"}
        )
        response_lat.append(responded - t0)
        resolved_lat.append(resolved - t0)
        if split:
            after = await asyncio.to_thread(_commit_counters, p["url"], auth)
            batches, seconds = after[0] - counters[0], after[1] - counters[1]
            commit_s.append(seconds if batches == 1 else None)
            counters = after
        if time.monotonic() > deadline:
            break
    await conn.close()
    out: dict[str, Any] = {"latencies": resolved_lat, "response_latencies": response_lat}
    if split:
        out["commit_s"] = commit_s
    return out


async def throughput(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """`connections` sockets, each with one mutation in flight, for `seconds`."""
    conns = await _open_many(p["url"], p["connections"])
    await asyncio.gather(*(c.mutation("bench:write", {"seq": 0.0, "body": "warm"}) for c in conns))
    ctl.ready()
    start_at = await ctl.receive("go")
    end_at = start_at + p["seconds"]
    counted = 0

    async def loop(c: SyncConnection) -> None:
        nonlocal counted
        i = 0
        while time.time() < end_at:
            await c.mutation("bench:write", {"seq": float(i), "body": "tput"})
            i += 1
            if start_at <= time.time() <= end_at:
                counted += 1

    await asyncio.gather(*(loop(c) for c in conns))
    await asyncio.gather(*(c.close() for c in conns))
    return {"completed": counted}


async def pipelined(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """One socket with `in_flight` mutations outstanding (a new one sent as each response
    arrives), for `seconds`: what one client putting all its writes on one WebSocket gets.

    A bare RawWebSocket that finds responses by their bytes, so the client stays cheap."""
    sent = 0
    outstanding = 0
    counted = 0
    failed = 0
    end_at = 0.0
    start_at = 0.0
    done = asyncio.Event()
    ws: RawWebSocket | None = None

    def send_next() -> None:
        nonlocal sent, outstanding
        assert ws is not None
        ws.send_text(
            f'{{"type":"Mutation","requestId":{sent},"udfPath":"bench:write","args":'
            f'[{{"seq":{sent}.0,"body":"pipelined"}}]}}'
        )
        sent += 1
        outstanding += 1

    def on_text(data: bytes) -> None:
        nonlocal outstanding, counted, failed
        m = RESPONSE.search(data)
        if m is None:
            return
        outstanding -= 1
        now = time.time()
        if m.group(2) != b"true":
            failed += 1
        elif start_at <= now <= end_at:
            counted += 1
        if now < end_at:
            send_next()
        elif outstanding == 0:
            done.set()

    ws = await RawWebSocket.connect(p["url"], "/api/sync", on_text)
    ws.send_text(connect_message())
    ctl.ready()
    start_at = await ctl.receive("go")
    end_at = start_at + p["seconds"]
    for _ in range(p["in_flight"]):
        send_next()
    await asyncio.wait_for(done.wait(), p["seconds"] + 60)
    ws.close()
    return {"completed": counted, "failed": failed}


async def fanout(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """`subscribers` sockets subscribed to the same query (`query`, default bench:latest);
    report per seq when every one of them has the new result (the coordinator writes). The
    seq found is the first in the result: the newest document's, for a newest-first list.

    The receivers use the bare RawWebSocket and look at the payload bytes only (no JSON decode),
    so that 1,000 messages per write cost the client little next to the server."""
    n = p["subscribers"]
    seen: dict[int, list[float]] = {}
    answered = 0
    all_answered = asyncio.Event()

    def receiver() -> Any:
        first = True

        def on_text(data: bytes) -> None:
            nonlocal first, answered
            now = time.monotonic()
            if first:  # the Transition answering our ModifyQuerySet
                if b'"Transition"' in data:
                    first = False
                    answered += 1
                    if answered == n:
                        all_answered.set()
                return
            if b'"QueryUpdated"' not in data:
                return
            m = SEQ.search(data)
            if m is None:
                return
            seq = int(m.group(1))
            times = seen.setdefault(seq, [])
            times.append(now)
            if len(times) == n:
                ctl.send({"seq": seq, "first": min(times), "last": max(times)})
                del seen[seq]

        return on_text

    subscribe = subscribe_message(p.get("query", "bench:latest"))
    socks: list[RawWebSocket] = []
    for i in range(0, n, 50):
        batch = await asyncio.gather(
            *(
                RawWebSocket.connect(p["url"], "/api/sync", receiver(), p.get("deflate", True))
                for _ in range(min(50, n - i))
            )
        )
        for ws in batch:
            ws.send_text(connect_message())
            ws.send_text(subscribe)
        socks += batch
    await asyncio.wait_for(all_answered.wait(), 120)
    ctl.ready({"subscribers": n})
    await ctl.stop_requested.wait()
    for ws in socks:
        ws.close()
    return {"incomplete": {k: len(v) for k, v in seen.items()}}


async def distinct(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """`subscribers` sockets, each subscribed to bench:by_key with its own key; report every
    socket that receives a changed result."""
    n, first = p["subscribers"], p["first_key"]
    conns = await _open_many(p["url"], n)

    def watcher(key: str) -> Any:
        def on_transition(msg: dict[str, Any], now: float) -> None:
            if any(m["type"] == "QueryUpdated" for m in msg["modifications"]):
                ctl.send({"key": key, "t": now})

        return on_transition

    for i in range(0, n, 100):
        await asyncio.gather(
            *(
                c.subscribe("bench:by_key", {"key": f"k{first + i + j}"})
                for j, c in enumerate(conns[i : i + 100])
            )
        )
    for j, c in enumerate(conns):
        c.on_transition = watcher(f"k{first + j}")
    ctl.ready({"subscribers": n})
    await ctl.stop_requested.wait()
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
    return {}
