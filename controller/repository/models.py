"""The repository format, declared once: each YAML mapping's pydantic model, and the resources.

Stage 1 of a pass. Each YAML mapping users write has one model here (`PackageSpec`,
`AssociationSpec`, `Target`, ...): its camelCase keys, single-field AWS rules (each cites
`rules.py`), defaults and the descriptions the JSON Schema publishes (`schema.py`). Unknown
keys are errors (`extra="forbid"`), so a typo never passes silently. Rules that span fields
or documents live in `checks.py`.

The resources the later stages use (`Package`, `PackageVersion`, `PackageFile`,
`Association`, `Settings`) are those same models, extended with their document's
`metadata` (name, tags, annotations) and their position: nothing is declared twice, and the
loader builds them from the validated documents without naming a field. Their attributes
are snake_case (the YAML's camelCase keys are aliases). Every resource remembers the file
(`path`, as shown in messages) and `line` it came from, so any later stage can point a user
at the YAML; `path` and `line` do not take part in `==` or `hash()`: the same resource moved
to another file is equal.

Defaults that matter to the reconciler:
- `Association.action` "Install", `installation_type` "Uninstall and reinstall" (the
  defaults of AWS-ConfigureAWSPackage: `DEFAULT_ACTION`, `DEFAULT_INSTALLATION_TYPE`);
- `Association.version` None: the package's default version (the agent's blank version);
- `max_concurrency`, `max_errors`, `compliance_severity`, `schedule`, `output` None: the
  field is not given to CreateAssociation, so SSM applies its own behaviour (no rate
  control: every target at once, no error threshold; no schedule: run once);
- `Settings.prune` disabled with `max_deletes` 10; `Settings.suspend` False.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from controller.model.configure_package import DEFAULT_ACTION, DEFAULT_INSTALLATION_TYPE
from controller.model.fingerprint import FINGERPRINT_TAGS
from controller.model.ownership import OWNER_TAG, SOURCE_TAG
from controller.model.rollout import (
    ALARM_NAME_MAX,
    MAX_ALARMS,
    MAX_BAKE_SECONDS,
    ROLLOUT_ANNOTATION,
    ROLLOUT_TAG,
    parse_duration,
    parse_max_failed,
)
from controller.model.state import DEFAULT_MAX_DELETES
from controller.repository import rules, schedules

API_VERSION = "ssm-gitops/v1"
RECONCILE_ANNOTATION = "ssm-gitops/reconcile"


def _rule(check: Callable[[str], str | None]) -> AfterValidator:
    """Run a `rules`-style check; its sentence becomes the error message as it is."""

    def validate(value: str) -> str:
        problem = check(value)
        if problem:
            raise PydanticCustomError("spec", problem)
        return value

    return AfterValidator(validate)


def _matches(regex: re.Pattern[str], what: str, advice: str) -> AfterValidator:
    """Check `regex` with a message saying what to write (pydantic's would not)."""

    def check(value: str) -> str | None:
        if regex.match(value):
            return None
        return f"{value!r} is not a valid {what}: {advice}"

    return _rule(check)


_ANNOTATIONS = "ssm-gitops/reconcile: disabled leaves this resource alone"
_DURATION_TEXT = r"^[0-9]{1,5}(s|m|h)$"


def _about(text: str) -> Any:
    """A field's description, shown by editors from the JSON Schema."""
    return Field(description=text)


def _pattern(regex: re.Pattern[str]) -> Any:
    """Publish `regex` in the JSON Schema only (the check itself is `_matches`)."""
    return Field(json_schema_extra={"pattern": regex.pattern})


def _package_name(value: str) -> str | None:
    if not rules.DOCUMENT_NAME.match(value):
        return (
            f"{value!r} is not a valid package name: use 3-128 letters, digits, _ - . "
            "(SSM CreateDocument Name)"
        )
    if value.lower().startswith(rules.RESERVED_DOCUMENT_PREFIXES):
        return f"{value!r} starts with a prefix AWS reserves (aws, amazon, amzn): rename it"
    return rules.path_problem(value, "package name")


def _version_name(value: str) -> str | None:
    if not rules.VERSION_NAME.match(value):
        return (
            f"{value!r} is not a valid version name: use 1-128 letters, digits, _ - . "
            "(SSM VersionName)"
        )
    return rules.path_problem(value, "version name")


def _tag_key(value: str) -> str | None:
    if not 1 <= len(value) <= 128 or not rules.TAG_TEXT.match(value):
        return f"tag key {value!r}: use 1-128 letters, digits, spaces and _ . : / = + - @"
    if value.lower().startswith("aws:"):
        return f"tag key {value!r}: the aws: prefix is reserved by AWS"
    if value in (OWNER_TAG, SOURCE_TAG, ROLLOUT_TAG, *FINGERPRINT_TAGS):
        return f"tag key {value!r} is set by the controller itself: remove it"
    return None


def _tag_value(value: str) -> str | None:
    if len(value) > 256 or not rules.TAG_TEXT.match(value):
        return f"tag value {value!r}: use at most 256 letters, digits, spaces and _ . : / = + - @"
    return None


def _share_account(value: str) -> str | None:
    if value == "All" or rules.ACCOUNT_ID.match(value):
        return None
    if value.lower() == "all":
        return f"write 'All', not {value!r}"
    return f"{value!r} is not an account id: use 12 digits in quotes, or 'All' for public"


def _ssm_argument(value: str) -> str | None:
    # AWS-ConfigureAWSPackage: every additionalArguments key must start with SSM_ (the
    # agent refuses the run otherwise); they reach the scripts as environment variables.
    if not value.startswith("SSM_") or not re.match(r"^SSM_[A-Za-z0-9_]+$", value):
        return f"additional argument {value!r} must be named SSM_<LETTERS_DIGITS_UNDERSCORES>"
    return None


VersionName = Annotated[str, _rule(_version_name), _pattern(rules.VERSION_NAME)]
PackageName = Annotated[str, _rule(_package_name), _pattern(rules.DOCUMENT_NAME)]
AssociationName = Annotated[
    str,
    _matches(
        rules.ASSOCIATION_NAME,
        "association name",
        "use 3-128 letters, digits, _ - . (SSM CreateAssociation Name)",
    ),
    _pattern(rules.ASSOCIATION_NAME),
]
TagKey = Annotated[str, _rule(_tag_key)]
TagValue = Annotated[str, _rule(_tag_value)]
ShareAccount = Annotated[str, _rule(_share_account)]
AccountId = Annotated[
    str,
    _matches(rules.ACCOUNT_ID, "account id", "use the 12 digits, in quotes"),
    _pattern(rules.ACCOUNT_ID),
]
Region = Annotated[
    str,
    _matches(rules.REGION, "region", "write a region code like us-east-1"),
    _pattern(rules.REGION),
]
OrganizationalUnitId = Annotated[
    str,
    _matches(
        rules.ORGANIZATIONAL_UNIT,
        "organizational unit id",
        "write the OU id (ou-xxxx-xxxxxxxx) or a root id (r-xxxx), not its name",
    ),
    _pattern(rules.ORGANIZATIONAL_UNIT),
]
RoleName = Annotated[
    str,
    _matches(
        rules.ROLE_NAME, "role name", "write the IAM role name, 1-64 of letters, digits, _+=,.@-"
    ),
    _pattern(rules.ROLE_NAME),
]
Bucket = Annotated[
    str,
    _matches(
        rules.S3_BUCKET,
        "S3 bucket name",
        "use 3-63 lowercase letters, digits, dots and hyphens (S3 bucket naming rules)",
    ),
    _pattern(rules.S3_BUCKET),
]
PlatformVersion = Annotated[
    str,
    _matches(
        rules.PLATFORM_VERSION,
        "platformVersion",
        'write an exact release ("2023", "7.6"), a wildcard ("7.*"), _any or *',
    ),
    _pattern(rules.PLATFORM_VERSION),
]
Schedule = Annotated[
    str,
    _rule(schedules.check_schedule),
    Field(json_schema_extra={"pattern": r"^(rate|cron)\(.+\)$"}),
]
MaxConcurrency = Annotated[
    str,
    _matches(
        rules.MAX_CONCURRENCY,
        "maxConcurrency",
        'write a number of targets ("10") or a percentage ("10%"), at least 1',
    ),
    _pattern(rules.MAX_CONCURRENCY),
]
MaxErrors = Annotated[
    str,
    _matches(
        rules.MAX_ERRORS,
        "maxErrors",
        'write a number of errors ("1") or a percentage ("10%"); "0" stops at the first error',
    ),
    _pattern(rules.MAX_ERRORS),
]
SsmArgumentName = Annotated[str, _rule(_ssm_argument)]


def _bake(value: str) -> str | None:
    if parse_duration(value) is None:
        return (
            f'bake {value!r} is not a duration: write a number and s, m or h ("30s", '
            f'"15m", "1h"), at most {MAX_BAKE_SECONDS // 3600}h'
        )
    return None


def _max_failed(value: str) -> str | None:
    if parse_max_failed(value) is None:
        return f'maxFailed {value!r}: write a number of targets ("0", "2") or a percent ("10%")'
    return None


def _alarm_name(value: str) -> str | None:
    # CloudWatch AlarmName: 1-255 characters (botocore's cloudwatch model; no pattern there,
    # https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
    # refuses ASCII control characters).
    if not 1 <= len(value) <= ALARM_NAME_MAX or any(ord(c) < 32 or ord(c) == 127 for c in value):
        return (
            f"alarm {value!r} is not a CloudWatch alarm name: use 1-{ALARM_NAME_MAX} "
            "characters, no control characters"
        )
    return None


BakeDuration = Annotated[str, _rule(_bake), Field(json_schema_extra={"pattern": _DURATION_TEXT})]
MaxFailedText = Annotated[
    str, _rule(_max_failed), Field(json_schema_extra={"pattern": r"^[0-9]{1,6}%?$"})
]
AlarmName = Annotated[str, _rule(_alarm_name)]


def _path_text(value: object) -> Path:
    """A path written in YAML: non-empty text, refused with the error types pydantic's `str`
    gives (so the loader's messages for `source: 5` or `source: ""` stay the same)."""
    if isinstance(value, Path):  # a resource built in code
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    if not value:
        raise PydanticCustomError("string_too_short", "String should have at least 1 character")
    return Path(value)


# A `source`/`installer` path: relative to the YAML file as written in a document; in a
# loaded `PackageFile`, resolved, absolute and checked to be inside the repository.
FilePath = Annotated[
    Path, BeforeValidator(_path_text), WithJsonSchema({"type": "string", "minLength": 1})
]
Platform = Literal[
    "windows",
    "amazon",
    "centos",
    "debian",
    "opensuse",
    "opensuseleap",
    "oracle",
    "redhat",
    "suse",
    "ubuntu",
]
Arch = Literal["x86_64", "386", "arm64", "_any"]
Action = Literal["Install", "Uninstall"]
InstallationType = Literal["Uninstall and reinstall", "In-place update"]
ComplianceSeverity = Literal["CRITICAL", "HIGH", "MEDIUM", "LOW", "UNSPECIFIED"]


_POSITION_FIELDS = frozenset({"path", "line"})


def _freeze(value: Any) -> Any:
    """A hashable stand-in for a field value (dicts become sorted item tuples)."""
    if isinstance(value, Mapping):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


class YamlModel(BaseModel):
    """A mapping as written in YAML: camelCase keys, nothing unknown, immutable.

    Compared and hashed by its fields' values (mappings included), never by its position.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=False,
        validate_by_alias=True,
        serialize_by_alias=True,
        field_title_generator=lambda name, _info: to_camel(name),
    )

    def _identity(self) -> tuple[Any, ...]:
        return (type(self),) + tuple(
            _freeze(getattr(self, name))
            for name in type(self).model_fields
            if name not in _POSITION_FIELDS
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, YamlModel):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())


# --- pieces of several documents --------------------------------------------------------


class Target(YamlModel):
    """One State Manager target: `{key: "tag:env", values: [prod]}` (CreateAssociation Targets)."""

    key: Annotated[
        str,
        Field(min_length=1, max_length=163),
        _about('"tag:<name>", "InstanceIds", "resource-groups:Name"'),
    ]
    values: Annotated[tuple[str, ...], Field(min_length=1, max_length=50), _about("1-50 values")]


class Output(YamlModel):
    """Where association runs write their output (CreateAssociation OutputLocation.S3Location)."""

    s3_bucket: Bucket
    s3_key_prefix: Annotated[str, Field(max_length=500)] = ""
    s3_region: Region | None = None


class Artifacts(YamlModel):
    """The S3 bucket (and key prefix) the controller uploads package zips to."""

    bucket: Annotated[Bucket, _about("S3 bucket the package zips are uploaded to")]
    prefix: Annotated[str, Field(max_length=500), _about("key prefix, e.g. packages/")] = ""


class Account(YamlModel):
    """An entry of Settings `accounts`: one account and the role the controller assumes
    there (`{id, roleArn}`), or every ACTIVE account under an AWS Organizations OU, nested
    OUs included, with the role of that name in each (`{organizationalUnit, roleName}`;
    resolved every pass by `controller.reconcile.locations`)."""

    id: Annotated[AccountId | None, _about("12-digit account id, in quotes")] = None
    role_arn: Annotated[str | None, _about("IAM role in that account to assume")] = None
    organizational_unit: Annotated[
        OrganizationalUnitId | None,
        _about("every ACTIVE account under this OU (ou-... or a root r-...), nested OUs too"),
    ] = None
    role_name: Annotated[
        RoleName | None, _about("with organizationalUnit: the role assumed in each account")
    ] = None

    @model_validator(mode="after")
    def _one_kind(self) -> Account:
        if (self.id is None) == (self.organizational_unit is None):
            raise PydanticCustomError(
                "spec",
                "give either id (with roleArn) or organizationalUnit (with roleName)",
            )
        if self.organizational_unit is not None:
            if self.role_arn is not None:
                raise PydanticCustomError(
                    "spec",
                    "an organizationalUnit entry takes roleName (the role's name in every "
                    "account), not roleArn",
                )
            if self.role_name is None:
                raise PydanticCustomError(
                    "spec",
                    "organizationalUnit needs roleName: the IAM role the controller assumes "
                    "in each of its accounts",
                )
            return self
        if self.role_name is not None:
            raise PydanticCustomError(
                "spec", "an id entry takes roleArn, not roleName: write the role's full ARN"
            )
        if self.role_arn is None:
            return self
        match = rules.ROLE_ARN.match(self.role_arn)
        if not match:
            raise PydanticCustomError(
                "spec",
                "roleArn '{role}' is not an IAM role ARN: write "
                "arn:aws:iam::<account id>:role/<name>",
                {"role": self.role_arn},
            )
        if match.group(1) != self.id:
            raise PydanticCustomError(
                "spec",
                "roleArn is in account {other} but id is {id}: use a role in the same account",
                {"other": match.group(1), "id": self.id},
            )
        return self


def _placement_account(value: object) -> object:
    """A placement account written as a bare id ("444455556666") reads as `{id: ...}`."""
    if isinstance(value, str):
        return {"id": value}
    if isinstance(value, bool | int | float):
        raise PydanticCustomError(
            "spec",
            "placement account {value} must be text: put the 12-digit id in quotes",
            {"value": value},
        )
    return value


class PlacementAccount(YamlModel):
    """One entry of an Association's `placement.accounts`: an account id or an OU."""

    id: AccountId | None = None
    organizational_unit: OrganizationalUnitId | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> PlacementAccount:
        if (self.id is None) == (self.organizational_unit is None):
            raise PydanticCustomError(
                "spec", 'write an account id ("444455556666") or {organizationalUnit: ou-...}'
            )
        return self


PlacementEntry = Annotated[
    PlacementAccount,
    BeforeValidator(_placement_account),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": rules.ACCOUNT_ID.pattern},
                {
                    "type": "object",
                    "properties": {
                        "organizationalUnit": {
                            "type": "string",
                            "pattern": rules.ORGANIZATIONAL_UNIT.pattern,
                        }
                    },
                    "required": ["organizationalUnit"],
                    "additionalProperties": False,
                },
            ]
        }
    ),
]


