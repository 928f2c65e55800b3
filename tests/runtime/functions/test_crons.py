"""Cron jobs of crons.py: each run is a _scheduled_functions job recorded with its outcome; a
push brings the jobs in line with the file; a restart neither repeats nor loses an occurrence,
and an overdue job runs once, not once per missed occurrence."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from support.deployment import DeploymentFactory, make_project, ok

from pyconvex.runtime.functions.cron_runner import CRON_TABLE, next_run
from pyconvex.runtime.functions.deployment import Deployment
from pyconvex.runtime.functions.loader import ModuleLoadError, load_functions

TASKS = """
from pyconvex import ConvexError, internal_mutation, query


@internal_mutation
async def tick(ctx, label: str) -> None:
    await ctx.db.insert("ticks", {"label": label})


@internal_mutation
async def broken(ctx) -> None:
    raise ConvexError({"code": "CRON_BROKE"})


@internal_mutation
async def overdue_by(ctx, name: str, hours: float) -> None:
    # Test hook: pretend the server was down since the job was due ``hours`` ago.
    tx = ctx.db._tx
    table = tx.table("_cron_jobs")
    for _, doc in tx.scan("_cron_jobs", "by_creation_time", None, None, False):
        if doc["name"] == name:
            tx.put(table, doc["_id"], {**doc, "nextRun": doc["nextRun"] - hours * 3600_000})


@query
async def ticks(ctx) -> list[str]:
    return [t["label"] for t in await ctx.db.query("ticks").collect()]


@query
async def runs(ctx) -> list[dict]:
    return await ctx.db.system.query("_scheduled_functions").collect()
"""

CRONS = """
from pyconvex import Crons

crons = Crons()
crons.interval("hourly tick", "tasks:tick", {"label": "hourly"}, hours=1)
crons.daily("nightly", "tasks:tick", {"label": "nightly"}, hour_utc=3, minute_utc=30)
"""


def cron_docs(dep: Deployment) -> dict[str, dict[str, Any]]:
    table = dep.store.tables.get(CRON_TABLE)
    if table is None:
        return {}
    return {d["name"]: d for _, d in table.scan("by_creation_time", None, None, False, None)}


async def settled(dep: Deployment) -> None:
    await dep.crons.settle()
    await dep.jobs.drain()


async def test_an_interval_job_runs_when_deployed_and_is_recorded(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment({"tasks.py": TASKS, "crons.py": CRONS})
    await settled(dep)
    assert ok(dep.run_query("tasks:ticks")) == ["hourly"]
    [run] = ok(dep.run_query("tasks:runs"))
    assert run["name"] == "tasks:tick" and run["args"] == [{"label": "hourly"}]
    assert run["state"] == {"kind": "success"}
    jobs = cron_docs(dep)
    assert set(jobs) == {"hourly tick", "nightly"}
    hourly = jobs["hourly tick"]
    assert hourly["lastJob"] == run["_id"]
    assert hourly["nextRun"] == run["scheduledTime"] + 3600_000
    nightly = jobs["nightly"]["nextRun"] / 1000
    assert time.gmtime(nightly)[3:6] == (3, 30, 0) and nightly > time.time()
    [logged] = [e for e in dep.log_history.recent() if e.path == "tasks:tick"]
    assert logged.ok and logged.trigger == "cron hourly tick"  # `pyconvex logs` names the job


async def test_a_failing_cron_run_is_recorded_with_its_error(
    deployment: DeploymentFactory,
) -> None:
    crons = 'from pyconvex import Crons\ncrons = Crons()\ncrons.interval("b", "tasks:broken", minutes=5)\n'
    dep = await deployment({"tasks.py": TASKS, "crons.py": crons})
    await settled(dep)
    [run] = ok(dep.run_query("tasks:runs"))
    assert run["state"]["kind"] == "failed"
    assert "CRON_BROKE" in run["state"]["error"]
    [logged] = [e for e in dep.log_history.recent() if e.path == "tasks:broken"]
    assert logged.trigger == "cron b" and logged.error is not None and "CRON_BROKE" in logged.error


async def test_a_push_brings_the_jobs_in_line_with_crons_py(
    deployment: DeploymentFactory, tmp_path: Path
) -> None:
    dep = await deployment({"tasks.py": TASKS, "crons.py": CRONS})
    await settled(dep)
    before = cron_docs(dep)
    changed = (
        CRONS.replace('crons.daily("nightly", "tasks:tick", {"label": "nightly"}, hour_utc=3, minute_utc=30)\n', "")
        + 'crons.cron("weekdays", "0 9 * * mon-fri", "tasks:tick", {"label": "weekday"})\n'
    )  # fmt: skip
    (tmp_path / "convex" / "crons.py").write_text(changed)
    dep.swap(load_functions(tmp_path / "convex", previous=dep.loaded), dep.schema)
    await settled(dep)
    after = cron_docs(dep)
    assert set(after) == {"hourly tick", "weekdays"}
    assert after["hourly tick"] == before["hourly tick"]  # unchanged: keeps its next run
    assert after["weekdays"]["schedule"] == {"kind": "cron", "expression": "0 9 * * mon-fri"}
    assert ok(dep.run_query("tasks:ticks")) == ["hourly"]  # nothing ran twice


async def test_no_double_run_across_a_restart_and_overdue_runs_once(
    deployment: DeploymentFactory,
) -> None:
    dep = await deployment({"tasks.py": TASKS, "crons.py": CRONS}, persistent=True)
    await settled(dep)
    assert ok(dep.run_query("tasks:ticks")) == ["hourly"]
    await dep.close()

    dep = await deployment(persistent=True)
    await settled(dep)
    assert ok(dep.run_query("tasks:ticks")) == ["hourly"]  # not run again at start
    ok(
        await dep.run_mutation(
            "tasks:overdue_by", {"name": "hourly tick", "hours": 3.5}, allow_internal=True
        )
    )
    await settled(dep)
    assert ok(dep.run_query("tasks:ticks")) == ["hourly", "hourly"]  # once, not 3 times
    assert cron_docs(dep)["hourly tick"]["nextRun"] > time.time() * 1000


def test_next_run_of_an_interval_keeps_its_phase_and_skips_missed_runs() -> None:
    every_minute = {"kind": "interval", "seconds": 60}
    assert next_run(every_minute, 1_000.0, None) == 1_000.0
    assert next_run(every_minute, 1_000.0, 1_000.0) == 61_000.0
    assert next_run(every_minute, 200_000.0, 1_000.0) == 241_000.0
    daily = {"kind": "cron", "expression": "0 0 * * *"}
    assert next_run(daily, 1_000.0, None) == 86_400_000.0


@pytest.mark.parametrize(
    ("crons", "message"),
    [
        ('crons.interval("x", "tasks:ticks", minutes=1)', "'x' running tasks:ticks, a query"),
        ('crons.interval("x", "tasks:nope", minutes=1)', "'x' running tasks:nope, which does not"),
        ("crons = 3", "must set `crons = Crons()`, got int"),
    ],
)
def test_crons_py_must_name_mutations_or_actions(tmp_path: Path, crons: str, message: str) -> None:
    source = f"from pyconvex import Crons\ncrons = Crons()\n{crons}\n"
    root = make_project(tmp_path, {"tasks.py": TASKS, "crons.py": source})
    with pytest.raises(ModuleLoadError, match=r"crons\.py") as info:
        load_functions(root)
    assert message in str(info.value)
