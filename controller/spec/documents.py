"""The YAML shape of each document kind, as pydantic models: the source of the JSON Schema.

Stage 1, second step: one plain YAML document -> one validated `*Document`. Keys are the
camelCase names users write; unknown keys are errors (`extra="forbid"`), so a typo never
passes silently. Single-field AWS rules live here (each cites `rules.py`); rules that span
fields or documents live in `checks.py`. The loader turns these into the flat models of
`models.py` that later stages use.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, model_validator
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from controller.spec import rules

API_VERSION = "ssm-gitops/v1"
RECONCILE_ANNOTATION = "ssm-gitops/reconcile"
OWNER_TAG = "ssm-gitops:owner"


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
    return None


def _tag_key(value: str) -> str | None:
    if not 1 <= len(value) <= 128 or not rules.TAG_TEXT.match(value):
        return f"tag key {value!r}: use 1-128 letters, digits, spaces and _ . : / = + - @"
    if value.lower().startswith("aws:"):
        return f"tag key {value!r}: the aws: prefix is reserved by AWS"
    if value == OWNER_TAG:
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


VersionName = Annotated[
    str,
    _matches(
        rules.VERSION_NAME, "version name", "use 1-128 letters, digits, _ - . (SSM VersionName)"
    ),
    _pattern(rules.VERSION_NAME),
]
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
    str, _rule(rules.check_schedule), Field(json_schema_extra={"pattern": r"^(rate|cron)\(.+\)$"})
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


class YamlModel(BaseModel):
    """A mapping as written in YAML: camelCase keys, nothing unknown, immutable."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=False,
        validate_by_alias=True,
        serialize_by_alias=True,
        field_title_generator=lambda name, _info: to_camel(name),
    )


# --- pieces shared with models.py ------------------------------------------------------


class Target(YamlModel):
    """One State Manager target: `{key: "tag:env", values: [prod]}` (CreateAssociation Targets)."""

    key: Annotated[str, Field(min_length=1, max_length=163)]
    values: Annotated[tuple[str, ...], Field(min_length=1, max_length=50)]


class Output(YamlModel):
    """Where association runs write their output (CreateAssociation OutputLocation.S3Location)."""

    s3_bucket: Bucket
    s3_key_prefix: Annotated[str, Field(max_length=500)] = ""
    s3_region: Region | None = None


class Artifacts(YamlModel):
    """The S3 bucket (and key prefix) the controller uploads package zips to."""

    bucket: Bucket
    prefix: Annotated[str, Field(max_length=500)] = ""


class Account(YamlModel):
    """An account the associations go to, and the role the controller assumes there."""

    id: AccountId
    role_arn: str | None = None

    @model_validator(mode="after")
    def _role_in_account(self) -> Account:
        if self.role_arn is None:
            return self
        match = rules.ROLE_ARN.match(self.role_arn)
        if not match:
            raise PydanticCustomError(
                "spec",
                "roleArn {role!r} is not an IAM role ARN: write "
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


class Prune(YamlModel):
    """Deletion of owned resources absent from the repository: off unless enabled."""

    enabled: StrictBool = False
    max_deletes: Annotated[int, Field(strict=True, ge=0)] = 10


# --- Package ---------------------------------------------------------------------------


class Metadata(YamlModel):
    name: str
    annotations: dict[str, str] = {}


class PackageMetadata(YamlModel):
    name: PackageName
    tags: dict[TagKey, TagValue] = {}
    annotations: dict[str, str] = {}


class AssociationMetadata(YamlModel):
    name: AssociationName
    annotations: dict[str, str] = {}


class FileSpec(YamlModel):
    """One platform/version/arch entry of a package version: a source folder or an installer."""

    platform: Platform
    platform_version: PlatformVersion = "_any"
    arch: Arch
    source: Annotated[str, Field(min_length=1)] | None = None
    installer: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _source_or_installer(self) -> FileSpec:
        if (self.source is None) == (self.installer is None):
            raise PydanticCustomError(
                "spec",
                "give exactly one of source (a folder with install/uninstall scripts) or "
                "installer (an .rpm, .deb, .msi or .exe whose scripts are generated)",
            )
        return self


class VersionSpec(YamlModel):
    name: VersionName
    files: Annotated[tuple[FileSpec, ...], Field(min_length=1, max_length=rules.MAX_FILES)]


class PackageSpec(YamlModel):
    description: str = ""
    default_version: VersionName | None = None
    share_with: tuple[ShareAccount, ...] = ()
    prune_versions: StrictBool = False
    versions: Annotated[tuple[VersionSpec, ...], Field(min_length=1, max_length=rules.MAX_VERSIONS)]


class PackageDocument(YamlModel):
    """`kind: Package`: one Distributor package (an SSM document of type Package)."""

    api_version: Literal["ssm-gitops/v1"]
    kind: Literal["Package"]
    metadata: PackageMetadata
    spec: PackageSpec


# --- Association -----------------------------------------------------------------------


class AssociationSpec(YamlModel):
    package: Annotated[str, Field(min_length=1)]
    version: VersionName | None = None
    action: Action = "Install"
    installation_type: InstallationType = "Uninstall and reinstall"
    additional_arguments: dict[SsmArgumentName, str] = {}
    targets: Annotated[tuple[Target, ...], Field(min_length=1, max_length=5)]
    schedule: Schedule | None = None
    max_concurrency: MaxConcurrency | None = None
    max_errors: MaxErrors | None = None
    compliance_severity: ComplianceSeverity | None = None
    apply_only_at_cron_interval: StrictBool = False
    output: Output | None = None


class AssociationDocument(YamlModel):
    """`kind: Association`: a State Manager association of AWS-ConfigureAWSPackage."""

    api_version: Literal["ssm-gitops/v1"]
    kind: Literal["Association"]
    metadata: AssociationMetadata
    spec: AssociationSpec


# --- Settings --------------------------------------------------------------------------


class SettingsSpec(YamlModel):
    artifacts: Artifacts
    regions: tuple[Region, ...] = ()
    accounts: tuple[Account, ...] = ()
    prune: Prune = Prune()
    suspend: StrictBool = False


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