class Placement(YamlModel):
    """Where an association goes: accounts (ids or OUs) x regions, each within Settings;
    an omitted list means every Settings account (or region)."""

    accounts: Annotated[
        tuple[PlacementEntry, ...],
        _about("account ids in quotes or {organizationalUnit: ...}; omitted: every account"),
    ] = ()
    regions: Annotated[tuple[Region, ...], _about("omitted: every Settings region")] = ()

    @field_validator("accounts", "regions")
    @classmethod
    def _not_empty(cls, value: tuple[object, ...]) -> tuple[object, ...]:
        # Only a list that is written is checked: omitted means every one; an empty one
        # would read the same, and place everywhere what its author meant for nowhere.
        if not value:
            raise PydanticCustomError(
                "spec",
                "an empty list places nothing: name at least one, or remove the line "
                "(every one Settings lists)",
            )
        return value


class Prune(YamlModel):
    """Deletion of owned resources absent from the repository: off unless enabled."""

    enabled: Annotated[StrictBool, _about("delete owned resources absent here")] = False
    max_deletes: Annotated[int, Field(strict=True, ge=0), _about("at most this many per pass")] = (
        DEFAULT_MAX_DELETES
    )


# --- Package ---------------------------------------------------------------------------


class Metadata(YamlModel):
    """`metadata` of a Settings document."""

    name: str
    annotations: dict[str, str] = {}


