"""What the steps of one apply share: who we are, the pass's caches, the ownership checks.

Stage: apply. The `Applier` (`controller.reconcile.apply`) makes one `ApplyContext` per
pass and hands it to every step it runs (`.package`, `.version`, `.sharing`,
`.association`); the context is thread-safe, as steps of different resources run
concurrently.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from controller.aws import artifacts as aws_artifacts
from controller.aws import tags as aws_tags
from controller.aws.errors import NotFound
from controller.aws.session import AwsClients
from controller.errors import UserError
from controller.model.ownership import Claim, claim
from controller.model.state import OWNER_TAG, SOURCE_TAG, Location
from controller.reconcile.kinds import Action
from controller.reconcile.observe import Observer


class ActionFailed(UserError):
    """An action failed for a reason that is not an AWS error (e.g. not owned)."""


class NotOwned(Exception):
    """The resource lost our owner tag since it was observed: it is left alone."""


@dataclass(frozen=True)
class ArtifactBucket:
    bucket: str
    prefix: str


class ApplyContext:
    def __init__(
        self,
        *,
        owner: str,
        source: str,
        observer: Observer,
        artifacts: ArtifactBucket | None,
        bucket_checked: bool,
        clients_for: Callable[[Location], AwsClients] | None = None,
    ) -> None:
        self.owner = owner
        self.source = source
        self.observer = observer
        self.artifacts = artifacts
        self.lock = threading.Lock()
        self._checked: set[tuple[Location, str]] = set()  # packages whose tags were re-read
        self._bucket_lock = threading.Lock()
        self._bucket_checked = bucket_checked
        # (location, package, VersionName) -> version number, of the versions this pass
        # published: set_default needs the number and need not list the versions again.
        self._published: dict[tuple[Location, str, str], str] = {}
        self._clients_for = clients_for

    def clients_for(self, location: Location) -> AwsClients:
        """The clients of another location (a rollout pins associations in every account)."""
        if self._clients_for is None:
            raise ActionFailed(f"no AWS clients for {location}")
        return self._clients_for(location)

    # -- what this pass did ----------------------------------------------------------------

    def remember(self, location: Location, package: str, version_name: str, number: str) -> None:
        """Keep the number of a version this pass published, for a later set_default."""
        with self.lock:
            self._published[(location, package, version_name)] = number

    def published(self, location: Location, package: str, version_name: str) -> str | None:
        with self.lock:
            return self._published.get((location, package, version_name))

    def created(self, location: Location, package: str) -> None:
        """A package created with our tags just now: no need to read them again."""
        with self.lock:
            self._checked.add((location, package))

    def check_bucket_once(self, clients: AwsClients, bucket: str) -> None:
        # Checked once: by the engine before the pass (bucket_checked), else here, under the
        # lock so that two threads never both check.
        with self._bucket_lock:
            if not self._bucket_checked:
                aws_artifacts.check_bucket(clients, bucket)
                self._bucket_checked = True

    # -- ownership -------------------------------------------------------------------------

    def allowed(self, tags: dict[str, str], action: Action) -> bool:
        """Ours (both tags), or unclaimed (owner tag only) and declared by us: adoption."""
        whose = claim(tags, self.owner, self.source)
        return whose is Claim.OURS or (whose is Claim.UNCLAIMED and action.step.declared)

    def ensure_package_owned(self, clients: AwsClients, action: Action) -> None:
        """Read a package's owner and source tags afresh before its first change this pass
        (one ListTagsForResource per changed package; a quiet pass makes none)."""
        key = (action.location, action.name)
        with self.lock:
            if key in self._checked:
                return
        try:
            tags = aws_tags.tags_of(clients, "Document", action.name)
        except NotFound:
            return  # gone since observed: the action itself meets that (a delete is then done)
        if not self.allowed(tags, action):
            raise NotOwned(
                f"left alone: package {action.name} no longer carries {OWNER_TAG}={self.owner}"
                f" with {SOURCE_TAG}={self.source or '(none)'}"
            )
        with self.lock:
            self._checked.add(key)

    def ensure_association_owned(
        self, clients: AwsClients, action: Action, association_id: str
    ) -> None:
        """Read the owner and source tags afresh right before changing an association.

        Ownership is cached between full resyncs to keep a quiet pass cheap; a tag removed
        or changed by hand in between must still protect the association (contract: nothing
        without the owner tag is ever changed or deleted; an owner identifies its source).
        One call, only when there is a change.
        """
        tags = aws_tags.tags_of(clients, "Association", association_id)
        if not self.allowed(tags, action):
            self.observer.forget_owner(action.location, association_id)
            raise NotOwned(
                f"left alone: association {association_id} no longer carries "
                f"{OWNER_TAG}={self.owner} with {SOURCE_TAG}={self.source or '(none)'}"
            )
