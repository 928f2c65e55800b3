"""Realtime benchmark: pyconvex's WebSocket sync against PocketBase, measured in the same run.

    .venv/bin/python bench/realtime_bench.py [--quick] [--only pyconvex|pocketbase]

Progress goes to stderr; the LAST line on stdout is one JSON object
{"metrics": {...}, "reference": {...}, "machine": {...}} (see bench/README.md for each figure).
Every server is started and stopped here by pid, bound to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from realtime import phases
from realtime.phases import log

QUICK = {
    "rtt_count": 300,
    "rtt_max_s": 10,
    "idle_count": 60,
    "tput_s": 4,
    "fanout_writes": 15,
    "fanout1_writes": 30,
    "distinct_writes": 5,
}
FULL = {
    "rtt_count": 2000,
    "rtt_max_s": 30,
    "idle_count": 200,
    "tput_s": 10,
    "fanout_writes": 50,
    "fanout1_writes": 100,
    "distinct_writes": 20,
}
#: Seconds between writes in the idle-latency workloads (a chat message after a pause).
IDLE_S = 0.05


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def bench_pocketbase(tmp: Path, cfg: dict[str, Any], procs: int) -> dict[str, Any]:
    from realtime.servers import PocketBase, PocketBaseWriter

    pb = PocketBase(tmp / "pocketbase-run")
    (tmp / "pocketbase-run").mkdir()
    log(f"PocketBase: starting {pb.binary}")
    pb.start()
    out: dict[str, Any] = {}
    try:
        base = {"host": pb.host, "port": pb.port}
        mod = "realtime.pb_workload"
        log("PocketBase: create RTT, one in flight")
        r = phases.rtt(
            mod,
            {**base, "warmup": 50, "count": cfg["rtt_count"], "max_seconds": cfg["rtt_max_s"]},
            pb.cpu,
        )
        out |= {
            "pocketbase_mutation_rtt_p50_ms": r["rtt_p50_ms"],
            "pocketbase_mutation_rtt_p99_ms": r["rtt_p99_ms"],
        }
        log(f"  {r}")
        phases.settle(pb.cpu)
        log(f"PocketBase: create RTT, {IDLE_S * 1000:.0f} ms between creates")
        r = phases.rtt(
            mod,
            {**base, "warmup": 20, "count": cfg["idle_count"], "max_seconds": 60, "pause": IDLE_S},
            pb.cpu,
        )
        out["pocketbase_idle_mutation_rtt_p50_ms"] = r["rtt_p50_ms"]
        log(f"  {r}")
        phases.settle(pb.cpu)
        log("PocketBase: creates/s with 64 in flight")
        t = phases.throughput(
            mod, {**base, "in_flight": 64, "seconds": cfg["tput_s"]}, procs, pb.cpu
        )
        out |= {
            "pocketbase_mutations_per_s_64": t["per_s"],
            "pocketbase_mutations_64_server_cpu_s": t["server_cpu_s"],
            "pocketbase_mutations_64_client_cpu_s": t["client_cpu_s"],
        }
        log(f"  {t}")

        writer = PocketBaseWriter(pb)
        out["pocketbase_quiet_wait_after_throughput_s"] = phases.settle(pb.cpu)
        for n, writes in ((1, cfg["fanout1_writes"]), (1000, cfg["fanout_writes"])):
            phases.settle(pb.cpu)
            log(f"PocketBase: fan-out to {n} SSE subscribers")
            f = phases.fanout(mod, base, n, writes, procs, writer.write, pb.cpu)
            log(f"  {f}")
            out |= {
                f"pocketbase_fanout_{n}_p50_ms": f["p50_ms"],
                f"pocketbase_fanout_{n}_p99_ms": f["p99_ms"],
            }
            if n == 1:  # the writes are IDLE_S apart (phases.fanout's pause)
                out["pocketbase_idle_write_to_subscriber_p50_ms"] = f["p50_ms"]
            if n == 1000:
                issued = f["writes"] + f["writes_missed"]
                out |= {
                    "pocketbase_fanout_1000_server_cpu_s": f["server_cpu_s"],
                    "pocketbase_fanout_1000_server_cpu_us_per_delivery": round(
                        f["server_cpu_s"] * 1e6 / (issued * n), 2
                    ),
                    "pocketbase_fanout_1000_client_cpu_s": f["client_cpu_s"],
                    "pocketbase_fanout_1000_writes_missed": f["writes_missed"],
                }
        writer.close()
        out["pocketbase_server_cpu_s"] = round(pb.cpu(), 3)
    finally:
        pb.stop()
    return out


def bench_floor(tmp: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """The idle round trip of a server that only appends each mutation to a file, fsyncs it
    and answers (bench/realtime/floor_server.py), and of the same without the fsync: what
    pyconvex's idle round trip costs above the floor of this machine and client."""
    from realtime.servers import Floor

    out: dict[str, Any] = {}
    for sync in (True, False):
        floor = Floor(tmp, sync=sync)
        name = "floor" if sync else "floor_nosync"
        log(
            f"floor server ({'append + fdatasync' if sync else 'append, no sync'}): "
            f"mutation RTT, {IDLE_S * 1000:.0f} ms between mutations"
        )
        floor.start()
        try:
            r = phases.rtt(
                "realtime.convex_workload",
                {
                    "url": floor.url,
                    "warmup": 20,
                    "count": cfg["idle_count"],
                    "max_seconds": 60,
                    "pause": IDLE_S,
                },
                floor.cpu,
            )
            log(f"  {r}")
            out[f"{name}_idle_mutation_rtt_p50_ms"] = r["rtt_p50_ms"]
            if sync:
                log("floor server (append + fdatasync): write to one other socket's subscription")
                f = floor_fanout1(floor.url, cfg["fanout1_writes"], floor.cpu)
                log(f"  {f}")
                out["floor_idle_write_to_subscriber_p50_ms"] = f["p50_ms"]
        finally:
            floor.stop()
    return out


