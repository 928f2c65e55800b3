"""pyconvex.testing.ConvexTest: functions run in process on a private in-memory store."""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path
from typing import Any, Literal

import pytest

from pyconvex import ConvexError
from pyconvex.errors import PyconvexError, TransactionIOError
from pyconvex.runtime.functions.loader import ModuleLoadError
from pyconvex.server.references import FunctionReference, NoArgs
from pyconvex.testing import ConvexTest, FunctionCallError, UserIdentity

SCHEMA = """
from pyconvex import define_schema, define_table, v

schema = define_schema({
    "messages": define_table({"author": v.string(), "body": v.string()})
        .index("by_author", ["author"]),
})
"""

MESSAGES = """
from pyconvex import ConvexError, action, internal_query, mutation, query, v


@query
async def recent(ctx):
    return await ctx.db.query("messages").order("desc").take(10)


@query(args={"author": v.string()})
async def by_author(ctx, author):
    return await ctx.db.query("messages").with_index(
        "by_author", lambda q: q.eq("author", author)).collect()


@mutation(args={"body": v.string()})
async def send(ctx, body):
    if not body.strip():
        raise ConvexError({"code": "EMPTY_BODY"})
    identity = await ctx.auth.get_user_identity()
    author = identity.name if identity is not None else "anonymous"
    return await ctx.db.insert("messages", {"author": author, "body": body})


@mutation
async def send_then_fail(ctx, body: str):
    await ctx.db.insert("messages", {"author": "x", "body": body})
    raise ValueError("boom after insert")


@internal_query
async def count(ctx):
    return len(await ctx.db.query("messages").collect())


@query
async def whoami(ctx):
    identity = await ctx.auth.get_user_identity()
    if identity is None:
        return None
    return {"subject": identity.subject, "token": identity.token_identifier,
            "name": identity.name, "email": identity.email}


@action
async def send_twice(ctx, body: str):
    await ctx.run_mutation("messages:send", {"body": body})
    await ctx.run_mutation("messages:send", {"body": body})
    return await ctx.run_query("messages:count", {})
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    convex = tmp_path / "convex"
    convex.mkdir()
    (convex / "schema.py").write_text(textwrap.dedent(SCHEMA))
    (convex / "messages.py").write_text(textwrap.dedent(MESSAGES))
    return convex


# What convex/_generated/api.py holds: api.messages.send and api.messages.recent.
SEND: FunctionReference[Literal["mutation"], dict[str, str], str] = FunctionReference(
    "messages:send", "mutation"
)
RECENT: FunctionReference[Literal["query"], NoArgs, list[dict[str, Any]]] = FunctionReference(
    "messages:recent", "query"
)


async def test_mutation_then_query_by_string_and_reference(project: Path) -> None:
    async with ConvexTest(project) as t:
        msg_id = await t.mutation("messages:send", {"body": "hi"})
        await t.mutation(SEND, {"body": "there"})
        recent = await t.query(RECENT)
        assert [m["body"] for m in recent] == ["there", "hi"]
        assert recent[1]["_id"] == msg_id
        assert [m["author"] for m in await t.query("messages:by_author", {"author": "anonymous"})]


async def test_each_instance_starts_empty(project: Path) -> None:
    async with ConvexTest(project) as t:
        await t.mutation("messages:send", {"body": "hi"})
    async with ConvexTest(project) as t:
        assert await t.query("messages:recent") == []


async def test_internal_functions_can_be_called(project: Path) -> None:
    async with ConvexTest(project) as t:
        await t.mutation("messages:send", {"body": "hi"})
        assert await t.query("messages:count") == 1


async def test_convex_error_is_raised_with_its_data(project: Path) -> None:
    async with ConvexTest(project) as t:
        with pytest.raises(ConvexError) as info:
            await t.mutation("messages:send", {"body": "  "})
        assert info.value.data == {"code": "EMPTY_BODY"}


async def test_other_exceptions_propagate_and_roll_back(project: Path) -> None:
    async with ConvexTest(project) as t:
        with pytest.raises(ValueError, match="boom after insert"):
            await t.mutation("messages:send_then_fail", {"body": "lost"})
        assert await t.query("messages:recent") == []


async def test_bad_arguments_and_unknown_functions_raise_function_call_error(
    project: Path,
) -> None:
    async with ConvexTest(project) as t:
        with pytest.raises(FunctionCallError, match="ArgumentValidationError"):
            await t.mutation("messages:send", {"body": 3})
        with pytest.raises(FunctionCallError, match=r"Could not find function.*messages:send"):
            await t.mutation("messages:sned", {"body": "x"})
        with pytest.raises(FunctionCallError, match="defined as Mutation"):
            await t.query("messages:send", {"body": "x"})


async def test_run_gives_direct_database_access_and_returns_anything(project: Path) -> None:
    async with ConvexTest(project) as t:
        msg_id = await t.run(
            lambda ctx: ctx.db.insert("messages", {"author": "seed", "body": "from run"})
        )

        async def read(ctx: Any) -> tuple[str, set[str]]:
            doc = await ctx.db.get(msg_id)
            return doc["body"], {d["author"] for d in await ctx.db.query("messages").collect()}

        assert await t.run(read) == ("from run", {"seed"})
        assert [m["body"] for m in await t.query("messages:recent")] == ["from run"]


async def test_run_rolls_back_when_the_callback_raises(project: Path) -> None:
    async def insert_then_fail(ctx: Any) -> None:
        await ctx.db.insert("messages", {"author": "x", "body": "y"})
        raise KeyError("nope")

    async with ConvexTest(project) as t:
        with pytest.raises(KeyError):
            await t.run(insert_then_fail)
        assert await t.query("messages:count") == 0


async def test_with_identity_calls_as_a_user(project: Path) -> None:
    async with ConvexTest(project) as t:
        assert await t.query("messages:whoami") is None
        ada = t.with_identity(subject="u1", name="Ada", email="ada@example.com")
        assert await ada.query("messages:whoami") == {
            "subject": "u1",
            "token": "https://pyconvex.test|u1",
            "name": "Ada",
            "email": "ada@example.com",
        }
        await ada.mutation("messages:send", {"body": "hello"})
        assert (await t.query("messages:recent"))[0]["author"] == "Ada"
        # The view shares the deployment; the original stays anonymous.
        assert await t.query("messages:whoami") is None
        assert ada.identity is not None and ada.identity.subject == "u1"


async def test_with_identity_takes_an_identity_object(project: Path) -> None:
    async with ConvexTest(project) as t:
        bob = t.with_identity(
            UserIdentity({"subject": "b", "issuer": "https://issuer", "name": "Bob"})
        )
        whoami = await bob.query("messages:whoami")
        assert whoami["token"] == "https://issuer|b"
        assert whoami["email"] is None


async def test_actions_run_and_call_other_functions(project: Path) -> None:
    async with ConvexTest(project) as t:
        assert await t.action("messages:send_twice", {"body": "x"}) == 2


async def test_a_function_object_from_the_module_works_as_a_reference(project: Path) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("user_messages", project / "messages.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    async with ConvexTest(project) as t:
        await t.mutation(module.send, {"body": "direct"})
        assert [m["body"] for m in await t.query(module.recent)] == ["direct"]


async def test_calls_before_open_say_what_to_do(project: Path) -> None:
    t = ConvexTest(project)
    with pytest.raises(Exception, match="async with ConvexTest"):
        await t.query("messages:recent")


async def test_missing_generated_modules_point_to_codegen(tmp_path: Path) -> None:
    convex = tmp_path / "convex"
    convex.mkdir()
    (convex / "__init__.py").write_text("")
    (convex / "notes.py").write_text("from ._generated.server import query\n")
    with pytest.raises(ModuleLoadError, match="pyconvex codegen"):
        await ConvexTest(convex).open()


ENV_FUNCTIONS = """
from pyconvex import env, query


