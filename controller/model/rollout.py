"""Progressive rollout (issue 13): the ring state machine, the gate and the tag codec. Pure.

Where it sits: shared vocabulary below every stage. The repository's `rollout` block becomes
a `RolloutPolicy` (`controller.repository`, `controller.reconcile.desired`); the rollout's
progress lives in AWS as one tag on the package document (`RolloutState`, `encode`/`decode`),
read by observe (`controller.reconcile.observe.rollout`), advanced by the pure planning in
`controller.reconcile.kinds.rollout` through `advance` (states x events, written as a table
after Argo Rollouts / Flagger / AppConfig deployment strategies) and `gate`, and written back
by apply (`controller.reconcile.apply.rollout`) BEFORE the step it announces runs: a
controller killed anywhere resumes from the tag, with no ring skipped and none started twice.

The tag holds document version NUMBERS, not names: a VersionName may be 128 characters and
a tag value at most 256 (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html),
so two names might not fit; numbers always do, and identify a version just as well.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from enum import StrEnum

# The tag on the package document that carries the rollout's progress.
ROLLOUT_TAG = "ssm-gitops:rollout"
# `metadata.annotations` of a Package: `ssm-gitops/rollout: paused` holds its rollout.
ROLLOUT_ANNOTATION = "ssm-gitops/rollout"
PAUSED = "paused"
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html: a tag value
# is at most 256 characters of letters, digits, spaces and _ . : / = + - @.
TAG_VALUE_MAX = 256
TAG_VALUE = re.compile(r"^[\w\s.:/=+\-@]*$")
# A bake longer than a day is almost certainly a typo (15h for 15m); a rollout that should
# wait longer is paused instead.
MAX_BAKE_SECONDS = 24 * 3600
_DURATION = re.compile(r"^([0-9]{1,5})(s|m|h)$")
_UNIT = {"s": 1, "m": 60, "h": 3600}
# StartAssociationsOnce takes 1-10 association ids per call
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_StartAssociationsOnce.html).
START_ONCE_MAX_IDS = 10
# CloudWatch AlarmName: 1-255 characters (botocore cloudwatch service-2.json `AlarmName`,
# https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_DescribeAlarms.html:
# AlarmNames, at most 100 names per call).
ALARM_NAME_MAX = 255
MAX_ALARMS = 100


class RolloutPhase(StrEnum):
    """`rollout_state{state}`: where a package's rollout is."""

    PROGRESSING = "progressing"  # a ring is being started or its targets are reporting
    BAKING = "baking"  # the ring passed its gate; waiting for the bake to end
    PAUSED = "paused"  # held by the annotation
    SUCCEEDED = "succeeded"  # every ring passed; the default moves (or has moved)
    FAILED = "failed"  # a gate failed with onFailure: halt; everything stays where it is
    ROLLED_BACK = "rolled_back"  # a gate failed; reached rings re-pinned to the previous

    @property
    def in_flight(self) -> bool:
        """The controller must keep looking (targets reporting, a bake running)."""
        return self in (RolloutPhase.PROGRESSING, RolloutPhase.BAKING)

    @property
    def terminal(self) -> bool:
        return self in (RolloutPhase.SUCCEEDED, RolloutPhase.FAILED, RolloutPhase.ROLLED_BACK)


class OnFailure(StrEnum):
    ROLLBACK = "rollback"
    HALT = "halt"


@dataclass(frozen=True)
class MaxFailed:
    """`maxFailed`: failed targets a ring may have, a count ("2") or a percent ("10%")."""

    value: int
    percent: bool = False

    def exceeded(self, failed: int, total: int) -> bool:
        if self.percent:
            return failed * 100 > self.value * total
        return failed > self.value

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


def parse_max_failed(text: str) -> MaxFailed | None:
    """ "0", "3" or "10%" (0-100); None when it is neither."""
    match = re.fullmatch(r"([0-9]{1,6})(%?)", text.strip())
    if match is None:
        return None
    value, percent = int(match.group(1)), bool(match.group(2))
    if percent and value > 100:
        return None
    return MaxFailed(value, percent)


def parse_duration(text: str) -> int | None:
    """ "30s", "15m", "1h" -> seconds (at most `MAX_BAKE_SECONDS`); None when invalid."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return None
    seconds = int(match.group(1)) * _UNIT[match.group(2)]
    return seconds if seconds <= MAX_BAKE_SECONDS else None


@dataclass(frozen=True)
class Ring:
    associations: tuple[str, ...]  # AssociationNames of this package's associations
    bake_seconds: int = 0


@dataclass(frozen=True)
class RolloutPolicy:
    """A Package's `rollout` block, validated."""

    rings: tuple[Ring, ...]
    max_failed: MaxFailed = MaxFailed(0)
    alarms: tuple[str, ...] = ()
    on_failure: OnFailure = OnFailure.ROLLBACK

    def ring_of(self, association: str) -> int | None:
        for index, ring in enumerate(self.rings):
            if association in ring.associations:
                return index
        return None


