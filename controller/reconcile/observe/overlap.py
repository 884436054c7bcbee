"""Overlap detection: instances that two associations of one package fight over.

Stage: after observe, reported with the pass (`PassResult.overlaps`: `/status`, the status
page, `ssm_gitops_association_overlaps{package}`); it never changes the plan or fails a
pass. The classic mistake: an instance targeted by two associations of one package that
install different versions (a canary ring pinned to 6.10.0 and a prod association following
the default 6.9.0, with canary instances also tagged env=prod) gets one version, then the
other, on every run of either association.

`find_overlaps` is the pure rule (table-tested). `OverlapDetector` resolves the targets only
where an overlap is possible -- a location with two of our associations of one package that
install different versions -- so a fleet where every association follows the default makes
no call at all. Where it is possible, one location costs at most `MAX_PAGES` EC2
DescribeInstances pages (1000 instances each) when a `tag:`/`tag-key` target is involved,
plus at most `MAX_PAGES` DescribeInstanceInformation pages (50 each) when an
`InstanceIds: ["*"]` target is. Literal instance ids need no call. Targets this cannot
resolve (resource groups) match nothing; a read that fails is logged and the location is
skipped. Target rules: API_Target
(https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Target.html) -- the
values of one key are alternatives, several keys must all match. Only associations this
controller owns are compared: an overlap with someone else's association is not seen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from controller.aws import instances as aws_instances
from controller.aws.errors import AwsError
from controller.aws.session import AwsClients
from controller.model.state import Location, Observed
from controller.reconcile.result import Overlap

log = logging.getLogger(__name__)

# Pages of each listing per location and pass (see the module docstring).
MAX_PAGES = 10
# The version an association installs when it names none and the default is unknown.
FOLLOWS_DEFAULT = "the default version"


@dataclass(frozen=True)
class Install:
    """What one association does to a package, and whom it targets."""

    association: str
    location: Location
    package: str
    version: str  # the version it installs; "uninstall" for action Uninstall
    targets: tuple[tuple[str, tuple[str, ...]], ...]


def installs_of(observed: Observed) -> list[Install]:
    """Our associations, each as the version it installs (a blank version is the package's
    default in that region, as Distributor resolves it)."""
    defaults = {(p.name, p.location.region): p.default_version for p in observed.packages}
    found = []
    for association in observed.associations:
        parameters = dict(association.spec.parameters)
        package = parameters.get("name", "").rsplit("/", 1)[-1]
        if not package:
            continue
        if parameters.get("action", "Install") == "Uninstall":
            version = "uninstall"
        else:
            version = parameters.get("version", "") or (
                defaults.get((package, association.location.region)) or FOLLOWS_DEFAULT
            )
        found.append(
            Install(
                association.name,
                association.location,
                package,
                version,
                association.spec.targets,
            )
        )
    return found


def candidates(installs: Iterable[Install]) -> list[Install]:
    """Installs of a (location, package) that some other install there disagrees with:
    only these can overlap."""
    versions: dict[tuple[Location, str], set[str]] = {}
    for install in installs:
        versions.setdefault((install.location, install.package), set()).add(install.version)
    return [i for i in installs if len(versions[(i.location, i.package)]) > 1]


def targeted(
    targets: Sequence[tuple[str, Sequence[str]]],
    instance_tags: Mapping[str, Mapping[str, str]],
    managed: Iterable[str] = (),
) -> set[str]:
    """The instances matching every target. `instance_tags`: EC2 instances and their tags;
    `managed`: managed node ids (what `InstanceIds: ["*"]` means)."""
    if not targets:
        return set()
    every = set(instance_tags) | set(managed)
    matching: set[str] | None = None
    for key, values in targets:
        if key.lower() == "instanceids":
            one = (set(managed) or every) if "*" in values else set(values)
        elif key.startswith("tag:"):
            tag = key[len("tag:") :]
            one = {i for i, tags in instance_tags.items() if tags.get(tag) in values}
        elif key == "tag-key":
            one = {i for i, tags in instance_tags.items() if any(v in tags for v in values)}
        else:  # resource groups and other keys are not resolved here
            one = set()
        matching = one if matching is None else matching & one
    return matching or set()


def find_overlaps(
    installs: Iterable[Install],
    instance_tags: Mapping[Location, Mapping[str, Mapping[str, str]]],
    managed: Mapping[Location, Iterable[str]] | None = None,
) -> tuple[Overlap, ...]:
    """Every (package, instance) that associations installing different versions target."""
    managed = managed or {}
    by_instance: dict[tuple[Location, str, str], set[tuple[str, str]]] = {}
    for install in installs:
        hits = targeted(
            install.targets,
            instance_tags.get(install.location, {}),
            managed.get(install.location, ()),
        )
        for instance_id in hits:
            key = (install.location, install.package, instance_id)
            by_instance.setdefault(key, set()).add((install.association, install.version))
    overlaps = [
        Overlap(package, instance_id, location, tuple(sorted(found)))
        for (location, package, instance_id), found in by_instance.items()
        if len({version for _, version in found}) > 1
    ]
    return tuple(sorted(overlaps, key=lambda o: (o.package, o.location, o.instance_id)))


def overlap_counts(overlaps: Iterable[Overlap]) -> dict[str, int]:
    """package -> instances in an overlap (the metric)."""
    counts: dict[str, int] = {}
    for overlap in overlaps:
        counts[overlap.package] = counts.get(overlap.package, 0) + 1
    return counts


class OverlapDetector:
    """Resolves targets where an overlap is possible; never raises."""

    def __init__(self, max_pages: int = MAX_PAGES) -> None:
        self.max_pages = max_pages

    def detect(
        self, observed: Observed, clients_for: Callable[[Location], AwsClients]
    ) -> tuple[Overlap, ...]:
        try:
            return self._detect(observed, clients_for)
        except Exception:  # a report, never a reason for a pass to fail
            log.exception("overlap detection failed", extra={"event": "overlaps"})
            return ()

    def _detect(
        self, observed: Observed, clients_for: Callable[[Location], AwsClients]
    ) -> tuple[Overlap, ...]:
        possible = candidates(installs_of(observed))
        if not possible:
            return ()
        tags: dict[Location, Mapping[str, Mapping[str, str]]] = {}
        managed: dict[Location, set[str]] = {}
        usable: list[Install] = []
        for location in sorted({i.location for i in possible}):
            here = [i for i in possible if i.location == location]
            keys = {key for i in here for key, _ in i.targets}
            everything = any(
                key.lower() == "instanceids" and "*" in values
                for i in here
                for key, values in i.targets
            )
            try:
                clients = clients_for(location)
                if any(k.startswith("tag:") or k == "tag-key" for k in keys):
                    tags[location] = aws_instances.ec2_instance_tags(clients, self.max_pages)
                if everything:
                    managed[location] = aws_instances.managed_instance_ids(
                        clients, self.max_pages
                    )
            except (AwsError, aws_instances.TooManyPages) as error:
                log.warning(
                    "overlap detection skipped %s: could not list its instances (%s)",
                    location,
                    " ".join(str(error).split()),
                    extra={"event": "overlaps"},
                )
                continue
            usable.extend(here)
        found = find_overlaps(usable, tags, managed)
        for overlap in found:
            log.warning("association overlap: %s", overlap, extra={"event": "overlaps"})
        return found
