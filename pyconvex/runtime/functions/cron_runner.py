"""Running the cron jobs of ``convex/crons.py``.

Each job's state is a document of the system table ``_cron_jobs``::

    {"name": "digest", "function": "emails:digest", "args": [{}],
     "schedule": {"kind": "cron", "expression": "0 8 * * *"}, "nextRun": 1718000000000.0,
     "lastJob": "<_scheduled_functions id>"}

When a job is due, one built-in mutation schedules its run (a ``_scheduled_functions`` job, which
``job_runner`` executes and records with its outcome) and moves ``nextRun`` on, atomically: a
restart can neither lose nor repeat an occurrence, and an overdue job runs once, not once per
missed occurrence. An occurrence that comes while the previous run is still pending or running
is skipped. Every push (and start-up) brings ``_cron_jobs`` in line with ``crons.py``: new jobs
are added, changed ones start over on their new schedule, removed ones go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from pyconvex.runtime.functions.function_path import function_ref_path, normalize_path
from pyconvex.runtime.functions.loader import LoadedFunctions
from pyconvex.runtime.functions.results import FunctionResult
from pyconvex.runtime.functions.sandbox import real_time_ns
from pyconvex.runtime.functions.scheduler import state_of
from pyconvex.runtime.query.transaction import Transaction
from pyconvex.runtime.store.index import Document
from pyconvex.runtime.store.memory import BY_CREATION_TIME, Store
from pyconvex.runtime.store.read_set import Commit, CommitListener
from pyconvex.server.cron_schedule import CronExpression
from pyconvex.server.crons import CronJob
from pyconvex.server.functions import FunctionDefinition, internal_mutation
from pyconvex.values import to_value
from pyconvex.values.validators import v

log = logging.getLogger("pyconvex.crons")

CRON_TABLE = "_cron_jobs"
SYNC_PATH = "_system/crons:sync"
FIRE_PATH = "_system/crons:fire"


class CronHost(Protocol):
    """What the cron runner needs of the deployment."""

    store: Store
    loaded: LoadedFunctions

    def add_commit_listener(self, listener: CommitListener) -> Callable[[], None]: ...

    async def run_mutation(
        self, path: str, args: dict[str, Any] | None = None, *, identity: Any = None,
        allow_internal: bool = False,
    ) -> FunctionResult: ...  # fmt: skip


def job_spec(job: CronJob) -> dict[str, Any]:
    """What ``_cron_jobs`` keeps of a job's definition (compared on every push)."""
    return {
        "name": job.name,
        "function": normalize_path(function_ref_path(job.function)),
        "args": [to_value(dict(job.args))],
        "schedule": job.schedule.to_json(),
    }


def next_run(schedule: dict[str, Any], now_ms: float, previous_ms: float | None) -> float:
    """When a job runs next: an interval job at once when new, then every ``seconds`` from its
    previous run (skipping missed ones); a cron job at the next matching minute."""
    if schedule["kind"] == "interval":
        period = float(schedule["seconds"]) * 1000.0
        if previous_ms is None:
            return now_ms
        missed = max(0, math.floor((now_ms - previous_ms) / period))
        return previous_ms + (missed + 1) * period
    expression = CronExpression.parse(str(schedule["expression"]))
    after = datetime.fromtimestamp(now_ms / 1000.0, UTC)
    return expression.next_after(after).timestamp() * 1000.0


def _documents(tx: Transaction) -> list[Document]:
    tx.reads.add_range(CRON_TABLE, BY_CREATION_TIME, None, None)
    if tx.table(CRON_TABLE) is None:
        return []
    return [doc for _, doc in tx.scan(CRON_TABLE, BY_CREATION_TIME, None, None, False)]


def _now_ms() -> float:
    # In a transaction: the sandbox's frozen clock.
    return time.time() * 1000.0


# -- built-in internal mutations ---------------------------------------------------------------


async def _sync(ctx: Any, specs: list[dict[str, Any]]) -> None:
    """Make ``_cron_jobs`` hold exactly ``specs`` (unchanged jobs keep their next run)."""
    tx: Transaction = ctx.db._tx
    existing = {doc["name"]: doc for doc in _documents(tx)}
    now = _now_ms()
    table = tx.ensure_table(CRON_TABLE) if specs or existing else None
    for spec in specs:
        doc = existing.pop(spec["name"], None)
        if doc is not None and all(doc.get(k) == spec[k] for k in spec):
            continue
        assert table is not None
        new = {**spec, "nextRun": next_run(spec["schedule"], now, None)}
        if doc is not None:
            if "lastJob" in doc:
                new["lastJob"] = doc["lastJob"]
            tx.put(
                table, doc["_id"], {"_id": doc["_id"], "_creationTime": doc["_creationTime"], **new}
            )
        else:
            doc_id = tx.new_id(table)
            created = tx.store.next_creation_time(now)
            tx.put(table, doc_id, {"_id": doc_id, "_creationTime": created, **new})
    for doc in existing.values():
        assert table is not None
        tx.put(table, doc["_id"], None)


