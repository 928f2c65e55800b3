"""How long ``pyconvex.codegen.generate`` takes over a project of 100 modules.

Prints JSON ``metrics``: ``codegen_100_modules_cold_s`` (the first generate in a fresh process,
libcst import included), ``codegen_100_modules_s`` (median of the next runs, which rewrite
nothing), ``codegen_100_modules_changed_s`` (median after one module gained a function) and,
for reference, ``load_100_modules_s`` (importing the same modules, which generate does once).
Target for the dev loop: ``codegen_100_modules_s`` ≤ 1 s.

    python bench/codegen_bench.py
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "things": define_table({"name": v.string(), "n": v.float64(),
                            "tags": v.array(v.string())}).index("by_name", ["name"]),
    "notes": define_table({"thing": v.id("things"), "body": v.string(),
                           "meta": v.optional(v.object({"pinned": v.boolean()}))}),
})
"""

MODULE = """
from pyconvex import mutation, query, v

from ._generated.server import MutationCtx, QueryCtx


@query(args={{"name": v.string(), "limit": v.optional(v.float64())}})
async def list_{i}(ctx: QueryCtx, name: str, limit: float | None = None) -> object:
    return await ctx.db.query("things").with_index("by_name", lambda q: q.eq("name", name)).take(10)


@mutation(args={{"name": v.string(), "n": v.optional(v.float64())}}, returns=v.id("things"))
async def put_{i}(ctx: MutationCtx, name: str, n: float | None = None) -> object:
    return await ctx.db.insert("things", {{"name": name, "n": n or 0.0, "tags": []}})


@query(args={{"thing": v.id("things")}}, returns=v.array(v.object({{"body": v.string(), "n": v.float64()}})))
async def notes_{i}(ctx: QueryCtx, thing: str) -> object:
    return []
"""


def write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip("\n"))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pyconvex-codegen-") as tmp:
        functions = Path(tmp) / "convex"
        write(functions / "__init__.py", "")
        write(functions / "schema.py", SCHEMA)
        for i in range(100):
            write(functions / f"mod{i:03}.py", MODULE.format(i=i))
        t0 = time.perf_counter()
        from pyconvex.codegen import generate

        generate(functions)
        cold = time.perf_counter() - t0
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            assert generate(functions) == []
            warm.append(time.perf_counter() - t0)
        changed = []
        for i in range(5):
            target = functions / "mod050.py"
            target.write_text(
                target.read_text()
                + f"\n\n@query\nasync def extra_{i}(ctx: QueryCtx) -> None: ...\n"
            )
            t0 = time.perf_counter()
            generate(functions)
            changed.append(time.perf_counter() - t0)
        from pyconvex.runtime.functions.loader import load_functions, unload

        loads = []
        for _ in range(5):
            t0 = time.perf_counter()
            unload(load_functions(functions))
            loads.append(time.perf_counter() - t0)
    metrics = {
        "codegen_100_modules_cold_s": round(cold, 3),
        "codegen_100_modules_s": round(statistics.median(warm), 3),
        "codegen_100_modules_changed_s": round(statistics.median(changed), 3),
        "load_100_modules_s": round(statistics.median(loads), 3),
    }
    machine = {"python": platform.python_version(), "platform": platform.platform()}
    print(json.dumps({"metrics": metrics, "machine": machine}))


if __name__ == "__main__":
    main()
