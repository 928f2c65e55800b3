"""Crash safety with real crashes: a `pyconvex dev` taking a stream of mutations is SIGKILLed at
a random moment, 20 times over, and restarted each time; in the end every acknowledged mutation
is stored exactly once (none lost, none applied twice), and no unacknowledged one is doubled."""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from pyconvex.dev.launcher import DevServer

FUNCTIONS = """
from pyconvex import mutation, query, v


@mutation(args={"seq": v.float64()})
async def add(ctx, seq):
    await ctx.db.insert("log", {"seq": seq})
    return seq


@query
async def count(ctx) -> float:
    return float(len(await ctx.db.query("log").collect()))


@query(args={"after": v.float64()})
async def seqs(ctx, after):
    docs = await ctx.db.query("log").collect()
    return [d["seq"] for d in docs if d["seq"] > after][:8000]
"""
KILLS = 20
BUDGET_S = 120


def stream(url: str, first: int, acked: list[int], stop: threading.Event) -> int:
    """Send mutations one after another until the server dies; record each acknowledged one."""
    seq = first
    with httpx.Client(base_url=url, timeout=5) as http:
        while not stop.is_set():
            try:
                r = http.post("/api/mutation", json={"path": "m:add", "args": {"seq": float(seq)}})
            except httpx.HTTPError:
                return seq + 1  # died mid-request: that one may or may not be stored
            if r.status_code == 200 and r.json().get("status") == "success":
                acked.append(seq)
            seq += 1
    return seq


def test_sigkill_mid_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    (tmp_path / "convex").mkdir()
    (tmp_path / "convex" / "m.py").write_text(FUNCTIONS)
    rng = random.Random(20261205)
    acked: list[int] = []
    next_seq = 0
    started = time.monotonic()
    server = DevServer(tmp_path, "--typecheck", "disable", keep_lines=200)
    kills = 0
    try:
        while kills < KILLS and time.monotonic() - started < BUDGET_S:
            server.start()
            stop = threading.Event()
            result: list[int] = []
            writer = threading.Thread(
                target=lambda r=result, first=next_seq, halt=stop: r.append(
                    stream(server.url, first, acked, halt)
                )
            )
            writer.start()
            time.sleep(rng.uniform(0.05, 0.4))
            server.stop(signal.SIGKILL)
            kills += 1
            stop.set()
            writer.join(30)
            next_seq = result[0] + 1 if result else next_seq + 100_000
        server.start()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            stored: list[float] = []
            after = -1.0
            while True:
                r = http.post("/api/query", json={"path": "m:seqs", "args": {"after": after}})
                page = r.json()["value"]
                if not page:
                    break
                stored += page
                after = max(page)
    finally:
        server.stop()
    assert kills >= KILLS, f"only {kills} kills in {BUDGET_S} s"
    counts = Counter(int(s) for s in stored)
    doubled = [s for s, n in counts.items() if n > 1]
    assert not doubled, f"stored twice: {doubled[:10]}"
    lost = [s for s in acked if s not in counts]
    assert not lost, f"acknowledged but lost: {lost[:10]}"
    assert len(acked) > KILLS  # the stream did run between the kills
