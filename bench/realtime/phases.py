"""Workload drivers shared by both systems: each spawns client workers and aggregates."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any

from .stats import ms, percentile
from .workers import WorkerPool


def log(msg: str) -> None:
    print(f"[realtime_bench] {msg}", file=sys.stderr, flush=True)


def _self_cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def settle(server_cpu: Callable[[], float], *, max_s: float = 60.0) -> float:
    """Wait until the server is quiet (under 20 ms of CPU in half a second), at most ``max_s``;
    log and return the seconds waited. A phase starts on a quiet server: what a previous phase
    left running (pyconvex's writer applying logged mutations to DuckDB; PocketBase's own
    background work) is that phase's, not the next one's, and a phase named "idle" measures a
    server that is."""
    start = time.monotonic()
    last = server_cpu()
    while time.monotonic() - start < max_s:
        time.sleep(0.5)
        now = server_cpu()
        if now - last < 0.02:
            break
        last = now
    waited = round(time.monotonic() - start, 1)
    log(f"  (server quiet after {waited} s)")
    return waited


class CpuMeter:
    """Server CPU (its process tree) and client CPU (workers + this process) over one phase."""

    def __init__(self, server_cpu: Callable[[], float]) -> None:
        self.server_cpu = server_cpu
        self.server0, self.self0 = server_cpu(), _self_cpu()
        self.server1: float | None = None

    def work_done(self) -> None:
        """Read the server's CPU now, when the phase's work is over: what follows (the workers
        closing their sockets; 1,000 of them cost the server ~0.1 s) is not the phase's."""
        self.server1 = self.server_cpu()

    def done(self, worker_cpu: float) -> dict[str, float]:
        server1 = self.server_cpu() if self.server1 is None else self.server1
        return {
            "server_cpu_s": round(server1 - self.server0, 3),
            "client_cpu_s": round(worker_cpu + _self_cpu() - self.self0, 3),
        }


def rtt(module: str, params: dict[str, Any], server_cpu: Callable[[], float]) -> dict[str, Any]:
    pool = WorkerPool(module, "rtt", 1, params)
    try:
        pool.wait_ready(60)
        cpu = CpuMeter(server_cpu)
        pool.broadcast("go", time.time())
        deadline = time.monotonic() + params["max_seconds"] + 30
        while pool.results[0] is None and time.monotonic() < deadline:
            pool.messages(0.5)
        results, worker_cpu = pool.finish(10)
    finally:
        pool.kill()
    lat = results[0]["latencies"]
    out = {
        "rtt_p50_ms": ms(percentile(lat, 50)),
        "rtt_p99_ms": ms(percentile(lat, 99)),
        "rtt_samples": len(lat),
        **cpu.done(worker_cpu),
    }
    if "response_latencies" in results[0]:
        out["response_p50_ms"] = ms(percentile(results[0]["response_latencies"], 50))
    if "commit_s" in results[0]:
        # Per request: its own round trip minus its own batch's DuckDB time.
        pairs = [(t, c) for t, c in zip(lat, results[0]["commit_s"], strict=True) if c is not None]
        out["without_commit_p50_ms"] = ms(percentile([t - c for t, c in pairs], 50))
        out["without_commit_p99_ms"] = ms(percentile([t - c for t, c in pairs], 99))
        out["commit_p50_ms"] = ms(percentile([c for _, c in pairs], 50))
        out["split_samples"] = len(pairs)
    return out


