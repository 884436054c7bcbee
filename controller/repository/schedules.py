"""Association schedules: the `cron(...)` and `rate(...)` expressions State Manager accepts.

A pure check used by the document models. Rules from "Reference: Cron and rate
expressions for Systems Manager" (the section on associations):
- `rate(value unit)`: unit minute(s), hour(s) or day(s), singular for a value of 1 and
  plural otherwise, and at least 30 minutes;
- `cron(...)`: Minutes Hours Day-of-month Month Day-of-week [Year], with an optional
  leading Seconds field; Day-of-month and Day-of-week cannot both be given: one is `?`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_MINUTES_PER_UNIT = {"minute": 1, "hour": 60, "day": 1440}
_EXAMPLE = "write e.g. rate(30 minutes), rate(1 day) or cron(0 2 ? * SUN *)"
_MONTHS = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC"
_DAYS = "SUN|MON|TUE|WED|THU|FRI|SAT"


@dataclass(frozen=True)
class _CronField:
    """One field of a cron expression: its range, names, and special forms."""

    name: str
    low: int
    high: int
    names: str = ""  # alternatives to numbers, e.g. JAN|FEB|...
    special: str = ""  # extra whole-part forms, e.g. ? or L or 2#3

    def accepts(self, text: str) -> bool:
        value = rf"(?:\d{{1,4}}{'|' + self.names if self.names else ''})"
        part_pattern = rf"^(?:(?:\*|{value}(?:-{value})?)(?:/\d{{1,4}})?{self.special})$"
        for part in text.upper().split(","):
            if not re.match(part_pattern, part):
                return False
            # Numbers before a step (`/`) or nth (`#`) must lie in the field's range.
            for number in re.findall(r"(?<![/#\d])\d+", part.split("/")[0]):
                if not self.low <= int(number) <= self.high:
                    return False
        return True


_SECONDS = _CronField("seconds", 0, 59)
_FIELDS = (
    _CronField("minutes", 0, 59),
    _CronField("hours", 0, 23),
    _CronField("day-of-month", 1, 31, special=r"|\?|L|LW|\d{1,2}W"),
    _CronField("month", 1, 12, names=_MONTHS),
    _CronField("day-of-week", 1, 7, names=_DAYS, special=rf"|\?|L|[1-7]L|(?:[1-7]|{_DAYS})#[1-5]"),
    _CronField("year", 1970, 2199),
)


def _check_rate(expression: str) -> str | None:
    rate = _RATE.match(expression)
    if not rate:
        return f"invalid rate expression {expression!r}: {_EXAMPLE}"
    value, unit = int(rate.group(1)), rate.group(2)
    singular = unit.rstrip("s")
    if value < 1:
        return f"rate value must be at least 1, got {value}"
    if value == 1 and unit.endswith("s"):
        return f"write rate(1 {singular}), singular for a value of 1"
    if value > 1 and not unit.endswith("s"):
        return f"write rate({value} {singular}s), plural for values above 1"
    if value * _MINUTES_PER_UNIT[singular] < 30:
        return f"{expression} is too frequent: State Manager's minimum rate is 30 minutes"
    return None


def _check_cron(expression: str) -> str | None:
    cron = _CRON.match(expression)
    if not cron:
        return f"invalid schedule {expression!r}: {_EXAMPLE}"
    parts = cron.group(1).split()
    if len(parts) == 7:
        fields: tuple[_CronField, ...] = (_SECONDS, *_FIELDS)
    elif len(parts) in (5, 6):
        fields = _FIELDS[: len(parts)]
    else:
        return (
            "cron expression needs Minutes Hours Day-of-month Month Day-of-week [Year], got "
            f"{len(parts)} fields: {_EXAMPLE}"
        )
    for field, text in zip(fields, parts, strict=True):
        if not field.accepts(text):
            return f"invalid {field.name} field {text!r} in {expression}: {_EXAMPLE}"
    values = {field.name: text for field, text in zip(fields, parts, strict=True)}
    if (values["day-of-month"] == "?") == (values["day-of-week"] == "?"):
        return (
            f"{expression}: give exactly one of day-of-month and day-of-week and put ? in the "
            "other, e.g. cron(0 2 ? * SUN *) or cron(0 2 1 * ? *)"
        )
    return None


def check_schedule(expression: str) -> str | None:
    """None if SSM accepts `expression` as an association schedule, else what to write."""
    if expression.startswith("rate"):
        return _check_rate(expression)
    return _check_cron(expression)


def is_rate(expression: str) -> bool:
    """True for a `rate(...)` schedule (ApplyOnlyAtCronInterval does not apply to it)."""
    return expression.startswith("rate(")
