"""Read sets and write sets: a query's read set intersects a commit's write set exactly when
the commit wrote inside what the query read (scanned index ranges, ids it got)."""

from __future__ import annotations

from typing import Any

import pytest
from support.deployment import CommitLog, ok

from pyconvex.runtime.store.read_set import KeyRange, ReadSet, WriteEntry, WriteSet

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"channel": v.string(), "body": v.string()})
        .index("by_channel", ["channel"]),
})
"""

MESSAGES = """
from pyconvex import mutation, query, v


@mutation(args={"channel": v.string(), "body": v.string()})
async def send(ctx, channel, body):
    return await ctx.db.insert("messages", {"channel": channel, "body": body})


@mutation(args={"id": v.id("messages"), "body": v.string()})
async def edit(ctx, id, body):
    await ctx.db.patch(id, {"body": body})


@mutation(args={"id": v.id("messages"), "channel": v.string()})
async def move(ctx, id, channel):
    await ctx.db.patch(id, {"channel": channel})


@mutation(args={"id": v.id("messages")})
async def remove(ctx, id):
    await ctx.db.delete(id)


@query(args={"channel": v.string(), "n": v.optional(v.float64()), "order": v.optional(v.string())})
async def list(ctx, channel, n=None, order="asc"):
    q = ctx.db.query("messages").with_index("by_channel", lambda q: q.eq("channel", channel))
    q = q.order(order)
    docs = await (q.take(int(n)) if n is not None else q.collect())
    return [d["body"] for d in docs]


@query(args={"channel": v.string(), "body": v.string()})
async def find(ctx, channel, body):
    q = ctx.db.query("messages").with_index("by_channel", lambda q: q.eq("channel", channel))
    return [d["body"] for d in await q.filter(lambda f: f.eq(f.field("body"), body)).collect()]


@query(args={"id": v.string()})
async def get(ctx, id):
    doc = await ctx.db.get(id)
    return None if doc is None else doc["body"]