class PackageMetadata(YamlModel):
    """`metadata` of a Package: its SSM document name, tags and annotations."""

    name: Annotated[PackageName, _about("the SSM document name of the package")]
    tags: Annotated[dict[TagKey, TagValue], _about("tags of the SSM document")] = {}
    annotations: Annotated[dict[str, str], _about(_ANNOTATIONS)] = {}


class AssociationMetadata(YamlModel):
    """`metadata` of an Association: its AssociationName and annotations."""

    name: Annotated[AssociationName, _about("the AssociationName")]
    annotations: Annotated[dict[str, str], _about(_ANNOTATIONS)] = {}


class FileSpec(YamlModel):
    """One platform/version/arch entry of a package version: a source folder or an installer."""

    platform: Annotated[Platform, _about("manifest platform code")]
    platform_version: Annotated[
        PlatformVersion, _about('exact ("2023"), wildcard ("7.*"), _any or *')
    ] = "_any"
    arch: Annotated[Arch, _about("x86_64, 386, arm64 or _any")]
    source: Annotated[
        FilePath | None,
        _about("folder relative to this file: install/uninstall scripts at its top, payload"),
    ] = None
    installer: Annotated[
        FilePath | None,
        _about(".rpm/.deb/.msi/.exe relative to this file; scripts are generated"),
    ] = None

    @model_validator(mode="after")
    def _source_or_installer(self) -> FileSpec:
        if (self.source is None) == (self.installer is None):
            raise PydanticCustomError(
                "spec",
                "give exactly one of source (a folder with install/uninstall scripts) or "
                "installer (an .rpm, .deb, .msi or .exe whose scripts are generated)",
            )
        return self