@dataclass(frozen=True)
class RolloutState:
    """What the `ssm-gitops:rollout` tag holds: enough to resume anywhere.

    `started_at`: when the current ring was started (unix seconds; 0 = not started yet): the
    ring's executions are those created since then, so an execution started before a crash
    is recognised, never started again. `bake_until`: when the bake ends (unix seconds);
    while paused, the bake's REMAINING seconds (a pause holds the bake's clock). `held`: the
    phase a pause holds. `failed_ring`: the ring whose gate failed (-1: none).
    """

    target: str  # document version number of the version rolled out
    previous: str  # document version number of the default when the rollout began
    ring: int = 0
    phase: RolloutPhase = RolloutPhase.PROGRESSING
    started_at: float = 0  # written with milliseconds: a run just before it is not the ring's
    bake_until: int = 0
    held: RolloutPhase | None = None
    why: str = ""  # a gate failure's short code: "targets" or "alarm"


_FIELDS = (
    ("t", "target"),
    ("p", "previous"),
    ("r", "ring"),
    ("s", "phase"),
    ("a", "started_at"),
    ("b", "bake_until"),
    ("h", "held"),
    ("w", "why"),
)


def encode(state: RolloutState) -> str:
    """The tag value: `t=12 p=11 r=0 s=baking a=1764560000 b=1764560900 h=- w=-`."""
    parts = []
    for key, attribute in _FIELDS:
        value = getattr(state, attribute)
        if isinstance(value, float):
            value = int(value) if value.is_integer() else round(value, 3)
        text = "-" if value is None or value == "" else str(value)
        parts.append(f"{key}={text}")
    text = " ".join(parts)
    # Fits by construction (numbers, enum words); checked so a future field cannot break it.
    assert len(text) <= TAG_VALUE_MAX and TAG_VALUE.match(text), text
    return text


def decode(text: str) -> RolloutState | None:
    """The state a tag value holds; None when it is not one of ours (then it is ignored)."""
    values: dict[str, str] = {}
    for part in text.split():
        key, sep, value = part.partition("=")
        if not sep:
            return None
        values[key] = value
    try:
        held = values.get("h", "-")
        return RolloutState(
            target=_number(values["t"]),
            previous=_number(values["p"]),
            ring=int(_number(values["r"])),
            phase=RolloutPhase(values["s"]),
            started_at=_seconds(values["a"]),
            bake_until=int(values["b"]),
            held=None if held == "-" else RolloutPhase(held),
            why="" if values.get("w", "-") == "-" else values["w"],
        )
    except (KeyError, ValueError):
        return None


