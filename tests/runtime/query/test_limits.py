"""Per-transaction limits (documents and bytes read and written) and per-document limits,
with errors that say which limit was hit and how to stay under it."""

from __future__ import annotations

from typing import Any

import pytest
from support.deployment import failure_message, ok

from pyconvex.runtime.query.transaction import Limits

FUNCS = """
from pyconvex import mutation, query, v


@mutation(args={"n": v.float64(), "size": v.optional(v.float64())})
async def insert_many(ctx, n, size=10):
    for i in range(int(n)):
        await ctx.db.insert("docs", {"i": i, "pad": "x" * int(size)})


@mutation(args={"n": v.float64()})
async def patch_first(ctx, n):
    doc = await ctx.db.query("docs").first()
    for i in range(int(n)):
        await ctx.db.patch(doc["_id"], {"i": float(i)})


@query
async def collect(ctx):
    return len(await ctx.db.query("docs").collect())


@query(args={"n": v.float64()})
async def take(ctx, n):
    return len(await ctx.db.query("docs").take(int(n)))


@query(args={"n": v.float64()})
async def page(ctx, n):
    r = await ctx.db.query("docs").paginate({"numItems": int(n), "cursor": None})
    return len(r["page"])


@query
async def get_all(ctx):
    ids = [d["_id"] for d in await ctx.db.query("docs").take(3)]
    n = 0
    for _ in range(5):
        for i in ids:
            n += (await ctx.db.get(i)) is not None
    return n


@mutation(args={"kind": v.string()})
async def too_big(ctx, kind):
    docs = {
        "bytes": {"blob": b"x" * (1024 * 1024 + 1)},
        "array": {"items": [0.0] * 8193},
        "fields": {f"f{i}": 0.0 for i in range(1025)},
        "field_name": {"x" * 1025: 0.0},
    }
    await ctx.db.insert("docs", docs[kind])
"""


async def open_with(deployment: Any, **limits: int) -> Any:
    return await deployment({"funcs.py": FUNCS}, limits=Limits(**limits))


async def test_documents_read_limit(deployment: Any) -> None:
    dep = await open_with(deployment, documents_read=5)
    ok(await dep.run_mutation("funcs:insert_many", {"n": 8.0}))
    msg = failure_message(dep.run_query("funcs:collect", {}))
    assert "query funcs:collect read more than 5 documents" in msg
    assert "with_index" in msg and "paginate()" in msg
    # Convex's own text first (apps match on it).
    assert "Too many documents read in a single function execution (limit: 5). Consider using " \
        "smaller limits in your queries, paginating your queries, or using indexed queries " \
        "with a selective index range expressions." in msg
    assert ok(dep.run_query("funcs:take", {"n": 5.0})) == 5
    assert "read more than 5 documents" in failure_message(dep.run_query("funcs:take", {"n": 6.0}))
    assert ok(dep.run_query("funcs:page", {"n": 5.0})) == 5


async def test_repeated_gets_count_as_reads(deployment: Any) -> None:
    dep = await open_with(deployment, documents_read=10)
    ok(await dep.run_mutation("funcs:insert_many", {"n": 3.0}))
    assert "read more than 10 documents" in failure_message(dep.run_query("funcs:get_all", {}))


async def test_bytes_read_limit(deployment: Any) -> None:
    dep = await open_with(deployment, bytes_read=2 * 1024 * 1024)
    ok(await dep.run_mutation("funcs:insert_many", {"n": 3.0, "size": 800_000.0}))
    assert ok(dep.run_query("funcs:take", {"n": 2.0})) == 2
    msg = failure_message(dep.run_query("funcs:collect", {}))
    assert "read more than 2 MiB" in msg and "paginate" in msg
    assert "Too many bytes read in a single function execution (limit: 2097152 bytes)" in msg


async def test_documents_written_limit_aborts_the_whole_mutation(deployment: Any) -> None:
    dep = await open_with(deployment, documents_written=3)
    ok(await dep.run_mutation("funcs:insert_many", {"n": 3.0}))
    msg = failure_message(await dep.run_mutation("funcs:insert_many", {"n": 4.0}))
    assert "mutation funcs:insert_many wrote more than 3 documents" in msg
    assert "schedule follow-up mutations" in msg
    assert "Too many writes in a single function execution (limit: 3)" in msg
    assert ok(dep.run_query("funcs:collect", {})) == 3  # none of the 4 was written


async def test_rewrites_of_one_document_count_as_writes(deployment: Any) -> None:
    dep = await open_with(deployment, documents_written=3)
    ok(await dep.run_mutation("funcs:insert_many", {"n": 1.0}))
    ok(await dep.run_mutation("funcs:patch_first", {"n": 3.0}))
    assert "wrote more than 3 documents" in failure_message(
        await dep.run_mutation("funcs:patch_first", {"n": 4.0})
    )


async def test_bytes_written_limit(deployment: Any) -> None:
    dep = await open_with(deployment, bytes_written=1024 * 1024)
    ok(await dep.run_mutation("funcs:insert_many", {"n": 1.0, "size": 600_000.0}))
    msg = failure_message(
        await dep.run_mutation("funcs:insert_many", {"n": 2.0, "size": 600_000.0})
    )
    assert "wrote more than 1 MiB" in msg and "split the work" in msg
    assert "Too many bytes written in a single function execution (limit: 1 MiB)" in msg
    assert ok(dep.run_query("funcs:collect", {})) == 1


async def test_default_limits_are_convex_s() -> None:
    lim = Limits()
    assert (lim.documents_read, lim.documents_written) == (32_000, 16_000)
    assert lim.bytes_read == lim.bytes_written == 16 * 1024 * 1024


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("bytes", "the limit is 1 MiB (1048576 bytes); the largest field is .blob"),
        ("array", "8193 items; the limit is 8192 at .items"),
        ("fields", "1025 fields; the limit is 1024"),
        ("field_name", "1025 characters long; the limit is 1024"),
    ],
)
async def test_document_limits(deployment: Any, kind: str, expected: str) -> None:
    dep = await open_with(deployment)
    msg = failure_message(await dep.run_mutation("funcs:too_big", {"kind": kind}))
    assert expected.lower() in msg.lower(), msg
    assert ok(dep.run_query("funcs:collect", {})) == 0
