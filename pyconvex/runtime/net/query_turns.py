"""Query work run on the event loop a slice at a time, so one client never stalls the rest.

Queries run on the loop without yielding (they are CPU-bound Python). A ModifyQuerySet adding
hundreds of queries would hold the loop for seconds, and every other socket with it. So the
sessions hand their query work to the endpoint's :class:`QueryTurns`: each job is a generator
whose every step runs at most one query; a loop turn runs steps for ``budget`` seconds (at least
one step), taking the jobs round robin, then lets the loop serve everything else (other
sockets' frames, commits, HTTP requests) before the next slice::

    turns = QueryTurns(budget=0.005)
    turns.submit(session.steps())      # runs over the following loop turns

A step may yield :data:`BLOCKED` (its socket's outbound buffer is full): the job leaves the
queue until it is submitted again (when the socket drains).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Generator
from typing import Literal

_log = logging.getLogger("pyconvex.sync")

#: What a step yields when it cannot go on until its owner submits the job again.
BLOCKED: Literal["blocked"] = "blocked"
Job = Generator[Literal["blocked"] | None, None, None]


class QueryTurns:
    """Round-robin runner of query jobs, ``budget`` seconds of them per loop turn.

    ``on_error`` is called with a job whose step raised (the job is dropped); ``slices`` and
    ``steps`` count what ran (tests and benchmarks read them).
    """

    def __init__(self, budget: float = 0.005, clock: Callable[[], float] = time.perf_counter):
        self.budget = budget
        self._clock = clock
        self._jobs: deque[tuple[Job, Callable[[BaseException], None]]] = deque()
        self._scheduled = False
        self.slices = 0
        self.steps = 0

    def __len__(self) -> int:
        return len(self._jobs)

    def submit(self, job: Job, on_error: Callable[[BaseException], None]) -> None:
        """Run ``job`` over the coming loop turns; ``on_error`` gets what a step raises."""
        self._jobs.append((job, on_error))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        self._scheduled = False
        self.slices += 1
        jobs = self._jobs
        deadline = self._clock() + self.budget
        while jobs:
            job, on_error = jobs.popleft()
            self.steps += 1
            try:
                outcome = next(job)
            except StopIteration:
                outcome = None
                job = None  # type: ignore[assignment]
            except Exception as exc:  # the owner decides (e.g. FatalError for a protocol error)
                job = None  # type: ignore[assignment]
                try:
                    on_error(exc)
                except Exception:
                    _log.exception("a query job's error handler failed")
            if job is not None and outcome is not BLOCKED:
                jobs.append((job, on_error))
            if self._clock() >= deadline:
                break
        if jobs and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._turn)
