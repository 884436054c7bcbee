"""Progress of a long `apply`, and its summary per location.

Stage: beside apply, for `ssm-gitops apply` (controller/reconcile/commands.py). The
reconciler tells `Progress` the plan (`planned`) and every action as it ends (`action`);
`Progress` writes one line to stderr at most every `every` seconds:

    progress: 37/150 locations done, 812/3000 actions (2 failed), 41s

Decisions (docs/reconcile.md): progress goes to stderr only, so `--json` on stdout stays
clean and progress shows there too; nothing is written before `every` seconds have passed
(a short apply stays as quiet as before); a terminal gets a line a second, anything else (a
CI log) a line every 10 s; `--progress-every 0` turns it off. At the end, apply prints one
line per location when the pass touched more than one (`location_lines`), and `--json`
carries the same as `locations` (`location_counts`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from controller.model.kinds import Verb
from controller.model.state import Location
from controller.reconcile.engine import PlannedPass
from controller.reconcile.result import ActionRecord, ActionResult, PassResult

# How often a line is written: to a terminal, and to anything else.
TTY_SECONDS = 1.0
LOG_SECONDS = 10.0


class Progress:
    """Counts actions per location as they end and reports at most every `every` seconds."""

    def __init__(
        self, out: TextIO, every: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.out = out
        self.every = every
        self.clock = clock
        self._lock = threading.Lock()
        self._started = clock()
        self._last = self._started
        self._remaining: Counter[Location] = Counter()
        self._total = 0
        self._done = 0
        self._failed = 0
        self._locations = 0

    def planned(self, planned: PlannedPass) -> None:
        """The plan is known: how many actions in how many locations."""
        with self._lock:
            self._remaining = Counter(action.location for action in planned.plan.actions)
            self._total = sum(self._remaining.values())
            self._locations = len(self._remaining)

    def action(self, record: ActionRecord) -> None:
        """One action ended (any result); maybe write a line."""
        if record.result is ActionResult.BLOCKED:
            return  # held back by the safety rules: never part of the plan's actions
        with self._lock:
            location = Location(record.account, record.region)
            self._done += 1
            self._failed += record.result is ActionResult.FAILURE
            if self._remaining[location] > 0:
                self._remaining[location] -= 1
            now = self.clock()
            if self.every <= 0 or now - self._last < self.every:
                return
            self._last = now
            line = self._line(now)
        print(line, file=self.out, flush=True)

    def _line(self, now: float) -> str:
        finished = sum(1 for count in self._remaining.values() if count == 0)
        failed = f" ({self._failed} failed)" if self._failed else ""
        return (
            f"progress: {finished}/{self._locations} locations done, "
            f"{self._done}/{self._total} actions{failed}, {now - self._started:.0f}s"
        )


def location_counts(result: PassResult) -> list[dict[str, str | int]]:
    """Per location of the pass's actions: added, changed, destroyed, failed, skipped and
    blocked counts, sorted by account and region."""
    counts: dict[tuple[str, str], Counter[str]] = {}
    for status in result.resources:  # locations where nothing happened count too
        counts.setdefault((status.account, status.region), Counter())
    for record in result.actions:
        bucket = counts.setdefault((record.account, record.region), Counter())
        if record.result is ActionResult.SUCCESS:
            bucket[{"add": "added", "change": "changed", "destroy": "destroyed"}[
                str(Verb(record.action).effect)
            ]] += 1
        else:
            bucket[str(record.result)] += 1
    keys = ("added", "changed", "destroyed", "failure", "skipped", "blocked")
    return [
        {"account": account, "region": region}
        | {("failed" if k == "failure" else k): bucket[k] for k in keys}
        for (account, region), bucket in sorted(counts.items())
    ]


def location_lines(result: PassResult) -> list[str]:
    """`apply`'s per-location summary: one line per location where something happened, one
    line for how many had nothing to do; none when the pass spans one location or fewer."""
    rows = location_counts(result)
    if len(rows) <= 1:
        return []
    names = ("added", "changed", "destroyed", "failed", "skipped", "blocked")
    lines = [f"Per location ({len(rows)}):"]
    quiet = 0
    for row in rows:
        parts = [f"{row[k]} {k}" for k in names if row[k]]
        if not parts:
            quiet += 1
            continue
        lines.append(f"  {row['account']}/{row['region']}: {', '.join(parts)}")
    if quiet:
        lines.append(f"  {quiet} location(s): no change")
    return lines
