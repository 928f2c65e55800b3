"""Crons(): the helpers build the schedules Convex's do (UTC), cron expressions parse and fire
when Unix cron would, and bad definitions are refused saying what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pyconvex import Crons
from pyconvex.server.cron_schedule import CronExpression, CronSyntaxError
from pyconvex.server.crons import CronDefinitionError, CronSchedule, IntervalSchedule


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * *", at(2024, 5, 3, 10, 7), at(2024, 5, 3, 10, 10)),
        ("*/5 * * * *", at(2024, 5, 3, 10, 10), at(2024, 5, 3, 10, 15)),
        ("0 9 * * mon-fri", at(2024, 5, 3, 9, 0), at(2024, 5, 6, 9, 0)),  # Fri -> Mon
        ("30 2 1 * *", at(2024, 1, 31, 12, 0), at(2024, 2, 1, 2, 30)),
        ("0 0 31 * *", at(2024, 4, 1), at(2024, 5, 31)),  # April has no 31st
        ("0 0 29 feb *", at(2024, 3, 1), at(2028, 2, 29)),
        ("0 12 * * 7", at(2024, 5, 3), at(2024, 5, 5, 12, 0)),  # 7 is Sunday too
        ("0 0 13 * fri", at(2024, 5, 1), at(2024, 5, 3)),  # either day field matches
        ("15,45 8-9 * jan,jul *", at(2024, 7, 1, 9, 50), at(2024, 7, 2, 8, 15)),
    ],
)
def test_next_occurrence(expression: str, after: datetime, expected: datetime) -> None:
    assert CronExpression.parse(expression).next_after(after) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "has 4 fields; it needs 5"),
        ("60 * * * *", "minute 60 is out of range (0-59)"),
        ("* * * * funday", "'funday' is not a valid day of week"),
        ("5-1 * * * *", "runs backwards"),
        ("*/0 * * * *", "step must be >= 1"),
        ("0 0 30 feb *", "never fires"),
    ],
)
def test_bad_expressions_are_explained(expression: str, message: str) -> None:
    with pytest.raises(CronSyntaxError, match="Cron expression") as info:
        CronExpression.parse(expression).next_after(at(2024, 1, 1))
    assert message in str(info.value)


def test_helpers_build_utc_schedules() -> None:
    crons = Crons()
    crons.interval("a", "jobs:a", seconds=30)
    crons.interval("b", "jobs:b", {"x": 1.0}, minutes=2)
    crons.hourly("c", "jobs:c", minute_utc=15)
    crons.daily("d", "jobs:d", hour_utc=3)
    crons.weekly("e", "jobs:e", day_of_week="tuesday", hour_utc=8, minute_utc=5)
    crons.monthly("f", "jobs:f", day=1, hour_utc=0)
    crons.cron("g", "*/10 * * * *", "jobs:g")
    schedules = {job.name: job.schedule for job in crons}
    assert schedules["a"] == IntervalSchedule(30.0)
    assert schedules["b"] == IntervalSchedule(120.0)
    assert crons.jobs["b"].args == {"x": 1.0}
    texts = {n: s.expression.text for n, s in schedules.items() if isinstance(s, CronSchedule)}
    assert texts == {
        "c": "15 * * * *", "d": "0 3 * * *", "e": "5 8 * * 2", "f": "0 0 1 * *", "g": "*/10 * * * *"
    }  # fmt: skip
    assert len(crons) == 7


@pytest.mark.parametrize(
    ("register", "message"),
    [
        (lambda c: c.interval("x", "m:f"), "exactly one of seconds=, minutes= or hours="),
        (lambda c: c.interval("x", "m:f", seconds=0), "positive number of seconds"),
        (lambda c: c.daily("x", "m:f", hour_utc=24), "hour_utc must be an integer from 0 to 23"),
        (lambda c: c.weekly("x", "m:f", day_of_week="mon", hour_utc=1), "day_of_week must be"),
        (lambda c: c.cron("x", "bad", "m:f"), "has 1 fields"),
        (lambda c: c.interval("", "m:f", seconds=1), "non-empty string of printable ASCII"),
        (lambda c: c.interval("x", "m:f", [1], seconds=1), "args must be a dict"),
    ],
)
def test_bad_definitions_are_refused(register: object, message: str) -> None:
    with pytest.raises(CronDefinitionError) as info:
        register(Crons())  # type: ignore[operator]
    assert message in str(info.value)


def test_names_are_unique() -> None:
    crons = Crons()
    crons.interval("sync", "m:f", minutes=1)
    with pytest.raises(CronDefinitionError, match="registered twice"):
        crons.hourly("sync", "m:g")