def _seconds(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # "nan", "inf": no clock reaches them
        raise ValueError(text)
    return int(value) if value.is_integer() else value


def _number(text: str) -> str:
    if not text.isdigit():
        raise ValueError(text)
    return text


# A ring started (or a bake's end) this far past the controller's clock is not clock skew.
CLOCK_SLACK = 300


def tag_problem(
    state: RolloutState | None, rings: int, numbers: Collection[str], now: float
) -> str:
    """Why a tag that names the rollout under way cannot be ours ("" when it can): it was
    edited by hand (or by someone hostile). Resuming from it could skip a ring, start one
    twice, pin a version that does not exist or wait forever, so the plan stops on it.
    `rings`: the policy's; `numbers`: the document's version numbers; `now`: when observe
    read it (0: unknown, the clock checks are skipped)."""
    if state is None:
        return "is not a rollout state this controller writes"
    if state.ring >= rings:
        return f"names ring {state.ring + 1} of a rollout with {rings} rings"
    if state.target not in numbers:
        return f"names document version {state.target}, which does not exist"
    if state.previous not in numbers and state.phase is not RolloutPhase.SUCCEEDED:
        return f"names document version {state.previous} to roll back to, which does not exist"
    if state.phase is RolloutPhase.SUCCEEDED and state.ring != rings - 1:
        return f"says succeeded at ring {state.ring + 1} of {rings}"
    if state.phase is RolloutPhase.PAUSED and state.held not in (
        RolloutPhase.PROGRESSING,
        RolloutPhase.BAKING,
    ):
        return f"holds a pause of {state.held or 'nothing'}"
    bake_left = state.bake_until if state.phase is RolloutPhase.PAUSED else 0
    if now:
        if state.phase is RolloutPhase.BAKING:
            bake_left = int(state.bake_until - now)
        if state.started_at > now + CLOCK_SLACK:
            return f"started ring {state.ring + 1} {int(state.started_at - now)}s in the future"
    if bake_left > MAX_BAKE_SECONDS + CLOCK_SLACK:
        return f"bakes {bake_left}s more, longer than the {MAX_BAKE_SECONDS}s a bake may last"
    return ""


# --- the gate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetCounts:
    """The current ring's targets, by result."""

    succeeded: int = 0
    failed: int = 0
    pending: int = 0

    @property
    def total(self) -> int:
        return self.succeeded + self.failed + self.pending

    def __add__(self, other: TargetCounts) -> TargetCounts:
        return TargetCounts(
            self.succeeded + other.succeeded,
            self.failed + other.failed,
            self.pending + other.pending,
        )


class GateVerdict(StrEnum):
    WAIT = "wait"
    PASS = "pass"
    FAIL = "fail"


@dataclass(frozen=True)
class GateResult:
    verdict: GateVerdict
    reason: str = ""
    why: str = ""  # "targets" | "alarm"


def gate(
    counts: TargetCounts,
    max_failed: MaxFailed,
    firing: tuple[str, ...],
    untargeted: tuple[str, ...] = (),
) -> GateResult:
    """Pass, fail or wait. An alarm in ALARM fails at once; so do more failed targets than
    `maxFailed` allows (of every target of the ring, reported or not: more results cannot
    make it pass again); so does a ring association whose run finished without reaching a
    single target (`untargeted`: stopped by its own alarm, or its targets match no instance:
    nothing was tested, and 0 failed of 0 must not pass silently); else a ring with targets
    still pending waits."""
    if firing:
        return GateResult(GateVerdict.FAIL, f"alarm in ALARM: {', '.join(sorted(firing))}", "alarm")
    if untargeted:
        return GateResult(
            GateVerdict.FAIL,
            f"the run of {', '.join(sorted(untargeted))} reached no target (check its "
            "targets and its AlarmConfiguration)",
            "targets",
        )
    if max_failed.exceeded(counts.failed, counts.total):
        return GateResult(
            GateVerdict.FAIL,
            f"{counts.failed} of {counts.total} targets failed (maxFailed {max_failed})",
            "targets",
        )
    if counts.pending:
        return GateResult(GateVerdict.WAIT, f"{counts.pending} of {counts.total} targets pending")
    return GateResult(GateVerdict.PASS)


# --- the state machine -------------------------------------------------------------------


class Event(StrEnum):
    """What can happen to a rollout (the columns of the table)."""

    RING_STARTED = "ring_started"  # the ring's associations were pinned and started
    TARGETS_PENDING = "targets_pending"  # the gate waits
    GATE_PASSED = "gate_passed"
    GATE_FAILED = "gate_failed"
    BAKE_ELAPSED = "bake_elapsed"  # the bake ended and the gate passed again
    PAUSED = "paused"  # the annotation appeared
    UNPAUSED = "unpaused"  # the annotation went
    NEW_VERSION = "new_version"  # the repository names another version


@dataclass(frozen=True)
class Happened:
    """One event with what it carries."""

    event: Event
    now: int = 0
    rings: int = 1  # how many rings the policy has
    bake_seconds: int = 0  # the current ring's bake
    on_failure: OnFailure = OnFailure.ROLLBACK
    why: str = ""
    target: str = ""  # NEW_VERSION: the new version's number
    previous: str = ""  # NEW_VERSION: the live default's number


def start(target: str, previous: str) -> RolloutState:
    """A new rollout: ring 0, not started yet."""
    return RolloutState(target, previous)


def advance(state: RolloutState, happened: Happened) -> RolloutState:
    """The next state; an event that does not apply in a state leaves it as it is."""
    event = happened.event
    if event is Event.NEW_VERSION:
        if happened.target == state.target:
            return state
        return start(happened.target, happened.previous)
    phase = state.phase
    if phase.terminal:
        return state
    if phase is RolloutPhase.PAUSED:
        if event is not Event.UNPAUSED:
            return state
        held = state.held or RolloutPhase.PROGRESSING
        bake_until = happened.now + state.bake_until if held is RolloutPhase.BAKING else 0
        return replace(state, phase=held, held=None, bake_until=bake_until)
    if event is Event.PAUSED:
        remaining = max(0, state.bake_until - happened.now) if phase is RolloutPhase.BAKING else 0
        return replace(state, phase=RolloutPhase.PAUSED, held=phase, bake_until=remaining)
    if event is Event.GATE_FAILED:
        failed = (
            RolloutPhase.ROLLED_BACK
            if happened.on_failure is OnFailure.ROLLBACK
            else RolloutPhase.FAILED
        )
        return replace(state, phase=failed, why=happened.why)
    if phase is RolloutPhase.PROGRESSING:
        if event is Event.RING_STARTED and state.started_at == 0:
            return replace(state, started_at=happened.now)
        if event is Event.GATE_PASSED and state.started_at:
            return replace(
                state, phase=RolloutPhase.BAKING, bake_until=happened.now + happened.bake_seconds
            )
        return state
    # BAKING
    if event is Event.BAKE_ELAPSED and happened.now >= state.bake_until:
        if state.ring + 1 >= happened.rings:
            return replace(state, phase=RolloutPhase.SUCCEEDED, bake_until=0)
        return replace(
            state, ring=state.ring + 1, phase=RolloutPhase.PROGRESSING, started_at=0, bake_until=0
        )
    return state
