"""The ring state machine, the gate and the tag codec of a progressive rollout (issue 13).

Table tests: every state x every event (the state machine), and the gate's verdicts.
"""

from __future__ import annotations

import pytest

from controller.model.rollout import (
    TAG_VALUE,
    TAG_VALUE_MAX,
    Event,
    GateResult,
    GateVerdict,
    Happened,
    MaxFailed,
    OnFailure,
    RolloutPhase,
    RolloutState,
    TargetCounts,
    advance,
    decode,
    encode,
    gate,
    parse_duration,
    parse_max_failed,
)

NOW = 1_000_000
# A rollout of version 12 over default 11, on ring 1 of 3, in each phase. A baking state's
# bake ends at NOW (elapsed); a paused state held a bake with 60 s left.
STATES = {
    RolloutPhase.PROGRESSING: RolloutState(
        "12", "11", 1, RolloutPhase.PROGRESSING, started_at=NOW - 5
    ),
    RolloutPhase.BAKING: RolloutState(
        "12", "11", 1, RolloutPhase.BAKING, started_at=NOW - 50, bake_until=NOW
    ),
    RolloutPhase.PAUSED: RolloutState(
        "12",
        "11",
        1,
        RolloutPhase.PAUSED,
        started_at=NOW - 50,
        bake_until=60,
        held=RolloutPhase.BAKING,
    ),
    RolloutPhase.SUCCEEDED: RolloutState(
        "12", "11", 2, RolloutPhase.SUCCEEDED, started_at=NOW - 90
    ),
    RolloutPhase.FAILED: RolloutState(
        "12", "11", 1, RolloutPhase.FAILED, started_at=NOW - 50, why="alarm"
    ),
    RolloutPhase.ROLLED_BACK: RolloutState(
        "12", "11", 1, RolloutPhase.ROLLED_BACK, started_at=NOW - 50
    ),
}


def _happened(event: Event) -> Happened:
    return Happened(
        event,
        now=NOW,
        rings=3,
        bake_seconds=30,
        on_failure=OnFailure.ROLLBACK,
        why="targets",
        target="13",
        previous="11",
    )


# (state, event) -> (phase, ring) after it; "same" = the state is returned unchanged.
SAME = "same"
EXPECTED: dict[tuple[RolloutPhase, Event], object] = {
    (RolloutPhase.PROGRESSING, Event.RING_STARTED): SAME,  # already started: never started twice
    (RolloutPhase.PROGRESSING, Event.TARGETS_PENDING): SAME,
    (RolloutPhase.PROGRESSING, Event.GATE_PASSED): (RolloutPhase.BAKING, 1),
    (RolloutPhase.PROGRESSING, Event.GATE_FAILED): (RolloutPhase.ROLLED_BACK, 1),
    (RolloutPhase.PROGRESSING, Event.BAKE_ELAPSED): SAME,  # no bake before the gate passed
    (RolloutPhase.PROGRESSING, Event.PAUSED): (RolloutPhase.PAUSED, 1),
    (RolloutPhase.PROGRESSING, Event.UNPAUSED): SAME,
    (RolloutPhase.PROGRESSING, Event.NEW_VERSION): (RolloutPhase.PROGRESSING, 0),
    (RolloutPhase.BAKING, Event.RING_STARTED): SAME,
    (RolloutPhase.BAKING, Event.TARGETS_PENDING): SAME,
    (RolloutPhase.BAKING, Event.GATE_PASSED): SAME,  # the bake's clock is not restarted
    (RolloutPhase.BAKING, Event.GATE_FAILED): (RolloutPhase.ROLLED_BACK, 1),
    (RolloutPhase.BAKING, Event.BAKE_ELAPSED): (RolloutPhase.PROGRESSING, 2),  # the next ring
    (RolloutPhase.BAKING, Event.PAUSED): (RolloutPhase.PAUSED, 1),
    (RolloutPhase.BAKING, Event.UNPAUSED): SAME,
    (RolloutPhase.BAKING, Event.NEW_VERSION): (RolloutPhase.PROGRESSING, 0),
    (RolloutPhase.PAUSED, Event.RING_STARTED): SAME,
    (RolloutPhase.PAUSED, Event.TARGETS_PENDING): SAME,
    (RolloutPhase.PAUSED, Event.GATE_PASSED): SAME,
    (RolloutPhase.PAUSED, Event.GATE_FAILED): SAME,  # held: nothing moves while paused
    (RolloutPhase.PAUSED, Event.BAKE_ELAPSED): SAME,
    (RolloutPhase.PAUSED, Event.PAUSED): SAME,
    (RolloutPhase.PAUSED, Event.UNPAUSED): (RolloutPhase.BAKING, 1),
    (RolloutPhase.PAUSED, Event.NEW_VERSION): (RolloutPhase.PROGRESSING, 0),
}
for terminal in (RolloutPhase.SUCCEEDED, RolloutPhase.FAILED, RolloutPhase.ROLLED_BACK):
    for event in Event:
        # Stays failed (or done) for that version until the repository names another one.
        EXPECTED[(terminal, event)] = (
            (RolloutPhase.PROGRESSING, 0) if event is Event.NEW_VERSION else SAME
        )


def test_the_table_covers_every_state_and_event() -> None:
    assert set(EXPECTED) == {(phase, event) for phase in RolloutPhase for event in Event}


