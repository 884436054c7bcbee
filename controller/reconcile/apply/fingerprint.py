"""Apply's side of a package's fingerprint: cleared before its versions change, recorded after.

Stage: apply (`Applier`). Before the first step of a pass that changes an existing package's
versions or default (add_version, set_default, delete_version), after its ownership check, ONE
RemoveTagsFromResource clears the document's `ssm-gitops:versions` tag
(`controller.model.fingerprint`): a pass killed halfway then leaves no fingerprint describing
versions that are no longer there. After every phase, for each package whose version steps
(create included) all succeeded, ONE ListDocumentVersions reads the result and ONE
AddTagsToResource writes the new fingerprint: a later `plan` with an empty cache folder then
needs no ListDocumentVersions for it while the ListDocuments row and the repository agree.
When a step failed or was skipped, the tag stays cleared. A version this pass published has
the hash of the Content it sent (DescribeDocument's Hash is the sha256 of Content); any other
comes from the observer's version cache (kept for good, read when it was observed). A failure
to write the tag is logged, never the pass's: it only saves a read, and without it the
versions are listed. A failure to clear it fails the step (the change is not made): a stale
fingerprint could hide a change from `plan`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Sequence

from controller.aws import packages as aws_packages
from controller.aws import tags as aws_tags
from controller.aws.errors import AwsError, NotFound
from controller.aws.session import AwsClients
from controller.model.fingerprint import VERSIONS_TAG, versions_tag_value
from controller.model.kinds import Kind
from controller.model.state import Location
from controller.reconcile.kinds import Action, AddVersion, CreatePackage, DeleteVersion, SetDefault
from controller.reconcile.observe.version import VersionCache
from controller.reconcile.result import ActionRecord, ActionResult

_log = logging.getLogger(__name__)

_VERSION_STEPS = (CreatePackage, AddVersion, SetDefault, DeleteVersion)


class ClearedFingerprints:
    """The packages whose fingerprint this pass cleared (once each, before their change)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cleared: set[tuple[Location, str]] = set()

    def before(self, clients: AwsClients, action: Action) -> None:
        """Call after the package's ownership check, before the step runs."""
        if action.kind is not Kind.PACKAGE or not isinstance(action.step, _VERSION_STEPS):
            return
        key = (action.location, action.name)
        with self._lock:
            if key in self._cleared:
                return
            if isinstance(action.step, CreatePackage):  # new: no fingerprint to clear
                self._cleared.add(key)
                return
        with contextlib.suppress(NotFound):  # gone since observed: the step meets that
            aws_tags.remove_tags(clients, "Document", action.name, (VERSIONS_TAG,))
        with self._lock:
            self._cleared.add(key)


def record_package_fingerprints(
    clients_for: Callable[[Location], AwsClients],
    versions: VersionCache,
    actions: Sequence[Action],
    records: Sequence[ActionRecord],
    published: Callable[[Location, str, str], str | None],
) -> None:
    """Tag every package whose versions this pass changed (see the module docstring).
    `published(location, package, VersionName)`: the number this pass published it as."""
    changed: dict[tuple[Location, str], bool] = {}  # -> every step of it succeeded
    sent: dict[tuple[Location, str], dict[tuple[str, str], str]] = {}  # -> (name, number): hash
    for action in actions:
        if action.kind is not Kind.PACKAGE or not isinstance(action.step, _VERSION_STEPS):
            continue
        key = (action.location, action.name)
        changed[key] = True
        if isinstance(action.step, AddVersion | CreatePackage):
            version = action.step.version
            number = published(action.location, action.name, version.name)
            if number is not None:
                sent.setdefault(key, {})[(version.name, number)] = version.content_sha256
    for record in records:
        key = (Location(record.account, record.region), record.name)
        if record.kind == str(Kind.PACKAGE) and key in changed:
            changed[key] = changed[key] and record.result is ActionResult.SUCCESS
    for (location, name), succeeded in changed.items():
        if not succeeded:
            continue  # the tag stays cleared
        try:
            _record_one(
                clients_for(location), versions, location, name, sent.get((location, name), {})
            )
        except AwsError as error:
            _log.warning("package %s (%s): fingerprint not recorded: %s", name, location, error)


def _record_one(
    clients: AwsClients,
    versions: VersionCache,
    location: Location,
    name: str,
    sent: dict[tuple[str, str], str],
) -> None:
    listed = aws_packages.list_version_infos(clients, name)
    default = next((info.number for info in listed if info.is_default), "")
    if not default or not all(info.status == "Active" and info.name for info in listed):
        return  # the tag stays cleared: versions the repository cannot name, or not ready
    rows = [
        (info.name, info.number, sent[(info.name, info.number)])
        for info in listed
        if (info.name, info.number) in sent
    ]
    others = [info for info in listed if (info.name, info.number) not in sent]
    rows += [
        (v.name, v.number, v.content_sha256)
        for v in versions.with_hashes(clients, location, name, others)
    ]
    value = versions_tag_value(default, rows)
    if value is not None:  # too long for a tag value: the tag stays cleared
        aws_tags.set_tags(clients, "Document", name, ((VERSIONS_TAG, value),))
