"""Stage 5 of a pass: apply a `Plan` to AWS, phase by phase, with bounded concurrency.

Within a phase, actions of different resources run concurrently (at most `max_workers`);
the actions of one resource run in plan order, and a failure skips that resource's later
actions only — every other resource proceeds (kopf-style: errors are values at the boundary).

Every action is idempotent, so a pass killed at any point and run again converges with no
duplicate version, association or share:
- a version is published under its VersionName; "already exists" is checked against the
  live content hash and is then success (DuplicateDocumentVersionName, DocumentAlreadyExists);
- an association is looked up by name + owner tag before it is created, and CreateAssociation
  is never retried blindly: after a throttle or 5xx we look again before retrying;
- shares, tags, default pointer and deletions converge by nature (NotFound on delete = done).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby

from controller.aws import artifacts as aws_artifacts
from controller.aws import associations as aws_associations
from controller.aws import packages as aws_packages
from controller.aws import sharing as aws_sharing
from controller.aws import tags as aws_tags
from controller.aws.errors import AwsError, Conflict, NotFound
from controller.aws.session import AwsClients
from controller.errors import UserError
from controller.model.ownership import Claim, claim
from controller.model.state import (
    OWNER_TAG,
    SOURCE_TAG,
    DesiredPackage,
    DesiredVersion,
    Location,
)
from controller.packaging.integrity import verify_artifact, verify_manifest
from controller.reconcile.observe import Observer
from controller.reconcile.plan import Action, Plan
from controller.reconcile.result import ActionRecord, ActionResult

# Test hook for the crash-safety tests: the process exits (as if killed) right after this
# many actions have completed. Never set in production.
CRASH_AFTER_ENV = "SSM_GITOPS_TEST_CRASH_AFTER_ACTIONS"


class ActionFailed(UserError):
    """An action failed for a reason that is not an AWS error (e.g. not owned)."""


class NotOwned(Exception):
    """The resource lost our owner tag since it was observed: it is left alone."""


@dataclass(frozen=True)
class Artifacts:
    bucket: str
    prefix: str


class Applier:
    def __init__(
        self,
        clients_for: Callable[[Location], AwsClients],
        *,
        owner: str,
        source: str = "",
        observer: Observer,
        artifacts: Artifacts | None,
        max_workers: int = 8,
        on_action: Callable[[ActionRecord], None] | None = None,
        stopping: threading.Event | None = None,
        bucket_checked: bool = False,
    ) -> None:
        self.clients_for = clients_for
        self.stopping = stopping
        self.owner = owner
        self.source = source
        self.observer = observer
        self._checked: set[tuple[Location, str]] = set()  # packages whose tags were re-read
        self.artifacts = artifacts
        self.max_workers = max_workers
        self.on_action = on_action
        self._lock = threading.Lock()
        self._records: list[ActionRecord] = []
        self._bucket_lock = threading.Lock()
        self._bucket_checked = bucket_checked
        # (location, package, VersionName) -> version number, of the versions this pass
        # published: set_default needs the number and need not list the versions again.
        self._published: dict[tuple[Location, str, str], str] = {}
        crash = os.environ.get(CRASH_AFTER_ENV, "")
        self._crash_after = int(crash) if crash.isdigit() else None

    def apply(self, plan: Plan) -> tuple[ActionRecord, ...]:
        for _phase, in_phase in groupby(plan.actions, key=lambda action: action.phase):
            groups: dict[tuple[str, str, Location], list[Action]] = {}
            for action in in_phase:
                groups.setdefault(action.group, []).append(action)
            with ThreadPoolExecutor(self.max_workers) as pool:
                list(pool.map(self._run_group, groups.values()))
        return tuple(self._records)

    def skip(self, plan: Plan, reason: str) -> tuple[ActionRecord, ...]:
        """A dry run: report every action as skipped."""
        for action in plan.actions:
            self._record(action, ActionResult.SKIPPED, reason, 0.0)
        return tuple(self._records)

    def _run_group(self, actions: list[Action]) -> None:
        failed = False
        for action in actions:
            if self.stopping is not None and self.stopping.is_set():
                # SIGTERM: the action in flight finishes, no new one starts. Every action
                # is idempotent, so the next start picks up exactly where this one stopped.
                self._record(action, ActionResult.SKIPPED, "the controller is stopping", 0.0)
                continue
            if failed:
                self._record(action, ActionResult.SKIPPED, "an earlier step failed", 0.0)
                continue
            started = time.monotonic()
            try:
                message = self._run(action) or ""
            except NotOwned as error:
                self._record(action, ActionResult.SKIPPED, str(error), time.monotonic() - started)
            except (AwsError, UserError) as error:
                failed = True
                self._record(action, ActionResult.FAILURE, str(error), time.monotonic() - started)
            except Exception as error:  # noqa: BLE001 - one resource never stops the pass
                failed = True
                text = " ".join(f"{type(error).__name__}: {error}".split())
                self._record(action, ActionResult.FAILURE, text, time.monotonic() - started)
            else:
                self._record(action, ActionResult.SUCCESS, message, time.monotonic() - started)
            finally:
                if action.kind == "package":
                    if action.action == "delete":
                        self.observer.forget_package_versions(action.location, action.name)
                    else:
                        self.observer.forget("package", action.location, action.name)

    def _record(self, action: Action, result: ActionResult, message: str, seconds: float) -> None:
        record = ActionRecord(
            action.kind,
            action.action,
            action.name,
            action.location.account,
            action.location.region,
            result,
            message,
            seconds,
        )
        with self._lock:
            self._records.append(record)
            done = sum(1 for r in self._records if r.result is ActionResult.SUCCESS)
        if self.on_action is not None:
            self.on_action(record)
        if self._crash_after is not None and done >= self._crash_after:
            os._exit(70)

    # -- the actions --------------------------------------------------------------------

    def _run(self, action: Action) -> str | None:
        clients = self.clients_for(action.location)
        if action.kind == "package" and action.action != "create":
            self._ensure_package_owned(clients, action)
        handler = getattr(self, f"_{action.kind}_{action.action}")
        result: str | None = handler(clients, action)
        return result

    def _package_create(self, clients: AwsClients, action: Action) -> str:
        package, version = _package(action), _version(action)
        url = self._upload(clients, package, version)
        try:
            aws_packages.create(
                clients,
                package.name,
                version.name,
                version.content,
                url,
                action.tags_set or package.tags,
            )
        except Conflict:
            # Exists already: ours from a pass that was cut short, or someone else's.
            tags = aws_tags.tags_of(clients, "Document", package.name)
            whose = claim(tags, self.owner, self.source)
            if whose is Claim.NOT_OURS:
                raise ActionFailed(
                    f"package {package.name} already exists in {action.location} without the "
                    f"tag {OWNER_TAG}={self.owner}: it is not ours, rename the package in "
                    f"{package.source}"
                ) from None
            if whose is Claim.OTHER_SOURCE:
                raise ActionFailed(
                    f"conflict: package {package.name} in {action.location} belongs to another "
                    f"source ({tags.get(SOURCE_TAG)}): left alone; declare it in one "
                    f"repository only ({package.source})"
                ) from None
            return self._publish_version(clients, action.location, package, version, url)
        published = aws_packages.wait_active(clients, package.name, version.name)
        self._remember(action.location, package.name, version.name, published.number)
        with self._lock:  # created with our tags just now: no need to read them again
            self._checked.add((action.location, package.name))
        return f"{version.name} (version {published.number})"

    def _package_add_version(self, clients: AwsClients, action: Action) -> str:
        package, version = _package(action), _version(action)
        url = self._upload(clients, package, version)
        return self._publish_version(clients, action.location, package, version, url)

    def _publish_version(
        self,
        clients: AwsClients,
        location: Location,
        package: DesiredPackage,
        version: DesiredVersion,
        url: str,
    ) -> str:
        existing = aws_packages.find_version(clients, package.name, version.name)
        if existing is None:
            # Conflict = published by an earlier attempt whose answer we lost: checked below.
            with contextlib.suppress(Conflict):
                aws_packages.add_version(clients, package.name, version.name, version.content, url)
        published = aws_packages.wait_active(clients, package.name, version.name)
        if published.content_sha256 and published.content_sha256 != version.content_sha256:
            raise ActionFailed(
                f"version {version.name} of {package.name} is already published with "
                f"different content: bump the version name in {package.source}"
            )
        self._remember(location, package.name, version.name, published.number)
        return f"{version.name} (version {published.number})"

    def _remember(self, location: Location, package: str, version_name: str, number: str) -> None:
        """Keep the number of a version this pass published, for a later set_default."""
        with self._lock:
            self._published[(location, package, version_name)] = number

    def _upload(self, clients: AwsClients, package: DesiredPackage, version: DesiredVersion) -> str:
        if self.artifacts is None:
            raise ActionFailed(
                f"package {package.name} needs an artifacts bucket: add a Settings document "
                "with spec.artifacts.bucket"
            )
        bucket = self.artifacts.bucket
        # Checked once: by the engine before the pass (bucket_checked), else here, under the
        # lock so that two threads never both check.
        with self._bucket_lock:
            if not self._bucket_checked:
                aws_artifacts.check_bucket(clients, bucket)
                self._bucket_checked = True
        folder = aws_artifacts.version_folder(self.artifacts.prefix, package.name, version.name)
        # Only git's bytes reach the fleet: S3's own SHA-256 of each object decides whether
        # it is kept (never its metadata), and a file about to go up is first checked
        # against the sha256 its manifest records (a cached zip may have changed on disk;
        # it is rebuilt once, else the version fails and nothing is published).
        for file in version.files:
            aws_artifacts.upload(
                clients,
                bucket,
                f"{folder}/{file.name}",
                file.path,
                file.sha256,
                before_put=functools.partial(verify_artifact, file.path, file.sha256),
            )
        if version.manifest_path is not None:
            aws_artifacts.upload(
                clients,
                bucket,
                f"{folder}/manifest.json",
                version.manifest_path,
                version.content_sha256,
                before_put=functools.partial(
                    verify_manifest, version.manifest_path, version.content.encode("utf-8")
                ),
            )
        return aws_artifacts.source_url(bucket, folder)

    def _package_set_default(self, clients: AwsClients, action: Action) -> str:
        with self._lock:
            number = self._published.get((action.location, action.name, action.version_name))
        if number is None:  # published by an earlier pass: look its number up
            found = aws_packages.find_version(clients, action.name, action.version_name)
            if found is None:
                raise ActionFailed(
                    f"version {action.version_name} of {action.name} is not published"
                )
            number = found.number
        aws_packages.set_default(clients, action.name, number)
        return f"{action.version_name} (version {number})"

    def _package_tag(self, clients: AwsClients, action: Action) -> None:
        aws_tags.set_tags(clients, "Document", action.name, action.tags_set)
        aws_tags.remove_tags(clients, "Document", action.name, action.tags_removed)

    def _package_share(self, clients: AwsClients, action: Action) -> str:
        aws_sharing.share(clients, action.name, action.accounts)
        return ",".join(action.accounts)

    def _package_unshare(self, clients: AwsClients, action: Action) -> str:
        with contextlib.suppress(NotFound):
            aws_sharing.unshare(clients, action.name, action.accounts)
        return ",".join(action.accounts)

    def _package_delete_version(self, clients: AwsClients, action: Action) -> str:
        with contextlib.suppress(NotFound):
            aws_packages.delete_version(clients, action.name, action.version_name)
        return action.version_name

    def _package_delete(self, clients: AwsClients, action: Action) -> None:
        with contextlib.suppress(NotFound):
            aws_packages.delete(clients, action.name)

    def _association_create(self, clients: AwsClients, action: Action) -> str:
        association = action.association
        assert association is not None

        def existing() -> str | None:
            found = self._owned_by_name(clients, association.name)
            if found is None:
                return None
            # Created by an earlier attempt or pass: make it exactly what we want.
            aws_associations.update(
                clients, found.association_id, association.name, association.spec, ""
            )
            return found.association_id

        # Looks again before every retry (controller.aws.api.create_once).
        return aws_associations.create(
            clients, association.name, association.spec, self.owner, self.source, existing=existing
        )

    def _owned_by_name(
        self, clients: AwsClients, name: str
    ) -> aws_associations.AssociationSummary | None:
        adoptable: aws_associations.AssociationSummary | None = None
        for summary in aws_associations.find_by_name(clients, name):
            tags = aws_tags.tags_of(clients, "Association", summary.association_id)
            whose = claim(tags, self.owner, self.source)
            if whose is Claim.OURS:
                return summary
            if whose is Claim.OTHER_SOURCE:
                # Created by another repository since we observed: never overwrite it.
                raise ActionFailed(
                    f"conflict: association {name} ({summary.association_id}) belongs to "
                    f"another source ({tags.get(SOURCE_TAG)}): left alone; declare it in one "
                    "repository only"
                )
            if whose is Claim.UNCLAIMED and adoptable is None:
                adoptable = summary
        if adoptable is not None:  # declared by us: adopt it (our source tag)
            aws_tags.set_tags(
                clients, "Association", adoptable.association_id, ((SOURCE_TAG, self.source),)
            )
        return adoptable

    def _allowed(self, tags: dict[str, str], action: Action) -> bool:
        """Ours (both tags), or unclaimed (owner tag only) and declared by us: adoption."""
        whose = claim(tags, self.owner, self.source)
        declared = action.package is not None or action.association is not None
        return whose is Claim.OURS or (whose is Claim.UNCLAIMED and declared)

    def _ensure_package_owned(self, clients: AwsClients, action: Action) -> None:
        """Read a package's owner and source tags afresh before its first change this pass
        (one ListTagsForResource per changed package; a quiet pass makes none)."""
        key = (action.location, action.name)
        with self._lock:
            if key in self._checked:
                return
        try:
            tags = aws_tags.tags_of(clients, "Document", action.name)
        except NotFound:
            return  # gone since observed: the action itself meets that (a delete is then done)
        if not self._allowed(tags, action):
            raise NotOwned(
                f"left alone: package {action.name} no longer carries {OWNER_TAG}={self.owner}"
                f" with {SOURCE_TAG}={self.source or '(none)'}"
            )
        with self._lock:
            self._checked.add(key)

    def _ensure_owned(self, clients: AwsClients, action: Action) -> None:
        """Read the owner and source tags afresh right before changing an association.

        Ownership is cached between full resyncs to keep a quiet pass cheap; a tag removed
        or changed by hand in between must still protect the association (contract: nothing
        without the owner tag is ever changed or deleted; an owner identifies its source).
        One call, only when there is a change.
        """
        tags = aws_tags.tags_of(clients, "Association", action.association_id)
        if not self._allowed(tags, action):
            self.observer.forget_owner(action.location, action.association_id)
            raise NotOwned(
                f"left alone: association {action.association_id} no longer carries "
                f"{OWNER_TAG}={self.owner} with {SOURCE_TAG}={self.source or '(none)'}"
            )

    def _association_tag(self, clients: AwsClients, action: Action) -> str:
        """Adopt an unclaimed association we declare: add our source tag."""
        self._ensure_owned(clients, action)
        aws_tags.set_tags(clients, "Association", action.association_id, action.tags_set)
        self.observer.forget_owner(action.location, action.association_id)
        return ", ".join(c.field for c in action.changes)

    def _association_update(self, clients: AwsClients, action: Action) -> str:
        association = action.association
        assert association is not None
        self._ensure_owned(clients, action)
        aws_associations.update(
            clients,
            action.association_id,
            association.name,
            association.spec,
            action.association_version,
        )
        return ", ".join(c.field for c in action.changes)

    def _association_delete(self, clients: AwsClients, action: Action) -> str:
        with contextlib.suppress(NotFound):
            self._ensure_owned(clients, action)
            aws_associations.delete(clients, action.association_id)
        return action.association_id


def _package(action: Action) -> DesiredPackage:
    assert action.package is not None
    return action.package


def _version(action: Action) -> DesiredVersion:
    assert action.version is not None
    return action.version
