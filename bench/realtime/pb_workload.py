"""PocketBase workloads (run in worker processes): record creates over raw HTTP, SSE subscribers."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from .http_raw import HttpConnection, SseStream

SEQ = re.compile(rb'"seq":(\d+)')


async def _create(conn: HttpConnection, collection: str, body: dict[str, Any]) -> None:
    status, data = await conn.request("POST", f"/api/collections/{collection}/records", body)
    if status != 200:
        raise RuntimeError(f"create answered {status}: {data[:200]!r}")


async def rtt(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """Sequential creates on one keep-alive connection: one request in flight, ``pause``
    seconds apart (0: back to back)."""
    conn = await HttpConnection(p["host"], p["port"]).open()
    for i in range(p["warmup"]):
        await _create(conn, "bench", {"seq": i, "body": "warmup"})
    ctl.ready()
    await ctl.receive("go")
    lat: list[float] = []
    deadline = time.monotonic() + p["max_seconds"]
    pause = p.get("pause", 0)
    for i in range(p["count"]):
        if pause:
            await asyncio.sleep(pause)
        t0 = time.perf_counter()
        await _create(conn, "bench", {"seq": i, "body": "rtt"})
        lat.append(time.perf_counter() - t0)
        if time.monotonic() > deadline:
            break
    conn.close()
    return {"latencies": lat}


async def throughput(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """`connections` keep-alive connections, each with one create in flight, for `seconds`."""
    conns = [await HttpConnection(p["host"], p["port"]).open() for _ in range(p["connections"])]
    await asyncio.gather(*(_create(c, "bench", {"seq": 0, "body": "warm"}) for c in conns))
    ctl.ready()
    start_at = await ctl.receive("go")  # a shared time.time() to start measuring at
    end_at = start_at + p["seconds"]
    counted = 0

    async def loop(c: HttpConnection) -> None:
        nonlocal counted
        i = 0
        while time.time() < end_at:
            await _create(c, "bench", {"seq": i, "body": "tput"})
            i += 1
            if start_at <= time.time() <= end_at:
                counted += 1

    await asyncio.gather(*(loop(c) for c in conns))
    for c in conns:
        c.close()
    return {"completed": counted}


async def fanout(ctl: Any, p: dict[str, Any]) -> dict[str, Any]:
    """`subscribers` SSE connections subscribed to the `fanout` collection; report per seq when
    every one of them has the created record (the coordinator creates them)."""
    host, port, n = p["host"], p["port"], p["subscribers"]
    poster = await HttpConnection(host, port).open()
    streams: list[SseStream] = []
    for _ in range(n):
        s = await SseStream(host, port, "/api/realtime").open()
        event, data = await s.next_event()
        assert event == "PB_CONNECT", event
        client_id = json.loads(data)["clientId"]
        status, body = await poster.request(
            "POST", "/api/realtime", {"clientId": client_id, "subscriptions": ["fanout"]}
        )
        if status not in (200, 204):
            raise RuntimeError(f"subscribe answered {status}: {body[:200]!r}")
        streams.append(s)
    poster.close()
    seen: dict[int, list[float]] = {}

    async def listen(s: SseStream) -> None:
        while True:
            event, data = await s.next_event()
            t = time.monotonic()
            if event != "fanout":
                continue
            m = SEQ.search(data)
            if m is None:
                continue
            seq = int(m.group(1))
            times = seen.setdefault(seq, [])
            times.append(t)
            if len(times) == n:
                ctl.send({"seq": seq, "first": min(times), "last": max(times)})
                del seen[seq]

    tasks = [asyncio.create_task(listen(s)) for s in streams]
    ctl.ready({"subscribers": n})
    await ctl.stop_requested.wait()
    for t in tasks:
        t.cancel()
    for s in streams:
        s.close()
    return {"incomplete": {k: len(v) for k, v in seen.items()}}
