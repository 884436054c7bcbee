"""Observe our associations: ListAssociations pages, ownership tags once, descriptions on change.

Stage: observe; planned in `controller.reconcile.kinds.association`, applied in
`controller.reconcile.apply.association`. ListAssociations (50 a page) carries
`AssociationVersion`, which changes on every update; DescribeAssociation is called only for
a new (id, version). Ownership tags (owner and source, one ListTagsForResource) are read once
per association id. Associations with our owner name but another source's tag are returned
apart, without their description.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from controller.aws import associations as aws_associations
from controller.aws import tags as aws_tags
from controller.aws.errors import NotFound
from controller.aws.session import AwsClients
from controller.model.kinds import Kind
from controller.model.ownership import Claim, claim
from controller.model.state import (
    SOURCE_TAG,
    AssociationFields,
    Location,
    ObservedAssociation,
    OtherSource,
)


class AssociationObserver:
    """Reads the associations of one owner and source; caches owners and specs per version."""

    def __init__(self, owner: str, source: str, max_workers: int) -> None:
        self.owner = owner
        self.source = source
        self.max_workers = max_workers
        self._lock = threading.Lock()
        # association id -> (whose, its source tag): tags are read once per association id.
        self._owned: dict[tuple[Location, str], tuple[Claim, str]] = {}
        self._specs: dict[tuple[Location, str, str], AssociationFields] = {}  # (loc, id, version)

    def clear(self) -> None:
        """Full resync: read every owner tag and description again."""
        with self._lock:
            self._owned.clear()
            self._specs.clear()

    def forget_owner(self, location: Location, association_id: str) -> None:
        """Read this association's owner tag again on the next pass."""
        # An update needs nothing: it changes AssociationVersion, the spec cache key.
        with self._lock:
            self._owned.pop((location, association_id), None)
            self._specs = {
                k: v for k, v in self._specs.items() if (k[0], k[1]) != (location, association_id)
            }

    def observe(self, clients: AwsClients) -> tuple[list[ObservedAssociation], list[OtherSource]]:
        """Our associations in one location, and those with another source's tag (apart)."""
        location = Location(clients.account, clients.region)
        summaries = list(aws_associations.list_all(clients))
        listed = {summary.association_id for summary in summaries}
        with self._lock:  # a long-running controller forgets deleted associations
            self._owned = {
                k: v for k, v in self._owned.items() if k[0] != location or k[1] in listed
            }
            self._specs = {
                k: v for k, v in self._specs.items() if k[0] != location or k[1] in listed
            }

        def one(
            summary: aws_associations.AssociationSummary,
        ) -> ObservedAssociation | OtherSource | None:
            try:
                whose, source = self._claim(clients, location, summary.association_id)
                if whose is Claim.NOT_OURS:
                    return None
                if whose is Claim.OTHER_SOURCE:
                    return OtherSource(
                        Kind.ASSOCIATION, summary.name, location, source, summary.association_id
                    )
                spec = self._spec(clients, location, summary)
            except NotFound:
                return None
            return ObservedAssociation(
                summary.association_id,
                summary.name,
                location,
                summary.version,
                spec,
                summary.overview,
                source,
            )

        with ThreadPoolExecutor(self.max_workers) as pool:
            found = list(pool.map(one, summaries))
        return (
            [a for a in found if isinstance(a, ObservedAssociation)],
            [a for a in found if isinstance(a, OtherSource)],
        )

    def _claim(
        self, clients: AwsClients, location: Location, association_id: str
    ) -> tuple[Claim, str]:
        """Whose this association is, and its source tag: one ListTagsForResource per id,
        which returns the owner and the source tag together."""
        key = (location, association_id)
        with self._lock:
            known = self._owned.get(key)
        if known is None:
            tags = aws_tags.tags_of(clients, "Association", association_id)
            known = (claim(tags, self.owner, self.source), tags.get(SOURCE_TAG, ""))
            with self._lock:
                self._owned[key] = known
        return known

    def _spec(
        self,
        clients: AwsClients,
        location: Location,
        summary: aws_associations.AssociationSummary,
    ) -> AssociationFields:
        key = (location, summary.association_id, summary.version)
        with self._lock:
            known = self._specs.get(key)
        if known is None:
            description = aws_associations.describe(clients, summary.association_id)
            known = aws_associations.spec_from_description(description, location.region)
            with self._lock:
                # Older versions of this association will never be asked for again.
                self._specs = {
                    k: v
                    for k, v in self._specs.items()
                    if not (k[0] == location and k[1] == summary.association_id)
                }
                self._specs[key] = known
        return known
