"""Store benchmark (issue 2): durable insert mutations/s, db.get and take(50) latency inside
queries, and start-up load of 1M documents — with raw DuckDB and SQLite single-row commits
measured in the same run as the reference.

    python bench/store_bench.py [--quick]

The last line printed is one JSON object: {"metrics": {...}, "reference": {...}, "machine": {...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import duckdb

SCHEMA = """
from pyconvex import define_schema, define_table, v
schema = define_schema({
    "items": define_table({"owner": v.string(), "n": v.float64(), "body": v.string()})
        .index("by_owner", ["owner", "n"]),
})
"""

FUNCS = """
import time
from pyconvex import mutation, query, v

@mutation(args={"owner": v.string(), "n": v.float64(), "body": v.string()})
async def insert(ctx, owner, n, body):
    return await ctx.db.insert("items", {"owner": owner, "n": n, "body": body})

@query(args={"ids": v.array(v.string())})
async def time_gets(ctx, ids):
    out = []
    clock = time.perf_counter_ns
    for i in ids:
        t0 = clock()
        await ctx.db.get(i)
        out.append(float(clock() - t0))
    return out

@query(args={"owners": v.array(v.string())})
async def time_take50(ctx, owners):
    out = []
    clock = time.perf_counter_ns
    for o in owners:
        t0 = clock()
        docs = await ctx.db.query("items").with_index("by_owner", lambda q: q.eq("owner", o)).take(50)
        out.append(float(clock() - t0))
        assert len(docs) == 50, len(docs)
    return out
