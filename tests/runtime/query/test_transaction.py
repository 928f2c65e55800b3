"""Transactions: serializable mutations (the money-transfer invariant), all-or-nothing writes,
one snapshot per query, and writes visible only once durable."""

from __future__ import annotations

import asyncio
import random
import threading
from typing import Any

import pytest
from support.deployment import failure_message, ok

from pyconvex.errors import StorageError

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "accounts": define_table({"owner": v.string(), "balance": v.float64()})
        .index("by_owner", ["owner"]),
    "counters": define_table({"name": v.string(), "value": v.float64()}),
    "notes": define_table({"text": v.string()}),
})
"""

BANK = """
from pyconvex import ConvexError, internal_mutation, mutation, query, v


@internal_mutation(args={"owners": v.array(v.string()), "balance": v.float64()})
async def open_accounts(ctx, owners, balance):
    return [await ctx.db.insert("accounts", {"owner": o, "balance": balance}) for o in owners]


@mutation(args={"src": v.id("accounts"), "dst": v.id("accounts"), "amount": v.float64()})
async def transfer(ctx, src, dst, amount):
    a = await ctx.db.get(src)
    b = await ctx.db.get(dst)
    if a["balance"] < amount:
        raise ConvexError({"code": "INSUFFICIENT_FUNDS", "balance": a["balance"]})
    await ctx.db.patch(src, {"balance": a["balance"] - amount})
    b = await ctx.db.get(dst)  # re-read: src may be dst
    await ctx.db.patch(dst, {"balance": b["balance"] + amount})
    return a["balance"] - amount


@query
async def balances(ctx):
    return {d["_id"]: d["balance"] for d in await ctx.db.query("accounts").collect()}
"""

COUNTERS = """
from pyconvex import ConvexError, mutation, query, v


@mutation
async def increment(ctx):
    doc = await ctx.db.query("counters").first()
    if doc is None:
        await ctx.db.insert("counters", {"name": "c", "value": 1.0})
        return 1.0
    await ctx.db.patch(doc["_id"], {"value": doc["value"] + 1})
    return doc["value"] + 1


@query
async def value(ctx):
    doc = await ctx.db.query("counters").first()
    return None if doc is None else doc["value"]


@mutation(args={"text": v.string(), "fail": v.boolean()})
async def add_then_maybe_fail(ctx, text, fail):
    first = await ctx.db.insert("notes", {"text": text})
    await ctx.db.insert("notes", {"text": text + "-2"})
    seen = [d["text"] for d in await ctx.db.query("notes").collect()]
    if fail == True:
        raise ConvexError({"seen": seen})
    return {"id": first, "seen": seen}


@mutation(args={"text": v.string()})
async def add_edit_delete(ctx, text):
    doc_id = await ctx.db.insert("notes", {"text": text})
    await ctx.db.patch(doc_id, {"text": text + "!"})
    assert (await ctx.db.get(doc_id))["text"] == text + "!"
    other = await ctx.db.insert("notes", {"text": "temp"})
    await ctx.db.delete(other)
    assert await ctx.db.get(other) is None
    return doc_id


@mutation
async def crash(ctx):
    await ctx.db.insert("notes", {"text": "never"})
    raise RuntimeError("boom")


@mutation
async def read_only(ctx):
    return len(await ctx.db.query("notes").collect())


@query
async def notes(ctx):
    return [d["text"] for d in await ctx.db.query("notes").collect()]
