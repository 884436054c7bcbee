"""Observe progressive rollouts (issue 13): the tag, the current ring's targets, the alarms.

Stage: observe; planned in `controller.reconcile.kinds.rollout`, applied in
`controller.reconcile.apply.rollout`. The `ssm-gitops:rollout` tag comes with the package's
ListDocuments page (no call of its own). Only while a ring runs or bakes are more calls made:
per association of the current ring, DescribeAssociationExecutions (its executions since
the ring began; the oldest is the ring's run) and DescribeAssociationExecutionTargets (that
run's targets), and one CloudWatch DescribeAlarms for the package's alarms. A failed
rollout's evidence (the failed instances and their error) is read once per tag value and
kept. Nothing is read for a package without a rollout in progress. The runtime's rollout
tick reads a ring in flight between passes (`reread`); the pass it asks for right after
uses that read instead of making the same calls again (once, and only while it is fresh).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from controller.aws import rollout as aws_rollout
from controller.aws.errors import AwsError
from controller.aws.session import AwsClients
from controller.model.rollout import (
    ROLLOUT_TAG,
    RolloutPhase,
    RolloutPolicy,
    RolloutState,
    TargetCounts,
    decode,
)
from controller.model.state import (
    Desired,
    DesiredPackage,
    FailedTarget,
    Location,
    Observed,
    ObservedAssociation,
    ObservedPackage,
    ObservedRollout,
)

# A rollout in flight: its package, policy, tag and the current ring's associations.
_Watched = tuple[DesiredPackage, RolloutPolicy, RolloutState, list[ObservedAssociation]]
# A target whose run ended in one of these failed (API_AssociationExecutionTarget.html).
_FAILED = frozenset({"Failed", "TimedOut", "Cancelled"})
# How long a tick's read of a ring stands for the next pass's: the pass follows the tick
# at once; an older read is taken again (the gate is never decided on a stale view).
FRESH_SECONDS = 30.0


class RolloutObserver:
    """Reads the rollouts of one owner; keeps a failed rollout's evidence (per tag value)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._evidence: dict[tuple[Location, str, str], tuple[FailedTarget, ...]] = {}
        # The rollouts in flight at the last observe, to re-read their ring between passes.
        self._watched: list[_Watched] = []
        # The tick's last reads, (location, package) -> (tag, ring ids, read): the next
        # observe uses each once instead of reading the same ring again.
        self._fresh: dict[
            tuple[Location, str], tuple[RolloutState, tuple[str, ...], ObservedRollout]
        ] = {}

    def reread(
        self, clients_for: Callable[[Location], AwsClients], now: float
    ) -> list[tuple[RolloutPolicy, ObservedRollout]]:
        """The rings of the rollouts in flight at the last observe, read again (their
        executions, targets and alarms only; the tag is as the last pass left it)."""
        with self._lock:
            watched = list(self._watched)
        found = []
        fresh = {}
        for package, policy, state, ring in watched:
            seen = ObservedRollout(package.name, package.location, state, int(now))
            try:
                seen = self._read_ring(clients_for, seen, state, policy, ring, package)
                fresh[(package.location, package.name)] = (state, _ids(ring), seen)
            except AwsError as error:
                seen = replace(seen, error=f"could not read ring {state.ring + 1}: {error}")
            found.append((policy, seen))
        with self._lock:
            self._fresh = fresh
        return found

    def observe(
        self,
        clients_for: Callable[[Location], AwsClients],
        desired: Desired,
        observed: Observed,
        now: float,
    ) -> tuple[ObservedRollout, ...]:
        live = {(p.location, p.name): p for p in observed.packages}
        found: list[ObservedRollout] = []
        with self._lock:
            self._watched = []
            fresh, self._fresh = self._fresh, {}  # each tick's read serves one pass at most
        for package in desired.packages:
            policy = package.rollout
            package_live = live.get((package.location, package.name))
            if policy is None or package_live is None or package.disabled:
                continue
            found.append(
                self._one(
                    clients_for,
                    package,
                    policy,
                    package_live,
                    observed,
                    int(now),
                    fresh.get((package.location, package.name)),
                )
            )
        return tuple(found)

    def _one(
        self,
        clients_for: Callable[[Location], AwsClients],
        package: DesiredPackage,
        policy: RolloutPolicy,
        live: ObservedPackage,
        observed: Observed,
        now: int,
        fresh: tuple[RolloutState, tuple[str, ...], ObservedRollout] | None = None,
    ) -> ObservedRollout:
        text = dict(live.tags).get(ROLLOUT_TAG, "")
        state = decode(text) if text else None
        seen = ObservedRollout(package.name, package.location, state, now)
        if state is None or not state.started_at or state.ring >= len(policy.rings):
            return seen
        wanted = live.version(package.default_version)
        if wanted is None or wanted.number != state.target:
            return seen  # the tag is about another version: not this one's rollout
        ring = _ring(policy, state, package, observed)
        try:
            if state.phase.in_flight:
                with self._lock:
                    self._watched.append((package, policy, state, ring))
                if (
                    fresh is not None
                    and fresh[0] == state
                    and fresh[1] == _ids(ring)
                    and 0 <= now - fresh[2].read_at <= FRESH_SECONDS
                ):
                    return fresh[2]  # the tick read this very ring a moment ago
                return self._read_ring(clients_for, seen, state, policy, ring, package)
            if state.phase in (RolloutPhase.FAILED, RolloutPhase.ROLLED_BACK):
                key = (package.location, package.name, text)
                with self._lock:
                    evidence = self._evidence.get(key)
                if evidence is None:
                    _, _, evidence, _ = _targets(clients_for, ring, state.started_at)
                    with self._lock:
                        self._evidence[key] = evidence
                return ObservedRollout(
                    package.name, package.location, state, now, failed_targets=evidence
                )
        except AwsError as error:
            # Not read: the plan waits (never a gate decided on a partial view); /status says why.
            return ObservedRollout(
                package.name,
                package.location,
                state,
                now,
                error=f"could not read ring {state.ring + 1}: {error}",
            )
        return seen

    def _read_ring(
        self,
        clients_for: Callable[[Location], AwsClients],
        seen: ObservedRollout,
        state: RolloutState,
        policy: RolloutPolicy,
        ring: list[ObservedAssociation],
        package: DesiredPackage,
    ) -> ObservedRollout:
        counts, unstarted, failed, untargeted = _targets(clients_for, ring, state.started_at)
        firing: tuple[str, ...] = ()
        if policy.alarms:
            states = aws_rollout.alarm_states(clients_for(package.location), policy.alarms)
            # An alarm that does not exist fails the gate too: a typo must not pass silently.
            firing = tuple(
                name if name in states else f"{name} (does not exist)"
                for name in policy.alarms
                if states.get(name, "ALARM") == "ALARM"
            )
        return ObservedRollout(
            seen.package,
            seen.location,
            state,
            seen.read_at,
            counts=counts,
            unstarted=unstarted,
            firing=firing,
            failed_targets=failed,
            untargeted=untargeted,
            ring_read=True,
        )


