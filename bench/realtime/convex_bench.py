"""The pyconvex half of realtime_bench: start `pyconvex dev`, run every workload, stop it."""

from __future__ import annotations

import json
import os
import random
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from . import phases
from .convex_ws import sync_url
from .phases import CpuMeter, log
from .servers import Pyconvex
from .workers import WorkerPool

MOD = "realtime.convex_workload"
#: Seconds between writes in the idle-latency workloads (a chat message after a pause).
IDLE_S = 0.05
#: A chat message's body in the list fan-out (~100 bytes of JSON per message with its fields).
BODY = "The quick brown fox jumps over the lazy dog while the band plays on."
# Where the server exposes its query-execution counter (asked of the server side; see README).
STATS_PATHS = [
    os.environ.get("PYCONVEX_STATS_PATH", ""),
    "/api/_pyconvex/stats",
    "/_pyconvex/stats",
]


class Writer:
    """A blocking WebSocket writer for the fan-out workloads (one mutation at a time)."""

    def __init__(self, url: str) -> None:
        self.ws = connect(sync_url(url), compression=None, max_size=None, open_timeout=30)
        self.ws.send(
            json.dumps(
                {
                    "type": "Connect",
                    # A fresh session: the server deduplicates (sessionId, requestId).
                    "sessionId": str(uuid.uuid4()),
                    "connectionCount": 0,
                    "lastCloseReason": "InitialConnect",
                    "clientTs": 0,
                }
            )
        )
        self.request_id = 0

    def mutation(self, path: str, args: dict[str, Any]) -> None:
        rid = self.request_id
        self.request_id += 1
        self.ws.send(
            json.dumps({"type": "Mutation", "requestId": rid, "udfPath": path, "args": [args]})
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv(timeout=10))
            if msg["type"] == "MutationResponse" and msg["requestId"] == rid:
                if not msg["success"]:
                    raise RuntimeError(f"{path} failed: {msg['result']}")
                return
        raise TimeoutError(f"{path}: no MutationResponse in 10 s")

    def bump(self, seq: int) -> None:
        """Write ``seq`` with ``bench:bump``: what the fan-out subscribers of ``bench:latest``
        hear of (and report by that seq)."""
        self.mutation("bench:bump", {"seq": float(seq)})

    def close(self) -> None:
        self.ws.close()


def _find_counter(obj: Any) -> float | None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in ("executions", "query_executions") and isinstance(v, (int, float)):
                return float(v)
            found = _find_counter(v)
            if found is not None:
                return found
    return None


def admin_headers(server: Pyconvex) -> dict[str, str]:
    """The admin key header (the stats route requires it)."""
    key_file = server.dir / ".pyconvex" / "admin_key"
    return {"Authorization": f"Convex {key_file.read_text().strip()}"} if key_file.exists() else {}


def server_executions(server: Pyconvex) -> float | None:
    """The server's query-execution counter, if it exposes one."""
    headers = admin_headers(server)
    for path in filter(None, STATS_PATHS):
        try:
            req = urllib.request.Request(server.url + path, headers=headers)
            with urllib.request.urlopen(req, timeout=5) as resp:
                return _find_counter(json.loads(resp.read()))
        except (OSError, ValueError):
            continue
    return None


