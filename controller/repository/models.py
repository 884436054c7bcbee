"""The desired state as the later stages see it: `Repository` and the resources in it.

Stage 1's output. Flat, frozen pydantic models with snake_case attributes (the YAML's
camelCase keys are aliases), built by the loader from the validated documents of
`documents.py`. Every resource remembers the file (`path`, as shown in messages) and
`line` it came from, so any later stage can point a user at the YAML; `path` and `line`
do not take part in `==` or `hash()`: the same resource moved to another file is equal.

Defaults that matter to the reconciler:
- `Association.action` "Install", `installation_type` "Uninstall and reinstall" (the
  defaults of AWS-ConfigureAWSPackage);
- `Association.version` None: the package's default version (the agent's blank version);
- `max_concurrency`, `max_errors`, `compliance_severity`, `schedule`, `output` None: the
  field is not given to CreateAssociation, so SSM applies its own behaviour (no rate
  control: every target at once, no error threshold; no schedule: run once);
- `Settings.prune` disabled with `max_deletes` 10; `Settings.suspend` False.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from controller.repository.documents import (
    DEFAULT_ACTION,
    DEFAULT_INSTALLATION_TYPE,
    RECONCILE_ANNOTATION,
    Account,
    Action,
    Arch,
    Artifacts,
    ComplianceSeverity,
    InstallationType,
    Output,
    Platform,
    Prune,
    Target,
)

__all__ = [
    "DEFAULT_ACTION",
    "DEFAULT_INSTALLATION_TYPE",
    "Account",
    "Artifacts",
    "Association",
    "Output",
    "Package",
    "PackageFile",
    "PackageVersion",
    "Prune",
    "Repository",
    "Settings",
    "Target",
    "reconcile_disabled",
]

_POSITION_FIELDS = frozenset({"path", "line"})
_M = TypeVar("_M", bound=BaseModel)


def _freeze(value: Any) -> Any:
    """A hashable stand-in for a field value (dicts become sorted item tuples)."""
    if isinstance(value, Mapping):
        return tuple(sorted((key, _freeze(item)) for key, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    return value


def construct(model: type[_M], **values: Any) -> _M:
    """Build a model from values that are already validated, giving every field.

    What `model_construct` does, without its per-field default handling: the loader
    builds thousands of these from documents pydantic has just validated, and
    `model_construct` was the largest single cost of loading a large repository.
    """
    assert values.keys() == model.model_fields.keys(), set(values) ^ set(model.model_fields)
    instance = model.__new__(model)
    ordered = {name: values[name] for name in model.model_fields}  # as pydantic orders them
    object.__setattr__(instance, "__dict__", ordered)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


class Resource(BaseModel):
    """Base of the models: frozen, strict about unknown fields, remembers where it came from."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        arbitrary_types_allowed=False,
    )

    path: str = Field(default="", exclude=True, repr=False, description="file, as shown")
    line: int = Field(default=0, exclude=True, repr=False, description="1-based line")

    def _identity(self) -> tuple[Any, ...]:
        return (type(self),) + tuple(
            _freeze(getattr(self, name))
            for name in type(self).model_fields
            if name not in _POSITION_FIELDS
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resource):
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    @property
    def where(self) -> str:
        """`path:line`, for messages that point at this resource's YAML."""
        return f"{self.path}:{self.line}"


class PackageFile(Resource):
    """One manifest entry of a version: a platform/version/arch and what to zip for it.

    Exactly one of `source` (a folder holding install/uninstall scripts and the payload)
    and `installer` (an .rpm/.deb/.msi/.exe whose scripts are generated) is set; both are
    absolute, resolved paths checked to be inside the repository.
    """

    platform: Platform
    platform_version: str = "_any"
    arch: Arch
    source: Path | None = None
    installer: Path | None = None


class PackageVersion(Resource):
    """A VersionName of the package and its files (immutable once published)."""

    name: str
    files: tuple[PackageFile, ...]


class Package(Resource):
    """A Distributor package: an SSM document of type Package and its versions."""

    name: str
    tags: Mapping[str, str] = Field(default_factory=dict)
    annotations: Mapping[str, str] = Field(default_factory=dict)
    description: str = ""
    default_version: str | None = None
    share_with: tuple[str, ...] = ()
    prune_versions: bool = False
    versions: tuple[PackageVersion, ...]

    def version(self, name: str) -> PackageVersion | None:
        """The version called `name`, if the package has one."""
        return next((version for version in self.versions if version.name == name), None)


class Association(Resource):
    """A State Manager association of AWS-ConfigureAWSPackage (see the module docstring)."""

    name: str
    annotations: Mapping[str, str] = Field(default_factory=dict)
    package: str
    version: str | None = None
    action: Action = DEFAULT_ACTION
    installation_type: InstallationType = DEFAULT_INSTALLATION_TYPE
    additional_arguments: Mapping[str, str] = Field(default_factory=dict)
    targets: tuple[Target, ...]
    schedule: str | None = None
    max_concurrency: str | None = None
    max_errors: str | None = None
    compliance_severity: ComplianceSeverity | None = None
    apply_only_at_cron_interval: bool = False
    output: Output | None = None


class Settings(Resource):
    """The repository's one Settings document: artifacts bucket, regions, accounts, prune."""

    name: str = "settings"
    annotations: Mapping[str, str] = Field(default_factory=dict)
    artifacts: Artifacts
    regions: tuple[str, ...] = ()
    accounts: tuple[Account, ...] = ()
    prune: Prune = Field(default_factory=Prune)
    suspend: bool = False


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


def reconcile_disabled(resource: Package | Association | Settings) -> bool:
    """True when the resource carries `ssm-gitops/reconcile: disabled`: leave it alone."""
    return resource.annotations.get(RECONCILE_ANNOTATION, "").strip().lower() == "disabled"