"""

FILES = {"schema.py": SCHEMA, "bank.py": BANK, "counters.py": COUNTERS}


@pytest.fixture
async def dep(deployment: Any) -> Any:
    return await deployment(FILES)


# -- serializability ----------------------------------------------------------------------------
async def test_money_transfer_invariant_under_concurrent_mutations(deployment: Any) -> None:
    dep = await deployment(FILES, persistent=True)
    owners = [f"owner{i}" for i in range(12)]
    ids = ok(
        await dep.run_mutation(
            "bank:open_accounts", {"owners": owners, "balance": 100.0}, allow_internal=True
        )
    )
    initial = dict.fromkeys(ids, 100.0)
    total = sum(initial.values())

    snapshots_checked = 0

    def check_snapshot(latest_ts: int, commits: Any) -> None:
        # Every durable state: the sum never changes and no balance is negative.
        nonlocal snapshots_checked
        balances = ok(dep.run_query("bank:balances", {}))
        assert sum(balances.values()) == total
        assert min(balances.values()) >= 0
        snapshots_checked += 1

    dep.add_commit_listener(check_snapshot)
    rng = random.Random(1234)
    transfers = []
    for _ in range(400):
        src, dst = rng.choice(ids), rng.choice(ids)
        transfers.append({"src": src, "dst": dst, "amount": float(rng.randint(1, 60))})
    results = await asyncio.gather(*(dep.run_mutation("bank:transfer", t) for t in transfers))

    failed = [r for r in results if r.failure is not None]
    succeeded = [(r, t) for r, t in zip(results, transfers, strict=True) if r.failure is None]
    assert failed and succeeded, "the amounts should make some transfers fail"
    for r in failed:
        assert r.failure.is_convex_error and r.failure.data["code"] == "INSUFFICIENT_FUNDS"
        assert r.ts is None
    # No lost update: replaying the successful transfers in commit order gives the final state,
    # and each of them saw the balance its source had at that point.
    replay = dict(initial)
    for r, t in sorted(succeeded, key=lambda rt: rt[0].ts):
        assert replay[t["src"]] >= t["amount"]
        replay[t["src"]] -= t["amount"]
        replay[t["dst"]] += t["amount"]
        if t["src"] != t["dst"]:
            assert r.value == replay[t["src"]]
    final = ok(dep.run_query("bank:balances", {}))
    assert final == replay
    assert sum(final.values()) == total and min(final.values()) >= 0
    assert len({r.ts for r, _ in succeeded}) == len(succeeded)
    assert snapshots_checked >= 1

    await dep.close()
    reopened = await deployment(FILES, persistent=True)
    assert ok(reopened.run_query("bank:balances", {})) == replay


async def test_concurrent_increments_lose_no_update(dep: Any) -> None:
    results = await asyncio.gather(
        *(dep.run_mutation("counters:increment", {}) for _ in range(300))
    )
    assert sorted(ok(r) for r in results) == [float(i) for i in range(1, 301)]
    assert ok(dep.run_query("counters:value", {})) == 300.0


# -- all or nothing -----------------------------------------------------------------------------
async def test_mutation_reads_its_own_writes(dep: Any) -> None:
    r = ok(await dep.run_mutation("counters:add_then_maybe_fail", {"text": "a", "fail": False}))
    assert r["seen"] == ["a", "a-2"]
    doc_id = ok(await dep.run_mutation("counters:add_edit_delete", {"text": "b"}))
    assert ok(dep.run_query("counters:notes", {})) == ["a", "a-2", "b!"]
    assert isinstance(doc_id, str)


async def test_failed_mutation_writes_nothing(dep: Any) -> None:
    commits: list[Any] = []
    dep.add_commit_listener(lambda ts, cs: commits.extend(cs))
    r = await dep.run_mutation("counters:add_then_maybe_fail", {"text": "a", "fail": True})
    assert r.failure.is_convex_error and r.failure.data == {"seen": ["a", "a-2"]}
    assert r.ts is None
    r = await dep.run_mutation("counters:crash", {})
    assert "Uncaught RuntimeError: boom" in failure_message(r)
    assert "    at crash (convex/counters.py:" in failure_message(r)
    assert ok(dep.run_query("counters:notes", {})) == []
    assert commits == []
    # The table the failed mutations created is gone too; the next insert works normally.
    ok(await dep.run_mutation("counters:add_then_maybe_fail", {"text": "c", "fail": False}))
    assert ok(dep.run_query("counters:notes", {})) == ["c", "c-2"]


async def test_read_only_mutation_commits_nothing(dep: Any) -> None:
    commits: list[Any] = []
    dep.add_commit_listener(lambda ts, cs: commits.extend(cs))
    before = dep.latest_ts
    r = await dep.run_mutation("counters:read_only", {})
    assert ok(r) == 0 and commits == [] and dep.latest_ts == before


async def test_storage_failure_undoes_the_batch_and_reports_it(
    dep: Any, monkeypatch: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ok(await dep.run_mutation("counters:add_then_maybe_fail", {"text": "kept", "fail": False}))

    def refuse(*args: Any) -> None:
        raise StorageError("disk full")

    monkeypatch.setattr(dep.persistence.log, "write_prepared", refuse)
    results = await asyncio.gather(
        *(
            dep.run_mutation("counters:add_then_maybe_fail", {"text": f"lost{i}", "fail": False})
            for i in range(3)
        )
    )
    for r in results:
        # The client is told the mutation was not committed; the server log says why (the
        # storage's own words, which may name server paths, stay there).
        message = failure_message(r)
        assert "was not committed" in message and "disk full" not in message and r.ts is None
    assert any("disk full" in rec.getMessage() for rec in caplog.records)
    monkeypatch.undo()
    assert ok(dep.run_query("counters:notes", {})) == ["kept", "kept-2"]
    # Memory was rolled back: the next mutation does not see the lost writes either.
    r = ok(await dep.run_mutation("counters:add_then_maybe_fail", {"text": "next", "fail": False}))
    assert r["seen"] == ["kept", "kept-2", "next", "next-2"]


# -- snapshots and durability -------------------------------------------------------------------
async def test_query_at_an_older_timestamp_does_not_see_later_writes(dep: Any) -> None:
    ids = ok(
        await dep.run_mutation(
            "bank:open_accounts", {"owners": ["a", "b"], "balance": 10.0}, allow_internal=True
        )
    )
    old_ts = dep.latest_ts
    t = await dep.run_mutation("bank:transfer", {"src": ids[0], "dst": ids[1], "amount": 4.0})
    ok(t)
    assert t.ts > old_ts and dep.latest_ts >= t.ts
    ok(
        await dep.run_mutation(
            "bank:open_accounts", {"owners": ["c"], "balance": 1.0}, allow_internal=True
        )
    )
    old = dep.run_query("bank:balances", {}, ts=old_ts)
    assert old.ts == old_ts
    assert ok(old) == {ids[0]: 10.0, ids[1]: 10.0}
    mid = dep.run_query("bank:balances", {}, ts=t.ts)
    assert ok(mid) == {ids[0]: 6.0, ids[1]: 14.0}
    assert len(ok(dep.run_query("bank:balances", {}))) == 3


async def test_query_at_a_future_or_collected_timestamp_is_refused(dep: Any) -> None:
    ok(await dep.run_mutation("counters:increment", {}))
    msg = failure_message(dep.run_query("counters:value", {}, ts=dep.latest_ts + 1))
    assert "outside the retained snapshots" in msg
    msg = failure_message(dep.run_query("counters:value", {}, ts=dep.store.gc_horizon - 1))
    assert "outside the retained snapshots" in msg


async def test_writes_are_invisible_until_durable(dep: Any) -> None:
    ok(await dep.run_mutation("counters:add_then_maybe_fail", {"text": "first", "fail": False}))
    durable_before = dep.store.durable_ts
    release = threading.Event()
    submitted = asyncio.Event()
    real_submit = dep.committer.submit

    def submit(pending: Any) -> Any:
        fut = real_submit(pending)
        submitted.set()
        return fut

    dep.committer.submit = submit
    # Hold the DuckDB writer thread so the next batch cannot become durable yet.
    blocker = dep.persistence.run(release.wait)
    try:
        task = asyncio.create_task(
            dep.run_mutation("counters:add_then_maybe_fail", {"text": "pending", "fail": False})
        )
        await submitted.wait()
        assert not task.done()
        assert dep.store.durable_ts == durable_before == dep.latest_ts
        q = dep.run_query("counters:notes", {})
        assert ok(q) == ["first", "first-2"]
        assert q.ts == durable_before
    finally:
        release.set()
    r = await task
    await blocker
    ok(r)
    assert r.ts > durable_before and dep.store.durable_ts >= r.ts
    assert ok(dep.run_query("counters:notes", {})) == ["first", "first-2", "pending", "pending-2"]


async def test_commit_timestamps_increase(dep: Any) -> None:
    results = await asyncio.gather(*(dep.run_mutation("counters:increment", {}) for _ in range(50)))
    tss = [r.ts for r in results]
    assert tss == sorted(tss) and len(set(tss)) == len(tss)
    assert dep.latest_ts == tss[-1]


async def test_commits_wait_for_a_running_duckdb_call(dep: Any) -> None:
    # A call on the DuckDB thread (e.g. an SQL read) and batch preparation must not overlap:
    # commits submitted meanwhile go out after it, all of them.
    import threading

    release = threading.Event()
    running = asyncio.Event()
    loop = asyncio.get_running_loop()

    def slow() -> int:
        loop.call_soon_threadsafe(running.set)
        release.wait(10)
        return 1

    call = dep.persistence.run(slow)
    await running.wait()
    mutations = [
        asyncio.create_task(
            dep.run_mutation("counters:add_then_maybe_fail", {"text": f"t{i}", "fail": False})
        )
        for i in range(5)
    ]
    await asyncio.sleep(0)
    assert not any(m.done() for m in mutations)
    release.set()
    assert await call == 1
    for m in mutations:
        ok(await m)
