"""The reconcile facade: one `Reconciler` per controller, `run_pass` per revision or resync.

    desired_state(repository) -> observe(aws) -> plan(desired, observed) -> apply(plan)
                                                                         -> PassResult

The `Reconciler` is long-lived: it keeps the AWS sessions (and their call counter), the
observe cache that keeps a no-op pass near the list-page floor, and the built artifacts of
the revision it last saw. `plan_only` is the same pipeline without apply, for `ssm-gitops plan`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from controller.aws.artifacts import check_bucket
from controller.aws.errors import AwsError
from controller.aws.organizations import OrganizationReader
from controller.aws.records import BadRecord, Record, read_record, record_key, write_record
from controller.aws.session import AwsClients, Sessions
from controller.errors import UserError
from controller.model.kinds import Kind, Verb
from controller.model.state import (
    ArtifactFile,
    Desired,
    DesiredVersion,
    Location,
    Observed,
    Unread,
)
from controller.reconcile import heal
from controller.reconcile.apply import Applier, ArtifactBucket
from controller.reconcile.cache import LastingStore
from controller.reconcile.desired import desired_state, desired_version, locations
from controller.reconcile.events import NamedResource
from controller.reconcile.heal import Healed
from controller.reconcile.kinds import AdvanceRollout
from controller.reconcile.kinds.rollout import after_step, step_due
from controller.reconcile.leftover import (
    cleaned,
    desired_places,
    hold_shares,
    hold_unplaced,
    merge,
    statuses,
    targets,
)
from controller.reconcile.locations import Locations, placement_problems, resolve_locations
from controller.reconcile.observe import Observer
from controller.reconcile.observe.overlap import OverlapDetector
from controller.reconcile.observe.rollout import RolloutObserver
from controller.reconcile.plan import Plan, PlanError, plan
from controller.reconcile.result import (
    ActionRecord,
    ActionResult,
    Failure,
    LocationStatus,
    PassOutcome,
    PassResult,
    Reason,
    ResourceState,
    ResourceStatus,
    Rollout,
    RolloutStatus,
)
from controller.repository import Package, PackageVersion, Repository


@dataclass(frozen=True)
class PlannedPass:
    """What `plan_only` found: the plan, and what it was computed from."""

    plan: Plan
    desired: Desired
    observed: Observed
    failures: tuple[Failure, ...]  # locations not read, changes the plan refused
    api_calls: dict[tuple[str, str], int]
    artifacts: ArtifactBucket | None = None
    locations: tuple[LocationStatus, ...] = ()  # location_up per location read or held
    unreachable: tuple[Location, ...] = ()  # e.g. AssumeRole denied
    held: tuple[Location, ...] = ()  # recorded, not read: an OU of Settings was unreadable

    @property
    def errors(self) -> tuple[str, ...]:
        """The failures as one line each (`plan`'s stderr and `--json`)."""
        return tuple(str(failure) for failure in self.failures)


@dataclass(frozen=True)
class DesiredPass:
    """What one pass aims at: the desired state and where it lives."""

    desired: Desired
    regions: tuple[str, ...]
    accounts: tuple[tuple[str, str | None], ...]  # (account id, role ARN or None)
    artifacts: ArtifactBucket | None
    where: Locations | None = None  # Settings resolved (OUs read); None: regions x accounts
    record: Record | None = None  # the location record as read; None: none kept or unread
    record_at: tuple[str, str] | None = None  # (bucket, key) of the record
    problems: tuple[Failure, ...] = ()  # OUs not read, placements outside Settings
    # associations placed by an OU not read, and their packages: not pruned nor unshared
    unplaced: frozenset[tuple[Kind, str]] = frozenset()


class Reconciler:
    """Runs reconcile passes for one owner name; keep one instance across passes."""

    def __init__(
        self,
        owner: str,
        *,
        source: str = "",
        dry_run: bool = False,
        work_dir: Path,
        max_workers: int = 8,
        sessions: Sessions | None = None,
        store: LastingStore | None = None,
        locations_in_parallel: int = 16,
    ) -> None:
        self.owner = owner
        self.source = source  # the `ssm-gitops:source` tag value (model.ownership.source_id)
        self.dry_run = dry_run
        self.work_dir = Path(work_dir)
        self.max_workers = max_workers
        self.sessions = sessions or Sessions(name=owner)
        # Fan-out: this many locations are read and changed at once, each with at most
        # `sessions.calls_per_location` AWS calls in flight (controller.aws.session).
        self.locations_in_parallel = locations_in_parallel
        # `store`: the observe cache on disk (`controller.reconcile.cache`); None = memory only.
        self.observer = Observer(
            owner,
            max_workers,
            source=source,
            store=store,
            locations_in_parallel=locations_in_parallel,
        )
        self.overlaps = OverlapDetector()  # reported with each pass, never blocks it
        self.rollouts = RolloutObserver()
        self._built: dict[tuple[str, str, str], DesiredVersion] = {}
        self._roles: dict[str, str | None] = {}  # account id -> role ARN, from Settings
        self._where: Locations | None = None  # Settings as the last pass resolved it
        self._records: dict[tuple[str, str], Record] = {}  # location records, as last seen
        self._lock = threading.Lock()  # one pass at a time
        self._stopping = threading.Event()  # set by stop(): no new action starts
        # (location, association id) -> name, as the last two observations saw them: what a
        # drift event that names only an id (DeleteAssociation) is about (reconcile/heal.py).
        self.association_names: dict[tuple[Location, str], str] = {}
        self._last_names: dict[tuple[Location, str], str] = {}

    # -- the pipeline -------------------------------------------------------------------

    def stop(self) -> None:
        """Let the actions in flight finish and start no new one (SIGTERM); final."""
        self._stopping.set()

    def desired_for(
        self, repository: Repository, revision: str, *, reread_record: bool = True
    ) -> DesiredPass:
        """The repository expanded over Settings' accounts and regions, versions built.

        `reread_record=False` uses the location record this process last read or wrote, if
        any (the `run` loop between full resyncs: no S3 read on a no-op pass). A record
        another writer changed meanwhile is seen at the next full resync, and a write never
        loses it (conditional write, then read and merge)."""
        home = self.sessions.home_account()
        region = self.sessions.default_region()
        where = resolve_locations(
            repository.settings,
            home,
            region,
            lambda: OrganizationReader(self.sessions.home(region)),
        )
        desired = desired_state(
            repository,
            owner=self.owner,
            home_account=home,
            default_region=region,
            build=lambda repo, package, version: self._build(repo, package, version, revision),
            where=where,
        )
        problems = [Failure(Reason.LOCATION, line) for line in where.failures]
        problems += [
            Failure(Reason.LOCATION, line)
            for line in placement_problems(repository.associations, where)
        ]
        artifacts = _artifacts(repository)
        record: Record | None = None
        record_at: tuple[str, str] | None = None
        if artifacts is not None:
            record_at = (artifacts.bucket, record_key(artifacts.prefix, self.owner, self.source))
            try:
                record = None if reread_record else self._records.get(record_at)
                if record is None:
                    record = read_record(self.sessions.home(region), *record_at)
                    self._records[record_at] = record
            except AwsError as error:  # the pass goes on; the record is neither used nor written
                fix = (
                    "restore a good version of the object (S3 versioning) or delete it"
                    if isinstance(error, BadRecord)
                    else "check s3:GetObject on the artifacts bucket"
                )
                problems.append(
                    Failure(
                        Reason.LOCATION,
                        f"the location record s3://{record_at[0]}/{record_at[1]} could not be "
                        f"read ({_one_line(error)}): locations left behind are not cleaned "
                        f"this pass; {fix}",
                    )
                )
        self._where = where
        return DesiredPass(
            desired,
            where.regions,
            where.accounts,
            artifacts,
            where,
            record,
            record_at,
            tuple(problems),
            frozenset(
                pair
                for a in repository.associations
                if where.unresolved(a)
                for pair in ((Kind.ASSOCIATION, a.name), (Kind.PACKAGE, a.package))
            ),
        )

    def plan_only(
        self, repository: Repository, revision: str, *, full_resync: bool = False
    ) -> PlannedPass:
        """desired -> observe -> plan, changing nothing."""
        self.sessions.counter.take()
        return self.plan_desired(self.desired_for(repository, revision), full_resync=full_resync)

    def plan_desired(
        self, target: DesiredPass, *, full_resync: bool = False, acting: bool = False
    ) -> PlannedPass:
        """observe -> plan for an already expanded desired state. `acting`: apply follows,
        so no association fingerprint stands for a description (observe/association.py)."""
        where = target.where or Locations(target.regions, target.accounts)
        home = self.sessions.home_account()
        recorded = target.record.places if target.record is not None else frozenset()
        # Settings' locations and the recorded ones no longer among them (to prune them).
        aim = targets(where, recorded, home)
        self._roles = dict(target.accounts)
        for account, _region, role in aim.associations:
            self._roles.setdefault(account, role)
        package_clients = [self.sessions.home(r) for r in aim.package_regions]
        association_clients: list[AwsClients] = []
        unreachable: list[tuple[Location, str]] = []  # e.g. AssumeRole denied
        for account, region, role in aim.associations:
            try:
                association_clients.append(self.sessions.for_account(account, region, role))
            except AwsError as error:
                unreachable.append((Location(account, region), str(error)))
        observed = self.observer.observe(
            package_clients,
            association_clients,
            full_resync=full_resync,
            desired=target.desired,
            trust_fingerprints=not acting,
        ).observed
        # An unreachable account (e.g. AssumeRole denied) is a location not read at all.
        unread = tuple(
            Unread(location, Kind.ASSOCIATION, reason) for location, reason in unreachable
        )
        # A held location (its OU could not be read) is not read either: plan then deletes
        # nothing that its associations may use (a package there, a share with it).
        held_reason = "not read: an organizationalUnit of Settings could not be read"
        unread += tuple(Unread(location, Kind.ASSOCIATION, held_reason) for location in aim.held)
        observed = replace(observed, unread=observed.unread + unread)
        # The desired state is kept whole, also where the live state could not be read:
        # plan() holds back what depends on an unread location and reports it (dropping it
        # here once made plan read those resources as removed, and prune them: issue 10).
        desired = hold_shares(replace(target.desired, source=self.source), aim.held)
        live = self.observer.confirm_content(self._clients_for, observed, desired)
        names = {(a.location, a.association_id): a.name for a in live.associations}
        self.association_names, self._last_names = {**self._last_names, **names}, names
        rollouts = self.rollouts.observe(self._clients_for, desired, live, time.time())
        live = replace(live, rollouts=rollouts)
        result = hold_unplaced(plan(desired, live), target.unplaced)
        failures = (
            target.problems + _unread_failures(observed) + _plan_failures(result.errors, desired)
        )
        read = [Location(home, region) for region in aim.package_regions] + [
            Location(account, region) for account, region, _ in aim.associations
        ]
        return PlannedPass(
            result,
            desired,
            live,
            failures,
            dict(self.sessions.counter.peek()),
            target.artifacts,
            statuses(read, live, dict(unreachable), aim.held, held_reason),
            tuple(location for location, _ in unreachable),
            aim.held,
        )

    def run_pass(
        self,
        repository: Repository,
        revision: str,
        *,
        full_resync: bool = False,
        on_action: Callable[[ActionRecord], None] | None = None,
        on_planned: Callable[[PlannedPass], None] | None = None,
    ) -> PassResult:
        """One pass: plan, then apply (or skip, in a dry run). Never raises for AWS errors.
        `on_planned` hears the plan before apply starts (`apply`'s progress)."""
        with self._lock:
            started = time.time()
            self.sessions.counter.take()
            try:
                target = self.desired_for(repository, revision, reread_record=full_resync)
            except Exception as error:  # noqa: BLE001 - a pass reports, it never crashes
                return self._not_expanded(revision, started, error)
            return self._run(target, revision, started, full_resync, on_action, on_planned)

    def read_rollouts(
        self, repository: Repository
    ) -> tuple[tuple[Rollout, ...], Mapping[tuple[str, str], int]]:
        """Each of our associations' rollout from its overview, changing and planning nothing;
        and the AWS calls that took (operation, result) -> count.

        The runtime loop calls this between passes while it follows a rollout. It costs the
        ListAssociations pages of each account and region: ownership and specs come from the
        observer's cache (DescribeAssociation only for an association version not seen yet).
        """
        with self._lock:
            self.sessions.counter.take()
            if self._where is not None:  # the last pass's, OUs resolved (no Organizations call)
                regions, accounts = self._where.regions, self._where.accounts
            else:
                home = self.sessions.home_account()
                regions, accounts = locations(
                    repository.settings, home, self.sessions.default_region()
                )
            clients = [
                self.sessions.for_account(account, region, role)
                for account, role in accounts
                for region in regions
            ]
            observed = self.observer.observe([], clients)
            return _rollouts(observed.observed), self.sessions.counter.take()

    def heal(
        self,
        repository: Repository,
        revision: str,
        resources: Collection[NamedResource],
        *,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> Healed:
        """Drift events: re-read `resources` and apply only their actions of the normal plan
        (reconcile/heal.py). Never raises for AWS errors."""
        with self._lock:
            started = time.time()
            self.sessions.counter.take()
            try:
                # As a pass between full resyncs: the record this process last read or wrote
                # (a heal per drift event must not cost an S3 read each).
                target = self.desired_for(repository, revision, reread_record=False)
            except Exception as error:  # noqa: BLE001 - as run_pass: reported, never raised
                failed = self._not_expanded(revision, started, error)
                return heal.Healed(failed, dict.fromkeys(resources))
            return self._heal(target, revision, started, resources, on_action)

    def heal_desired(
        self,
        target: DesiredPass,
        revision: str,
        resources: Collection[NamedResource],
        *,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> Healed:
        """`heal` for an already expanded desired state (tests)."""
        with self._lock:
            started = time.time()
            self.sessions.counter.take()
            return self._heal(target, revision, started, resources, on_action)

    def _heal(
        self,
        target: DesiredPass,
        revision: str,
        started: float,
        resources: Collection[NamedResource],
        on_action: Callable[[ActionRecord], None] | None,
    ) -> Healed:
        heal.forget(self.observer, resources)

        def only(planned: PlannedPass) -> PlannedPass:
            # After this observe: association ids first seen now are known too.
            keys = heal.keys_of(resources, self.association_names)
            return replace(
                planned,
                plan=heal.restrict(planned.plan, keys),
                failures=heal.restrict_failures(planned.failures, keys),
            )

        result = self._run(target, revision, started, False, on_action, only=only)
        return heal.Healed(result, heal.outcomes(result, resources, self.association_names))

    def rollout_due(self) -> tuple[bool, Mapping[tuple[str, str], int]]:
        """Whether a rollout in flight at the last pass would move now (issue 13): its ring's
        executions, targets and alarms are read again, nothing else; True = run a pass.
        And the AWS calls that took."""
        with self._lock:
            self.sessions.counter.take()
            rereads = self.rollouts.reread(self._clients_for, time.time())
            due = any(step_due(policy, seen) for policy, seen in rereads)
            return due, self.sessions.counter.take()

    def run_desired(
        self,
        target: DesiredPass,
        revision: str = "",
        *,
        full_resync: bool = False,
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> PassResult:
        """`run_pass` for an already expanded desired state (tests, benchmarks)."""
        with self._lock:
            started = time.time()
            self.sessions.counter.take()
            return self._run(target, revision, started, full_resync, on_action)

    def _run(
        self,
        target: DesiredPass,
        revision: str,
        started: float,
        full_resync: bool,
        on_action: Callable[[ActionRecord], None] | None,
        on_planned: Callable[[PlannedPass], None] | None = None,
        *,
        only: Callable[[PlannedPass], PlannedPass] | None = None,
    ) -> PassResult:
        try:
            planned = self.plan_desired(target, full_resync=full_resync, acting=True)
            if only is not None:  # a heal: the plan of a pass, cut to the named resources
                planned = only(planned)
        except Exception as error:  # noqa: BLE001 - a pass reports, it never crashes
            # plan() itself is pure and reports its refusals as values: what raises here is
            # reading the live state.
            return PassResult(
                revision,
                PassOutcome.FAILURE,
                started,
                time.time(),
                failures=(Failure(Reason.OBSERVE, _one_line(error)),),
                api_calls=self.sessions.counter.take(),
            )
        if on_planned is not None:
            on_planned(planned)
        try:
            bucket_checked = self._check_bucket(target, planned)
        except UserError as error:
            missing = Failure(Reason.ARTIFACTS, _one_line(error))
            return self._result(planned, (), revision, started, (missing,), overlaps=only is None)
        applier = Applier(
            self._clients_for,
            owner=self.owner,
            source=self.source,
            observer=self.observer,
            artifacts=planned.artifacts,
            max_workers=self.max_workers,
            on_action=on_action,
            stopping=self._stopping,
            bucket_checked=bucket_checked,
            calls_per_location=self.sessions.calls_per_location,
            locations_in_parallel=self.locations_in_parallel,
        )
        record_failures: tuple[Failure, ...] = ()
        if self.dry_run:
            records = applier.skip(planned.plan, "dry run")
        else:
            # Record new locations before creating anything there (a crash mid-apply must
            # not leave an unrecorded location), then what apply cleaned, after it.
            grown, record_failures = self._update_record(target, planned, target.record, ())
            records = applier.apply(planned.plan)
            self.observer.store.save()  # what apply made the cache forget, on disk too
            _, failed = self._update_record(target, planned, grown, records, done=True)
            record_failures += failed
            # A package whose zip was refused as not git's had its cache entry deleted:
            # build it again next pass instead of reusing this revision's build.
            refused = {r.name for r in records if r.reason is Reason.ARTIFACTS}
            self._built = {k: v for k, v in self._built.items() if k[1] not in refused}
        held_back = _held_back(planned, on_action)
        # A heal (`only`) reports no overlaps: only a pass's reach /status and the metric.
        return self._result(
            planned, records + held_back, revision, started, record_failures, only is None
        )

    # -- helpers ------------------------------------------------------------------------

    def _not_expanded(self, revision: str, started: float, error: Exception) -> PassResult:
        """The failed pass when the repository could not be expanded: AWS here is STS (who
        are we); anything else is expanding and building the repository (one package's build
        failure is that package's, in the plan)."""
        reason = Reason.OBSERVE if isinstance(error, AwsError) else Reason.BUILD
        return PassResult(
            revision,
            PassOutcome.FAILURE,
            started,
            time.time(),
            failures=(Failure(reason, _one_line(error)),),
            api_calls=self.sessions.counter.take(),
        )

    def _check_bucket(self, target: DesiredPass, planned: PlannedPass) -> bool:
        """One clear error (`UserError`), before any change, when the artifacts bucket is
        missing in a region the plan publishes to; True when it was checked."""
        if (
            self.dry_run
            or planned.artifacts is None
            or not any(action.kind.publishes(action.verb) for action in planned.plan.actions)
        ):
            return False
        for region in target.regions:
            check_bucket(self.sessions.home(region), planned.artifacts.bucket)
        return True

    def _update_record(
        self,
        target: DesiredPass,
        planned: PlannedPass,
        record: Record | None,
        records: tuple[ActionRecord, ...],
        *,
        done: bool = False,
    ) -> tuple[Record | None, tuple[Failure, ...]]:
        """Add the desired locations to the record (before apply: only when the plan changes
        something and a location is new) and, once apply is `done`, drop those it cleaned.
        Returns the record as written, for the next write's condition."""
        if record is None or target.record_at is None:
            return record, ()
        where = target.where or Locations(target.regions, target.accounts)
        home = self.sessions.home_account()
        wanted = desired_places(planned.desired, where, home)
        if not done:
            if not planned.plan.actions or wanted <= record.places:
                return record, ()
            clean: frozenset[Location] = frozenset()
        else:
            clean = cleaned(
                record.places,
                wanted,
                planned.observed,
                planned.unreachable,
                planned.held,
                records,
            )
        bucket, key = target.record_at
        try:
            written = write_record(
                self.sessions.home(self.sessions.default_region()),
                bucket,
                key,
                record,
                merge(wanted, clean),
                owner=self.owner,
                source=self.source,
            )
        except AwsError as error:
            self._records.pop(target.record_at, None)  # read it again next pass
            failure = Failure(
                Reason.LOCATION,
                f"the location record s3://{bucket}/{key} could not be written "
                f"({_one_line(error)}): check s3:PutObject on the artifacts bucket",
            )
            return None, (failure,)
        self._records[target.record_at] = written
        return written, ()

    def _clients_for(self, location: Location) -> AwsClients:
        return self.sessions.for_account(
            location.account, location.region, self._roles.get(location.account)
        )

    def _build(
        self, repository: Repository, package: Package, version: PackageVersion, revision: str
    ) -> DesiredVersion:
        # Within a revision: built once. Across revisions, build_version's own cache keeps
        # it cheap: the zips in work_dir/build are reused when their sources' digest is
        # unchanged, and unchanged sources are not re-hashed (hard links, inode memo).
        key = (revision, package.name, version.name)
        cached = self._built.get(key)
        if cached is not None:
            return cached
        from controller.packaging import build_version

        out_dir = self.work_dir / "build" / package.name / version.name
        out_dir.mkdir(parents=True, exist_ok=True)
        built = build_version(repository, package, version, out_dir)
        manifest_path = out_dir / "manifest.json"
        manifest_path.write_bytes(built.manifest)
        result = desired_version(
            version.name,
            built.manifest,
            (ArtifactFile(f.name, Path(f.path), f.sha256, f.size) for f in built.files),
            manifest_path,
        )
        # Keep only this revision's builds: older revisions will not be asked for again.
        self._built = {k: v for k, v in self._built.items() if k[0] == revision}
        self._built[key] = result
        return result

    def _result(
        self,
        planned: PlannedPass,
        records: tuple[ActionRecord, ...],
        revision: str,
        started: float,
        pass_failures: tuple[Failure, ...] = (),
        overlaps: bool = True,
    ) -> PassResult:
        failed = {
            (r.kind, r.name, r.account, r.region): r.message
            for r in records
            if r.result is ActionResult.FAILURE
        }
        not_done = {
            (r.kind, r.name, r.account, r.region)
            for r in records
            if r.result is ActionResult.SKIPPED
        }
        applied = not self.dry_run and not pass_failures
        resources: list[ResourceStatus] = []
        for status in planned.plan.resources:
            key = (status.kind, status.name, status.account, status.region)
            if key in failed:
                status = replace(status, state=ResourceState.FAILED, message=failed[key])
            elif applied and status.state is ResourceState.DRIFTED and key not in not_done:
                status = replace(status, state=ResourceState.IN_SYNC, message="")
            resources.append(status)
        for blocked in planned.plan.blocked:
            action = blocked.action
            resources.append(
                ResourceStatus(
                    action.kind,
                    action.name,
                    action.location.account,
                    action.location.region,
                    ResourceState.DRIFTED,
                    f"{action.verb} blocked: {blocked.reason}",
                )
            )
        failures = (
            pass_failures
            + planned.failures
            + tuple(
                Failure(
                    r.reason or Reason.APPLY,
                    r.message,
                    kind=r.kind,
                    name=r.name,
                    action=r.action,
                    location=Location(r.account, r.region),
                )
                for r in records
                if r.result is ActionResult.FAILURE
            )
        )
        outcome = _outcome(failures, records)
        rollouts = _rollouts(planned.observed)
        # Resolving targets costs EC2 calls: not for a heal, whose overlaps nobody reads.
        found = self.overlaps.detect(planned.observed, self._clients_for) if overlaps else ()
        return PassResult(
            revision=revision,
            outcome=outcome,
            started_at=started,
            finished_at=time.time(),
            resources=tuple(resources),
            actions=records,
            blocked=tuple(b.describe() for b in planned.plan.blocked),
            failures=failures,
            api_calls=self.sessions.counter.take(),
            rollouts=rollouts,
            overlaps=found,
            locations=planned.locations,
            progressive=_after_rollout_steps(planned.plan, records),
        )


def _after_rollout_steps(
    planned: Plan, records: tuple[ActionRecord, ...]
) -> tuple[RolloutStatus, ...]:
    """The rollouts' status with the steps this pass applied (issue 13)."""
    done = {
        (r.name, r.account, r.region)
        for r in records
        if r.action == Verb.ROLLOUT and r.result is ActionResult.SUCCESS
    }
    steps = {
        (a.name, a.location.account, a.location.region): a.step
        for a in planned.actions
        if isinstance(a.step, AdvanceRollout)
    }
    # The default this pass moved (the last step of a rollout that succeeded): the status
    # was computed before apply, and no later pass may come soon to correct it.
    moved = {
        (r.name, r.account, r.region)
        for r in records
        if r.action == Verb.SET_DEFAULT and r.result is ActionResult.SUCCESS
    }
    now = time.time()
    statuses = []
    for status in planned.rollouts:
        key = (status.package, status.account, status.region)
        step = steps.get(key)
        if key in done and isinstance(step, AdvanceRollout):
            status = after_step(status, step, now)
        if key in moved and status.state == "succeeded" and status.target:
            status = replace(status, live_default=status.target)
        statuses.append(status)
    return tuple(statuses)


def _unread_failures(observed: Observed) -> tuple[Failure, ...]:
    """One failure per location that could not be read completely (logged, in /status)."""
    kinds: dict[Location, list[str]] = {}
    reasons: dict[Location, list[str]] = {}
    for unread in observed.unread:
        kinds.setdefault(unread.location, []).append(f"{unread.kind}s")
        reasons.setdefault(unread.location, []).append(unread.reason)
    return tuple(
        Failure(
            Reason.OBSERVE,
            f"could not read its {' and '.join(kinds[location])} completely, so "
            f"none of them there was changed or deleted this pass ({'; '.join(found)})",
            location=location,
        )
        for location, found in sorted(reasons.items())
    )


def _plan_failures(errors: tuple[PlanError, ...], desired: Desired) -> tuple[Failure, ...]:
    """The plan's errors with their reason: a package whose build failed (plan reports it
    from `Desired.errors`, word for word) is `build`; every other is a change the plan
    refused (published content changed, too many versions, another source's resource)."""
    built_badly = set(desired.errors)
    return tuple(
        Failure(
            error.reason
            or (
                Reason.BUILD
                if error.kind == "package" and (error.name, error.message) in built_badly
                else Reason.PLAN_REJECTED
            ),
            error.message,
            kind=error.kind,
            name=error.name,
            location=error.location,
        )
        for error in errors
    )


def _artifacts(repository: Repository) -> ArtifactBucket | None:
    settings = repository.settings
    if settings is None or not settings.artifacts.bucket:
        return None
    return ArtifactBucket(settings.artifacts.bucket, settings.artifacts.prefix)


def _rollouts(observed: Observed) -> tuple[Rollout, ...]:
    """The association overviews (DescribeAssociation / ListAssociations `Overview`)."""
    return tuple(
        Rollout(
            a.name,
            str(a.overview.get("Status", "")),
            _counts(a.overview.get("AssociationStatusAggregatedCount")),
            a.location.account,
            a.location.region,
        )
        for a in observed.associations
        if a.overview
    )


def _counts(value: object) -> dict[str, int]:
    """AssociationStatusAggregatedCount: {"Success": 3, "Failed": 1}."""
    if not isinstance(value, dict):
        return {}
    return {str(key): int(count) for key, count in value.items()}


def _outcome(failures: tuple[Failure, ...], records: tuple[ActionRecord, ...]) -> PassOutcome:
    """A failed rollout (a gate that failed, a tag to clear) is a state of the fleet that
    lasts until the repository names another version, not a failure of the pass: it is
    reported (the package FAILED, `rollout_state`, `pass_errors_total{reason="rollout"}`) but
    does not make every later pass a failure (retried at each poll, paging as "no
    successful pass" while the rollback did exactly its job)."""
    if any(failure.reason is not Reason.ROLLOUT for failure in failures):
        return PassOutcome.FAILURE
    if any(r.result is ActionResult.SUCCESS for r in records):
        return PassOutcome.SUCCESS
    return PassOutcome.NO_CHANGE


def _held_back(
    planned: PlannedPass, on_action: Callable[[ActionRecord], None] | None
) -> tuple[ActionRecord, ...]:
    """Deletions the safety rules held back are actions too: logged, counted in
    actions_total{result="blocked"}, and listed with the pass's other actions."""
    held_back = tuple(
        ActionRecord(
            blocked.action.kind,
            blocked.action.verb,
            blocked.action.name,
            blocked.action.location.account,
            blocked.action.location.region,
            ActionResult.BLOCKED,
            blocked.reason,
        )
        for blocked in planned.plan.blocked
    )
    if on_action is not None:
        for record in held_back:
            on_action(record)
    return held_back


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__
