"""After apply changed a package's versions or default: record its fingerprint tag.

Stage: apply, after every phase (`Applier.apply`). For each package whose version steps
(create, add_version, set_default, delete_version) all succeeded this pass, ONE
ListDocumentVersions reads the result and ONE AddTagsToResource writes the document's
`ssm-gitops:versions` tag (`controller.model.fingerprint`): a later `plan` with an empty cache
folder then needs no ListDocumentVersions for it while the ListDocuments row and the
repository agree. When a step failed or was skipped, the tag is removed instead (a stale one
could describe versions that are no longer all there). The hashes of new versions come from
the observer's version cache (one DescribeDocument per new version, kept for good, which the
next pass would have read anyway). A failure here is logged, never the pass's: the tag only
saves a read, and without it the versions are listed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from controller.aws import packages as aws_packages
from controller.aws import tags as aws_tags
from controller.aws.errors import AwsError
from controller.aws.session import AwsClients
from controller.model.fingerprint import VERSIONS_TAG, versions_tag_value
from controller.model.kinds import Kind
from controller.model.state import Location
from controller.reconcile.kinds import Action, AddVersion, CreatePackage, DeleteVersion, SetDefault
from controller.reconcile.observe.version import VersionCache
from controller.reconcile.result import ActionRecord, ActionResult

_log = logging.getLogger(__name__)

_VERSION_STEPS = (CreatePackage, AddVersion, SetDefault, DeleteVersion)


def record_package_fingerprints(
    clients_for: Callable[[Location], AwsClients],
    versions: VersionCache,
    actions: Sequence[Action],
    records: Sequence[ActionRecord],
) -> None:
    """Tag every package whose versions this pass changed (see the module docstring)."""
    touched = {
        (action.location, action.name)
        for action in actions
        if action.kind is Kind.PACKAGE and isinstance(action.step, _VERSION_STEPS)
    }
    changed = dict.fromkeys(touched, True)  # -> every step of that package succeeded
    for record in records:
        key = (Location(record.account, record.region), record.name)
        if record.kind == str(Kind.PACKAGE) and key in changed:
            changed[key] = changed[key] and record.result is ActionResult.SUCCESS
    for (location, name), succeeded in changed.items():
        try:
            _record_one(clients_for(location), versions, location, name, succeeded)
        except AwsError as error:
            _log.warning("package %s (%s): fingerprint not recorded: %s", name, location, error)


def _record_one(
    clients: AwsClients, versions: VersionCache, location: Location, name: str, succeeded: bool
) -> None:
    value = None
    if succeeded:
        listed = aws_packages.list_version_infos(clients, name)
        live = versions.with_hashes(clients, location, name, listed)
        default = next((info.number for info in listed if info.is_default), "")
        if default and all(v.status == "Active" and v.name for v in live):
            value = versions_tag_value(
                default, [(v.name, v.number, v.content_sha256) for v in live]
            )
    if value is None:
        aws_tags.remove_tags(clients, "Document", name, (VERSIONS_TAG,))
    else:
        aws_tags.set_tags(clients, "Document", name, ((VERSIONS_TAG, value),))
