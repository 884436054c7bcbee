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
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from controller.model.state import (
    OWNER_TAG,
    ArtifactFile,
    AssociationSpec,
    Desired,
    DesiredAssociation,
    DesiredPackage,
    DesiredVersion,
    Location,
    PruneRules,
)

# AWS-ConfigureAWSPackage's default installationType (the document's Parameters section).
DEFAULT_INSTALLATION_TYPE = "Uninstall and reinstall"

BuildFunction = Callable[[Any, Any, Any], DesiredVersion]


def package_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:ssm:{region}:{account}:document/{name}"


def _source(model: Any) -> str:
    path = getattr(model, "path", None)
    line = getattr(model, "line", None)
    if path is None:
        return ""
    return f"{path}:{line}" if line else str(path)


def _disabled(model: Any) -> bool:
    annotations = getattr(model, "annotations", None) or {}
    return str(annotations.get("ssm-gitops/reconcile", "")).lower() == "disabled"


def locations(
    settings: Any, home_account: str, default_region: str
) -> tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]]:
    """(regions, (account, role ARN or None) ...) from Settings, with the defaults."""
    regions = tuple(getattr(settings, "regions", None) or ()) or (default_region,)
    accounts: list[tuple[str, str | None]] = []
    for account in getattr(settings, "accounts", None) or ():
        account_id = str(getattr(account, "id", None) or account["id"])
        role = getattr(account, "role_arn", None)
        accounts.append((account_id, None if account_id == home_account else role))
    if not accounts:
        accounts.append((home_account, None))
    return regions, tuple(accounts)


def association_spec(association: Any, package_ref: str, region: str) -> AssociationSpec:
    """The normalised fields of one repository Association (see aws.associations)."""
    parameters: dict[str, str] = {
        "action": str(association.action or "Install"),
        "name": package_ref,
    }
    installation_type = getattr(association, "installation_type", None)
    if installation_type and installation_type != DEFAULT_INSTALLATION_TYPE:
        parameters["installationType"] = str(installation_type)
    if getattr(association, "version", None):
        parameters["version"] = str(association.version)
    arguments = dict(getattr(association, "additional_arguments", None) or {})
    if arguments:
        parameters["additionalArguments"] = json.dumps(
            arguments, sort_keys=True, separators=(",", ":")
        )
    targets = []
    for target in getattr(association, "targets", None) or ():
        key = getattr(target, "key", None) or target["key"]
        values = getattr(target, "values", None)
        if values is None or callable(values):
            values = target["values"]
        targets.append((str(key).strip(), tuple(sorted(str(v).strip() for v in values))))
    output = getattr(association, "output", None)
    output_pair: tuple[str, str, str] | None = None
    if output is not None:
        bucket = getattr(output, "s3_bucket", None) or (
            output.get("s3Bucket") if isinstance(output, Mapping) else None
        )
        prefix = getattr(output, "s3_key_prefix", None) or (
            output.get("s3KeyPrefix", "") if isinstance(output, Mapping) else ""
        )
        # The log bucket's region defaults to the association's (OutputS3Region).
        bucket_region = getattr(output, "s3_region", None) or (
            output.get("s3Region") if isinstance(output, Mapping) else None
        )
        if bucket:
            output_pair = (str(bucket), str(prefix or ""), str(bucket_region or region))
    severity = getattr(association, "compliance_severity", None)
    return AssociationSpec(
        parameters=tuple(sorted(parameters.items())),
        targets=tuple(sorted(targets)),
        schedule=(str(association.schedule).strip() or None) if association.schedule else None,
        max_concurrency=_text(getattr(association, "max_concurrency", None)),
        max_errors=_text(getattr(association, "max_errors", None)),
        compliance_severity=None if severity in (None, "", "UNSPECIFIED") else str(severity),
        apply_only_at_cron_interval=bool(
            getattr(association, "apply_only_at_cron_interval", False)
        ),
        output=output_pair,
    )


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _text(value: object) -> str | None:
    return None if value is None or str(value) == "" else str(value)


def desired_state(
    repository: Any,
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
    settings = getattr(repository, "settings", None)
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
        tags = dict(getattr(package, "tags", None) or {})
        tags[OWNER_TAG] = owner
        share = set(getattr(package, "share_with", None) or ())
        if "All" not in share:
            share |= other_accounts
        default = package.default_version or (package.versions[-1].name if package.versions else "")
        for region in regions:
            packages.append(
                DesiredPackage(
                    name=package.name,
                    location=Location(home_account, region),
                    default_version=str(default),
                    share_with=frozenset(share),
                    tags=tuple(sorted((str(k), str(v)) for k, v in tags.items())),
                    prune_versions=bool(getattr(package, "prune_versions", False)),
                    versions=versions,
                    source=_source(package),
                    disabled=_disabled(package),
                )
            )
    associations: list[DesiredAssociation] = []
    for association in repository.associations:
        for account, _role in accounts:
            for region in regions:
                ref = str(association.package)
                if ref in names and account != home_account:
                    ref = package_arn(region, home_account, ref)
                associations.append(
                    DesiredAssociation(
                        name=association.name,
                        location=Location(account, region),
                        spec=association_spec(association, ref, region),
                        package=str(association.package),
                        source=_source(association),
                        disabled=_disabled(association),
                    )
                )
    prune = getattr(settings, "prune", None)
    return Desired(
        packages=tuple(packages),
        associations=tuple(associations),
        prune=PruneRules(
            enabled=bool(getattr(prune, "enabled", False)),
            max_deletes=int(getattr(prune, "max_deletes", 10) if prune is not None else 10),
        ),
        suspended=bool(getattr(settings, "suspend", False)),
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
