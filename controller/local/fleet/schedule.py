"""When an association runs next: SSM `rate(...)` and `cron(...)` expressions, and clocks.

Used by the fleet's scheduler: `Schedule.parse(expression)` then `next_after(when)`. Pure
apart from the clocks. Rules from "Reference: Cron and rate expressions for Systems Manager"
(https://docs.aws.amazon.com/systems-manager/latest/userguide/reference-cron-and-rate-expressions.html):
- `rate(N minute|minutes|hour|hours|day|days)`: every N units from the last run;
- `cron(...)`: UTC, fields Minutes Hours Day-of-month Month Day-of-week Year, with an
  optional leading Seconds field; `*`, `?`, lists, ranges, `/` steps, names (JAN, SUN),
  `L` (last day of month) and `#` (nth weekday); day of week 1-7 is SUN-SAT;
- `at(yyyy-mm-ddThh:mm:ss)`: once, at that UTC time.
"""

from __future__ import annotations

import calendar
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol


class ScheduleError(ValueError):
    """An expression SSM would not accept; the message says what is wrong."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Real time, optionally sped up: `speed=60` makes an hour pass in a minute."""

    def __init__(self, speed: float = 1.0) -> None:
        self.speed = speed
        self._start_wall = datetime.now(UTC)
        self._start_mono = time.monotonic()

    def now(self) -> datetime:
        elapsed = (time.monotonic() - self._start_mono) * self.speed
        return self._start_wall + timedelta(seconds=elapsed)


class ManualClock:
    """A clock that only moves when told to (tests)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        with self._lock:
            self._now += delta
            return self._now


_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule expression."""

    expression: str
    every: timedelta | None = None  # rate(...)
    cron: _Cron | None = None
    at: datetime | None = None

    @property
    def is_cron(self) -> bool:
        return self.cron is not None

    @staticmethod
    def parse(expression: str) -> Schedule:
        text = expression.strip()
        if match := _RATE.match(text):
            count, unit = int(match.group(1)), match.group(2).rstrip("s")
            if count < 1:
                raise ScheduleError(f"{expression}: the rate must be at least 1")
            return Schedule(text, every=timedelta(seconds=count * _UNIT[unit]))
        if match := _AT.match(text):
            at = datetime.fromisoformat(match.group(1)).replace(tzinfo=UTC)
            return Schedule(text, at=at)
        if text.startswith("cron(") and text.endswith(")"):
            return Schedule(text, cron=_Cron.parse(text[len("cron(") : -1], expression))
        raise ScheduleError(
            f"{expression}: expected rate(N minutes|hours|days), cron(...) or at(...)"
        )

    def next_after(self, when: datetime, last_run: datetime | None = None) -> datetime | None:
        """The first run time strictly after `when` (rate: `last_run` + N), or None."""
        if self.every is not None:
            base = last_run or when
            following = base + self.every
            while following <= when:
                following += self.every
            return following
        if self.at is not None:
            return self.at if self.at > when else None
        assert self.cron is not None
        return self.cron.next_after(when)


@dataclass(frozen=True)
class _Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: str  # day-of-month field, evaluated per month (L, ?)
    months: frozenset[int]
    weekdays: str  # day-of-week field, evaluated per date (#, ?)
    years: frozenset[int] | None

    @staticmethod
    def parse(body: str, expression: str) -> _Cron:
        fields = body.split()
        if len(fields) == 7:
            fields = fields[1:]  # the optional leading Seconds field
        if len(fields) == 5:
            fields.append("*")
        if len(fields) != 6:
            raise ScheduleError(
                f"{expression}: a cron expression has the fields Minutes Hours Day-of-month "
                "Month Day-of-week Year"
            )
        minute, hour, day, month, weekday, year = fields
        if day != "?" and weekday != "?" and not (day == "*" and weekday == "*"):
            raise ScheduleError(f"{expression}: use ? in Day-of-month or Day-of-week")
        try:
            cron = _Cron(
                _values(minute, 0, 59, {}),
                _values(hour, 0, 23, {}),
                day,
                _values(month, 1, 12, _MONTHS),
                weekday,
                None if year in ("*", "?") else _values(year, 1970, 2199, {}),
            )
            cron._day_matches(datetime(2026, 1, 1, tzinfo=UTC))  # validates both day fields
        except (ValueError, KeyError) as err:
            raise ScheduleError(f"{expression}: {err}") from err
        return cron

    def _day_matches(self, day: datetime) -> bool:
        if self.days not in ("?", "*"):
            last = calendar.monthrange(day.year, day.month)[1]
            wanted = {last} if self.days == "L" else _values(self.days, 1, 31, {})
            if day.day not in wanted:
                return False
        if self.weekdays not in ("?", "*"):
            weekday = (day.weekday() + 1) % 7 + 1  # Monday=0 -> 2; Sunday=6 -> 1
            if "#" in self.weekdays:
                name, nth = self.weekdays.split("#")
                target = _DAYS.get(name.upper()) or int(name)
                return weekday == target and (day.day - 1) // 7 + 1 == int(nth)
            if weekday not in _values(self.weekdays, 1, 7, _DAYS):
                return False
        return True

    def next_after(self, when: datetime) -> datetime | None:
        start = (when + timedelta(minutes=1)).replace(second=0, microsecond=0)
        day = start.replace(hour=0, minute=0)
        for _ in range(366 * 5):  # look up to five years ahead
            ok_year = self.years is None or day.year in self.years
            if ok_year and day.month in self.months and self._day_matches(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        candidate = day.replace(hour=hour, minute=minute)
                        if candidate >= start:
                            return candidate
            day += timedelta(days=1)
        return None


def _values(field: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    """`*`, `5`, `1-5`, `MON-FRI`, `*/15`, `0/30`, `1,15` -> the set of values."""
    result: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part in ("*", "?"):
            first, last = low, high
        elif "-" in part:
            a, b = part.split("-")
            first, last = _number(a, names), _number(b, names)
        else:
            first = _number(part, names)
            last = high if step != 1 else first
        if not (low <= first <= high and low <= last <= high) or step < 1:
            raise ValueError(f"{field!r} is outside {low}-{high}")
        result.update(range(first, last + 1, step))
    return frozenset(result)


def _number(text: str, names: dict[str, int]) -> int:
    return names[text.upper()] if text.upper() in names else int(text)