@query
async def greeting(ctx):
    return env.get("GREETING", "hello")
"""


async def test_environment_variables(tmp_path: Path) -> None:
    convex = tmp_path / "convex"
    convex.mkdir()
    (convex / "config.py").write_text(textwrap.dedent(ENV_FUNCTIONS))
    async with ConvexTest(convex) as t:
        assert await t.query("config:greeting") == "hello"
        await t.set_env("GREETING", "bonjour")
        assert await t.query("config:greeting") == "bonjour"
        await t.set_env("GREETING", None)
        assert await t.query("config:greeting") == "hello"
    async with ConvexTest(convex, env={"GREETING": "hallo"}) as t:
        assert await t.query("config:greeting") == "hallo"
        with pytest.raises(ConvexError, match="Invalid environment variable name"):
            await t.set_env("1BAD", "x")


async def test_closing_forgets_the_imported_modules(project: Path) -> None:
    before = set(sys.modules)
    async with ConvexTest(project) as t:
        await t.query("messages:recent")
        assert any(m.endswith(".messages") for m in set(sys.modules) - before)
    assert not [m for m in set(sys.modules) - before if m.startswith("_pyconvex_fn_")]


IO_FUNCTIONS = """
import asyncio
from pyconvex import mutation


@mutation
async def does_io(ctx):
    await ctx.db.insert("notes", {"text": "lost"})
    await asyncio.sleep(0.01)


@mutation
async def awaits_a_future(ctx):
    await asyncio.get_running_loop().create_future()


@mutation
async def hides_the_io_error(ctx):
    try:
        await asyncio.sleep(0.01)
    except Exception:
        raise ValueError("something else")
