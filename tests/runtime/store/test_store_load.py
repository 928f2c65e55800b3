"""Start-up rebuilds indexes from the fields DuckDB extracts: every value type must give the same
keys as the write path, so index order after a restart equals index order before it."""

from __future__ import annotations

from pathlib import Path

from pyconvex.runtime.functions.deployment import Deployment

SCHEMA = """
from pyconvex import define_schema, define_table, v
schema = define_schema({
    "things": define_table(v.any()).index("by_v", ["v"]).index("by_nested", ["s.inner", "v"]),
})
"""

FUNCS = """
from pyconvex import Int64, mutation, query, v

@mutation(args={"docs": v.array(v.any())})
async def put(ctx, docs):
    for d in docs:
        await ctx.db.insert("things", d)

@query
async def by_v(ctx):
    return [d["_id"] for d in await ctx.db.query("things").with_index("by_v").collect()]

@query
async def by_nested(ctx):
    return [d["_id"] for d in await ctx.db.query("things").with_index("by_nested").collect()]

@query
async def eq_string(ctx, s: str):
    return [d["_id"] for d in await ctx.db.query("things").with_index(
        "by_v", lambda q: q.eq("v", s)).collect()]
"""


async def test_index_order_survives_restart_for_every_value_type(tmp_path: Path) -> None:
    from pyconvex import Int64

    fdir = tmp_path / "convex"
    fdir.mkdir()
    (fdir / "schema.py").write_text(SCHEMA)
    (fdir / "f.py").write_text(FUNCS)
    values = [
        None,
        True,
        False,
        0.0,
        -1.5,
        1e300,
        float("inf"),
        float("-inf"),
        float("nan"),
        -0.0,
        Int64(-7),
        Int64(2**62),
        "",
        "plain",
        'quote " and \\ backslash',
        "tab\tnewline\n",
        "ünïcödé ✓",
        "nul\x00byte",
        b"\x00\x01bytes",
        [],
        [1.0, "a"],
        {"k": 1.0},
        {"a": [Int64(1)]},
    ]
    docs = [{"v": x, "s": {"inner": i % 3}} for i, x in enumerate(values)]
    docs.append({"missing": True})  # no "v", no "s"
    data = tmp_path / "data"
    dep = await Deployment.open(fdir, data)
    r = await dep.run_mutation("f:put", {"docs": docs})
    assert r.failure is None, r.failure
    before = dep.run_query("f:by_v", {}).value
    before_nested = dep.run_query("f:by_nested", {}).value
    assert len(before) == len(docs)
    await dep.close()

    dep2 = await Deployment.open(fdir, data)
    try:
        assert dep2.run_query("f:by_v", {}).value == before
        assert dep2.run_query("f:by_nested", {}).value == before_nested
        for s in ("plain", 'quote " and \\ backslash', "nul\x00byte", "ünïcödé ✓"):
            assert len(dep2.run_query("f:eq_string", {"s": s}).value) == 1, s
        # Writes after the restart land in the same order as before it.
        r = await dep2.run_mutation("f:put", {"docs": [{"v": "plain2"}]})
        assert r.failure is None
        after = dep2.run_query("f:by_v", {}).value
        assert [x for x in after if x in before] == before
    finally:
        await dep2.close()