def floor_fanout1(url: str, writes: int, server_cpu: Callable[[], float]) -> dict[str, Any]:
    """``idle_write_to_subscriber_p50_ms``'s workload against the floor server."""
    from realtime.convex_bench import Writer

    writer = Writer(url)
    try:
        return phases.fanout(
            "realtime.convex_workload",
            {"url": url},
            1,
            writes,
            1,
            writer.bump,
            server_cpu,
        )
    finally:
        writer.close()


def bench_interleaved(tmp: Path, cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The idle write → subscriber workload again, pyconvex, PocketBase and the floor side by
    side with their writes interleaved (realtime/interleaved.py): the ratio free of the
    machine's drift between phases. Returns (pyconvex's figures, the references)."""
    from realtime import interleaved

    out = interleaved.run(tmp, cfg["fanout1_writes"], IDLE_S)
    ours = {k: v for k, v in out.items() if k.startswith("idle_")}
    return ours, {k: v for k, v in out.items() if k not in ours}


def bench_pyconvex(tmp: Path, cfg: dict[str, Any], procs: int) -> dict[str, Any]:
    from realtime.convex_bench import run as run_pyconvex

    return run_pyconvex(tmp, cfg, procs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples; under 150 s")
    parser.add_argument("--only", choices=["pyconvex", "pocketbase"], help="run one side only")
    parser.add_argument(
        "--procs",
        type=int,
        default=max(2, min(4, (os.cpu_count() or 2))),
        help="client worker processes per workload (default: 2..4 by core count)",
    )
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    started = time.monotonic()
    metrics: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    errors: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="realtime-bench-") as tmp:
        if args.only in (None, "pocketbase"):
            try:
                reference = bench_pocketbase(Path(tmp), cfg, args.procs)
            except Exception as e:  # report and keep going: the other half still measures
                log(f"PocketBase half failed: {e!r}")
                errors["pocketbase"] = repr(e)
        if args.only in (None, "pyconvex"):
            try:
                reference |= bench_floor(Path(tmp), cfg)
            except Exception as e:
                log(f"floor server failed: {e!r}")
                errors["floor"] = repr(e)
            try:
                metrics = bench_pyconvex(Path(tmp), cfg, args.procs)
            except Exception as e:
                log(f"pyconvex half failed: {e!r}")
                errors["pyconvex"] = repr(e)
        if args.only is None:
            try:
                ours, theirs = bench_interleaved(Path(tmp), cfg)
                metrics |= ours
                reference |= theirs
            except Exception as e:
                log(f"interleaved phase failed: {e!r}")
                errors["interleaved"] = repr(e)
    info = machine() | {
        "client_procs": args.procs,
        "quick": args.quick,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    if errors:
        info["errors"] = errors
    print(json.dumps({"metrics": metrics, "reference": reference, "machine": info}))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
