"""ctx.scheduler and the job runner: jobs are _scheduled_functions documents written atomically
with the mutation that schedules them, readable (reactively) through ctx.db.system; mutations
run exactly once (even across a SIGKILL), actions at most once; pending jobs survive a restart;
a job whose function is gone fails saying so."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from support.deployment import CommitLog, DeploymentFactory, failure_message, make_project, ok

from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.function_path import is_system_path
from pyconvex.runtime.functions.job_runner import INTERRUPTED
from pyconvex.runtime.functions.loader import load_functions

FUNCTIONS = {
    "jobs.py": """
        import asyncio
        from datetime import datetime, timezone

        from pyconvex import ConvexError, action, internal_mutation, mutation, query


        @internal_mutation
        async def record(ctx, note: str) -> None:
            await ctx.db.insert("notes", {"note": note})


        @internal_mutation
        async def explode(ctx) -> None:
            await ctx.db.insert("notes", {"note": "never"})
            raise ConvexError({"code": "BOOM"})


        @mutation
        async def later(ctx, note: str, seconds: float = 0) -> str:
            return await ctx.scheduler.run_after(seconds, "jobs:record", {"note": note})


        @mutation
        async def at(ctx, note: str, ms: float) -> str:
            return await ctx.scheduler.run_at(ms, "jobs:record", {"note": note})


        @mutation
        async def at_datetime(ctx, note: str) -> str:
            when = datetime(2024, 1, 1, tzinfo=timezone.utc)
            return await ctx.scheduler.run_at(when, "jobs:record", {"note": note})


        @mutation
        async def schedule_then_fail(ctx) -> None:
            await ctx.scheduler.run_after(0, "jobs:record", {"note": "rolled back"})
            raise ConvexError("changed my mind")


        @mutation
        async def schedule(ctx, fn: str, seconds: float = 0) -> str:
            return await ctx.scheduler.run_after(seconds, fn, {})


        @mutation
        async def cancel(ctx, id: str) -> None:
            await ctx.scheduler.cancel(id)


        @mutation
        async def too_many(ctx) -> None:
            for i in range(1001):
                await ctx.scheduler.run_after(0, "jobs:record", {"note": str(i)})


        @query
        async def notes(ctx) -> list[str]:
            return [n["note"] for n in await ctx.db.query("notes").collect()]


        @query
        async def job(ctx, id: str):
            return await ctx.db.system.get(id)


        @query
        async def pending(ctx) -> list[str]:
            jobs = await ctx.db.system.query("_scheduled_functions").collect()
            return [j["name"] for j in jobs if j["state"]["kind"] == "pending"]


        gate: asyncio.Event | None = None
        ran = 0


        @action
        async def slow(ctx) -> str:
            global ran
            ran += 1
            assert gate is not None
            await gate.wait()
            await ctx.run_mutation("jobs:record", {"note": "slow done"})
            return "ok"


        @action
        async def from_action(ctx) -> str:
            job = await ctx.scheduler.run_after(0, "jobs:record", {"note": "from action"})
            doomed = await ctx.scheduler.run_after(3600, "jobs:record", {"note": "doomed"})
            await ctx.scheduler.cancel(doomed)
            return job
    """
}


async def wait_for_state(dep: Deployment, job_id: str, *states: str) -> dict[str, Any]:
    """Poll a job's document until its state is one of ``states`` (bounded)."""
    for _ in range(1000):
        doc = ok(dep.run_query("jobs:job", {"id": job_id}))
        if doc is not None and doc["state"]["kind"] in states:
            return doc  # type: ignore[no-any-return]
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} never reached {states}: {doc}")


async def test_run_after_zero_runs_once_the_mutation_committed(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FUNCTIONS)
    job_id = ok(await dep.run_mutation("jobs:later", {"note": "hello"}))
    doc = await wait_for_state(dep, job_id, "success")
    assert ok(dep.run_query("jobs:notes")) == ["hello"]
    assert doc["name"] == "jobs:record" and doc["args"] == [{"note": "hello"}]
    assert doc["completedTime"] >= doc["scheduledTime"] >= doc["_creationTime"] - 1
    assert set(doc) == {
        "_id", "_creationTime", "name", "args", "scheduledTime", "state", "completedTime"
    }  # fmt: skip


async def test_a_mutation_that_schedules_then_raises_schedules_nothing(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FUNCTIONS)
    assert "changed my mind" in failure_message(await dep.run_mutation("jobs:schedule_then_fail"))
    await dep.jobs.drain()
    assert ok(dep.run_query("jobs:pending")) == []
    assert dep.store.tables["_scheduled_functions"].docs == {}
    assert ok(dep.run_query("jobs:notes")) == []