"""


def make_project(root: Path) -> Path:
    fdir = root / "convex"
    fdir.mkdir(parents=True)
    (fdir / "schema.py").write_text(SCHEMA)
    (fdir / "bench.py").write_text(FUNCS)
    return fdir


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


async def insert_rate(dep, total: int, in_flight: int) -> float:
    body = "x" * 120
    counter = iter(range(total))

    async def worker(w: int) -> None:
        for i in counter:
            r = await dep.run_mutation(
                "bench:insert", {"owner": f"o{i % 100}", "n": float(i), "body": body}
            )
            if r.failure is not None:
                raise RuntimeError(r.failure.message)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(in_flight)))
    return total / (time.perf_counter() - t0)


async def engine_metrics(quick: bool) -> dict[str, float]:
    from pyconvex.runtime.functions.deployment import Deployment

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fdir = make_project(root)
        dep = await Deployment.open(fdir, root / ".pyconvex")
        try:
            await insert_rate(dep, 2000, 64)  # warm-up
            n = 20_000 if quick else 60_000
            out["insert_mutations_per_s_256"] = await insert_rate(dep, n, 256)
            out["insert_mutations_per_s_64"] = await insert_rate(dep, n, 64)
            out["insert_mutations_per_s_1"] = await insert_rate(dep, 500 if quick else 2000, 1)
            table = dep.store.tables["items"]
            ids = list(table.docs)[:: max(1, len(table.docs) // 5000)][:5000]
            gets: list[float] = []
            for _ in range(3):
                r = dep.run_query("bench:time_gets", {"ids": ids})
                assert r.failure is None, r.failure
                gets.extend(r.value)
            out["db_get_p50_us"] = pct(gets, 0.5) / 1000
            out["db_get_p99_us"] = pct(gets, 0.99) / 1000
            takes: list[float] = []
            for _ in range(10):
                r = dep.run_query("bench:time_take50", {"owners": [f"o{i}" for i in range(100)]})
                assert r.failure is None, r.failure
                takes.extend(r.value)
            out["take50_p50_us"] = pct(takes, 0.5) / 1000
            out["take50_p99_us"] = pct(takes, 0.99) / 1000
            out["documents"] = float(len(table.docs))
        finally:
            await dep.close()
    return out


LOAD_CHILD = textwrap.dedent(
    """
    import asyncio, json, resource, sys, time
    from pathlib import Path
    from pyconvex.runtime.functions.deployment import Deployment
    async def main():
        t0 = time.perf_counter()
        dep = await Deployment.open(Path(sys.argv[1]), Path(sys.argv[2]))
        load = time.perf_counter() - t0
        n = len(dep.store.tables["items"].docs)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        writer = getattr(dep.persistence, "_proc", None)
        writer_rss = 0.0
        if writer is not None:  # the DuckDB writer process, reported apart
            for line in open(f"/proc/{writer.pid}/status"):
                if line.startswith("VmRSS:"):
                    writer_rss = int(line.split()[1]) / 1024
        await dep.close()
        print(json.dumps({"load_s": load, "rss_mb": rss, "writer_rss_mb": writer_rss, "docs": n}))
    asyncio.run(main())
    """
)


def restart_metrics(n_docs: int) -> dict[str, float]:
    """Write n_docs ~200-byte documents straight into the DuckDB log, then time a cold start."""
    import pyarrow as pa

    from pyconvex.runtime.store.duckdb_log import DB_FILE_DEFAULT, Persistence
    from pyconvex.values import encode_id

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        fdir = make_project(root)
        data = root / ".pyconvex"
        p = Persistence(data / DB_FILE_DEFAULT)
        p.con.execute("INSERT INTO _tables VALUES (10, 'items')")
        ts0 = time.time_ns()
        chunk = 100_000
        body = "y" * 100
        rnd = os.urandom
        for start in range(0, n_docs, chunk):
            rows = range(start, min(n_docs, start + chunk))
            ids = [encode_id(10, rnd(16)) for _ in rows]
            values = [
                json.dumps(
                    {
                        "owner": f"owner{i % 1000}",
                        "n": float(i),
                        "body": body,
                        "_id": ids[k],
                        "_creationTime": 1.7e12 + i,
                    }
                )
                for k, i in enumerate(rows)
            ]
            tbl = pa.table(
                {
                    "ts": pa.array([ts0 + i for i in rows], pa.uint64()),
                    "table_number": pa.array([10] * len(ids), pa.int32()),
                    "id": pa.array(ids),
                    "deleted": pa.array([False] * len(ids)),
                    "value": pa.array(values),
                }
            )
            p.con.register("_b", tbl)
            p.con.execute("INSERT INTO _documents SELECT * FROM _b")
            p.con.unregister("_b")
        p.con.execute("INSERT OR REPLACE INTO _meta VALUES ('max_ts', ?)", [str(ts0 + n_docs)])
        p.close()
        res = subprocess.run(
            [sys.executable, "-c", LOAD_CHILD, str(fdir), str(data)],
            capture_output=True,
            text=True,
            check=True,
        )
        child = json.loads(res.stdout.strip().splitlines()[-1])
        assert child["docs"] == n_docs, child
        return {
            "restart_load_1m_s": child["load_s"],
            "rss_1m_mb": child["rss_mb"],
            "writer_process_rss_1m_mb": child["writer_rss_mb"],
        }


def duckdb_commits_per_s(seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "ref.duckdb"))
        con.execute("CREATE TABLE t (id VARCHAR, value VARCHAR)")
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            con.execute("BEGIN")
            con.execute("INSERT INTO t VALUES (?, ?)", [str(n), "x" * 150])
            con.execute("COMMIT")
            n += 1
        rate = n / (time.perf_counter() - t0)
        con.close()
        return rate


def sqlite_commits_per_s(seconds: float) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        con = sqlite3.connect(str(Path(tmp) / "ref.sqlite"), isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (id TEXT, value TEXT)")
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            con.execute("BEGIN")
            con.execute("INSERT INTO t VALUES (?, ?)", (str(n), "x" * 150))
            con.execute("COMMIT")
            n += 1
        rate = n / (time.perf_counter() - t0)
        con.close()
        return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller runs; skips the 1M load")
    ap.add_argument("--docs", type=int, default=1_000_000, help="documents for the load test")
    args = ap.parse_args()
    t0 = time.perf_counter()
    reference = {
        "duckdb_single_row_commits_per_s": duckdb_commits_per_s(1.0 if args.quick else 3.0),
        "sqlite_wal_single_row_commits_per_s": sqlite_commits_per_s(1.0 if args.quick else 3.0),
    }
    # The loop `pyconvex dev` serves on (uvloop when installed).
    from pyconvex.runtime.net.event_loop import run

    metrics = run(engine_metrics(args.quick))
    if not args.quick:
        metrics.update(restart_metrics(args.docs))
    metrics["insert_256_vs_duckdb_commits"] = (
        metrics["insert_mutations_per_s_256"] / reference["duckdb_single_row_commits_per_s"]
    )
    machine = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "duckdb": duckdb.__version__,
        "bench_seconds": round(time.perf_counter() - t0, 1),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps({"metrics": metrics, "reference": reference, "machine": machine}))


if __name__ == "__main__":
    main()