"""


async def test_a_mutation_that_does_io_raises_transaction_io_error(tmp_path: Path) -> None:
    convex = tmp_path / "convex"
    convex.mkdir()
    (convex / "io.py").write_text(textwrap.dedent(IO_FUNCTIONS))
    async with ConvexTest(convex) as t:
        # As under `pyconvex dev`: the deployment's TransactionIOError, an Exception (not the
        # GeneratorExit or CancelledError the sandbox stops the handler with).
        for name in ("does_io", "awaits_a_future", "hides_the_io_error"):
            with pytest.raises(Exception) as info:
                await t.mutation(f"io:{name}", {})
            assert isinstance(info.value, TransactionIOError)
            assert str(info.value).startswith(f"mutation io:{name} ")
            assert "move network, file or timer work into an action" in str(info.value)
        assert await t.run(lambda ctx: ctx.db.query("notes").collect()) == []


JOB_FUNCTIONS = """
import time
from pyconvex import action, internal_mutation, mutation, v

DAY = 24 * 3600


@internal_mutation
async def record(ctx, note: str):
    await ctx.db.insert("runs", {"note": note, "at": time.time()})


@mutation
async def remind(ctx, note: str, in_s: float):
    await ctx.scheduler.run_after(in_s, "jobs:record", {"note": note})


@mutation
async def start_chain(ctx):
    await ctx.scheduler.run_after(DAY, "jobs:step", {"n": 1})


@internal_mutation
async def step(ctx, n: int):
    await ctx.db.insert("runs", {"note": f"step {n}", "at": time.time()})
    if n < 3:
        await ctx.scheduler.run_after(DAY, "jobs:step", {"n": n + 1})


async def _tick(ctx):
    await ctx.db.insert("runs", {"note": "tick", "at": time.time()})
    await ctx.scheduler.run_after(60, "jobs:tick_again", {})


@mutation
async def tick(ctx):
    await _tick(ctx)


@internal_mutation
async def tick_again(ctx):
    await _tick(ctx)


@action
async def remind_from_action(ctx, note: str, in_s: float):
    await ctx.scheduler.run_after(in_s, "jobs:record", {"note": note})
"""


@pytest.fixture
def jobs_project(tmp_path: Path) -> Path:
    convex = tmp_path / "convex"
    convex.mkdir()
    (convex / "jobs.py").write_text(textwrap.dedent(JOB_FUNCTIONS))
    return convex


async def _runs(t: ConvexTest) -> list[tuple[str, float]]:
    docs = await t.run(lambda ctx: ctx.db.query("runs").collect())
    return [(d["note"], d["at"]) for d in docs]


async def test_advance_time_runs_a_job_scheduled_an_hour_ahead(jobs_project: Path) -> None:
    async with ConvexTest(jobs_project) as t:
        await t.mutation("jobs:remind", {"note": "later", "in_s": 3600})
        [job] = await t.run(lambda ctx: ctx.db.system.query("_scheduled_functions").collect())
        await t.finish_scheduled_functions()
        await t.advance_time(1800)
        assert await _runs(t) == []
        await t.advance_time(1800)
        [(note, at)] = await _runs(t)
        assert note == "later"
        # The job saw the moved clock: it ran at its scheduled time, not an hour early.
        assert at * 1000 >= job["scheduledTime"]
        [job] = await t.run(lambda ctx: ctx.db.system.query("_scheduled_functions").collect())
        assert job["state"] == {"kind": "success"}


async def test_advance_time_runs_only_what_falls_in_the_window(jobs_project: Path) -> None:
    async with ConvexTest(jobs_project) as t:
        await t.mutation("jobs:start_chain", {})
        await t.advance_time(1.5 * 24 * 3600)
        # Step 2 is scheduled a day after step 1 ran, by the moved clock: outside the window.
        assert [note for note, _ in await _runs(t)] == ["step 1"]
        await t.action("jobs:remind_from_action", {"note": "from action", "in_s": 60})
        await t.advance_time(59)
        assert [note for note, _ in await _runs(t)] == ["step 1"]
        await t.advance_time(1)
        assert sorted(note for note, _ in await _runs(t)) == ["from action", "step 1"]


async def test_finish_all_runs_a_chain_of_jobs_in_order(jobs_project: Path) -> None:
    async with ConvexTest(jobs_project) as t:
        await t.mutation("jobs:start_chain", {})
        await t.finish_all_scheduled_functions()
        runs = await _runs(t)
        assert [note for note, _ in runs] == ["step 1", "step 2", "step 3"]
        times = [at for _, at in runs]
        assert all(b - a >= 24 * 3600 for a, b in itertools.pairwise(times))
        await t.finish_all_scheduled_functions()  # nothing left: returns at once
        assert len(await _runs(t)) == 3


async def test_finish_all_stops_a_job_that_reschedules_itself(jobs_project: Path) -> None:
    async with ConvexTest(jobs_project) as t:
        await t.mutation("jobs:tick", {})
        with pytest.raises(PyconvexError, match=r"moved the clock 5 times.*jobs:tick_again"):
            await t.finish_all_scheduled_functions(max_steps=5)
        assert len(await _runs(t)) == 1 + 5
