"""Stage 2-3 of a pass: the desired state, from a loaded `Repository` and its built versions.

Pure apart from `build_version` writing zips under `work_dir`. It expands the repository over
the Settings' regions and accounts: packages live in the controller's own account in every
region and are shared to every other account named in Settings; associations go to every
(account, region), and reference a package in another account by its ARN (sharing docs:
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
    """(regions, (account, role ARN or None) ...) from Settings, with the defaults."""
    regions = (settings.regions if settings else ()) or (default_region,)
    accounts: list[tuple[str, str | None]] = [
        (account.id, None if account.id == home_account else account.role_arn)
        for account in (settings.accounts if settings else ())
    ]
    if not accounts:
        accounts.append((home_account, None))
    return regions, tuple(accounts)


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
) -> Desired:
    """Expand the repository into every (account, region) it manages.

    `build(repository, package, version)` returns the `DesiredVersion` (manifest + zips); a
    failure there is an error for that package only.
    """
    settings = repository.settings
    regions, accounts = locations(settings, home_account, default_region)
    other_accounts = {account for account, _ in accounts if account != home_account}
    packages: list[DesiredPackage] = []
    errors: list[tuple[str, str]] = []
    names = {package.name for package in repository.packages}
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
        share = set(package.share_with)
        if "All" not in share:
            share |= other_accounts
        default = package.default_version or (package.versions[-1].name if package.versions else "")
        for region in regions:
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
    associations: list[DesiredAssociation] = []
    for association in repository.associations:
        for account, _role in accounts:
            for region in regions:
                ref = association.package
                if ref in names and account != home_account:
                    ref = package_arn(region, home_account, ref)
                associations.append(
                    DesiredAssociation(
                        name=association.name,
                        location=Location(account, region),
                        spec=association_spec(association, ref, region),
                        package=association.package,
                        source=_source(association),
                        disabled=reconcile_disabled(association),
                    )
                )
    prune = settings.prune if settings else Prune()  # no Settings: Prune's defaults
    return Desired(
        packages=tuple(packages),
        associations=tuple(associations),
        prune=PruneRules(enabled=prune.enabled, max_deletes=prune.max_deletes),
        suspended=settings.suspend if settings else False,
        errors=tuple(errors),
    )


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
