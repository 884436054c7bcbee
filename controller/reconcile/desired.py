"""Stage 2-3 of a pass: the desired state, from a loaded `Repository` and its built versions.

Pure apart from `build_version` writing zips under `work_dir`. It expands the repository over
the resolved Settings (`controller.reconcile.locations`): each association goes to its
placement (default: every Settings account and region); packages live in the controller's own
account in every region an association needs them (every Settings region when none does) and
are shared there with exactly the accounts whose associations use them, plus `shareWith`;
associations reference a package in another account by its ARN (sharing docs:
https://docs.aws.amazon.com/systems-manager/latest/userguide/distributor-working-with.html).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from controller.model.configure_package import DEFAULT_ACTION, DEFAULT_INSTALLATION_TYPE
from controller.model.state import (
    OWNER_TAG,
    ArtifactFile,
    AssociationFields,
    Desired,
    DesiredAssociation,
    DesiredPackage,
    DesiredVersion,
    Location,
    PruneRules,
    scalar_association_fields,
)
from controller.reconcile.locations import Locations, static_locations
from controller.reconcile.rollout_policy import rollout_policy
from controller.repository import (
    Association,
    Package,
    PackageVersion,
    Prune,
    Repository,
    Settings,
    reconcile_disabled,
    rollout_paused,
)

BuildFunction = Callable[[Repository, Package, PackageVersion], DesiredVersion]


def package_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:ssm:{region}:{account}:document/{name}"


def _source(model: Package | Association) -> str:
    """`path:line` of the resource's YAML (the `ssm-gitops:source` of its actions)."""
    if model.line:
        return model.where
    return model.path


def locations(
    settings: Settings | None, home_account: str, default_region: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]]:
    """(regions, (account, role ARN or None) ...) from Settings' explicit entries, with the
    defaults (OU entries need Organizations: `controller.reconcile.locations`)."""
    resolved = static_locations(settings, home_account, default_region)
    return resolved.regions, resolved.accounts


def association_spec(association: Association, package_ref: str, region: str) -> AssociationFields:
    """The normalised fields of one repository Association (see aws.associations)."""
    parameters: dict[str, str] = {
        "action": association.action or DEFAULT_ACTION,
        "name": package_ref,
    }
    installation_type = association.installation_type
    if installation_type and installation_type != DEFAULT_INSTALLATION_TYPE:
        parameters["installationType"] = installation_type
    if association.version:
        parameters["version"] = association.version
    arguments = dict(association.additional_arguments)
    if arguments:
        parameters["additionalArguments"] = json.dumps(
            arguments, sort_keys=True, separators=(",", ":")
        )
    targets = [
        (target.key.strip(), tuple(sorted(value.strip() for value in target.values)))
        for target in association.targets
    ]
    output = association.output
    output_pair: tuple[str, str, str] | None = None
    if output is not None and output.s3_bucket:
        # The log bucket's region defaults to the association's (OutputS3Region).
        output_pair = (output.s3_bucket, output.s3_key_prefix or "", output.s3_region or region)
    # Every other field is converted from its declaration (model.state.AssociationField).
    scalars: dict[str, Any] = {
        name: declared.normalise(getattr(association, name))
        for name, declared in scalar_association_fields()
    }
    return AssociationFields(
        parameters=tuple(sorted(parameters.items())),
        targets=tuple(sorted(targets)),
        output=output_pair,
        **scalars,
    )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def desired_state(
    repository: Repository,
    *,
    owner: str,
    home_account: str,
    default_region: str,
    build: BuildFunction,
    where: Locations | None = None,
) -> Desired:
    """Expand the repository into every (account, region) it manages.

    `where` is Settings resolved (`controller.reconcile.locations`); omitted: Settings'
    explicit accounts and regions. Each association goes to its placement within them.

    `build(repository, package, version)` returns the `DesiredVersion` (manifest + zips); a
    failure there is an error for that package only.
    """
    settings = repository.settings
    where = where or static_locations(settings, home_account, default_region)
    associations, users = _associations(repository, where, home_account)
    packages, errors = _packages(repository, where, home_account, owner, build, users)
    prune = settings.prune if settings else Prune()  # no Settings: Prune's defaults
    return Desired(
        packages=tuple(packages),
        associations=tuple(associations),
        prune=PruneRules(enabled=prune.enabled, max_deletes=prune.max_deletes),
        suspended=settings.suspend if settings else False,
        errors=tuple(errors),
    )


def _associations(
    repository: Repository, where: Locations, home_account: str
) -> tuple[list[DesiredAssociation], dict[str, dict[str, set[str]]]]:
    """Each association at every location of its placement; and where each of our packages
    is needed: package -> region -> the accounts whose associations use it there."""
    names = {package.name for package in repository.packages}
    associations: list[DesiredAssociation] = []
    users: dict[str, dict[str, set[str]]] = {name: {} for name in names}
    for association in repository.associations:
        placed, _outside = where.place(association)  # the outside parts: engine reports them
        for location in placed:
            account, region = location.account, location.region
            ref = association.package
            if ref in names:
                users[ref].setdefault(region, set()).add(account)
                if account != home_account:
                    ref = package_arn(region, home_account, ref)
            associations.append(
                DesiredAssociation(
                    name=association.name,
                    location=location,
                    spec=association_spec(association, ref, region),
                    package=association.package,
                    source=_source(association),
                    disabled=reconcile_disabled(association),
                )
            )
    return associations, users


def _packages(
    repository: Repository,
    where: Locations,
    home_account: str,
    owner: str,
    build: BuildFunction,
    users: dict[str, dict[str, set[str]]],
) -> tuple[list[DesiredPackage], list[tuple[str, str]]]:
    """Each package in our account, in every region an association needs it (every Settings
    region when none does), shared there with exactly those associations' accounts plus
    `shareWith`; and the build errors."""
    packages: list[DesiredPackage] = []
    errors: list[tuple[str, str]] = []
    for package in repository.packages:
        try:
            versions = tuple(build(repository, package, version) for version in package.versions)
        except Exception as error:  # one package's build failure stays with that package
            # The package stays desired (with no versions): plan reports it failed and leaves
            # it alone. Dropping it would read as "removed from the repository" and prune it.
            errors.append((package.name, f"build failed: {_one_line(error)}"))
            versions = ()
        tags = dict(package.tags)
        tags[OWNER_TAG] = owner
        default = package.default_version or (package.versions[-1].name if package.versions else "")
        needed = users[package.name] or {region: set() for region in where.regions}
        for region in where.regions:
            if region not in needed:
                continue
            share = set(package.share_with)
            if "All" not in share:
                share |= needed[region] - {home_account}
            packages.append(
                DesiredPackage(
                    name=package.name,
                    location=Location(home_account, region),
                    default_version=default,
                    share_with=frozenset(share),
                    tags=tuple(sorted(tags.items())),
                    prune_versions=package.prune_versions,
                    versions=versions,
                    source=_source(package),
                    disabled=reconcile_disabled(package),
                    rollout=rollout_policy(package),
                    rollout_paused=rollout_paused(package),
                )
            )
    return packages, errors


def desired_version(
    name: str, manifest: bytes, files: Iterable[ArtifactFile], manifest_path: Path | None = None
) -> DesiredVersion:
    """A DesiredVersion from built bytes; the hash is what DescribeDocument reports."""
    return DesiredVersion(
        name=name,
        content=manifest.decode("utf-8"),
        content_sha256=hashlib.sha256(manifest).hexdigest(),
        files=tuple(files),
        manifest_path=manifest_path,
    )
