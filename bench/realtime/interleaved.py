"""The idle write → subscriber workload with pyconvex, PocketBase and the floor server up at
once, their writes interleaved.

The halves of realtime_bench measure each server in its own phase, minutes apart. On a shared
VM the machine's speed drifts by 10-30 % over minutes (bench/RESULTS.md: identical code
alternated six times came out 0.11 ms apart in an idle p50, always in the same direction), which
moves a ratio between two phases as much as a change to the code does. Here the three servers
run side by side, started fresh, and the writes go to each in turn, ``pause`` apart: each
server is idle for three pauses between its own writes (colder than in the halves, never
warmer), and whatever the machine does during the phase reaches all three alike.

Each server gets its own writer and one subscriber worker, as in ``phases.fanout`` with one
subscriber: a write's latency is from just before it is sent until the subscriber has it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from time import monotonic, sleep
from typing import Any

from .convex_bench import Writer
from .phases import _poll, log
from .stats import ms, percentile
from .workers import WorkerPool


@dataclass
class Target:
    """One server in the interleaved phase."""

    #: The prefix of its figures ("" for pyconvex, "pocketbase_", "floor_").
    prefix: str
    #: Its subscriber's workload module and parameters (a ``fanout`` worker, one subscriber).
    module: str
    params: dict[str, Any]
    #: Send write ``seq`` and wait for its acknowledgement.
    write: Callable[[int], None]


def idle_to_subscriber(
    targets: list[Target], writes: int, warmup: int, pause: float, write_timeout: float = 10
) -> dict[str, Any]:
    """``writes`` rounds (after ``warmup`` unrecorded ones), one write per target in turn;
    returns ``{prefix + "idle_write_to_subscriber_interleaved_p50_ms": …}`` and the p99s."""
    pools = [WorkerPool(t.module, "fanout", 1, {**t.params, "subscribers": 1}) for t in targets]
    latencies: list[list[float]] = [[] for _ in targets]
    missed = [0] * len(targets)
    try:
        for pool in pools:
            pool.wait_ready(120)
        for seq in range(1, warmup + writes + 1):
            for i, (target, pool) in enumerate(zip(targets, pools, strict=True)):
                t0 = monotonic()
                target.write(seq)
                deadline = monotonic() + write_timeout
                last = None
                while last is None and monotonic() < deadline:
                    for _, msg in _poll([pool], deadline - monotonic()):
                        if msg.get("seq") == seq:
                            last = msg["last"]
                if seq > warmup:
                    if last is None:
                        missed[i] += 1
                    else:
                        latencies[i].append(last - t0)
                sleep(pause)
        for pool in pools:
            pool.finish(10)
    finally:
        for pool in pools:
            pool.kill()
    out: dict[str, Any] = {}
    for t, lat, lost in zip(targets, latencies, missed, strict=True):
        name = f"{t.prefix}idle_write_to_subscriber_interleaved"
        out[f"{name}_p50_ms"] = ms(percentile(lat, 50))
        out[f"{name}_p99_ms"] = ms(percentile(lat, 99))
        out[f"{name}_writes_missed"] = lost
    return out


def run(tmp: Path, writes: int, pause: float) -> dict[str, Any]:
    """Start the three servers fresh, run :func:`idle_to_subscriber`, stop them."""
    from .servers import Floor, PocketBase, PocketBaseWriter, Pyconvex

    work = tmp / "interleaved"
    work.mkdir()
    pb, floor, server = PocketBase(work), Floor(work, sync=True), Pyconvex(work)
    closers: list[Callable[[], None]] = []
    try:
        log("interleaved: starting PocketBase, the floor server and pyconvex side by side")
        for s in (pb, floor, server):
            s.start()
        convex, floor_writer, pb_writer = (
            Writer(server.url),
            Writer(floor.url),
            PocketBaseWriter(pb),
        )
        closers += [convex.close, floor_writer.close, pb_writer.close]
        targets = [
            Target("", "realtime.convex_workload", {"url": server.url}, convex.bump),
            Target(
                "pocketbase_",
                "realtime.pb_workload",
                {"host": pb.host, "port": pb.port},
                pb_writer.write,
            ),
            Target("floor_", "realtime.convex_workload", {"url": floor.url}, floor_writer.bump),
        ]
        log(
            f"interleaved: write to one other socket's subscription, a write to each server in "
            f"turn, {pause * 1000:.0f} ms apart"
        )
        out = idle_to_subscriber(targets, writes, warmup=10, pause=pause)
        log(f"  {out}")
        return out
    finally:
        for close in reversed(closers):
            close()
        for s in (server, floor, pb):
            s.stop()
