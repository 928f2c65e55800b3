"""Client benchmark: pyconvex's Python client against the official PyPI `convex` client (0.8.1,
a Rust core), same server, same run.

    .venv/bin/python bench/client_bench.py [--quick]

Progress goes to stderr; the LAST line on stdout is one JSON object
{"metrics": {...}, "reference": {...}, "machine": {...}}:

* ``client_update_p50_ms`` / ``official_py_client_update_p50_ms`` (and ``_p99_ms``): a writer
  process sends a mutation every 20 ms whose body carries its send time; both clients, each
  in a process of its own, are subscribed to the newest message at the same time and record
  when each new value reaches their program (a callback for pyconvex, the subscription
  iterator for the official client): the same writes, measured by both. Half the writes run
  with pyconvex subscribed first, half with the official client first (the server writes to
  sockets in subscription order). The figure is receive time minus send time: mutation,
  commit, fan-out and the client's own decoding, i.e. commit -> this client's subscription
  plus the write's trip in, which both share.
* ``client_mutations_per_s_64`` / ``official_py_client_mutations_per_s_64``: ONE client with
  64 mutations in flight for a few seconds (pyconvex: 64 asyncio tasks; official: 64 threads,
  its blocking API being the only one it has), counted as they resolve.

Every child process and the server are started and stopped here, by pid, on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({"messages": define_table({"body": v.string()})})
"""
FUNCTIONS = """
from pyconvex import mutation, query, v


@query(args={})
async def latest(ctx):
    doc = await ctx.db.query("messages").order("desc").first()
    return None if doc is None else doc["body"]


@mutation(args={"body": v.string()})
async def send(ctx, body):
    await ctx.db.insert("messages", {"body": body})
"""
PAUSE_S = 0.02
QUICK = {"updates": 150, "tput_s": 3.0}
FULL = {"updates": 500, "tput_s": 8.0}


