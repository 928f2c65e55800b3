"""Cron expressions (UTC): parse ``"*/5 * * * *"`` and find the next time it fires.

Five fields, as Unix cron: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
``jan``-``dec``) and day of week (0-7, 0 and 7 being Sunday, or ``sun``-``sat``). Each field is
``*``, a value, a range ``a-b``, a step ``*/n`` or ``a-b/n`` or ``a/n``, or a comma list of
those. When both day fields are restricted a day matches either, as in Unix cron::

    >>> expr = CronExpression.parse("30 9 * * mon-fri")
    >>> expr.next_after(datetime(2024, 5, 3, 9, 30, tzinfo=UTC)).isoformat()
    '2024-05-06T09:30:00+00:00'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyconvex.errors import PyconvexError

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
_NO_NAMES: dict[str, int] = {}
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, _NO_NAMES),
    ("hour", 0, 23, _NO_NAMES),
    ("day of month", 1, 31, _NO_NAMES),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)
#: How far ahead to look for a match (Feb 29 on a given weekday can be decades away).
_HORIZON_DAYS = 366 * 30


class CronSyntaxError(PyconvexError, ValueError):
    """A cron expression that does not parse (the message says which field and why)."""


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed cron expression; see the module docstring."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    #: Whether the day-of-month / day-of-week field was ``*`` (unrestricted).
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        if not isinstance(text, str):
            raise CronSyntaxError(f"A cron expression is a string, got {type(text).__name__}.")
        parts = text.split()
        if len(parts) != 5:
            raise CronSyntaxError(
                f"Cron expression {text!r} has {len(parts)} fields; it needs 5: minute hour "
                "day-of-month month day-of-week, e.g. '*/5 * * * *' or '0 9 * * mon'."
            )
        sets = [_field(part, *spec, text) for part, spec in zip(parts, _FIELDS, strict=True)]
        weekdays = frozenset(d % 7 for d in sets[4])
        return cls(
            text,
            sets[0],
            sets[1],
            sets[2],
            sets[3],
            weekdays,
            any_day=parts[2] == "*",
            any_weekday=parts[4] == "*",
        )

    def _day_matches(self, dt: datetime) -> bool:
        in_month = dt.day in self.days
        in_week = (dt.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, after: datetime) -> datetime:
        """The first time strictly after ``after`` (aware, any zone) that matches, in UTC."""
        dt = after.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = dt + timedelta(days=_HORIZON_DAYS)
        while dt < limit:
            if dt.month not in self.months:
                year, month = (dt.year + 1, 1) if dt.month == 12 else (dt.year, dt.month + 1)
                dt = dt.replace(year=year, month=month, day=1, hour=0, minute=0)
            elif not self._day_matches(dt):
                dt = (dt + timedelta(days=1)).replace(hour=0, minute=0)
            elif dt.hour not in self.hours:
                dt = (dt + timedelta(hours=1)).replace(minute=0)
            elif dt.minute not in self.minutes:
                dt += timedelta(minutes=1)
            else:
                return dt
        raise CronSyntaxError(f"Cron expression {self.text!r} never fires (e.g. February 30).")


def _field(
    part: str, name: str, lo: int, hi: int, names: dict[str, int], text: str
) -> frozenset[int]:
    values: set[int] = set()
    for item in part.lower().split(","):
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            step = _number(step_text, name, text, names={})
            if step < 1:
                raise CronSyntaxError(f"Cron expression {text!r}: the {name} step must be >= 1.")
        if base == "*":
            start, end = lo, hi
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _number(a, name, text, names), _number(b, name, text, names)
        else:
            start = _number(base, name, text, names)
            end = hi if slash else start
        for value in (start, end):
            if not lo <= value <= hi:
                raise CronSyntaxError(
                    f"Cron expression {text!r}: {name} {value} is out of range ({lo}-{hi})."
                )
        if start > end:
            raise CronSyntaxError(
                f"Cron expression {text!r}: the {name} range {start}-{end} runs backwards."
            )
        values.update(range(start, end + 1, step))
    return frozenset(values)


def _number(token: str, name: str, text: str, names: dict[str, int]) -> int:
    if token in names:
        return names[token]
    if not token.isdigit():
        known = f" or a name ({', '.join(names)})" if names else ""
        raise CronSyntaxError(
            f"Cron expression {text!r}: {token!r} is not a valid {name} (expected a number"
            f"{known}; supported: *, a, a-b, */n, a-b/n and comma lists)."
        )
    return int(token)