def throughput(
    module: str, params: dict[str, Any], procs: int, server_cpu: Callable[[], float]
) -> dict[str, Any]:
    total = params["in_flight"]
    per = [total // procs + (1 if i < total % procs else 0) for i in range(procs)]
    pools = [WorkerPool(module, "throughput", 1, {**params, "connections": n}) for n in per]
    try:
        for pool in pools:
            pool.wait_ready(60)
        start_at = time.time() + 0.5  # after the go message reaches everyone
        cpu = CpuMeter(server_cpu)
        for pool in pools:
            pool.broadcast("go", start_at)
        time.sleep(max(0.0, start_at + params["seconds"] - time.time()))
        completed = 0
        worker_cpu = 0.0
        for pool in pools:
            deadline = time.monotonic() + 30
            while pool.results[0] is None and time.monotonic() < deadline:
                pool.messages(0.5)
            results, c = pool.finish(10)
            completed += results[0]["completed"]
            worker_cpu += c
    finally:
        for pool in pools:
            pool.kill()
    return {"per_s": round(completed / params["seconds"], 1), **cpu.done(worker_cpu)}


def pipelined(
    module: str, params: dict[str, Any], server_cpu: Callable[[], float]
) -> dict[str, Any]:
    """One client, one socket, `in_flight` mutations outstanding for `seconds`."""
    pool = WorkerPool(module, "pipelined", 1, params)
    try:
        pool.wait_ready(60)
        start_at = time.time() + 0.5
        cpu = CpuMeter(server_cpu)
        pool.broadcast("go", start_at)
        deadline = time.monotonic() + params["seconds"] + 90
        while pool.results[0] is None and time.monotonic() < deadline:
            pool.messages(0.5)
        results, worker_cpu = pool.finish(10)
    finally:
        pool.kill()
    if results[0]["failed"]:
        raise RuntimeError(f"{results[0]['failed']} pipelined mutations failed")
    return {"per_s": round(results[0]["completed"] / params["seconds"], 1), **cpu.done(worker_cpu)}


def _poll(pools: list[WorkerPool], timeout: float) -> list[tuple[int, Any]]:
    """Messages from single-worker pools, waiting up to `timeout` for the first."""
    conns = [p.conns[0] for p in pools]
    out = []
    for c in wait(conns, max(0.0, timeout)):
        i = conns.index(c)  # type: ignore[arg-type]
        out.extend((i, msg) for _, msg in pools[i].messages(0))
    return out


def fanout(
    module: str,
    params: dict[str, Any],
    subscribers: int,
    writes: int,
    procs: int,
    write: Callable[[int], None],
    server_cpu: Callable[[], float],
    seq0: int = 0,
) -> dict[str, Any]:
    """`subscribers` clients of one query/collection; per write, time from issuing it until the
    last subscriber has it."""
    procs = max(1, min(procs, subscribers))
    per = [subscribers // procs + (1 if i < subscribers % procs else 0) for i in range(procs)]
    pools = [WorkerPool(module, "fanout", 1, {**params, "subscribers": n}) for n in per]
    latencies: list[float] = []
    spreads: list[float] = []
    missed = 0
    try:
        for pool in pools:
            pool.wait_ready(120)
        cpu = CpuMeter(server_cpu)
        for seq in range(1, writes + 1):
            t0 = time.monotonic()
            write(seq)
            last: list[float] = []
            first: list[float] = []
            deadline = time.monotonic() + params.get("write_timeout", 10)
            waiting = set(range(len(pools)))
            while waiting and time.monotonic() < deadline:
                for i, msg in _poll(pools, deadline - time.monotonic()):
                    if msg.get("seq") == seq0 + seq:
                        last.append(msg["last"])
                        first.append(msg["first"])
                        waiting.discard(i)
            if waiting:
                missed += 1
            else:
                latencies.append(max(last) - t0)
                spreads.append(max(last) - min(first))
            time.sleep(params.get("pause", 0.05))
        cpu.work_done()
        worker_cpu = 0.0
        for pool in pools:
            worker_cpu += pool.finish(10)[1]
    finally:
        for pool in pools:
            pool.kill()
    return {
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(max(latencies)) if latencies else None,
        "spread_p50_ms": ms(percentile(spreads, 50)),
        "writes": len(latencies),
        "writes_missed": missed,
        **cpu.done(worker_cpu),
    }