# One entry of `spec.versions`: a VersionName and its files. (A docstring here and on the
# other *Spec models would become a description in the JSON Schema: comments instead.)
class VersionSpec(YamlModel):
    name: Annotated[VersionName, _about("VersionName, immutable once published")]
    files: Annotated[
        tuple[FileSpec, ...],
        Field(min_length=1, max_length=rules.MAX_FILES),
        _about("one entry per platform/platformVersion/arch (at most 20)"),
    ]


# One ring of a rollout: associations of this package, started together, then baked.
class RingSpec(YamlModel):
    associations: Annotated[
        tuple[AssociationName, ...],
        Field(min_length=1),
        _about("Associations of this package in this repository, started together"),
    ]
    bake: Annotated[
        BakeDuration | None, _about('after every target reported: wait ("15m"), gate again')
    ] = None


# `spec.rollout` of a Package: how a new defaultVersion reaches the fleet, ring by ring.
class RolloutSpec(YamlModel):
    rings: Annotated[tuple[RingSpec, ...], Field(min_length=1), _about("in order")]
    max_failed: Annotated[
        MaxFailedText, _about('failed targets a ring may have: "0", "2" or "10%"')
    ] = "0"
    alarms: Annotated[
        tuple[AlarmName, ...],
        Field(max_length=MAX_ALARMS),
        _about("CloudWatch alarm names: any in ALARM fails the gate"),
    ] = ()
    on_failure: Annotated[
        Literal["rollback", "halt"], _about("rollback (default): reached rings go back")
    ] = "rollback"


