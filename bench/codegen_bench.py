"""How long ``pyconvex.codegen.generate`` takes over a project of 100 modules (300 functions).

    python bench/codegen_bench.py

Prints one JSON line: ``metrics`` (seconds) and, as the reference measured in the same run,
``load_100_modules_s`` (importing the same modules, which generate does once):

* ``codegen_100_modules_s`` — the headline, target ≤ 1 s: every file of ``_generated/`` written
  anew with codegen's caches cleared (its ``functools`` memos), so nothing of an earlier run is
  reused; median of 5, in a process that has imported codegen;
* ``codegen_100_modules_first_s`` — the first run in this fresh process (the imports of codegen
  and libcst included);
* ``codegen_100_modules_warm_s`` — caches warm and nothing changed (nothing written): a re-run;
* ``codegen_100_modules_changed_s`` — caches warm, one module gained a function.

``bench/devloop_bench.py`` reports the same figures (:func:`codegen_figures`) for its project.
"""

from __future__ import annotations

import json
import platform
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

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


def clear_codegen_caches() -> None:
    """Empty every memo of ``pyconvex.codegen`` (its ``functools`` caches), as in a new process."""
    for name, module in list(sys.modules.items()):
        if name == "pyconvex.codegen" or name.startswith("pyconvex.codegen."):
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()


def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def codegen_figures(functions: Path, runs: int = 5) -> dict[str, float]:
    """The first run in this process, then ``runs`` from scratch (caches cleared, every file
    written), then ``runs`` warm ones that change nothing: seconds (medians)."""
    shutil.rmtree(functions / "_generated", ignore_errors=True)
    t0 = time.perf_counter()
    from pyconvex.codegen import generate

    generate(functions)
    first = time.perf_counter() - t0
    scratch = []
    for _ in range(runs):
        shutil.rmtree(functions / "_generated")
        clear_codegen_caches()
        scratch.append(_timed(lambda: generate(functions)))
    warm = []
    for _ in range(runs):
        t0 = time.perf_counter()
        written = generate(functions)
        warm.append(time.perf_counter() - t0)
        assert written == [], f"a run with nothing changed rewrote {written}"
    return {
        "codegen_100_modules_s": round(statistics.median(scratch), 4),
        "codegen_100_modules_first_s": round(first, 4),
        "codegen_100_modules_warm_s": round(statistics.median(warm), 4),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="pyconvex-codegen-") as tmp:
        functions = Path(tmp) / "convex"
        write(functions / "__init__.py", "")
        write(functions / "schema.py", SCHEMA)
        for i in range(100):
            write(functions / f"mod{i:03}.py", MODULE.format(i=i))
        metrics = codegen_figures(functions)
        from pyconvex.codegen import generate

        changed = []
        for i in range(5):
            target = functions / "mod050.py"
            target.write_text(
                target.read_text()
                + f"\n\n@query\nasync def extra_{i}(ctx: QueryCtx) -> None: ...\n"
            )
            changed.append(_timed(lambda: generate(functions)))
        metrics["codegen_100_modules_changed_s"] = round(statistics.median(changed), 4)
        from pyconvex.runtime.functions.loader import load_functions, unload

        loads = [_timed(lambda: unload(load_functions(functions))) for _ in range(5)]
    reference = {"load_100_modules_s": round(statistics.median(loads), 4)}
    machine = {"python": platform.python_version(), "platform": platform.platform()}
    print(json.dumps({"metrics": metrics, "reference": reference, "machine": machine}))


if __name__ == "__main__":
    main()
