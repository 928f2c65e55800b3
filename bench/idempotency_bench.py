"""Idempotency records stay bounded: server RSS and disk over 200,000 WebSocket mutations.

    .venv/bin/python bench/idempotency_bench.py [--quick]     # --quick: 40,000 mutations

A `pyconvex dev` (started by the launcher) takes mutations from 100 WebSocket sessions (each
with up to 8 in flight); every one is answered and its result kept for re-sends, as the
official clients' sessions need. Each mutation bumps its session's counter document, so the
store itself does not grow. The server's RSS (``/proc/<pid>/status``, the dev server process,
which holds the store) and the size of the data directory (DuckDB file, its journal and the
write-ahead log) are read at every tenth of the run. Progress goes to stderr; the LAST line on
stdout is one JSON object {"metrics": {...}, "reference": {...}, "machine": {...}}:

* ``idempotency_rss_growth_mb``: RSS at the end minus RSS at the half-way point — the second
  100,000 mutations, once every session holds its ``RESULTS_PER_SESSION`` newest results;
* ``idempotency_disk_growth_mb``: the same for the data directory (pruned every 50,000
  commits);
* reference ``rss_first_half_growth_mb`` / ``disk_first_half_growth_mb``: growth from the
  first tenth to half-way (the records filling up to their bound), and
  ``unbounded_results_estimate_mb``: what keeping every result would have added, from the
  first half's growth per mutation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from realtime.convex_ws import SyncConnection

from pyconvex.dev.launcher import DevServer

SESSIONS = 100
IN_FLIGHT = 8
COUNTERS = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "counters": define_table({"session": v.string(), "n": v.float64()})
        .index("by_session", ["session"]),
})
"""
BUMP = """
from pyconvex import mutation, v

@mutation(args={"session": v.string()})
async def bump(ctx, session):
    doc = await ctx.db.query("counters").with_index(
        "by_session", lambda q: q.eq("session", session)).first()
    if doc is None:
        await ctx.db.insert("counters", {"session": session, "n": 1.0})
        return 1.0
    await ctx.db.patch(doc["_id"], {"n": doc["n"] + 1})
    return doc["n"] + 1
"""


def log(msg: str) -> None:
    print(f"[idempotency_bench] {msg}", file=sys.stderr, flush=True)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def dir_mb(path: Path) -> float:
    """The data directory's database files: DuckDB's file and journal, the write-ahead log."""
    files = [*path.glob("data.duckdb*"), *path.glob("commit_log/*")]
    return sum(p.stat().st_size for p in files if p.is_file()) / 1e6


async def load(url: str, total: int, pid: int, data: Path) -> list[tuple[int, float, float]]:
    """Run ``total`` mutations over SESSIONS sockets; sample (done, RSS, disk) each tenth."""
    conns = [await SyncConnection(url).open() for _ in range(SESSIONS)]
    done = 0
    samples: list[tuple[int, float, float]] = []
    step = total // 10
    per_session = total // SESSIONS

    async def session(i: int, conn: SyncConnection) -> None:
        nonlocal done
        name = f"s{i}"
        for _ in range(per_session // IN_FLIGHT):
            await asyncio.gather(
                *(conn.mutation("counters:bump", {"session": name}) for _ in range(IN_FLIGHT))
            )
            done += IN_FLIGHT
            if done // step > len(samples) - 1 and len(samples) <= 10:
                samples.append((done, rss_mb(pid), dir_mb(data)))
                log(
                    f"{done:,} mutations: RSS {samples[-1][1]:.1f} MB, disk {samples[-1][2]:.1f} MB"
                )

    try:
        samples.append((0, rss_mb(pid), dir_mb(data)))
        await asyncio.gather(*(session(i, c) for i, c in enumerate(conns)))
        await asyncio.sleep(1.0)  # a prune may still be running
        samples.append((done, rss_mb(pid), dir_mb(data)))
    finally:
        for conn in conns:
            await conn.close()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40,000 mutations")
    total = 40_000 if parser.parse_args().quick else 200_000
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp_dir:
        project = Path(tmp_dir) / "app"
        (project / "convex").mkdir(parents=True)
        (project / "convex" / "schema.py").write_text(COUNTERS)
        (project / "convex" / "counters.py").write_text(BUMP)
        with DevServer(project, keep_lines=200) as server:
            samples = asyncio.run(load(server.url, total, server.pid, project / ".pyconvex"))
    by_done = {d: (r, s) for d, r, s in samples}
    first = min((d for d in by_done if d >= total // 10), default=0)
    half = min(d for d in by_done if d >= total // 2)
    end = max(by_done)
    rate_first = (by_done[half][0] - by_done[first][0]) / max(1, half - first)
    metrics = {
        "idempotency_rss_growth_mb": round(by_done[end][0] - by_done[half][0], 1),
        "idempotency_disk_growth_mb": round(by_done[end][1] - by_done[half][1], 1),
        "mutations": end,
        "sessions": SESSIONS,
    }
    reference = {
        "rss_first_half_growth_mb": round(by_done[half][0] - by_done[first][0], 1),
        "disk_first_half_growth_mb": round(by_done[half][1] - by_done[first][1], 1),
        "unbounded_results_estimate_mb": round(rate_first * (end - first), 1),
        "rss_end_mb": round(by_done[end][0], 1),
        "samples": [[d, round(r, 1), round(s, 1)] for d, r, s in samples],
    }
    machine = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "elapsed_s": round(time.perf_counter() - started, 1),
    }
    print(json.dumps({"metrics": metrics, "reference": reference, "machine": machine}))


if __name__ == "__main__":
    main()