def log(message: str) -> None:
    print(f"[client_bench] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


# -- child roles --------------------------------------------------------------------------------


def role_subscribe(url: str, client_kind: str, count: int, run: str) -> None:
    """Print "ready" once subscribed, then the latencies (ms) of ``count`` updates as JSON."""
    latencies: list[float] = []

    def seen(body: Any) -> bool:
        if isinstance(body, str) and body.startswith(f"t:{run}:"):
            _, _, sent, seq = body.split(":")
            if int(seq) >= 0:
                latencies.append((time.time() - float(sent)) * 1000)
            return int(seq) == count - 1
        return False

    if client_kind == "official":
        from convex import ConvexClient as Official

        official = Official(url)
        sub = official.subscribe("bench:latest", {})
        print("ready", flush=True)
        for body in sub:
            if seen(body):
                break
    else:
        from pyconvex.client import ConvexClient

        done = threading.Event()

        def on_update(body: Any) -> None:
            if seen(body):
                done.set()

        with ConvexClient(url) as client:
            client.subscribe("bench:latest", {}, on_update=on_update).first(timeout=30)
            print("ready", flush=True)
            if not done.wait(120):
                raise SystemExit("the last update never came")
    print(json.dumps(latencies), flush=True)


def role_write(url: str, count: int, run: str) -> None:
    """``count`` mutations, PAUSE_S apart, each body carrying its send time."""
    from pyconvex.client import ConvexClient

    with ConvexClient(url) as client:
        for seq in range(-20, count):  # negative: warm-up, not counted
            client.mutation("bench:send", {"body": f"t:{run}:{time.time()!r}:{seq}"}, timeout=30)
            time.sleep(PAUSE_S)


def role_throughput(url: str, client_kind: str, seconds: float, in_flight: int) -> None:
    """Mutations/s with ``in_flight`` outstanding on one client; prints the rate."""
    if client_kind == "official":
        from convex import ConvexClient as Official

        official = Official(url)
        official.mutation("bench:send", {"body": "warm"})
        counts = [0] * in_flight
        deadline = time.monotonic() + seconds

        def work(i: int) -> None:
            while time.monotonic() < deadline:
                official.mutation("bench:send", {"body": "x"})
                counts[i] += 1

        started = time.monotonic()
        threads = [threading.Thread(target=work, args=(i,)) for i in range(in_flight)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 60)
        elapsed = time.monotonic() - started
        print(json.dumps({"per_s": round(sum(counts) / elapsed, 1)}), flush=True)
        os._exit(0)  # the official client's runtime threads do not end on their own

    from pyconvex.client import AsyncConvexClient

    async def run() -> float:
        async with AsyncConvexClient(url) as client:
            await asyncio.gather(*[client.mutation("bench:send", {"body": "w"}) for _ in range(64)])
            total = 0
            deadline = time.monotonic() + seconds

            async def work() -> None:
                nonlocal total
                while time.monotonic() < deadline:
                    await client.mutation("bench:send", {"body": "x"})
                    total += 1

            started = time.monotonic()
            await asyncio.gather(*[work() for _ in range(in_flight)])
            return total / (time.monotonic() - started)

    print(json.dumps({"per_s": round(asyncio.run(run()), 1)}), flush=True)


# -- the driver ---------------------------------------------------------------------------------


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen[str], timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{proc.args} did not finish within {timeout} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
    return out


def update_latency(url: str, count: int, first: str) -> dict[str, list[float]]:
    """Both clients subscribed at once (``first`` subscribes first: the server writes to the
    sockets in subscription order), the same writes measured by both."""
    order = [first, "official" if first == "pyconvex" else "pyconvex"]
    subs: dict[str, subprocess.Popen[str]] = {}
    writer = None
    try:
        for kind in order:
            sub = _child(
                "--role",
                "subscribe",
                "--url",
                url,
                "--client",
                kind,
                "--count",
                str(count),
                "--run",
                first,
            )
            subs[kind] = sub
            assert sub.stdout is not None
            if sub.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the {kind} subscriber did not start")
        writer = _child("--role", "write", "--url", url, "--count", str(count), "--run", first)
        _finish(writer, 300)
        return {
            kind: json.loads(_finish(sub, 120).strip().splitlines()[-1])
            for kind, sub in subs.items()
        }
    finally:
        for proc in (*subs.values(), writer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def throughput(url: str, client_kind: str, seconds: float) -> float:
    proc = _child(
        "--role", "throughput", "--url", url, "--client", client_kind, "--seconds", str(seconds)
    )
    try:
        return float(json.loads(_finish(proc, seconds + 120).strip().splitlines()[-1])["per_s"])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller samples")
    parser.add_argument("--role", choices=["subscribe", "write", "throughput"])
    parser.add_argument("--url")
    parser.add_argument("--client", choices=["pyconvex", "official"], default="pyconvex")
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--run", default="", help="tags one round's writes")
    parser.add_argument("--seconds", type=float, default=0)
    args = parser.parse_args()
    if args.role == "subscribe":
        return role_subscribe(args.url, args.client, args.count, args.run)
    if args.role == "write":
        return role_write(args.url, args.count, args.run)
    if args.role == "throughput":
        return role_throughput(args.url, args.client, args.seconds, 64)

    from pyconvex.dev.launcher import DevServer

    cfg = QUICK if args.quick else FULL
    started = time.monotonic()
    metrics: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="client-bench-") as tmp:
        functions = Path(tmp) / "convex"
        functions.mkdir()
        (functions / "schema.py").write_text(textwrap.dedent(SCHEMA))
        (functions / "bench.py").write_text(textwrap.dedent(FUNCTIONS))
        with DevServer(Path(tmp), "--typecheck", "disable") as server:
            log(f"server at {server.url}")
            latencies: dict[str, list[float]] = {"pyconvex": [], "official": []}
            for first in ("pyconvex", "official"):
                log(
                    f"update latency, both clients subscribed ({first} first), "
                    f"{cfg['updates'] // 2} writes {PAUSE_S * 1000:.0f} ms apart"
                )
                for kind, values in update_latency(server.url, cfg["updates"] // 2, first).items():
                    latencies[kind] += values
            for kind, out, prefix in (
                ("official", reference, "official_py_client"),
                ("pyconvex", metrics, "client"),
            ):
                values = latencies[kind]
                out[f"{prefix}_update_p50_ms"] = percentile(values, 0.5)
                out[f"{prefix}_update_p99_ms"] = percentile(values, 0.99)
                log(
                    f"  {kind}: p50 {percentile(values, 0.5)} ms, mean "
                    f"{statistics.fmean(values):.3f} ms, {len(values)} updates"
                )
                log(f"{kind}: mutations/s, 64 in flight on one client")
                per_s = throughput(server.url, kind, cfg["tput_s"])
                log(f"  {per_s}/s")
                out[f"{prefix}_mutations_per_s_64"] = per_s
    info = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load": os.getloadavg(),
        "quick": args.quick,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps({"metrics": metrics, "reference": reference, "machine": info}))


if __name__ == "__main__":
    main()