def _ids(ring: list[ObservedAssociation]) -> tuple[str, ...]:
    return tuple(sorted(a.association_id for a in ring))


def _ring(
    policy: RolloutPolicy, state: RolloutState, package: DesiredPackage, observed: Observed
) -> list[ObservedAssociation]:
    names = set(policy.rings[state.ring].associations)
    return [
        a
        for a in observed.associations
        if a.name in names and a.location.region == package.location.region
    ]


def _targets(
    clients_for: Callable[[Location], AwsClients],
    ring: list[ObservedAssociation],
    since: float,
) -> tuple[TargetCounts, tuple[str, ...], tuple[FailedTarget, ...], tuple[str, ...]]:
    """The ring's targets by result (of each association's first run since `since`), the
    associations with no run yet, the failed targets with their error, and the associations
    whose run finished without any target (the gate fails them: nothing was tested)."""
    counts = TargetCounts()
    unstarted: list[str] = []
    failed: list[FailedTarget] = []
    untargeted: list[str] = []
    for association in ring:
        clients = clients_for(association.location)
        runs = aws_rollout.executions_since(clients, association.association_id, since)
        if not runs:
            unstarted.append(association.association_id)
            continue
        run = runs[0]
        targets = aws_rollout.execution_targets(
            clients, association.association_id, run.execution_id
        )
        if not targets and run.status in aws_rollout.PENDING_STATUSES:
            counts += TargetCounts(pending=1)  # no target has reported yet: wait
        elif not targets:
            # Finished (Success, Failed, TimedOut...) with no target: its alarm stopped it
            # (TriggeredAlarms) or its targets match nothing
            # (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_AssociationExecution.html).
            untargeted.append(association.name)
        for target in targets:
            if target.status in aws_rollout.SUCCEEDED_STATUSES:
                counts += TargetCounts(succeeded=1)
            elif target.status in _FAILED:
                counts += TargetCounts(failed=1)
                detail = target.detail
                if target.output_command:
                    # Its error is in that command's output: one command away, not read here
                    # (GetCommandInvocation per failed instance is not worth its IAM grant).
                    detail += (
                        f"; its error: aws ssm get-command-invocation --command-id "
                        f"{target.output_command} --instance-id {target.resource_id}"
                    )
                failed.append(FailedTarget(association.name, target.resource_id, detail))
            else:
                counts += TargetCounts(pending=1)
    return counts, tuple(unstarted), tuple(failed), tuple(untargeted)