# `spec` of a Package.
class PackageSpec(YamlModel):
    description: str = ""
    default_version: Annotated[VersionName | None, _about("must name a version below")] = None
    share_with: Annotated[
        tuple[ShareAccount, ...], _about('account ids in quotes, or ["All"] for public')
    ] = ()
    prune_versions: Annotated[
        StrictBool, _about("delete live versions absent here (never the default)")
    ] = False
    rollout: Annotated[
        RolloutSpec | None, _about("optional: roll a new defaultVersion out ring by ring")
    ] = None
    versions: Annotated[
        tuple[VersionSpec, ...],
        Field(min_length=1, max_length=rules.MAX_VERSIONS),
        _about("at most 25 (SSM quota)"),
    ]


class PackageDocument(YamlModel):
    """`kind: Package`: one Distributor package (an SSM document of type Package)."""

    api_version: Literal["ssm-gitops/v1"]
    kind: Literal["Package"]
    metadata: PackageMetadata
    spec: PackageSpec


# --- Association -----------------------------------------------------------------------


# `spec` of an Association (the parameters of AWS-ConfigureAWSPackage, the schedule).
class AssociationSpec(YamlModel):
    package: Annotated[
        str, Field(min_length=1), _about("a Package here, or the ARN of one shared with us")
    ]
    version: Annotated[VersionName | None, _about("omitted: the default version")] = None
    action: Action = DEFAULT_ACTION
    installation_type: InstallationType = DEFAULT_INSTALLATION_TYPE
    additional_arguments: Annotated[
        dict[SsmArgumentName, str], _about("SSM_* environment variables for the scripts")
    ] = {}
    targets: Annotated[tuple[Target, ...], Field(min_length=1, max_length=5)]
    schedule: Annotated[
        Schedule | None, _about("rate(30 minutes), rate(1 day), cron(0 2 ? * SUN *); omitted: once")
    ] = None
    max_concurrency: Annotated[MaxConcurrency | None, _about('"10" or "10%"')] = None
    max_errors: Annotated[MaxErrors | None, _about('"0", "1" or "10%"')] = None
    compliance_severity: ComplianceSeverity | None = None
    apply_only_at_cron_interval: Annotated[
        StrictBool, _about("run only at the cron times (needs a cron schedule)")
    ] = False
    output: Output | None = None
    placement: Annotated[
        Placement | None, _about("where it goes; omitted: every Settings account and region")
    ] = None


