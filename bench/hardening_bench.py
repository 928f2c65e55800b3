"""How one heavy or slow client affects the others (issue 10), against `pyconvex dev`.

    .venv/bin/python bench/hardening_bench.py [--quick]

Figures (the last stdout line is one JSON object; progress on stderr):

* ``mqs300_answer_s``: one socket adds 300 distinct paginated subscriptions (pages of 1,000
  items, newest first) over 4,000 documents in ONE ModifyQuerySet; seconds until its
  answering Transition(s) end.
* ``mqs300_other_mutation_ms``: meanwhile, another socket's mutation round trip (response and
  then a Transition at its ts), sent right after the big ModifyQuerySet. Reference
  ``idle_mutation_ms``: the same round trip with nothing else going on.
* ``bigdoc_mqs300_answer_s``, ``bigdoc_peak_rss_mb``, ``bigdoc_largest_frame_mb``: the same
  300 subscriptions with one 900 KB document in the table (every page holds it).
* ``slow_readers_rss_{before,peak,after}_mb``: 8 sockets subscribe to a 2 MB result and read
  nothing while 40 writes change it; RSS before, at the peak, and 3 s after the server has
  closed them.

``--quick`` uses 2,000 documents, 150 subscriptions and pages of 500. The server is started by
``pyconvex.dev.launcher.DevServer`` in a temporary copy of a small project.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from pyconvex.dev.launcher import DevServer

PROJECT = """
from pyconvex import mutation, query, v

@query(args={"slot": v.float64(), "paginationOpts": v.any()})
async def page(ctx, slot, paginationOpts):
    # Newest first: a page holds the 900 KB document once it is inserted.
    return await ctx.db.query("items").order("desc").paginate(paginationOpts)

@mutation(args={"n": v.float64(), "size": v.float64()})
async def fill(ctx, n, size):
    for i in range(int(n)):
        await ctx.db.insert("items", {"i": float(i), "pad": "p" * int(size)})

@mutation(args={"body": v.string()})
async def send(ctx, body):
    return await ctx.db.insert("messages", {"body": body})

@query(args={"k": v.float64()})
async def big(ctx, k):
    return [d["s"] for d in await ctx.db.query("b").collect()] + [k]

@mutation(args={"n": v.float64()})
async def put(ctx, n):
    await ctx.db.insert("b", {"s": "y" * 100_000 + str(n)})