@pytest.mark.parametrize(("phase", "event"), sorted(EXPECTED))
def test_every_state_x_event(phase: RolloutPhase, event: Event) -> None:
    state = STATES[phase]
    after = advance(state, _happened(event))
    expected = EXPECTED[(phase, event)]
    if expected == SAME:
        assert after == state
    else:
        assert (after.phase, after.ring) == expected
    assert decode(encode(after)) == after  # every reachable state fits the tag


def test_details_of_the_transitions() -> None:
    progressing = RolloutState("12", "11")
    started = advance(progressing, Happened(Event.RING_STARTED, now=NOW))
    assert started.started_at == NOW
    baking = advance(started, Happened(Event.GATE_PASSED, now=NOW + 10, bake_seconds=30))
    assert baking.bake_until == NOW + 40
    # paused with 25 s of bake left; unpaused 1000 s later: 25 s left again
    paused = advance(baking, Happened(Event.PAUSED, now=NOW + 15))
    assert (paused.held, paused.bake_until) == (RolloutPhase.BAKING, 25)
    resumed = advance(paused, Happened(Event.UNPAUSED, now=NOW + 1015))
    assert (resumed.phase, resumed.bake_until) == (RolloutPhase.BAKING, NOW + 1040)
    # a bake that has not ended yet is not elapsed
    assert advance(resumed, Happened(Event.BAKE_ELAPSED, now=NOW + 1020, rings=3)) == resumed
    # the last ring's bake: succeeded
    last = RolloutState("12", "11", 2, RolloutPhase.BAKING, started_at=NOW, bake_until=NOW)
    assert (
        advance(last, Happened(Event.BAKE_ELAPSED, now=NOW, rings=3)).phase
        is RolloutPhase.SUCCEEDED
    )
    # halt instead of rollback
    halted = advance(started, Happened(Event.GATE_FAILED, on_failure=OnFailure.HALT, why="alarm"))
    assert (halted.phase, halted.why) == (RolloutPhase.FAILED, "alarm")
    # the same version named again changes nothing
    assert advance(halted, Happened(Event.NEW_VERSION, target="12", previous="11")) == halted
    # a gate cannot pass before the ring was started
    assert advance(progressing, Happened(Event.GATE_PASSED, now=NOW)) == progressing


@pytest.mark.parametrize(
    ("counts", "max_failed", "firing", "verdict"),
    [
        (TargetCounts(0, 0, 3), "0", (), GateVerdict.WAIT),  # pending targets: wait
        (TargetCounts(2, 0, 1), "0", (), GateVerdict.WAIT),
        (TargetCounts(3, 0, 0), "0", (), GateVerdict.PASS),
        (TargetCounts(0, 0, 0), "0", (), GateVerdict.PASS),  # a ring with no targets
        (TargetCounts(2, 1, 0), "0", (), GateVerdict.FAIL),  # failed > maxFailed: fail
        (TargetCounts(1, 1, 1), "0", (), GateVerdict.FAIL),  # ... even with targets pending
        (TargetCounts(2, 1, 0), "1", (), GateVerdict.PASS),
        (TargetCounts(1, 2, 0), "1", (), GateVerdict.FAIL),
        (TargetCounts(9, 1, 0), "10%", (), GateVerdict.PASS),
        (TargetCounts(8, 2, 0), "10%", (), GateVerdict.FAIL),
        (TargetCounts(9, 1, 5), "10%", (), GateVerdict.WAIT),
        (TargetCounts(3, 0, 0), "0", ("errors",), GateVerdict.FAIL),  # alarm in ALARM: fail
        (TargetCounts(0, 0, 3), "0", ("errors",), GateVerdict.FAIL),
    ],
)
def test_the_gate(
    counts: TargetCounts, max_failed: str, firing: tuple[str, ...], verdict: GateVerdict
) -> None:
    limit = parse_max_failed(max_failed)
    assert limit is not None
    result = gate(counts, limit, firing)
    assert isinstance(result, GateResult) and result.verdict is verdict
    if verdict is GateVerdict.FAIL:
        assert result.why == ("alarm" if firing else "targets") and result.reason


def test_the_tag_stays_within_aws_tag_rules() -> None:
    """API_Tag.html: at most 256 characters of letters, digits, spaces and _ . : / = + - @."""
    widest = RolloutState(
        "9" * 10,
        "9" * 10,
        99,
        RolloutPhase.ROLLED_BACK,
        9_999_999_999,
        9_999_999_999,
        RolloutPhase.BAKING,
        "targets",
    )
    text = encode(widest)
    assert len(text) <= TAG_VALUE_MAX and TAG_VALUE.match(text)
    assert decode(text) == widest


def test_a_ring_start_keeps_its_milliseconds() -> None:
    state = RolloutState("2", "1", 0, RolloutPhase.PROGRESSING, started_at=1764560000.123)
    assert "a=1764560000.123" in encode(state)
    assert decode(encode(state)) == state


@pytest.mark.parametrize("text", ["", "nonsense", "t=x p=1 r=0 s=baking a=0 b=0", "t=1 p=1"])
def test_a_foreign_tag_value_is_ignored(text: str) -> None:
    assert decode(text) is None


def test_parsers() -> None:
    assert parse_duration("15m") == 900 and parse_duration("1h") == 3600
    assert parse_duration("30s") == 30 and parse_duration("25h") is None
    assert parse_duration("15 m") is None
    assert parse_max_failed("10%") == MaxFailed(10, percent=True)
    assert parse_max_failed("101%") is None and parse_max_failed("-1") is None
