"""Dev-loop benchmark (issue 4): how fast `pyconvex dev` starts, how soon a saved file answers
over HTTP, how long an index on 100,000 documents takes to backfill, and codegen of 100 modules.

    python bench/devloop_bench.py [--quick]

Metrics (targets in brackets), each with its reference measured in the same run:

* ``dev_cold_start_s`` — ``pyconvex dev`` spawned on a fresh project → first query answered
  over HTTP [≤ 1.5 s]; ``dev_restart_s`` the same on a project started before (codegen skipped).
  Reference ``python_import_cli_s``: a fresh interpreter importing the CLI, and nothing else;
* ``save_to_live_p50_ms`` — a function file saved → the new code answers over HTTP, 20 saves
  against a running ``pyconvex dev`` (file watching included) [≤ 300 ms];
* ``index_backfill_100k_s`` — a schema push adding an index to a 100,000-document table (loaded
  from disk, as after a restart) → a query through the index answers [≤ 2 s] (``--quick``:
  ``index_backfill_20k_s``). Reference
  ``duckdb_create_index_100k_s``: DuckDB indexing the same field of as many rows;
* ``codegen_100_modules_s`` — ``pyconvex.codegen.generate`` over 100 modules (200 functions),
  every file of ``_generated/`` written anew with codegen's caches cleared [≤ 1 s], beside
  ``codegen_100_modules_first_s`` (the first run in this process) and ``_warm_s`` (nothing
  changed); ``codegen_100_modules_cold_process_s``: a fresh ``pyconvex codegen`` process;
* ``reload_1_of_100_modules_ms`` — the incremental reload of one edited module in a 100-module
  project; reference ``load_100_modules_ms``, loading all of them.

The last line printed is one JSON object: {"metrics": {...}, "reference": {...}, "machine": {...}}.
Every server is started by pyconvex.dev.launcher (port 0, stopped by pid).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
from codegen_bench import codegen_figures

from pyconvex.dev.launcher import DevServer

GREET = """
from pyconvex import query


@query(args={{}})
async def hello(ctx):
    return "{value}"
"""

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({{
    "items": define_table({{"owner": v.string(), "n": v.float64(), "body": v.string()}}){indexes},
}})
"""

ITEMS = """
from pyconvex import mutation, query, v


@mutation(args={"start": v.float64(), "count": v.float64()})
async def fill(ctx, start, count):
    for i in range(int(start), int(start + count)):
        await ctx.db.insert("items", {"owner": f"user{i % 997}", "n": float(i), "body": "x" * 40})


@query(args={"n": v.float64()})
async def by_n(ctx, n):
    return [d["owner"] for d in await ctx.db.query("items")
            .with_index("by_n", lambda q: q.eq("n", n)).collect()]
"""

MODULE = """
from pyconvex import mutation, query, v

from ._shared import label


@query(args={{"x": v.float64()}})
async def get_{i}(ctx, x):
    return label({i}, x)


@mutation(args={{"name": v.string(), "n": v.optional(v.float64())}})
async def put_{i}(ctx, name, n=None):
    return await ctx.db.insert("things", {{"name": name, "n": n or 0.0}})
"""


def write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"))


def query(client: httpx.Client, url: str, path: str) -> Any:
    r = client.post(f"{url}/api/query", json={"path": path, "args": {}}, timeout=10)
    body = r.json()
    return body.get("value") if body.get("status") == "success" else None


def cold_start_s(root: Path, runs: int) -> dict[str, float]:
    """Median seconds to the first answer: on a fresh project (codegen writes _generated/ and
    the data directory is created), and restarting on it (the everyday `pyconvex dev`)."""
    first, again = [], []
    for i in range(runs):
        project = root / f"cold{i}"
        write(project / "convex" / "greet.py", GREET.format(value="hi"))
        for times in (first, again):
            with httpx.Client() as client:
                t0 = time.perf_counter()
                with DevServer(project) as dev:  # returns once GET /version answers
                    while query(client, dev.url, "greet:hello") != "hi":
                        time.sleep(0.005)
                    times.append(time.perf_counter() - t0)
    return {
        "dev_cold_start_s": statistics.median(first),
        "dev_restart_s": statistics.median(again),
    }


def python_import_cli_s(runs: int) -> float:
    """A fresh interpreter importing pyconvex's command line: the floor under any start."""
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import pyconvex.cli.main"], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def save_to_live_ms(root: Path, saves: int) -> list[float]:
    project = root / "live"
    greet = project / "convex" / "greet.py"
    write(greet, GREET.format(value="v0"))
    out = []
    with httpx.Client() as client, DevServer(project) as dev:
        while query(client, dev.url, "greet:hello") != "v0":
            time.sleep(0.01)
        # No wait for the watcher: `pyconvex dev` watches before its first load, so it is
        # watching once the first query answers.
        for i in range(1, saves + 1):
            want = f"v{i}"
            greet.write_text(textwrap.dedent(GREET.format(value=want)).lstrip("\n"))
            t0 = time.perf_counter()
            deadline = t0 + 10
            while query(client, dev.url, "greet:hello") != want:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"save {i} never went live:\n{dev.output.tail()}")
                time.sleep(0.002)
            out.append((time.perf_counter() - t0) * 1000)
            time.sleep(0.05)  # saves 50 ms apart, as a person saves (not coalesced)
    return out


