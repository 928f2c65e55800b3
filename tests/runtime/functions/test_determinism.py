"""Queries and mutations are deterministic: frozen time, seeded randomness, and awaiting
anything but pyconvex calls (sleep, threads, real I/O) fails with an error pointing to actions.
Actions are free to do all of that."""

from __future__ import annotations

import random
import time
from typing import Any

import pytest
from support.deployment import failure_message, ok

FUNCS = """
import asyncio
from datetime import date, datetime, timezone
import datetime as _datetime_module
import random
import time
import uuid
from pathlib import Path

from pyconvex import action, mutation, query, v


def _busy():
    return sum(i * i for i in range(20000))


@query
async def clock(ctx):
    a, a_ns = time.time(), time.time_ns()
    _busy()
    await ctx.db.query("notes").collect()
    b, b_ns = time.time(), time.time_ns()
    return {"a": a, "b": b, "a_ns": str(a_ns), "b_ns": str(b_ns)}


@mutation
async def clock_mutation(ctx):
    a = time.time()
    await ctx.db.insert("notes", {"at": a})
    _busy()
    return {"a": a, "b": time.time()}


@query
async def named_clock(ctx):
    # `from datetime import datetime, date` at module top (below) is the common spelling.
    a = datetime.now(timezone.utc)
    _busy()
    b = datetime.utcnow()
    real_class = type(_datetime_module.datetime.min)  # datetime.min is a real datetime
    real = isinstance(a, datetime) and type(a) is real_class and isinstance(b, datetime)
    made = datetime(2024, 5, 1, 12, 0)
    return [a.timestamp(), b.replace(tzinfo=timezone.utc).timestamp(), time.time(),
            date.today().isoformat(), real, type(made) is real_class,
            isinstance(made, date), made.isoformat()]


@query
async def wall_clock(ctx):
    import datetime

    a = datetime.datetime.now(datetime.timezone.utc)
    _busy()
    return [a.timestamp(), datetime.datetime.now(datetime.timezone.utc).timestamp(), time.time()]


@query
async def dice(ctx):
    return {"random": random.random(), "randint": random.randint(0, 10**9),
            "choice": random.choice("abcdefghijklmnop"), "uuid": str(uuid.uuid4())}


@mutation
async def dice_mutation(ctx):
    values = [random.random() for _ in range(3)]
    await ctx.db.insert("notes", {"values": values})
    return values


@query
async def sleeps(ctx):
    await asyncio.sleep(0.5)
    return "unreachable"


@mutation
async def writes_then_sleeps(ctx):
    await ctx.db.insert("notes", {"text": "never"})
    await asyncio.sleep(0.01)
    return "unreachable"


@mutation(args={"path": v.string()})
async def reads_file_in_thread(ctx, path):
    return await asyncio.to_thread(lambda: Path(path).read_text())


@query
async def waits_on_future(ctx):
    fut = asyncio.get_running_loop().create_future()
    return await fut


@query
async def many_awaits(ctx):
    total = 0
    for _ in range(50):
        total += len(await ctx.db.query("notes").take(1))
    return total


@action(args={"path": v.string()})
async def io_in_action(ctx, path):
    await asyncio.sleep(0)
    text = await asyncio.to_thread(lambda: Path(path).read_text())
    n = await ctx.run_query("funcs:many_awaits", {})
    t1 = time.time_ns()
    await asyncio.sleep(0.001)
    return {"text": text, "n": n, "clock_moves": time.time_ns() > t1}


@query
async def notes(ctx):
    return await ctx.db.query("notes").collect()


@mutation(args={"texts": v.array(v.string())})
async def add_all(ctx, texts):
    # Convex's `await Promise.all(texts.map((text) => ctx.db.insert(...)))`
    return await asyncio.gather(*[ctx.db.insert("notes", {"text": t}) for t in texts])


@query(args={"ids": v.array(v.id("notes"))})
async def read_all(ctx, ids):
    async def text(note_id):
        await asyncio.sleep(0)  # a yield to the other tasks: nothing to wait for
        return (await ctx.db.get(note_id))["text"]

    gathered = await asyncio.gather(*[text(i) for i in ids])
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(text(i)) for i in ids]
    return {"gathered": gathered, "grouped": [t.result() for t in tasks]}


@mutation(args={"texts": v.array(v.string())})
async def add_all_or_none(ctx, texts):
    async def add(t):
        if t == "bad":
            raise ValueError("no bad notes")
        return await ctx.db.insert("notes", {"text": t})

    return await asyncio.gather(*[add(t) for t in texts])


@mutation(args={"fail": v.array(v.string())})
async def grouped(ctx, fail):
    async def add(t):
        await ctx.db.insert("notes", {"text": t})
        if t in fail:
            raise ValueError(f"no {t}")

    async with asyncio.TaskGroup() as group:
        for t in ("p", "q"):
            group.create_task(add(t))
"""


@pytest.fixture
async def dep(deployment: Any) -> Any:
    return await deployment({"funcs.py": FUNCS})


async def test_time_is_frozen_inside_a_query(dep: Any) -> None:
    before = time.time()
    r = ok(dep.run_query("funcs:clock", {}))
    after = time.time()
    assert r["a"] == r["b"] and r["a_ns"] == r["b_ns"]
    assert before - 1 <= r["a"] <= after + 1  # frozen at a real time near the call
    assert abs(int(r["a_ns"]) / 1e9 - r["a"]) < 1e-6


async def test_datetime_now_is_frozen_too(dep: Any) -> None:
    a, b, t = ok(dep.run_query("funcs:wall_clock", {}))
    assert a == b == t