def server_stats(server: Pyconvex) -> dict[str, Any]:
    """/api/_pyconvex/stats: execution and commit counters."""
    try:
        req = urllib.request.Request(
            server.url + "/api/_pyconvex/stats", headers=admin_headers(server)
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            stats: dict[str, Any] = json.loads(resp.read())
            return stats
    except (OSError, ValueError):
        return {}


def commit_split(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """Mean time per durable batch over a phase: round trip to the writer, and DuckDB's own
    share (inside the writer process)."""
    batches = after.get("batches", 0) - before.get("batches", 0)
    if not batches or "writerProcessSeconds" not in after:
        return {}
    return {
        "batches": batches,
        "batch_write_ms": 1000
        * (after["batchWriteSeconds"] - before["batchWriteSeconds"])
        / batches,
        "duckdb_commit_ms": 1000
        * (after["writerProcessSeconds"] - before["writerProcessSeconds"])
        / batches,
        "mutations_per_batch": (after["committedMutations"] - before["committedMutations"])
        / batches,
    }


def distinct(server: Pyconvex, subscribers: int, writes: int, procs: int) -> dict[str, Any]:
    per = [subscribers // procs + (1 if i < subscribers % procs else 0) for i in range(procs)]
    starts = [sum(per[:i]) for i in range(procs)]
    pools = [
        WorkerPool(MOD, "distinct", 1, {"url": server.url, "subscribers": n, "first_key": s})
        for n, s in zip(per, starts, strict=True)
    ]
    writer = Writer(server.url)
    resends: list[int] = []
    try:
        for pool in pools:
            pool.wait_ready(180)
        time.sleep(0.2)
        cpu = CpuMeter(server.cpu)
        before = server_executions(server)
        rng = random.Random(7)
        for w in range(writes):
            key = f"k{rng.randrange(subscribers)}"
            writer.mutation("bench:put_key", {"key": key, "seq": float(w)})
            got: list[str] = []
            deadline = time.monotonic() + 5
            settle: float | None = None
            while time.monotonic() < (settle or deadline):
                for _, msg in phases._poll(pools, 0.05):
                    got.append(msg["key"])
                if key in got and settle is None:
                    settle = time.monotonic() + 0.3  # let stray re-sends show up
            if key not in got:
                raise RuntimeError(
                    f"the subscriber of {key} never saw the write (updates seen: {got[:20]})"
                )
            resends.append(len(got))
        cpu.work_done()
        after = server_executions(server)
        worker_cpu = sum(pool.finish(10)[1] for pool in pools)
    finally:
        writer.close()
        for pool in pools:
            pool.kill()
    out: dict[str, Any] = {"resends_per_write": sum(resends) / len(resends), **cpu.done(worker_cpu)}
    if before is not None and after is not None:
        out["reruns_per_write"] = (after - before) / writes
    return out


def list100(server: Pyconvex, writer: Writer, writes: int, procs: int) -> dict[str, Any]:
    """1,000 subscribers of a chat-style query returning the newest 100 of >= 100 messages;
    each write re-sends the whole list to every one (as Convex's protocol does).

    The subscribers offer permessage-deflate, as browsers and Node's `ws` do (the server then
    sends the shared frame compressed, once for all); the same phase with subscribers that do
    not (the PyPI client's Rust WebSocket, curl) is reported as ``..._plain_...``."""
    for i in range(150):
        writer.mutation("bench:post", {"seq": float(i), "author": "seed", "body": BODY})
    n, out = 1000, {}
    for deflate, seq0 in ((True, 2 * 10**6), (False, 3 * 10**6)):
        how = "deflate offered" if deflate else "no compression offered"
        phases.settle(server.cpu)
        log(f"pyconvex: fan-out of a 100-message list to {n} WebSocket subscribers ({how})")
        f = phases.fanout(
            MOD,
            {"url": server.url, "query": "bench:latest100", "deflate": deflate},
            n,
            writes,
            procs,
            lambda seq, seq0=seq0: writer.mutation(
                "bench:post", {"seq": float(seq0 + seq), "author": "bench", "body": BODY}
            ),
            server.cpu,
            seq0=seq0,
        )
        log(f"  {f}")
        issued = f["writes"] + f["writes_missed"]
        cpu_us = round(f["server_cpu_s"] * 1e6 / (issued * n), 2)
        if deflate:
            out |= {
                "fanout_1000_list100_all_p50_ms": f["p50_ms"],
                "fanout_1000_list100_all_p99_ms": f["p99_ms"],
                "fanout_1000_list100_server_cpu_us_per_delivery": cpu_us,
                "fanout_1000_list100_client_cpu_s": f["client_cpu_s"],
                "fanout_1000_list100_writes_missed": f["writes_missed"],
            }
        else:
            out |= {
                "fanout_1000_list100_plain_all_p99_ms": f["p99_ms"],
                "fanout_1000_list100_plain_server_cpu_us_per_delivery": cpu_us,
                "fanout_1000_list100_plain_writes_missed": f["writes_missed"],
            }
    return out


def run(tmp: Path, cfg: dict[str, Any], procs: int) -> dict[str, Any]:
    (tmp / "pyconvex-run").mkdir()
    server = Pyconvex(tmp / "pyconvex-run")
    log("pyconvex: starting `python -m pyconvex dev --port 0`")
    server.start()
    out: dict[str, Any] = {}
    try:
        base = {"url": server.url}
        log("pyconvex: mutation RTT, one in flight")
        stats0 = server_stats(server)
        r = phases.rtt(
            MOD,
            {**base, "warmup": 50, "count": cfg["rtt_count"], "max_seconds": cfg["rtt_max_s"]},
            server.cpu,
        )
        log(f"  {r}")
        split = commit_split(stats0, server_stats(server))
        out |= {
            "mutation_rtt_p50_ms": r["rtt_p50_ms"],
            "mutation_rtt_p99_ms": r["rtt_p99_ms"],
            "mutation_response_p50_ms": r["response_p50_ms"],
        }
        if split:
            out["mutation_rtt_duckdb_commit_mean_ms"] = round(split["duckdb_commit_ms"], 3)
        # The gap to the target, per request: each mutation's round trip minus the time DuckDB
        # spent on its own batch (server counters read between mutations, outside the timing).
        log("pyconvex: mutation RTT, one in flight, split per request into DuckDB and the rest")
        r = phases.rtt(
            MOD,
            {
                **base,
                "warmup": 20,
                "count": cfg["rtt_count"] // 2,
                "max_seconds": cfg["rtt_max_s"],
                "split_commit": True,
                "admin_key": admin_headers(server).get("Authorization", ""),
            },
            server.cpu,
        )
        log(f"  {r}")
        out |= {
            "mutation_rtt_split_p50_ms": r["rtt_p50_ms"],
            "mutation_rtt_duckdb_commit_ms": r["commit_p50_ms"],
            "mutation_rtt_without_commit_ms": r["without_commit_p50_ms"],
            "mutation_rtt_without_commit_p99_ms": r["without_commit_p99_ms"],
            "mutation_rtt_split_samples": r["split_samples"],
        }
        phases.settle(server.cpu)
        log(f"pyconvex: mutation RTT, one in flight, {IDLE_S * 1000:.0f} ms between mutations")
        r = phases.rtt(
            MOD,
            {**base, "warmup": 20, "count": cfg["idle_count"], "max_seconds": 60, "pause": IDLE_S},
            server.cpu,
        )
        log(f"  {r}")
        out |= {
            "idle_mutation_rtt_p50_ms": r["rtt_p50_ms"],
            "idle_mutation_rtt_p99_ms": r["rtt_p99_ms"],
        }
        phases.settle(server.cpu)
        log("pyconvex: mutations/s with 64 in flight")
        t = phases.throughput(
            MOD, {**base, "in_flight": 64, "seconds": cfg["tput_s"]}, procs, server.cpu
        )
        log(f"  {t}")
        out |= {
            "mutations_per_s_64": t["per_s"],
            "mutations_64_server_cpu_s": t["server_cpu_s"],
            "mutations_64_client_cpu_s": t["client_cpu_s"],
        }
        phases.settle(server.cpu)
        log("pyconvex: mutations/s with 64 in flight on ONE socket")
        t = phases.pipelined(MOD, {**base, "in_flight": 64, "seconds": cfg["tput_s"]}, server.cpu)
        log(f"  {t}")
        out |= {
            "mutations_per_s_1socket_64": t["per_s"],
            "mutations_1socket_64_server_cpu_s": t["server_cpu_s"],
        }
        out["quiet_wait_after_throughput_s"] = phases.settle(server.cpu)
        writer = Writer(server.url)
        try:
            for n, writes, seq0 in (
                (1, cfg["fanout1_writes"], 0),
                (1000, cfg["fanout_writes"], 10**6),
            ):
                phases.settle(server.cpu)
                log(f"pyconvex: fan-out to {n} WebSocket subscribers")
                f = phases.fanout(
                    MOD,
                    base,
                    n,
                    writes,
                    procs,
                    lambda seq, seq0=seq0: writer.bump(seq0 + seq),
                    server.cpu,
                    seq0=seq0,
                )
                log(f"  {f}")
                out |= {f"fanout_{n}_p50_ms": f["p50_ms"], f"fanout_{n}_p99_ms": f["p99_ms"]}
                if n == 1:  # the writes are IDLE_S apart (phases.fanout's pause)
                    out["idle_write_to_subscriber_p50_ms"] = f["p50_ms"]
                if n == 1000:
                    out |= {
                        "fanout_1000_server_cpu_s": f["server_cpu_s"],
                        "fanout_1000_client_cpu_s": f["client_cpu_s"],
                        "fanout_1000_writes_missed": f["writes_missed"],
                    }
            out |= list100(server, writer, cfg["fanout_writes"], procs)
        finally:
            writer.close()
        phases.settle(server.cpu)
        log("pyconvex: 1,000 distinct subscriptions, one write")
        d = distinct(server, 1000, cfg["distinct_writes"], procs)
        log(f"  {d}")
        counted = "reruns_per_write" in d
        out |= {
            "distinct_1000_reruns_per_write": d["reruns_per_write"]
            if counted
            else d["resends_per_write"],
            "distinct_1000_reruns_from_server_counter": int(counted),
            "distinct_1000_resends_per_write": d["resends_per_write"],
        }
        out["server_cpu_s"] = round(server.cpu(), 3)
    except Exception:
        log("pyconvex server log tail:\n" + "\n".join(server.log[-40:]))
        raise
    finally:
        server.stop()
    return out