async def _fire(ctx: Any, name: str) -> str | None:
    """Schedule the run of a due job and move its next run on; returns the run's job id
    (None when it was not due, or skipped because its previous run is still going)."""
    tx: Transaction = ctx.db._tx
    doc = next((d for d in _documents(tx) if d["name"] == name), None)
    now = _now_ms()
    if doc is None or float(doc["nextRun"]) > now:
        return None
    new = {**doc, "nextRun": next_run(doc["schedule"], now, float(doc["nextRun"]))}
    last = doc.get("lastJob")
    previous = tx.get(last) if isinstance(last, str) else None
    job_id = None
    if previous is None or state_of(previous) not in ("pending", "inProgress"):
        args = doc["args"][0] if doc["args"] else {}
        job_id = ctx.scheduler.schedule(float(doc["nextRun"]), doc["function"], args)
        new["lastJob"] = job_id
    table = tx.table(CRON_TABLE)
    assert table is not None
    tx.put(table, doc["_id"], new)
    return job_id


def _system(path: str, handler: Any, args: dict[str, Any]) -> FunctionDefinition:
    definition: FunctionDefinition = internal_mutation(args=args)(handler)
    definition.path = path
    return definition


#: The cron runner's built-in functions.
FUNCTIONS: dict[str, FunctionDefinition] = {
    SYNC_PATH: _system(SYNC_PATH, _sync, {"specs": v.array(v.any())}),
    FIRE_PATH: _system(FIRE_PATH, _fire, {"name": v.string()}),
}


# -- the runner ------------------------------------------------------------------------------


class CronRunner:
    """Fires the deployment's cron jobs when due (see the module docstring)."""

    def __init__(self, host: CronHost) -> None:
        self.host = host
        #: Runs scheduled so far (for stats and tests).
        self.fired = 0
        self._ready = False
        self._sync_needed = True
        self._closed = False
        self._retry_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._remove_listener: Callable[[], None] | None = None

    def start(self, *, ready: bool) -> None:
        """Start firing jobs once ``ready`` (the functions are loaded)."""
        if self._task is not None:
            return
        self._ready = ready
        self._remove_listener = self.host.add_commit_listener(self._on_commit)
        self._task = asyncio.create_task(self._loop(), name="pyconvex-crons")

    def functions_changed(self) -> None:
        """New code is serving: bring ``_cron_jobs`` in line with its ``crons.py``."""
        self._ready = True
        self._sync_needed = True
        self._wake.set()

    async def close(self) -> None:
        self._closed = True
        if self._remove_listener is not None:
            self._remove_listener()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _on_commit(self, latest_ts: int, commits: list[Commit]) -> None:
        for commit in commits:
            if CRON_TABLE in commit.writes.tables():
                self._wake.set()
                return

    def _next_runs(self) -> list[tuple[float, str]]:
        table = self.host.store.tables.get(CRON_TABLE)
        if table is None:
            return []
        docs = table.scan(BY_CREATION_TIME, None, None, False, None)
        return sorted((float(doc["nextRun"]), str(doc["name"])) for _, doc in docs)

    async def _loop(self) -> None:
        while not self._closed:
            self._wake.clear()
            timeout: float | None = None
            if self._ready:
                if self._sync_needed:
                    self._sync_needed = False
                    await self._sync()
                now = real_time_ns() / 1e6
                fired = False
                for at, name in self._next_runs():
                    at = max(at, self._retry_at.get(name, 0.0))
                    if at <= now:
                        await self._fire(name)
                        fired = True
                    else:
                        wait = (at - now) / 1000.0
                        timeout = wait if timeout is None else min(timeout, wait)
                if fired:
                    continue  # the fired jobs' next runs moved: look again
            if not self._wake.is_set():
                self._idle.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._idle.clear()

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until the runner has fired what is due and waits for the next run."""
        self._wake.set()
        self._idle.clear()
        await asyncio.wait_for(self._idle.wait(), timeout)

    async def _sync(self) -> None:
        crons = self.host.loaded.crons
        try:
            specs = [job_spec(job) for job in crons] if crons is not None else []
        except Exception:
            log.exception("crons.py: a cron job could not be read")
            return
        result = await self.host.run_mutation(SYNC_PATH, {"specs": specs}, allow_internal=True)
        if result.failure is not None:
            log.error("updating the cron jobs failed: %s", result.failure.message)

    async def _fire(self, name: str) -> None:
        result = await self.host.run_mutation(FIRE_PATH, {"name": name}, allow_internal=True)
        if result.failure is not None:
            log.error("cron job %r could not be scheduled: %s", name, result.failure.message)
            # Do not spin on a job that cannot fire: try it again in a minute.
            self._retry_at[name] = real_time_ns() / 1e6 + 60_000.0
            return
        self._retry_at.pop(name, None)
        if result.value is not None:
            self.fired += 1