async def test_a_pending_job_can_be_canceled(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    job_id = ok(await dep.run_mutation("jobs:later", {"note": "x", "seconds": 3600}))
    assert ok(dep.run_query("jobs:pending")) == ["jobs:record"]
    assert dep.jobs.pending == 1
    ok(await dep.run_mutation("jobs:cancel", {"id": job_id}))
    doc = ok(dep.run_query("jobs:job", {"id": job_id}))
    assert doc["state"] == {"kind": "canceled"} and "completedTime" in doc
    # Canceling again (or a finished job) changes nothing.
    ok(await dep.run_mutation("jobs:cancel", {"id": job_id}))
    message = failure_message(await dep.run_mutation("jobs:cancel", {"id": "nonsense"}))
    assert "takes the id of a scheduled function" in message


async def test_run_at_takes_ms_or_a_datetime_and_overdue_jobs_run_at_once(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FUNCTIONS)
    first = ok(await dep.run_mutation("jobs:at", {"note": "ms", "ms": 1_700_000_000_000.0}))
    second = ok(await dep.run_mutation("jobs:at_datetime", {"note": "datetime"}))
    assert (await wait_for_state(dep, first, "success"))["scheduledTime"] == 1.7e12
    doc = await wait_for_state(dep, second, "success")
    assert doc["scheduledTime"] == 1_704_067_200_000.0
    assert sorted(ok(dep.run_query("jobs:notes"))) == ["datetime", "ms"]


async def test_a_failing_job_is_recorded_with_its_error(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    job_id = ok(await dep.run_mutation("jobs:schedule", {"fn": "jobs:explode"}))
    doc = await wait_for_state(dep, job_id, "failed")
    assert "BOOM" in doc["state"]["error"]
    assert ok(dep.run_query("jobs:notes")) == []  # its writes were rolled back


async def test_scheduling_checks_what_it_schedules(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    assert "only mutations and actions" in failure_message(
        await dep.run_mutation("jobs:schedule", {"fn": "jobs:notes"})
    )
    assert "no such function" in failure_message(
        await dep.run_mutation("jobs:schedule", {"fn": "jobs:nope"})
    )
    assert "non-negative delay" in failure_message(
        await dep.run_mutation("jobs:later", {"note": "x", "seconds": -1})
    )
    assert "more than 1000 functions" in failure_message(await dep.run_mutation("jobs:too_many"))
    assert dep.store.tables["_scheduled_functions"].docs == {}


async def test_actions_schedule_and_cancel_durably(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    job_id = ok(await dep.run_action("jobs:from_action"))
    await wait_for_state(dep, job_id, "success")
    assert ok(dep.run_query("jobs:notes")) == ["from action"]
    states = sorted(
        d["state"]["kind"] for d in dep.store.tables["_scheduled_functions"].docs.values()
    )  # type: ignore[union-attr]
    assert states == ["canceled", "success"]


async def test_a_scheduled_action_is_in_progress_while_it_runs(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FUNCTIONS)
    module = dep.loaded.modules["jobs"]
    module.gate = asyncio.Event()
    job_id = ok(await dep.run_mutation("jobs:schedule", {"fn": "jobs:slow"}))
    doc = await wait_for_state(dep, job_id, "inProgress")
    assert "completedTime" not in doc
    module.gate.set()
    await wait_for_state(dep, job_id, "success")
    assert ok(dep.run_query("jobs:notes")) == ["slow done"] and module.ran == 1


async def test_the_logs_say_which_runs_the_scheduler_started(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FUNCTIONS)
    module = dep.loaded.modules["jobs"]
    module.gate = asyncio.Event()
    module.gate.set()
    first = ok(await dep.run_mutation("jobs:later", {"note": "x"}))
    second = ok(await dep.run_mutation("jobs:schedule", {"fn": "jobs:slow"}))
    await wait_for_state(dep, first, "success")
    await wait_for_state(dep, second, "success")
    expected = {
        ("mutation", "jobs:later", None),
        ("mutation", "jobs:schedule", None),
        ("mutation", "jobs:record", "scheduled"),
        ("action", "jobs:slow", "scheduled"),
        # The scheduled action's own call is the action's doing.
        ("mutation", "jobs:record", None),
    }
    for _ in range(500):  # a mutation is in the log once durable
        seen = {
            (e.kind, e.path, e.trigger)
            for e in dep.log_history.recent()
            if e.kind != "query" and not is_system_path(e.path)
        }
        if seen == expected:
            break
        await asyncio.sleep(0.01)
    assert seen == expected


async def test_the_system_table_is_reactive(deployment: DeploymentFactory) -> None:
    dep = await deployment(FUNCTIONS)
    commits = CommitLog(dep)
    before = dep.run_query("jobs:pending")
    assert ok(before) == [] and before.read_set is not None
    r = await dep.run_mutation("jobs:later", {"note": "x", "seconds": 3600})
    assert before.read_set.intersects(commits.for_ts(r.ts).writes)  # type: ignore[arg-type]


async def test_a_job_whose_function_was_deleted_fails_saying_so(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    dep = await deployment(FUNCTIONS)
    now_ms = time.time() * 1000
    job_id = ok(await dep.run_mutation("jobs:at", {"note": "x", "ms": now_ms + 300}))
    # A push removes jobs:record before the job is due.
    source = (tmp_path / "convex" / "jobs.py").read_text()
    (tmp_path / "convex" / "jobs.py").write_text(
        source.replace("async def record", "async def recorded")
    )
    dep.swap(load_functions(tmp_path / "convex", previous=dep.loaded), dep.schema)
    doc = await wait_for_state(dep, job_id, "failed")
    assert doc["state"]["error"] == (
        "Scheduled function jobs:record no longer exists: it was deleted or renamed after it "
        "was scheduled."
    )


async def test_pending_jobs_survive_a_restart_and_interrupted_actions_fail(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment(FUNCTIONS, persistent=True)
    module = dep.loaded.modules["jobs"]
    module.gate = asyncio.Event()  # never set: the action is running when the server stops
    later = ok(await dep.run_mutation("jobs:later", {"note": "after restart", "seconds": 0.2}))
    running = ok(await dep.run_mutation("jobs:schedule", {"fn": "jobs:slow"}))
    await wait_for_state(dep, running, "inProgress")
    await dep.close()

    dep = await deployment(persistent=True)
    assert (await wait_for_state(dep, later, "success"))["state"] == {"kind": "success"}
    doc = await wait_for_state(dep, running, "failed")
    assert doc["state"]["error"] == INTERRUPTED
    assert ok(dep.run_query("jobs:notes")) == ["after restart"]
    assert dep.loaded.modules["jobs"].ran == 0  # not run again


CRASHER = """
import asyncio, os, sys
from pathlib import Path

from pyconvex.runtime.functions.deployment import Deployment


async def main():
    dep = await Deployment.open(Path(sys.argv[1]), Path(sys.argv[2]))
    late = await dep.run_mutation("batch:schedule", {"n": 1, "seconds": 3.0, "base": 1000})
    soon = await dep.run_mutation("batch:schedule", {"n": 400, "seconds": 0, "base": 0})
    assert late.failure is None and soon.failure is None, (late, soon)
    os.write(1, b"scheduled\\n")
    await asyncio.Event().wait()


asyncio.run(main())
"""

BATCH = {
    "batch.py": """
        from pyconvex import internal_mutation, mutation, query


        @mutation
        async def schedule(ctx, n: int, seconds: float, base: int) -> None:
            for i in range(n):
                await ctx.scheduler.run_after(seconds, "batch:run", {"i": base + i})


        @internal_mutation
        async def run(ctx, i: int) -> None:
            await ctx.db.insert("runs", {"i": i})


        @query
        async def runs(ctx) -> list[int]:
            return [int(r["i"]) for r in await ctx.db.query("runs").collect()]


        @query
        async def states(ctx) -> list[str]:
            jobs = await ctx.db.system.query("_scheduled_functions").collect()
            return [j["state"]["kind"] for j in jobs]
    """
}


@pytest.mark.timeout(120)
async def test_scheduled_mutations_run_exactly_once_across_a_sigkill(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    functions_dir = make_project(tmp_path, BATCH)
    data_dir = tmp_path / "data"
    script = tmp_path / "crasher.py"
    script.write_text(textwrap.dedent(CRASHER))
    with subprocess.Popen(
        [sys.executable, str(script), str(functions_dir), str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        try:
            line = proc.stdout.readline()
            # Killed while the 400 due jobs run (or just after): the 1000 one is still pending.
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=60)
            errors = proc.stderr.read()
    assert line.strip() == "scheduled", errors

    dep = await deployment(persistent=True)
    for _ in range(1000):
        if ok(dep.run_query("batch:states")).count("success") == 401:
            break
        await asyncio.sleep(0.01)
    runs = ok(dep.run_query("batch:runs"))
    assert sorted(runs) == [*range(400), 1000]  # each exactly once
    assert ok(dep.run_query("batch:states")) == ["success"] * 401