class AssociationDocument(YamlModel):
    """`kind: Association`: a State Manager association of AWS-ConfigureAWSPackage."""

    api_version: Literal["ssm-gitops/v1"]
    kind: Literal["Association"]
    metadata: AssociationMetadata
    spec: AssociationSpec


# --- Settings --------------------------------------------------------------------------


# `spec` of the Settings document.
class SettingsSpec(YamlModel):
    artifacts: Artifacts
    regions: Annotated[tuple[Region, ...], _about("omitted: the region of the environment")] = ()
    accounts: Annotated[
        tuple[Account, ...],
        _about("{id, roleArn} or {organizationalUnit, roleName}; omitted: our own account"),
    ] = ()
    prune: Prune = Prune()
    suspend: Annotated[StrictBool, _about("pause all changes")] = False


class SettingsDocument(YamlModel):
    """`kind: Settings`: at most one per repository; where and how the controller works."""

    api_version: Literal["ssm-gitops/v1"]
    kind: Literal["Settings"]
    metadata: Metadata
    spec: SettingsSpec


DOCUMENT_KINDS: dict[str, type[YamlModel]] = {
    "Package": PackageDocument,
    "Association": AssociationDocument,
    "Settings": SettingsDocument,
}


# --- the loaded resources: the models above, with their metadata and position ------------