"""


@pytest.fixture
async def dep(deployment: Any) -> Any:
    return await deployment({"schema.py": SCHEMA, "messages.py": MESSAGES})


async def send(dep: Any, channel: str, body: str) -> str:
    return ok(await dep.run_mutation("messages:send", {"channel": channel, "body": body}))  # type: ignore[no-any-return]


async def write_set(dep: Any, log: CommitLog, path: str, args: dict[str, Any]) -> WriteSet:
    r = await dep.run_mutation(path, args)
    ok(r)
    return log.for_ts(r.ts).writes


# -- the ReadSet / WriteSet interface -----------------------------------------------------------
def test_key_range_is_half_open() -> None:
    r = KeyRange(b"b", b"d")
    assert (
        r.contains(b"b") and r.contains(b"c\xff") and not r.contains(b"d") and not r.contains(b"a")
    )
    assert KeyRange(b"b", None).contains(b"\xff" * 8)


def test_read_set_ranges_merge_and_stay_per_index() -> None:
    rs = ReadSet()
    rs.add_range("t", "i", b"a", b"c")
    rs.add_range("t", "i", b"b", b"e")
    rs.add_range("t", "i", b"x", None)
    rs.add_range("t", "i", b"m", b"m")  # empty: ignored
    assert rs.contains_key("t", "i", b"d")
    assert not rs.contains_key("t", "i", b"e")
    assert not rs.contains_key("t", "i", b"m")
    assert rs.contains_key("t", "i", b"zzz")
    assert not rs.contains_key("t", "other", b"b")
    assert not rs.contains_key("u", "i", b"b")


def test_intersects_by_key_and_by_id() -> None:
    rs = ReadSet()
    rs.add_range("t", "i", b"b", b"c")
    rs.add_id("doc1")
    assert rs.intersects(WriteSet([WriteEntry("t", "doc9", (("i", b"bb"),))]))
    assert not rs.intersects(WriteSet([WriteEntry("t", "doc9", (("i", b"cc"), ("j", b"bb")))]))
    assert rs.intersects(WriteSet([WriteEntry("u", "doc1", ())]))
    assert not rs.intersects(WriteSet())
    other = ReadSet()
    other.add_range("t", "j", b"b", b"c")
    rs.merge(other)
    assert rs.intersects(WriteSet([WriteEntry("t", "doc9", (("j", b"bb"),))]))


# -- read sets of real queries against real commits ------------------------------------------------
async def test_write_to_another_channel_does_not_intersect(dep: Any) -> None:
    log = CommitLog(dep)
    await send(dep, "a", "a1")
    read = dep.run_query("messages:list", {"channel": "a"})
    assert ok(read) == ["a1"]
    other = await write_set(dep, log, "messages:send", {"channel": "b", "body": "b1"})
    assert not read.read_set.intersects(other)
    same = await write_set(dep, log, "messages:send", {"channel": "a", "body": "a2"})
    assert read.read_set.intersects(same)


async def test_row_after_a_take_cut_does_not_intersect(dep: Any) -> None:
    log = CommitLog(dep)
    ids = [await send(dep, "a", f"a{i}") for i in range(4)]
    read = dep.run_query("messages:list", {"channel": "a", "n": 2.0})
    assert ok(read) == ["a0", "a1"]
    # Rows 3 and 4 were never used: editing them or appending after them is outside.
    assert not read.read_set.intersects(
        await write_set(dep, log, "messages:edit", {"id": ids[3], "body": "x"})
    )
    assert not read.read_set.intersects(
        await write_set(dep, log, "messages:remove", {"id": ids[2]})
    )
    assert not read.read_set.intersects(
        await write_set(dep, log, "messages:send", {"channel": "a", "body": "a9"})
    )
    # Rows inside the cut are read.
    assert read.read_set.intersects(
        await write_set(dep, log, "messages:edit", {"id": ids[1], "body": "y"})
    )
    assert read.read_set.intersects(await write_set(dep, log, "messages:remove", {"id": ids[0]}))


async def test_desc_take_reads_the_newest_end(dep: Any) -> None:
    log = CommitLog(dep)
    ids = [await send(dep, "a", f"a{i}") for i in range(4)]
    read = dep.run_query("messages:list", {"channel": "a", "n": 2.0, "order": "desc"})
    assert ok(read) == ["a3", "a2"]
    assert not read.read_set.intersects(
        await write_set(dep, log, "messages:edit", {"id": ids[0], "body": "x"})
    )
    # A new message sorts at the newest end: inside what a desc take(2) read.
    assert read.read_set.intersects(
        await write_set(dep, log, "messages:send", {"channel": "a", "body": "a4"})
    )


async def test_moving_a_document_into_or_out_of_the_range_intersects(dep: Any) -> None:
    log = CommitLog(dep)
    a = await send(dep, "a", "a1")
    b = await send(dep, "b", "b1")
    read = dep.run_query("messages:list", {"channel": "a"})
    assert read.read_set.intersects(
        await write_set(dep, log, "messages:move", {"id": b, "channel": "a"})
    )
    read = dep.run_query("messages:list", {"channel": "b"})
    assert ok(read) == []
    assert read.read_set.intersects(
        await write_set(dep, log, "messages:move", {"id": a, "channel": "b"})
    )


async def test_filtered_out_rows_of_the_scanned_range_are_read(dep: Any) -> None:
    log = CommitLog(dep)
    x = await send(dep, "a", "x")
    await send(dep, "a", "y")
    read = dep.run_query("messages:find", {"channel": "a", "body": "y"})
    assert ok(read) == ["y"]
    # x did not match the filter, but editing it could make it match.
    assert read.read_set.intersects(
        await write_set(dep, log, "messages:edit", {"id": x, "body": "y"})
    )


async def test_get_reads_the_id(dep: Any) -> None:
    log = CommitLog(dep)
    a = await send(dep, "a", "a1")
    b = await send(dep, "a", "b1")
    read = dep.run_query("messages:get", {"id": a})
    assert ok(read) == "a1"
    assert a in read.read_set.ids
    assert not read.read_set.intersects(
        await write_set(dep, log, "messages:edit", {"id": b, "body": "x"})
    )
    assert read.read_set.intersects(
        await write_set(dep, log, "messages:edit", {"id": a, "body": "x"})
    )
    assert read.read_set.intersects(await write_set(dep, log, "messages:remove", {"id": a}))
    gone = dep.run_query("messages:get", {"id": a})
    assert ok(gone) is None and a in gone.read_set.ids  # a miss is read too


async def test_commit_write_set_names_table_document_and_index_keys(dep: Any) -> None:
    log = CommitLog(dep)
    a = await send(dep, "a", "a1")
    writes = await write_set(dep, log, "messages:move", {"id": a, "channel": "b"})
    assert writes.tables() == {"messages"}
    (entry,) = writes.entries
    assert entry.doc_id == a
    channel_keys = [k for name, k in entry.keys if name == "by_channel"]
    assert len(channel_keys) == 2  # old key (channel a) and new key (channel b)
    assert {name for name, _ in entry.keys} == {"by_channel", "by_creation_time"}


async def test_commit_listener_hears_each_durable_commit_once_in_order(dep: Any) -> None:
    log = CommitLog(dep)
    results = [
        await dep.run_mutation("messages:send", {"channel": "a", "body": str(i)}) for i in range(5)
    ]
    assert [c.ts for c in log.commits] == [r.ts for r in results]
    log.remove()
    await send(dep, "a", "after")
    assert len(log.commits) == 5


async def test_a_whole_scan_and_a_cut_scan_from_the_same_start(deployment: Any) -> None:
    # Both ranges start at the beginning of the index, one unbounded: normalising them must
    # not compare an unbounded end with a key (it raised TypeError, found by the differential
    # test of the invalidation index).
    dep = await deployment(
        {
            "schema.py": SCHEMA,
            "messages.py": MESSAGES
            + '''

@query(args={})
async def all_and_first(ctx):
    everything = await ctx.db.query("messages").collect()
    first = await ctx.db.query("messages").take(1)
    return [len(everything), len(first)]
''',
        }
    )
    log = CommitLog(dep)
    for body in ("a", "b"):
        ok(await dep.run_mutation("messages:send", {"channel": "c", "body": body}))
    r = dep.run_query("messages:all_and_first")
    assert ok(r) == [2, 1]
    w = await dep.run_mutation("messages:send", {"channel": "c", "body": "c"})
    assert r.read_set is not None and r.read_set.intersects(log.for_ts(w.ts).writes)
