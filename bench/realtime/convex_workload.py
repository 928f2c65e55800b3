"""pyconvex workloads (run in worker processes) over the raw WebSocket sync protocol."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .convex_ws import SyncConnection


async def _open_many(url: str, n: int, batch: int = 50) -> list[SyncConnection]:
    conns: list[SyncConnection] = []
    for i in range(0, n, batch):
        conns += await asyncio.gather(
            *(SyncConnection(url).open() for _ in range(min(batch, n - i)))
        )
    return conns


async def rtt(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """Sequential mutations on one socket: one in flight."""
    conn = await SyncConnection(p["url"]).open()
    for i in range(p["warmup"]):
        await conn.mutation("bench:write", {"seq": float(i), "body": "warmup"})
    ctl.ready()
    await ctl.receive("go")
    resolved_lat: list[float] = []
    response_lat: list[float] = []
    deadline = time.monotonic() + p["max_seconds"]
    for i in range(p["count"]):
        t0 = time.monotonic()
        _, responded, resolved = await conn.mutation(
            "bench:write", {"seq": float(i), "body": "rtt"}
        )
        response_lat.append(responded - t0)
        resolved_lat.append(resolved - t0)
        if time.monotonic() > deadline:
            break
    await conn.close()
    return {"latencies": resolved_lat, "response_latencies": response_lat}


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


async def fanout(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """`subscribers` sockets subscribed to the same query (bench:latest); report per seq when
    every one of them has the new result (the coordinator writes)."""
    n = p["subscribers"]
    conns = await _open_many(p["url"], n)
    seen: dict[int, list[float]] = {}

    def on_transition(msg: dict[str, Any], now: float) -> None:
        for mod in msg["modifications"]:
            if mod["type"] != "QueryUpdated" or not mod["value"]:
                continue
            seq = int(mod["value"]["seq"])
            times = seen.setdefault(seq, [])
            times.append(now)
            if len(times) == n:
                ctl.send({"seq": seq, "first": min(times), "last": max(times)})
                del seen[seq]

    for i in range(0, n, 100):
        await asyncio.gather(*(c.subscribe("bench:latest", {}) for c in conns[i : i + 100]))
    seen.clear()
    for c in conns:
        c.on_transition = on_transition
    ctl.ready({"subscribers": n})
    await ctl.stop_requested.wait()
    await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
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
