"""The two values `plan()` compares: desired state (from git) and observed state (from SSM).

Stage: between observe and plan. Both sides use the same frozen, normalised shapes, so the
plan is a plain comparison: `controller.reconcile.desired` builds the desired side from a
loaded `Repository`, `controller.aws.*` builds the observed side from live SSM, and both
normalise (sorted targets, canonical JSON, AWS defaults filled in) so that a fresh apply
never shows drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from controller.model.kinds import Kind
from controller.model.ownership import OWNER_TAG as OWNER_TAG  # re-exported for the stages
from controller.model.ownership import SOURCE_TAG as SOURCE_TAG
from controller.model.rollout import RolloutPolicy, RolloutState, TargetCounts

# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_ModifyDocumentPermission.html
# "All" shares publicly and cannot be mixed with account ids.
SHARE_ALL = "All"
# We share every version, so associations in other accounts may pin any of them.
SHARED_VERSION = "$ALL"


@dataclass(frozen=True, order=True)
class Location:
    """Where a resource lives: an AWS account and region."""

    account: str
    region: str

    def __str__(self) -> str:
        return f"{self.account}/{self.region}"


@dataclass(frozen=True)
class ArtifactFile:
    """One zip of a package version, as built (name is unique across versions)."""

    name: str
    path: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class DesiredVersion:
    """A package version from git: the manifest (document Content) and its zips."""

    name: str  # VersionName
    content: str  # the manifest, exactly the bytes sent as Content
    content_sha256: str  # what DescribeDocument's Hash reports for that Content
    files: tuple[ArtifactFile, ...] = ()
    manifest_path: Path | None = None


@dataclass(frozen=True)
class DesiredPackage:
    name: str
    location: Location
    default_version: str
    share_with: frozenset[str]
    tags: tuple[tuple[str, str], ...]  # sorted, owner tag included
    prune_versions: bool
    versions: tuple[DesiredVersion, ...]
    source: str = ""  # path:line of the YAML document, for messages
    disabled: bool = False  # `ssm-gitops/reconcile: disabled`
    rollout: RolloutPolicy | None = None  # `spec.rollout`: a new default goes ring by ring
    rollout_paused: bool = False  # `ssm-gitops/rollout: paused`


@dataclass(frozen=True)
class AssociationField:
    """How one `AssociationFields` field is written in the repository and in AWS's requests.

    Declared once, as the field's metadata; the conversions read it: the desired side
    (`controller.reconcile.desired`), the live side and the requests
    (`controller.aws.associations`) and the plan's diff (`controller.reconcile.kinds.association`).
    A *scalar* field is the repository's attribute of the same snake_case name, normalised by
    `normalise` on both sides and sent as `aws` as it is; the others (parameters, targets,
    output) are converted by hand in those modules.
    """

    yaml: str  # the key under an Association's `spec:`: the name the plan shows
    aws: str  # the Create/UpdateAssociation parameter, echoed in AssociationDescription
    # What AWS reports when the field was not given; sent instead of None, since
    # UpdateAssociation nulls what it is not given (API_UpdateAssociation.html). A bool
    # default makes the field a flag.
    aws_default: str | bool | None = None
    scalar: bool = True

    def normalise(self, value: object) -> str | bool | None:
        """One value (the repository's or AWS's) in its comparable form: flags are bools;
        text is stripped, and none, empty or AWS's default is None."""
        if isinstance(self.aws_default, bool):
            return bool(value)
        text = "" if value is None else str(value).strip()
        return None if text in ("", self.aws_default) else text


def _declared(
    yaml: str, aws: str, aws_default: str | bool | None = None, *, scalar: bool = True
) -> dict[str, AssociationField]:
    return {"association": AssociationField(yaml, aws, aws_default, scalar)}


@dataclass(frozen=True)
class AssociationFields:
    """The fields of an AWS-ConfigureAWSPackage association we own, normalised.

    A new field is declared here once, with its YAML key and AWS parameter (and a matching
    attribute on the repository's `AssociationSpec` model, the YAML `spec:`): see
    `AssociationField`.
    """

    # sorted (key, single value); empties dropped
    parameters: tuple[tuple[str, str], ...] = field(
        metadata=_declared("parameters", "Parameters", scalar=False)
    )
    # sorted by key, values sorted
    targets: tuple[tuple[str, tuple[str, ...]], ...] = field(
        metadata=_declared("targets", "Targets", scalar=False)
    )
    schedule: str | None = field(default=None, metadata=_declared("schedule", "ScheduleExpression"))
    max_concurrency: str | None = field(
        default=None, metadata=_declared("maxConcurrency", "MaxConcurrency")
    )
    max_errors: str | None = field(default=None, metadata=_declared("maxErrors", "MaxErrors"))
    # AWS reports UNSPECIFIED when none was given (API_AssociationDescription.html).
    compliance_severity: str | None = field(
        default=None,
        metadata=_declared("complianceSeverity", "ComplianceSeverity", "UNSPECIFIED"),
    )
    apply_only_at_cron_interval: bool = field(
        default=False,
        metadata=_declared("applyOnlyAtCronInterval", "ApplyOnlyAtCronInterval", False),
    )
    # (bucket, key prefix, region)
    output: tuple[str, str, str] | None = field(
        default=None, metadata=_declared("output", "OutputLocation", scalar=False)
    )

    def parameter(self, key: str) -> str | None:
        return dict(self.parameters).get(key)