async def backfill_s(root: Path, docs: int) -> dict[str, float]:
    from pyconvex.runtime.functions.deployment import Deployment
    from pyconvex.runtime.functions.loader import load_functions
    from pyconvex.runtime.functions.schema_push import push, schema_json

    functions = root / "backfill" / "convex"
    data = root / "backfill" / "data"
    write(functions / "schema.py", SCHEMA.format(indexes=""))
    write(functions / "items.py", ITEMS)
    loaded = load_functions(functions)
    dep = await Deployment.open(None, data, loaded=loaded)
    t0 = time.perf_counter()
    for start in range(0, docs, 1000):
        r = await dep.run_mutation("items:fill", {"start": float(start), "count": 1000.0})
        assert r.failure is None, r.failure
    fill_s = time.perf_counter() - t0
    await dep.close()

    dep = await Deployment.open(None, data, loaded=loaded)  # documents as stored text again
    try:
        write(functions / "schema.py", SCHEMA.format(indexes='.index("by_n", ["n"])'))
        t0 = time.perf_counter()
        new = load_functions(functions, previous=loaded, changed=[functions / "schema.py"])
        result = await push(dep, new, accepted=schema_json(loaded.schema))
        answer = dep.run_query("items:by_n", {"n": float(docs // 2)})
        elapsed = time.perf_counter() - t0
        assert result.ok and answer.value == [f"user{(docs // 2) % 997}"], answer
    finally:
        await dep.close()
    return {f"index_backfill_{count_label(docs)}_s": elapsed, "backfill_fill_docs_s": fill_s}


def count_label(n: int) -> str:
    """100_000 -> "100k", 1_000_000 -> "1m": figure names say what they measured (--quick
    measures fewer documents under its own name)."""
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"


def duckdb_create_index_s(docs: int) -> float:
    """DuckDB building an index on a float column of ``docs`` rows (in memory)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE TABLE items AS SELECT i::DOUBLE AS n, 'x' AS body FROM range({docs}) t(i)")
    t0 = time.perf_counter()
    con.execute("CREATE INDEX by_n ON items (n)")
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def modules_project(root: Path, n: int) -> Path:
    functions = root / "many" / "convex"
    write(functions / "_shared.py", "def label(i, x):\n    return f'{i}:{x}'\n")
    write(
        functions / "schema.py",
        SCHEMA.format(indexes="").replace(
            '"items"',
            '"things": define_table({"name": v.string(), "n": v.float64()}),\n    "items"',
        ),
    )
    for i in range(n):
        write(functions / f"mod{i:03}.py", MODULE.format(i=i))
    return functions


def reload_ms(functions: Path) -> dict[str, float]:
    from pyconvex.runtime.functions.loader import load_functions, unload

    fulls, incrementals = [], []
    for i in range(5):
        t0 = time.perf_counter()
        loaded = load_functions(functions)
        fulls.append((time.perf_counter() - t0) * 1000)
        target = functions / "mod050.py"
        target.write_text(target.read_text() + f"\n# edit {i}\n")
        t0 = time.perf_counter()
        again = load_functions(functions, previous=loaded, changed=[target])
        incrementals.append((time.perf_counter() - t0) * 1000)
        assert again.executed == frozenset({"mod050"}), again.executed
        unload(again)
    return {
        "load_100_modules_ms": statistics.median(fulls),
        "reload_1_of_100_modules_ms": statistics.median(incrementals),
    }


def codegen_cold_s(functions: Path) -> float:
    """`pyconvex codegen` as a user runs it: a fresh process (interpreter, libcst import)."""
    times = []
    for _ in range(3):
        shutil.rmtree(functions / "_generated", ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pyconvex", "codegen"],
            cwd=functions.parent,
            check=True,
            capture_output=True,
            timeout=120,
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer runs, 20,000 documents")
    args = ap.parse_args()
    started = time.perf_counter()
    metrics: dict[str, Any] = {}
    reference: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pyconvex-devloop-") as tmp:
        root = Path(tmp)
        metrics.update(cold_start_s(root, 1 if args.quick else 3))
        reference["python_import_cli_s"] = python_import_cli_s(3)
        lat = save_to_live_ms(root, 5 if args.quick else 20)
        metrics["save_to_live_p50_ms"] = statistics.median(lat)
        metrics["save_to_live_max_ms"] = max(lat)
        from pyconvex.runtime.net.event_loop import run

        docs = 20_000 if args.quick else 100_000
        metrics.update(run(backfill_s(root, docs)))
        reference[f"duckdb_create_index_{count_label(docs)}_s"] = duckdb_create_index_s(docs)
        functions = modules_project(root, 100)
        loads = reload_ms(functions)
        metrics["reload_1_of_100_modules_ms"] = loads["reload_1_of_100_modules_ms"]
        reference["load_100_modules_ms"] = loads["load_100_modules_ms"]
        metrics.update(codegen_figures(functions))
        metrics["codegen_100_modules_cold_process_s"] = codegen_cold_s(functions)
    machine = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "bench_seconds": round(time.perf_counter() - started, 1),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    print(json.dumps({"metrics": metrics, "reference": reference, "machine": machine}))


if __name__ == "__main__":
    main()