"""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def open_sync(url: str, session: str, **kw: Any) -> ClientConnection:
    ws = await connect(url.replace("http://", "ws://") + "/api/sync", max_size=None, **kw)
    await ws.send(json.dumps({"type": "Connect", "sessionId": session, "connectionCount": 0,
                              "lastCloseReason": "InitialConnect", "clientTs": 0}))  # fmt: skip
    return ws


async def until(ws: ClientConnection, done: Any, sizes: list[int] | None = None) -> None:
    while True:
        raw = await asyncio.wait_for(ws.recv(), 300)
        if sizes is not None:
            sizes.append(len(raw))
        if done(json.loads(raw)):
            return


async def mutation_rtt(ws: ClientConnection, rid: int) -> float:
    start = time.perf_counter()
    await ws.send(json.dumps({"type": "Mutation", "requestId": rid, "udfPath": "h:send",
                              "args": [{"body": "b"}]}))  # fmt: skip
    await until(ws, lambda f: f["type"] == "MutationResponse" and f["requestId"] == rid)
    await until(ws, lambda f: f["type"] == "Transition")
    return (time.perf_counter() - start) * 1000


async def big_query_set(server: DevServer, n: int, items: int, tag: str) -> dict[str, float]:
    other = await open_sync(server.url, f"other-{tag}")
    await other.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                                 "modifications": []}))  # fmt: skip
    await until(other, lambda f: f["type"] == "Transition")
    idle = sorted([await mutation_rtt(other, i) for i in range(5)])[2]
    big = await open_sync(server.url, f"big-{tag}")
    adds = [{"type": "Add", "queryId": i, "udfPath": "h:page",
             "args": [{"slot": float(i), "paginationOpts": {"numItems": items, "cursor": None}}]}
            for i in range(n)]  # fmt: skip
    peak = rss_mb(server.pid)
    sizes: list[int] = []
    start = time.perf_counter()
    await big.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0, "newVersion": 1,
                               "modifications": adds}))  # fmt: skip
    answered = asyncio.create_task(
        until(big, lambda f: f["type"] == "Transition" and f["endVersion"]["querySet"] == 1,
              sizes)
    )
    other_ms = await mutation_rtt(other, 100)
    while not answered.done():
        peak = max(peak, rss_mb(server.pid))
        await asyncio.sleep(0.05)
    await answered
    answer_s = time.perf_counter() - start
    await big.close()
    await other.close()
    return {
        "answer_s": round(answer_s, 3),
        "other_mutation_ms": round(other_ms, 1),
        "idle_mutation_ms": round(idle, 2),
        "peak_rss_mb": round(peak),
        "largest_frame_mb": round(max(sizes) / 1e6, 2),
    }


async def slow_readers(server: DevServer) -> dict[str, float]:
    async with httpx.AsyncClient(timeout=60) as http:
        for i in range(20):
            await http.post(f"{server.url}/api/mutation", json={"path": "h:put", "args": {"n": i}})
        before = rss_mb(server.pid)
        readers = []
        for k in range(8):
            ws = await open_sync(server.url, f"slow-{k}", max_queue=1)
            ws.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVBUF, 4096
            )
            await ws.send(json.dumps({"type": "ModifyQuerySet", "baseVersion": 0,
                                      "newVersion": 1, "modifications": [
                                          {"type": "Add", "queryId": 1, "udfPath": "h:big",
                                           "args": [{"k": float(k)}]}]}))  # fmt: skip
            readers.append(ws)
        peak = before
        for i in range(40):
            await http.post(f"{server.url}/api/mutation", json={"path": "h:put",
                                                                "args": {"n": 100 + i}})  # fmt: skip
            peak = max(peak, rss_mb(server.pid))
        await asyncio.sleep(3)
        after = rss_mb(server.pid)
        for ws in readers:
            ws.transport.abort()
    return {"before": round(before), "peak": round(peak), "after": round(after)}


async def main(quick: bool) -> dict[str, Any]:
    docs, subs, items = (2000, 150, 500) if quick else (4000, 300, 1000)
    metrics: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "convex").mkdir()
        (root / "convex" / "h.py").write_text(textwrap.dedent(PROJECT))
        with DevServer(root, keep_lines=200) as server:
            async with httpx.AsyncClient(timeout=120) as http:
                for _ in range(docs // 500):
                    await http.post(f"{server.url}/api/mutation",
                                    json={"path": "h:fill", "args": {"n": 500, "size": 200}})  # fmt: skip
            log(f"{subs} subscriptions of {items}-item pages over {docs} documents, one message")
            r = await big_query_set(server, subs, items, "plain")
            log(f"  {r}")
            name = f"mqs{subs}"
            metrics |= {f"{name}_answer_s": r["answer_s"],
                        f"{name}_other_mutation_ms": r["other_mutation_ms"],
                        "idle_mutation_ms": r["idle_mutation_ms"]}  # fmt: skip
            async with httpx.AsyncClient(timeout=120) as http:
                await http.post(f"{server.url}/api/mutation",
                                json={"path": "h:fill", "args": {"n": 1, "size": 900_000}})  # fmt: skip
            log("the same with one 900 KB document in every page")
            r = await big_query_set(server, subs, items, "bigdoc")
            log(f"  {r}")
            metrics |= {f"bigdoc_{name}_answer_s": r["answer_s"],
                        f"bigdoc_{name}_other_mutation_ms": r["other_mutation_ms"],
                        "bigdoc_peak_rss_mb": r["peak_rss_mb"],
                        "bigdoc_largest_frame_mb": r["largest_frame_mb"]}  # fmt: skip
            log("8 slow readers of a 2 MB result, 40 writes")
            r = await slow_readers(server)
            log(f"  {r}")
            metrics |= {f"slow_readers_rss_{k}_mb": v for k, v in r.items()}
    return metrics


def machine() -> dict[str, Any]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout.strip()  # fmt: skip
    return {"nproc": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "load": os.getloadavg(), "commit": commit}  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    opts = parser.parse_args()
    metrics = asyncio.run(main(opts.quick))
    reference = {"idle_mutation_ms": metrics.pop("idle_mutation_ms")}
    print(json.dumps({"metrics": metrics, "reference": reference, "machine": machine()}))
