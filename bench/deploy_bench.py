"""Deploy benchmark (issue 14 item 5): how soon a ``pyconvex serve`` serves new code once a
deploy of a 100-module functions directory is accepted.

    .venv/bin/python bench/deploy_bench.py [--rounds N]

A ``pyconvex serve`` (a real process, port 0) serves 100 modules (200 functions) and a table of
10,000 documents; a client subscribed over the sync WebSocket (pyconvex's ``ConvexClient``)
watches a query. Each round changes every module's version string and deploys, as
``pyconvex deploy -y`` does (plan, then apply):

* ``deploy_switch_ms`` — from the apply request accepted to the new code serving (the switch
  step, which re-runs every subscription), as the deployment measures it; median of the
  rounds [≤ 500]. The modules were imported by the plan just before.
* ``deploy_switch_unplanned_ms`` — the same for an apply sent without a plan: importing the
  100 modules is inside the figure.
* ``deploy_switch_new_index_ms`` — a deploy that also adds an index on the 10,000-document
  table: the backfill runs after acceptance, before the switch.
* ``deploy_to_client_ms`` — the apply request sent → the subscribed client holding the new
  code's result (the HTTP round trip and the Transition included).
* ``deploy_plan_ms`` — the plan request (staging, importing, diffing, checking).

Reference, same run: ``load_100_modules_ms``, this process importing the same 100 modules
(``load_functions``), the floor of any switch that imports the code.

The last line printed is one JSON object: {"metrics": {...}, "reference": {...}, "machine": {...}}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from pyconvex.client import ConvexClient
from pyconvex.client.admin import AdminClient
from pyconvex.dev.bundle import Bundle
from pyconvex.dev.launcher import ProductionServer
from pyconvex.runtime.functions.loader import load_functions, unload

MODULES = 100
DOCUMENTS = 10_000

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({{
    "items": define_table({{"n": v.float64(), "name": v.string()}}){index},
}})
"""

MODULE = """
from pyconvex import mutation, query, v

VERSION = "{version}"


@query(args={{}})
async def version_{i}(ctx):
    return VERSION


@mutation(args={{"start": v.float64(), "count": v.float64()}})
async def fill_{i}(ctx, start, count):
    for k in range(int(start), int(start + count)):
        await ctx.db.insert("items", {{"n": float(k), "name": f"item {{k}}"}})
"""


def log(msg: str) -> None:
    print(f"[deploy_bench] {msg}", file=sys.stderr, flush=True)


def write_code(functions: Path, version: str, index: bool = False) -> None:
    functions.mkdir(parents=True, exist_ok=True)
    index_text = '.index("by_n", ["n"])' if index else ""
    (functions / "schema.py").write_text(SCHEMA.format(index=index_text))
    for i in range(MODULES):
        (functions / f"m{i:03d}.py").write_text(MODULE.format(version=version, i=i))


class Watch:
    """The latest value of a subscription, and an event per change."""

    def __init__(self) -> None:
        self.value: Any = None
        self.changed = threading.Condition()

    def update(self, value: Any) -> None:
        with self.changed:
            self.value = value
            self.changed.notify_all()

    def wait_for(self, want: str, timeout: float = 30) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: self.value == want, timeout):
                raise TimeoutError(f"the client never saw {want!r} (it has {self.value!r})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pyconvex-deploy-bench-") as tmp:
        root = Path(tmp)
        write_code(root / "server" / "convex", "v0")
        write_code(root / "client" / "convex", "v0")
        reference = load_reference(root / "client" / "convex")
        with ProductionServer(root / "server") as server:
            metrics = run(server, root / "client" / "convex", args.rounds)
    print(
        json.dumps(
            {
                "metrics": metrics,
                "reference": reference,
                "machine": {
                    "nproc": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                    "modules": MODULES,
                    "documents": DOCUMENTS,
                    "rounds": args.rounds,
                    "elapsed_s": round(time.perf_counter() - started, 1),
                },
            }
        )
    )


def load_reference(functions: Path) -> dict[str, float]:
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        loaded = load_functions(functions)
        times.append((time.perf_counter() - t0) * 1000)
        unload(loaded)
    return {"load_100_modules_ms": round(statistics.median(times), 1)}


def run(server: ProductionServer, functions: Path, rounds: int) -> dict[str, float]:
    admin = AdminClient(server.url, server.admin_key, timeout=120)
    with httpx.Client(timeout=60) as http:
        for start in range(0, DOCUMENTS, 1000):
            body = {"path": "m000:fill_0", "args": {"start": start, "count": 1000}}
            http.post(f"{server.url}/api/mutation", json=body).raise_for_status()
    log(f"{DOCUMENTS} documents written")
    watch = Watch()
    switch, unplanned, to_client, plans = [], [], [], []
    with ConvexClient(server.url) as client:
        sub = client.subscribe("m099:version_99", {}, on_update=watch.update)
        watch.wait_for("v0")
        for r in range(1, rounds + 1):
            version = f"v{r}"
            write_code(functions, version)
            bundle = Bundle.from_dir(functions).to_json()
            t0 = time.perf_counter()
            plan = admin.deploy_plan(bundle)
            plans.append((time.perf_counter() - t0) * 1000)
            t1 = time.perf_counter()
            outcome = admin.deploy(bundle, plan["base"])
            watch.wait_for(version)
            to_client.append((time.perf_counter() - t1) * 1000)
            assert outcome["status"] == "deployed", outcome
            switch.append(float(outcome["switchMs"]))
            # The same change once more, applied without a plan (the import is inside).
            write_code(functions, version + "b")
            outcome = admin.deploy(Bundle.from_dir(functions).to_json(), None)
            watch.wait_for(version + "b")
            unplanned.append(float(outcome["switchMs"]))
            log(f"round {r}: switch {switch[-1]:.1f} ms, unplanned {unplanned[-1]:.1f} ms")
        write_code(functions, "indexed", index=True)
        bundle = Bundle.from_dir(functions).to_json()
        plan = admin.deploy_plan(bundle)
        indexed = admin.deploy(bundle, plan["base"])
        watch.wait_for("indexed")
        sub.close()
    return {
        "deploy_switch_ms": round(statistics.median(switch), 1),
        "deploy_switch_unplanned_ms": round(statistics.median(unplanned), 1),
        "deploy_switch_new_index_ms": round(float(indexed["switchMs"]), 1),
        "deploy_to_client_ms": round(statistics.median(to_client), 1),
        "deploy_plan_ms": round(statistics.median(plans), 1),
    }


if __name__ == "__main__":
    main()