def association_fields() -> tuple[tuple[str, AssociationField], ...]:
    """(attribute name, declaration) of every `AssociationFields` field, in declaration order."""
    return _ASSOCIATION_FIELDS


def scalar_association_fields() -> tuple[tuple[str, AssociationField], ...]:
    """The fields converted from their declaration alone (see `AssociationField`)."""
    return tuple((name, declared) for name, declared in _ASSOCIATION_FIELDS if declared.scalar)


_ASSOCIATION_FIELDS = tuple(
    (each.name, each.metadata["association"]) for each in fields(AssociationFields)
)


@dataclass(frozen=True)
class DesiredAssociation:
    name: str
    location: Location
    spec: AssociationFields
    package: str  # the package name (or ARN) it installs, for ordering and messages
    source: str = ""
    disabled: bool = False


# Settings.prune.maxDeletes when the repository does not say (the YAML model's default too).
DEFAULT_MAX_DELETES = 10


@dataclass(frozen=True)
class PruneRules:
    """Settings.prune: deletions are off unless enabled, and capped per pass."""

    enabled: bool = False
    max_deletes: int = DEFAULT_MAX_DELETES


@dataclass(frozen=True)
class Desired:
    packages: tuple[DesiredPackage, ...]
    associations: tuple[DesiredAssociation, ...]
    prune: PruneRules = PruneRules()
    suspended: bool = False
    errors: tuple[tuple[str, str], ...] = ()  # (package name, message) found while building
    # Our source id (the `ssm-gitops:source` tag value); "" = no source tag (tests, legacy).
    source: str = ""


@dataclass(frozen=True)
class ObservedVersion:
    name: str  # VersionName ("" when the version was created without one)
    number: str  # DocumentVersion
    content_sha256: str  # DescribeDocument Hash
    status: str = "Active"
    status_information: str = ""


@dataclass(frozen=True)
class ObservedPackage:
    name: str
    location: Location
    default_number: str
    versions: tuple[ObservedVersion, ...]
    shared: tuple[tuple[str, str], ...]  # sorted (account id or "All", shared version)
    tags: tuple[tuple[str, str], ...]  # sorted

    @property
    def source(self) -> str:
        """Its `ssm-gitops:source` tag ("" = none: unclaimed, see controller.model.ownership)."""
        return dict(self.tags).get(SOURCE_TAG, "")

    @property
    def default_version(self) -> str:
        for version in self.versions:
            if version.number == self.default_number:
                return version.name
        return ""

    def version(self, name: str) -> ObservedVersion | None:
        for version in self.versions:
            if version.name == name:
                return version
        return None


@dataclass(frozen=True)
class ObservedAssociation:
    association_id: str
    name: str
    location: Location
    version: str  # AssociationVersion
    spec: AssociationFields
    overview: Mapping[str, object] = field(default_factory=dict)
    source: str = ""  # its `ssm-gitops:source` tag ("" = none: unclaimed)


@dataclass(frozen=True)
class Unread:
    """One kind of resource that could not be read completely in one location.

    Observation marks it; plan then changes nothing there that depends on what was not read
    and deletes nothing there (contract: never act on a partial view).
    """

    location: Location
    kind: Kind
    reason: str


@dataclass(frozen=True)
class OtherSource:
    """A resource with our owner name but another source's tag: never changed or pruned;
    a conflict when we declare it too (contract: an owner identifies its source)."""

    kind: Kind
    name: str
    location: Location
    source: str
    association_id: str = ""


@dataclass(frozen=True)
class FailedTarget:
    """One instance of a rollout ring whose run failed, and the agent's words."""

    association: str
    instance_id: str
    detail: str


@dataclass(frozen=True)
class ObservedRollout:
    """A package's rollout as observe read it (`controller.reconcile.observe.rollout`): the
    `ssm-gitops:rollout` tag and, while a ring runs, its targets' results and the alarms.

    `unstarted`: the ring's associations (ids) with no execution since the ring started;
    `read_at`: the clock when this was read (plan itself reads no clock)."""

    package: str
    location: Location
    state: RolloutState | None
    read_at: int
    counts: TargetCounts = TargetCounts()
    unstarted: tuple[str, ...] = ()
    firing: tuple[str, ...] = ()  # alarms in ALARM (or missing: never a silent pass)
    failed_targets: tuple[FailedTarget, ...] = ()
    # the ring's associations (names) whose run finished without any target: nothing tested
    untargeted: tuple[str, ...] = ()
    ring_read: bool = False  # the ring's targets and alarms were read this time
    error: str = ""  # why the ring could not be read (the plan then waits)


@dataclass(frozen=True)
class Observed:
    """Everything live that carries our owner tag, in every location we manage."""

    packages: tuple[ObservedPackage, ...] = ()
    associations: tuple[ObservedAssociation, ...] = ()
    # What could not be read: `packages`/`associations` hold nothing of those (location, kind).
    unread: tuple[Unread, ...] = ()
    others: tuple[OtherSource, ...] = ()  # our owner name, another source
    rollouts: tuple[ObservedRollout, ...] = ()  # packages with a rollout policy, live

    def unread_locations(self, kind: Kind) -> dict[Location, str]:
        """Location -> reason, for the locations where `kind` could not be read."""
        return {u.location: u.reason for u in self.unread if u.kind == kind}