_M = TypeVar("_M", bound=BaseModel)


def construct(model: type[_M], *parts: Mapping[str, Any], **values: Any) -> _M:
    """Build a model from values that are already validated, giving every field.

    `parts` are merged in order (e.g. a validated spec's and metadata's `__dict__`), then
    `values`. What `model_construct` does, without its per-field default handling: the loader
    builds thousands of these from documents pydantic has just validated, and
    `model_construct` was the largest single cost of loading a large repository.
    """
    merged: dict[str, Any] = {}
    for part in parts:
        merged.update(part)
    merged.update(values)
    assert merged.keys() == model.model_fields.keys(), set(merged) ^ set(model.model_fields)
    instance = model.__new__(model)
    ordered = {name: merged[name] for name in model.model_fields}  # as pydantic orders them
    object.__setattr__(instance, "__dict__", ordered)
    object.__setattr__(instance, "__pydantic_fields_set__", set(merged))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


class Resource(YamlModel):
    """Base of the loaded resources: where the resource was written, and built in code by name.

    Listed LAST among a resource's bases, so that its configuration wins the merge: fields
    are given by their snake_case names in code (`Package(name=..., versions=...)`) and dumped
    by those names.
    """

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=False)

    path: str = Field(default="", exclude=True, repr=False, description="file, as shown")
    line: int = Field(default=0, exclude=True, repr=False, description="1-based line")

    @property
    def where(self) -> str:
        """`path:line`, for messages that point at this resource's YAML."""
        return f"{self.path}:{self.line}"


class PackageFile(FileSpec, Resource):
    """One manifest entry of a version: a platform/version/arch and what to zip for it.

    Exactly one of `source` (a folder holding install/uninstall scripts and the payload)
    and `installer` (an .rpm/.deb/.msi/.exe whose scripts are generated) is set; both are
    absolute, resolved paths checked to be inside the repository.
    """


class PackageVersion(VersionSpec, Resource):
    """A VersionName of the package and its files (immutable once published)."""

    files: tuple[PackageFile, ...]  # the YAML's limits were checked when it loaded


class Package(PackageSpec, PackageMetadata, Resource):
    """A Distributor package: an SSM document of type Package and its versions."""

    versions: tuple[PackageVersion, ...]  # the YAML's limits were checked when it loaded

    def version(self, name: str) -> PackageVersion | None:
        """The version called `name`, if the package has one."""
        return next((version for version in self.versions if version.name == name), None)


class Association(AssociationSpec, AssociationMetadata, Resource):
    """A State Manager association of AWS-ConfigureAWSPackage (see the module docstring)."""


class Settings(SettingsSpec, Metadata, Resource):
    """The repository's one Settings document: artifacts bucket, regions, accounts, prune."""


class Repository(BaseModel):
    """Everything one revision of the repository asks for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    root: Path
    packages: tuple[Package, ...] = ()
    associations: tuple[Association, ...] = ()
    settings: Settings | None = None

    def package(self, name: str) -> Package | None:
        """The package called `name`, if the repository defines one."""
        return next((package for package in self.packages if package.name == name), None)


def rollout_paused(package: Package) -> bool:
    """True when the package carries `ssm-gitops/rollout: paused`: its rollout holds."""
    return package.annotations.get(ROLLOUT_ANNOTATION, "").strip().lower() == "paused"


def reconcile_disabled(resource: Package | Association | Settings) -> bool:
    """True when the resource carries `ssm-gitops/reconcile: disabled`: leave it alone."""
    return resource.annotations.get(RECONCILE_ANNOTATION, "").strip().lower() == "disabled"
