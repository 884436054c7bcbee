"""Cross-checks: the rules that span fields, documents or the files on disk.

Stage 1, last step, after each document passed its own model (`models.py`). Every
problem is added to the shared `Problems` with the position of the YAML it concerns.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from controller.model.configure_package import DEFAULT_INSTALLATION_TYPE
from controller.repository import rules, schedules
from controller.repository.loader import LoadedDocument, Problems
from controller.repository.models import Association, Package, PackageFile, Settings
from controller.repository.naming import file_source, zips_of_version
from controller.repository.placement import check_placement
from controller.repository.sources import (
    SourceTree,
    installer_problems,
    scan_source,
    script_problems,
)


def check_repository(
    packages: Sequence[tuple[Package, LoadedDocument]],
    associations: Sequence[tuple[Association, LoadedDocument]],
    settings: Sequence[tuple[Settings, LoadedDocument]],
    *,
    root: Path,
    problems: Problems,
    invalid_packages: set[str],
    bad_references: set[Path],
    unread_texts: Sequence[str] = (),
) -> None:
    """Add every cross-document and source problem of the repository to `problems`.

    `invalid_packages` names the Package documents that failed their own validation, so an
    association naming one is not also reported as naming an unknown package;
    `bad_references` are source/installer paths already reported as unusable;
    `unread_texts` are the texts of files that could not be parsed in full: a package
    whose name appears in one may be defined there, so an association naming it is not
    reported as naming an unknown package either (the file's own error says what to fix).
    """
    trees: dict[Path, SourceTree] = {}
    _unique_names(packages, "package", problems)
    _unique_names(associations, "association", problems)
    for _extra, loaded in settings[1:]:
        first = settings[0][0]
        problems.add(
            loaded.shown,
            loaded.raw.start,
            f"a second Settings document (the first is at {first.where}): a repository has at "
            "most one; merge them",
        )
    for package, loaded in packages:
        _check_package(package, loaded, problems)
        _check_sources(package, loaded, root, trees, bad_references, problems)
    _check_zip_names(packages, problems)
    by_name = {package.name: package for package, _ in packages}
    for association, loaded in associations:
        _check_association(
            association, loaded, by_name, invalid_packages, unread_texts, trees, problems
        )
        check_placement(association, loaded, settings[0][0] if settings else None, problems)
    for item, loaded in settings:
        _check_settings(item, loaded, problems)
    associations_by_name = {association.name: association for association, _ in associations}
    for package, loaded in packages:
        _check_rollout(package, loaded, associations_by_name, problems)


def _check_rollout(
    package: Package,
    loaded: LoadedDocument,
    associations: dict[str, Association],
    problems: Problems,
) -> None:
    """A ring names associations of THIS package in this repository, each in one ring at
    most, and none of them pins a version of its own (the rollout pins and unpins them)."""
    if package.rollout is None:
        return
    seen: dict[str, int] = {}
    for r_index, ring in enumerate(package.rollout.rings):
        for a_index, name in enumerate(ring.associations):
            where = loaded.position("spec", "rollout", "rings", r_index, "associations", a_index)
            association = associations.get(name)
            if name in seen:
                problems.add(
                    loaded.shown,
                    where,
                    f"association {name!r} is already in ring {seen[name] + 1}: an association "
                    "belongs to one ring at most; remove it here",
                )
                continue
            seen[name] = r_index
            if association is None:
                problems.add(
                    loaded.shown,
                    where,
                    f"ring {r_index + 1} names association {name!r}, which is not defined in "
                    "this repository: fix the name or add the Association",
                )
            elif association.package != package.name:
                problems.add(
                    loaded.shown,
                    where,
                    f"ring {r_index + 1} names association {name!r}, which installs "
                    f"{association.package!r}, not {package.name!r}: a ring holds this "
                    "package's associations only",
                )
            elif association.version is not None:
                problems.add(
                    loaded.shown,
                    where,
                    f"association {name!r} pins version {association.version!r} "
                    f"({association.where}): a ring's associations follow the default, the "
                    "rollout pins them; remove its version",
                )


def _unique_names(
    resources: Sequence[tuple[Package | Association, LoadedDocument]],
    kind: str,
    problems: Problems,
) -> None:
    first_seen: dict[str, Package | Association] = {}
    for resource, loaded in resources:
        first = first_seen.setdefault(resource.name, resource)
        if first is not resource:
            problems.add(
                loaded.shown,
                loaded.position("metadata", "name"),
                f"{kind} {resource.name!r} is already defined at {first.where}: names must be "
                "unique; rename or remove one",
            )


def _check_package(package: Package, loaded: LoadedDocument, problems: Problems) -> None:
    names: dict[str, int] = {}
    for index, version in enumerate(package.versions):
        if version.name in names:
            problems.add(
                loaded.shown,
                loaded.position("spec", "versions", index, "name"),
                f"version {version.name!r} appears twice in package {package.name!r} (first at "
                f"line {names[version.name]}): version names must be unique",
            )
        else:
            names[version.name] = version.line
        seen: dict[tuple[str, str, str], int] = {}
        for f_index, file in enumerate(version.files):
            key = (file.platform, file.platform_version, file.arch)
            if key in seen:
                problems.add(
                    loaded.shown,
                    loaded.position("spec", "versions", index, "files", f_index),
                    f"version {version.name!r} has two files for platform {file.platform}, "
                    f"platformVersion {file.platform_version}, arch {file.arch} (first at line "
                    f"{seen[key]}): the manifest can hold only one; remove or change one",
                )
            else:
                seen[key] = file.line
    if package.default_version is not None and package.default_version not in names:
        known = ", ".join(repr(name) for name in names)
        problems.add(
            loaded.shown,
            loaded.position("spec", "defaultVersion"),
            f"defaultVersion {package.default_version!r} is not a version of this package: use "
            f"one of {known}",
        )
    share = package.share_with
    if "All" in share and len(share) > 1:
        # ModifyDocumentPermission: "All" (public) cannot be mixed with account ids.
        problems.add(
            loaded.shown,
            loaded.position("spec", "shareWith"),
            "shareWith: 'All' (public) cannot be combined with account ids: keep one or the other",
        )
    for index, account in enumerate(share):
        if account in share[:index]:
            problems.add(
                loaded.shown,
                loaded.position("spec", "shareWith", index),
                f"shareWith lists {account} twice: remove one",
            )


def _check_sources(
    package: Package,
    loaded: LoadedDocument,
    root: Path,
    trees: dict[Path, SourceTree],
    bad_references: set[Path],
    problems: Problems,
) -> None:
    for v_index, version in enumerate(package.versions):
        for f_index, file in enumerate(version.files):
            where = ("spec", "versions", v_index, "files", f_index)
            if file.source is not None:
                if file.source in bad_references:
                    continue  # already reported when resolving the path
                tree = trees.get(file.source)
                if tree is None:
                    tree = trees[file.source] = scan_source(file.source, root)
                messages = list(tree.problems) + (
                    script_problems(tree, file.platform) if file.source.is_dir() else []
                )
                if not messages:
                    continue
                position = loaded.position(*where, "source")
                for message in messages:
                    problems.add(
                        loaded.shown, position, f"source {_rel(file.source, root)}: {message}"
                    )
            elif file.installer is not None:
                if file.installer in bad_references:
                    continue
                for message in installer_problems(file.installer, file.platform):
                    position = loaded.position(*where, "installer")
                    problems.add(loaded.shown, position, f"installer: {message}")


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _check_zip_names(
    packages: Sequence[tuple[Package, LoadedDocument]], problems: Problems
) -> None:
    # Attachment names must match SSM's AttachmentsSource Name pattern and never repeat:
    # S3 keys and the document's attachments would overwrite each other, within a version
    # too (the manifest would then map both entries to the one zip left).
    owners: dict[str, tuple[str, int, PackageFile]] = {}  # zip -> (owner, version, file)
    for package, loaded in packages:
        for v_index, version in enumerate(package.versions):
            owner = f"package {package.name} version {version.name}"
            first_use: dict[Path, int] = {}
            for f_index, file in enumerate(version.files):
                first_use.setdefault(file_source(file), f_index)
            for source, name in zips_of_version(package.name, version).items():
                f_index = first_use[source]
                file = version.files[f_index]
                seen = owners.setdefault(name, (owner, id(version), file))
                valid = rules.ATTACHMENT_NAME.match(name)
                if valid and seen[2] is file:
                    continue
                if not valid:
                    problems.add(
                        loaded.shown,
                        loaded.position("spec", "versions", v_index, "name"),
                        f"zip name {name!r} is longer than SSM's 128 characters for an "
                        "attachment: shorten the package or version name",
                    )
                elif seen[1] != id(version):
                    if seen[0] == owner:
                        continue  # a package or version named twice: reported as that
                    problems.add(
                        loaded.shown,
                        loaded.position("spec", "versions", v_index, "name"),
                        f"zip name {name!r} is also produced by {seen[0]}: rename the "
                        "package or version so their zips differ",
                    )
                else:
                    where = ("spec", "versions", v_index, "files", f_index, "platformVersion")
                    problems.add(
                        loaded.shown,
                        loaded.position(*where),
                        _same_zip_in_version(name, seen[2], file),
                    )


def _same_zip_in_version(name: str, first: PackageFile, second: PackageFile) -> str:
    """Two sources of one version named alike: which spelling the user most likely meant."""
    hint = "use one source for both, or change one of them"
    for written in (second.platform_version, first.platform_version):
        # Agent: only keys ending in `.*` are wildcards, and `*`/`_any` match any version
        # (agent-semantics.md, "Which manifest entry an instance gets"): `7.x` and `all`
        # are exact releases no instance reports.
        if written.endswith(".x"):
            hint = f"the agent reads {written!r} as an exact release, not a wildcard: write "
            hint += f"{written[:-2] + '.*'!r}"
            break
        if written == "all":
            hint = "the agent reads 'all' as an exact release: write '*' or '_any'"
            break
    return (
        f"platformVersion {second.platform_version!r} makes the same zip name {name!r} as "
        f"{first.platform_version!r} at line {first.line}, from another source: one zip "
        f"would overwrite the other; {hint}"
    )


def _check_association(
    association: Association,
    loaded: LoadedDocument,
    packages: dict[str, Package],
    invalid_packages: set[str],
    unread_texts: Sequence[str],
    trees: dict[Path, SourceTree],
    problems: Problems,
) -> None:
    if association.schedule is None and association.apply_only_at_cron_interval:
        problems.add(
            loaded.shown,
            loaded.position("spec", "applyOnlyAtCronInterval"),
            "applyOnlyAtCronInterval needs a cron(...) schedule: add one or remove the flag",
        )
    rate = association.schedule is not None and schedules.is_rate(association.schedule)
    if rate and association.apply_only_at_cron_interval:
        # CreateAssociation ApplyOnlyAtCronInterval: "This parameter isn't supported for
        # rate expressions."
        problems.add(
            loaded.shown,
            loaded.position("spec", "applyOnlyAtCronInterval"),
            "applyOnlyAtCronInterval is not supported with a rate(...) schedule: use "
            "cron(...) or remove the flag",
        )
    if association.package.startswith("arn:"):
        if not rules.PACKAGE_ARN.match(association.package):
            problems.add(
                loaded.shown,
                loaded.position("spec", "package"),
                f"package {association.package!r} is not a package ARN: write "
                "arn:aws:ssm:<region>:<account id>:document/<name>",
            )
        return
    package = packages.get(association.package)
    if package is None and association.package in invalid_packages:
        return  # its own errors are reported; "not defined" would mislead
    if package is None and any(association.package in text for text in unread_texts):
        return  # a file that could not be read may define it: its error comes first
    if package is None:
        known = ", ".join(sorted(packages)) or "none defined"
        problems.add(
            loaded.shown,
            loaded.position("spec", "package"),
            f"package {association.package!r} is not defined in this repository (packages: "
            f"{known}): fix the name, or use the ARN of a package shared with you",
        )
        return
    if association.version is not None and package.version(association.version) is None:
        known = ", ".join(repr(version.name) for version in package.versions)
        problems.add(
            loaded.shown,
            loaded.position("spec", "version"),
            f"package {package.name!r} has no version {association.version!r}: use one of "
            f"{known}, or omit version to follow the default",
        )
        return
    if association.installation_type == "In-place update" and association.action == "Install":
        _check_in_place(association, loaded, package, trees, problems)


def _check_in_place(
    association: Association,
    loaded: LoadedDocument,
    package: Package,
    trees: dict[Path, SourceTree],
    problems: Problems,
) -> None:
    # Agent: an In-place update runs the new version's `update` script; a missing one
    # fails the update (agent-semantics.md). Check the version the association installs:
    # the named one, else the default, else every version (any could become default).
    name = association.version or package.default_version
    versions = [package.version(name)] if name else list(package.versions)
    for version in versions:
        if version is None:
            continue
        for file in version.files:
            script = "update" + rules.script_extension(file.platform)
            tree = trees.get(file.source) if file.source is not None else None
            if tree is not None and tree.has_script(
                "update", rules.script_extension(file.platform)
            ):
                continue
            what = (
                f"its installer {file.installer.name} (simple mode generates no update script)"
                if file.installer is not None
                else f"its source has no {script}"
            )
            problems.add(
                loaded.shown,
                loaded.position("spec", "installationType"),
                f"In-place update of {package.name} {version.name} on {file.platform}/"
                f"{file.arch} fails: {what}; add {script} or use {DEFAULT_INSTALLATION_TYPE}",
            )
            return


def _check_settings(settings: Settings, loaded: LoadedDocument, problems: Problems) -> None:
    seen: set[str] = set()
    for index, account in enumerate(settings.accounts):
        entry = account.id or account.organizational_unit or ""
        if entry in seen:
            what = "account" if account.id else "organizationalUnit"
            problems.add(
                loaded.shown,
                loaded.position("spec", "accounts", index),
                f"{what} {entry} is listed twice: remove one",
            )
        seen.add(entry)
    for index, region in enumerate(settings.regions):
        if region in settings.regions[:index]:
            problems.add(
                loaded.shown,
                loaded.position("spec", "regions", index),
                f"region {region} is listed twice: remove one",
            )
