"""Cron jobs: ``convex/crons.py`` defines ``crons = Crons()`` and registers recurring runs.

Times are UTC. Each run is a scheduled function (a row of ``_scheduled_functions`` with its
outcome), so a mutation runs exactly once per occurrence and an action at most once::

    from pyconvex import Crons
    from ._generated.api import internal

    crons = Crons()
    crons.interval("clear presence", internal.presence.clear, seconds=30)
    crons.cron("digest", "0 8 * * mon-fri", internal.emails.digest, {"kind": "daily"})
    crons.daily("overdue", internal.tasks.mark_overdue, hour_utc=2, minute_utc=30)

A run still going when the next occurrence comes makes that occurrence skipped, not doubled.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyconvex.errors import PyconvexError
from pyconvex.server.cron_schedule import CronExpression

DAYS_OF_WEEK = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


class CronDefinitionError(PyconvexError, ValueError):
    """A cron job registered with a bad name, schedule or arguments (the message says which)."""


@dataclass(frozen=True, slots=True)
class IntervalSchedule:
    """Every ``seconds`` seconds, the first run as soon as the job is deployed."""

    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"kind": "interval", "seconds": self.seconds}

    def __str__(self) -> str:
        return f"every {self.seconds:g} s"


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """At the times a cron expression matches (UTC)."""

    expression: CronExpression

    def to_json(self) -> dict[str, Any]:
        return {"kind": "cron", "expression": self.expression.text}

    def __str__(self) -> str:
        return f"cron {self.expression.text!r} (UTC)"


Schedule = IntervalSchedule | CronSchedule


@dataclass(frozen=True, slots=True)
class CronJob:
    """One registered job: its name, the function it runs (a reference or "module:name"),
    the arguments and the schedule."""

    name: str
    function: Any
    args: Mapping[str, Any] = field(default_factory=dict)
    schedule: Schedule = IntervalSchedule(60.0)


class Crons:
    """The cron jobs of a deployment (``crons = Crons()`` in ``convex/crons.py``); see the
    module docstring. Changes take effect when the file is saved (``pyconvex dev``)."""

    def __init__(self) -> None:
        self.jobs: dict[str, CronJob] = {}

    def __iter__(self) -> Iterator[CronJob]:
        return iter(self.jobs.values())

    def __len__(self) -> int:
        return len(self.jobs)

    def __repr__(self) -> str:
        return f"<Crons {sorted(self.jobs)}>"

    def interval(
        self,
        name: str,
        fn: Any,
        args: Mapping[str, Any] | None = None,
        *,
        seconds: float | None = None,
        minutes: float | None = None,
        hours: float | None = None,
    ) -> None:
        """Run ``fn(args)`` every ``seconds``, ``minutes`` or ``hours`` (exactly one)::

        crons.interval("heartbeat", internal.health.ping, minutes=5)
        """
        units = (("seconds", seconds), ("minutes", minutes), ("hours", hours))
        chosen = [(unit, x) for unit, x in units if x is not None]
        if len(chosen) != 1:
            raise CronDefinitionError(
                f"Cron {name!r}: interval() takes exactly one of seconds=, minutes= or hours=."
            )
        unit, amount = chosen[0]
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int | float)
            or not math.isfinite(amount)
            or amount <= 0
        ):
            raise CronDefinitionError(
                f"Cron {name!r}: the interval must be a positive number of {unit}, got {amount!r}."
            )
        factor = {"seconds": 1, "minutes": 60, "hours": 3600}[unit]
        self._add(name, fn, args, IntervalSchedule(float(amount) * factor))

    def cron(
        self, name: str, schedule: str, fn: Any, args: Mapping[str, Any] | None = None
    ) -> None:
        """Run ``fn(args)`` when the cron expression matches (UTC)::

        crons.cron("nightly", "0 3 * * *", internal.backups.run)
        """
        self._add(name, fn, args, CronSchedule(_parse(name, schedule)))

    def hourly(
        self, name: str, fn: Any, args: Mapping[str, Any] | None = None, *, minute_utc: int = 0
    ) -> None:
        """Run ``fn(args)`` every hour at ``minute_utc``."""
        minute = _ranged(name, "minute_utc", minute_utc, 0, 59)
        self._add(name, fn, args, CronSchedule(_parse(name, f"{minute} * * * *")))

    def daily(
        self,
        name: str,
        fn: Any,
        args: Mapping[str, Any] | None = None,
        *,
        hour_utc: int,
        minute_utc: int = 0,
    ) -> None:
        """Run ``fn(args)`` every day at ``hour_utc:minute_utc``."""
        hour = _ranged(name, "hour_utc", hour_utc, 0, 23)
        minute = _ranged(name, "minute_utc", minute_utc, 0, 59)
        self._add(name, fn, args, CronSchedule(_parse(name, f"{minute} {hour} * * *")))

    def weekly(
        self,
        name: str,
        fn: Any,
        args: Mapping[str, Any] | None = None,
        *,
        day_of_week: str,
        hour_utc: int,
        minute_utc: int = 0,
    ) -> None:
        """Run ``fn(args)`` every week on ``day_of_week`` ("monday"...) at the given time."""
        if not isinstance(day_of_week, str) or day_of_week.lower() not in DAYS_OF_WEEK:
            raise CronDefinitionError(
                f"Cron {name!r}: day_of_week must be one of {', '.join(DAYS_OF_WEEK)}; got "
                f"{day_of_week!r}."
            )
        day = DAYS_OF_WEEK.index(day_of_week.lower())
        hour = _ranged(name, "hour_utc", hour_utc, 0, 23)
        minute = _ranged(name, "minute_utc", minute_utc, 0, 59)
        self._add(name, fn, args, CronSchedule(_parse(name, f"{minute} {hour} * * {day}")))

    def monthly(
        self,
        name: str,
        fn: Any,
        args: Mapping[str, Any] | None = None,
        *,
        day: int,
        hour_utc: int,
        minute_utc: int = 0,
    ) -> None:
        """Run ``fn(args)`` every month on ``day`` (1-31; months without it are skipped)."""
        day = _ranged(name, "day", day, 1, 31)
        hour = _ranged(name, "hour_utc", hour_utc, 0, 23)
        minute = _ranged(name, "minute_utc", minute_utc, 0, 59)
        self._add(name, fn, args, CronSchedule(_parse(name, f"{minute} {hour} {day} * *")))

    def _add(self, name: str, fn: Any, args: Mapping[str, Any] | None, schedule: Schedule) -> None:
        if not isinstance(name, str) or not name or not all(" " <= c <= "~" for c in name):
            raise CronDefinitionError(
                f"A cron job's name must be a non-empty string of printable ASCII, got {name!r}."
            )
        if name in self.jobs:
            raise CronDefinitionError(f"Cron job {name!r} is registered twice; names are unique.")
        if fn is None or isinstance(fn, Mapping):
            raise CronDefinitionError(
                f"Cron {name!r}: name the function to run (internal.module.fn or "
                f"'module:fn'), got {fn!r}."
            )
        if args is not None and not isinstance(args, Mapping):
            raise CronDefinitionError(
                f"Cron {name!r}: args must be a dict of arguments, got {type(args).__name__}."
            )
        self.jobs[name] = CronJob(name, fn, dict(args or {}), schedule)


def _parse(name: str, text: str) -> CronExpression:
    try:
        return CronExpression.parse(text)
    except ValueError as e:
        raise CronDefinitionError(f"Cron {name!r}: {e}") from None


def _ranged(name: str, what: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CronDefinitionError(
            f"Cron {name!r}: {what} must be an integer from {lo} to {hi}, got {value!r}."
        )
    return value