async def test_datetime_names_bound_at_import_are_frozen_and_make_real_objects(dep: Any) -> None:
    import datetime as real_datetime

    a, b, t, today, real, made_real, made_is_date, made = ok(dep.run_query("funcs:named_clock", {}))
    assert a == b == t
    assert today == real_datetime.datetime.fromtimestamp(t).date().isoformat()
    assert real and made_real and made_is_date and made == "2024-05-01T12:00:00"
    # Outside functions the module is untouched: real classes, real clock, pickling works.
    import pickle

    assert real_datetime.datetime.__name__ == "datetime"
    assert type(real_datetime.datetime.now()) is real_datetime.datetime
    stamp = real_datetime.datetime(2020, 1, 2, tzinfo=real_datetime.UTC)
    assert pickle.loads(pickle.dumps(stamp)) == stamp


async def test_time_is_frozen_inside_a_mutation(dep: Any) -> None:
    r = ok(await dep.run_mutation("funcs:clock_mutation", {}))
    assert r["a"] == r["b"]
    (note,) = ok(dep.run_query("funcs:notes", {}))
    assert note["at"] == r["a"]


async def test_time_is_real_outside_functions(dep: Any) -> None:
    ok(dep.run_query("funcs:clock", {}))
    a = time.time_ns()
    while time.time_ns() == a:
        pass  # the real clock advances; a frozen one would spin until the timeout


async def test_randomness_is_seeded_per_query_snapshot(dep: Any) -> None:
    first = ok(dep.run_query("funcs:dice", {}))
    again = ok(dep.run_query("funcs:dice", {}))
    assert first == again  # same function, same snapshot: same "random" values
    ok(await dep.run_mutation("funcs:dice_mutation", {}))
    later = ok(dep.run_query("funcs:dice", {}))
    assert later != first  # a new snapshot reseeds
    at_old = ok(dep.run_query("funcs:dice", {}, ts=dep.run_query("funcs:dice", {}).ts))
    assert at_old == later


async def test_randomness_differs_between_mutations_and_is_real_outside(dep: Any) -> None:
    a = ok(await dep.run_mutation("funcs:dice_mutation", {}))
    b = ok(await dep.run_mutation("funcs:dice_mutation", {}))
    assert a != b and len(set(a)) == 3
    notes = ok(dep.run_query("funcs:notes", {}))
    assert [n["values"] for n in notes] == [a, b]
    random.seed(99)
    x = random.random()
    random.seed(99)
    assert random.random() == x  # the global generator still works as usual outside


async def test_sleep_in_a_query_points_to_actions(dep: Any) -> None:
    msg = failure_message(dep.run_query("funcs:sleeps", {}))
    assert "query funcs:sleeps" in msg
    assert "query funcs:sleeps waited for a timer (asyncio.sleep or a timeout)" in msg
    assert "action" in msg and "ctx.run_query" in msg


async def test_sleep_in_a_mutation_fails_and_writes_nothing(dep: Any) -> None:
    msg = failure_message(await dep.run_mutation("funcs:writes_then_sleeps", {}))
    assert "mutation funcs:writes_then_sleeps" in msg and "action" in msg
    assert ok(dep.run_query("funcs:notes", {})) == []


async def test_thread_io_in_a_mutation_is_refused(dep: Any, tmp_path: Any) -> None:
    path = tmp_path / "data.txt"
    path.write_text("hello")
    msg = failure_message(await dep.run_mutation("funcs:reads_file_in_thread", {"path": str(path)}))
    assert "may not do I/O" in msg and "@action" in msg


async def test_awaiting_a_future_is_refused(dep: Any) -> None:
    msg = failure_message(dep.run_query("funcs:waits_on_future", {}))
    assert "Future" in msg and "action" in msg


async def test_asyncio_gather_and_task_groups_work_in_queries_and_mutations(dep: Any) -> None:
    """Python's ``Promise.all``: the calls run one after another within the transaction, in the
    order they were started, and a failure in one fails the whole mutation."""
    ids = ok(await dep.run_mutation("funcs:add_all", {"texts": ["a", "b", "c"]}))
    assert len(ids) == 3
    read = ok(dep.run_query("funcs:read_all", {"ids": ids}))
    assert read == {"gathered": ["a", "b", "c"], "grouped": ["a", "b", "c"]}
    msg = failure_message(await dep.run_mutation("funcs:add_all_or_none", {"texts": ["x", "bad"]}))
    assert "no bad notes" in msg
    assert sorted(n["text"] for n in ok(dep.run_query("funcs:notes", {}))) == ["a", "b", "c"]


async def test_a_failing_task_group_fails_the_mutation_with_its_error(dep: Any) -> None:
    """One failed task: its error, as Convex reports Promise.all's first rejection; several:
    the group with each. Nothing the tasks wrote stays."""
    one = failure_message(await dep.run_mutation("funcs:grouped", {"fail": ["q"]}))
    assert "Uncaught ValueError: no q" in one and "ExceptionGroup" not in one
    both = failure_message(await dep.run_mutation("funcs:grouped", {"fail": ["p", "q"]}))
    assert "ExceptionGroup: unhandled errors in a TaskGroup (2 sub-exceptions)" in both
    assert "ValueError: no p; ValueError: no q" in both
    assert ok(dep.run_query("funcs:notes", {})) == []
    assert ok(await dep.run_mutation("funcs:grouped", {"fail": []})) is None


async def test_pyconvex_awaits_never_suspend(dep: Any) -> None:
    assert ok(dep.run_query("funcs:many_awaits", {})) == 0


async def test_actions_may_do_io_and_call_queries(dep: Any, tmp_path: Any) -> None:
    path = tmp_path / "data.txt"
    path.write_text("hello")
    r = ok(await dep.run_action("funcs:io_in_action", {"path": str(path)}))
    assert r == {"text": "hello", "n": 0, "clock_moves": True}
