"""Observe our associations: ListAssociations pages, ownership tags once, descriptions on change.

Stage: observe; planned in `controller.reconcile.kinds.association`, applied in
`controller.reconcile.apply.association`. ListAssociations (50 a page) carries
`AssociationVersion`, which changes on every update (API_Association); its summaries lack the
parameters, rate control, compliance severity and output location, so DescribeAssociation is
still needed, but only for a new (id, AssociationVersion): one version's fields never change,
so they are kept for good, in memory and in the lasting store (`controller.reconcile.cache`,
section `specs`). Ownership tags (owner and source, one ListTagsForResource: no list shows
tags of associations, API_ListTagsForResource) are read once per association id and kept
(section `owners`) for `OWNERS_TRUSTED_FOR_SECONDS`, a full resync included: they only decide
what the plan shows; apply reads them afresh right before any change
(`reconcile/apply/context.py`, `ensure_association_owned`). Associations with our owner name
but another source's tag are returned apart, without their description.

Fingerprints (`controller.model.fingerprint`): the same ListTagsForResource returns the
`ssm-gitops:spec` tag apply writes with every create and update. When it names the listed
AssociationVersion and the digest of the desired spec (`observe(..., desired=...)`), the live
fields are the desired ones: no DescribeAssociation, which makes a cold read (an empty cache:
`plan` on a CI runner) one call per association instead of two. A hand edit moves
AssociationVersion, and an association without the tag is described as before.

A tag is not proof: whoever may tag the association can forge one that names a hand-edited
version. So every cached spec records its `Origin`: described by us, written by us (apply's
own Create/UpdateAssociation returned that AssociationVersion for the spec it sent:
`record_written`), or fingerprint only. A fingerprint (or a fingerprint-only entry, in memory
or in the cache folder) serves a pass that only plans (`trust_fingerprints=True`: `plan`);
a pass that acts (apply, `run`'s passes, a heal) and every full resync describe it, once:
then it is "described" in the cache. An entry without an origin (written before origins
were recorded) counts as fingerprint only.

Apply feeds the same caches (`remember`): a create's or an update's answer carries the new
AssociationVersion and its fields, and a create's tags are those it sent, so the pass after
a big apply reads none of what it made back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from typing import Any

from controller.aws import associations as aws_associations
from controller.aws import tags as aws_tags
from controller.aws.errors import NotFound
from controller.aws.session import AwsClients
from controller.model.fingerprint import SPEC_TAG, spec_matches
from controller.model.kinds import Kind
from controller.model.ownership import Claim, claim
from controller.model.state import (
    SOURCE_TAG,
    AssociationFields,
    Location,
    ObservedAssociation,
    OtherSource,
    association_fields,
    scalar_association_fields,
)
from controller.reconcile.cache import LastingStore

_log = logging.getLogger(__name__)

# An association's owner tags, once read, decide what a pass shows for a day (a tag changed by
# hand in between is seen then, or at once by apply, which re-reads them before any change).
OWNERS_TRUSTED_FOR_SECONDS = 86_400.0
# The fields a stored spec was written with: an entry of an older field set is a miss (a field
# added since must be read from AWS, not taken as unset).
_SPEC_SCHEMA = ",".join(name for name, _declared in association_fields())


class Origin(StrEnum):
    """Where a cached spec came from (the `from` of a `specs` entry)."""

    DESCRIBED = "described"  # DescribeAssociation answered it
    WRITTEN = "written"  # our own Create/UpdateAssociation returned this version for it
    FINGERPRINT = "fingerprint"  # only a tag vouches for it (anyone who may tag can forge)


def _origin(value: object) -> Origin:
    """The origin an entry records; anything else (an older entry) is fingerprint only."""
    return Origin(value) if isinstance(value, str) and value in set(Origin) else Origin.FINGERPRINT


class AssociationObserver:
    """Reads the associations of one owner and source; caches owners and specs per version."""

    def __init__(
        self, owner: str, source: str, max_workers: int, store: LastingStore | None = None
    ) -> None:
        self.owner = owner
        self.source = source
        self.max_workers = max_workers
        self.store = store if store is not None else LastingStore()
        self._lock = threading.Lock()
        # association id -> (whose, its source tag, when read): tags are read once per id.
        self._owned: dict[tuple[Location, str], tuple[Claim, str, float]] = {}
        # (loc, id, version) -> its fields, and where they came from.
        self._specs: dict[tuple[Location, str, str], tuple[AssociationFields, Origin]] = {}
        # association id -> its `ssm-gitops:spec` tag, as last read with the owner tags.
        self._prints: dict[tuple[Location, str], str] = {}

    def clear(self) -> None:
        """Full resync: nothing to drop. A spec is keyed by its AssociationVersion, which every
        change moves; owner tags are kept for `OWNERS_TRUSTED_FOR_SECONDS` (contract: Budgets,
        a full resync costs the list pages plus two reads per package)."""

    def forget_owner(self, location: Location, association_id: str) -> None:
        """Read this association's owner tag again on the next pass."""
        # An update needs nothing: it changes AssociationVersion, the spec cache key.
        with self._lock:
            self._owned.pop((location, association_id), None)
            self._specs = {
                k: v for k, v in self._specs.items() if (k[0], k[1]) != (location, association_id)
            }
        self.store.drop("owners", _owner_key(location, association_id))

    def remember(
        self,
        location: Location,
        description: Mapping[str, Any],
        *,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Apply just wrote this association: keep what AWS answered, so the next observe
        reads nothing back (the pass after a big apply costs the list pages).

        `description` is the AssociationDescription of a CreateAssociation or
        UpdateAssociation answer: its AssociationVersion and every field of that version,
        which never change (API_CreateAssociation, API_UpdateAssociation), so it is kept
        like a DescribeAssociation's. `tags`: the tags a create sent (owner, source), the
        association's ownership at birth. They stay a hint like any read owner tag: apply
        reads them afresh right before any change (`ApplyContext.ensure_association_owned`).
        """
        association_id = str(description.get("AssociationId", ""))
        version = str(description.get("AssociationVersion", ""))
        if not association_id or not version:
            return
        try:
            spec = aws_associations.spec_from_description(description, location.region)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            # An answer of an unexpected shape: the change is made; the next pass reads it.
            _log.warning("association %s: answer not remembered: %s", association_id, error)
            return
        stored_key = _owner_key(location, association_id)
        # AWS's own statement of that version's fields: as good as a description.
        self._store_spec(location, association_id, version, spec, Origin.DESCRIBED)
        self._remember(location, association_id, version, (spec, Origin.DESCRIBED))
        if tags is None:
            return
        now = time.time()
        known = (claim(dict(tags), self.owner, self.source), tags.get(SOURCE_TAG, ""), now)
        self.store.put("owners", stored_key, [str(known[0]), known[1], now])
        with self._lock:
            self._owned[(location, association_id)] = known
            self._prints[(location, association_id)] = tags.get(SPEC_TAG, "")

    def observe(
        self,
        clients: AwsClients,
        desired: Mapping[tuple[Location, str], AssociationFields] | None = None,
        *,
        trust_fingerprints: bool = False,
    ) -> tuple[list[ObservedAssociation], list[OtherSource]]:
        """Our associations in one location, and those with another source's tag (apart).
        `desired`: the repository's spec by (location, association name), which a matching
        fingerprint stands for without a description, when `trust_fingerprints` (a pass
        that only plans: a forged tag can then only make a plan show nothing)."""
        location = Location(clients.account, clients.region)
        wanted = desired or {}
        summaries = list(aws_associations.list_all(clients))
        listed = {summary.association_id for summary in summaries}
        with self._lock:  # a long-running controller forgets deleted associations
            self._owned = {
                k: v for k, v in self._owned.items() if k[0] != location or k[1] in listed
            }
            self._specs = {
                k: v for k, v in self._specs.items() if k[0] != location or k[1] in listed
            }
            self._prints = {
                k: v for k, v in self._prints.items() if k[0] != location or k[1] in listed
            }
        here = f"{location.account}/{location.region}/"
        for section in ("owners", "specs"):
            for stored in self.store.keys(section):
                if stored.startswith(here) and stored[len(here) :] not in listed:
                    self.store.drop(section, stored)

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
                spec = self._spec(
                    clients,
                    location,
                    summary,
                    wanted.get((location, summary.name)),
                    trust_fingerprints=trust_fingerprints,
                )
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
            known = _owner_from_json(self.store.get("owners", _owner_key(*key)))
        if known is None or not 0 <= time.time() - known[2] <= OWNERS_TRUSTED_FOR_SECONDS:
            read_at = time.time()
            tags = aws_tags.tags_of(clients, "Association", association_id)
            known = (claim(tags, self.owner, self.source), tags.get(SOURCE_TAG, ""), read_at)
            self.store.put("owners", _owner_key(*key), [str(known[0]), known[1], read_at])
            with self._lock:
                self._prints[key] = tags.get(SPEC_TAG, "")
        with self._lock:
            self._owned[key] = known
        return known[0], known[1]

    def _spec(
        self,
        clients: AwsClients,
        location: Location,
        summary: aws_associations.AssociationSummary,
        desired: AssociationFields | None = None,
        *,
        trust_fingerprints: bool = False,
    ) -> AssociationFields:
        key = (location, summary.association_id, summary.version)
        with self._lock:
            known = self._specs.get(key)
        if known is not None and (trust_fingerprints or known[1] is not Origin.FINGERPRINT):
            return known[0]
        found: tuple[AssociationFields, Origin] | None = None
        stored = self.store.get("specs", _owner_key(location, summary.association_id))
        if (
            isinstance(stored, dict)
            and stored.get("version") == summary.version
            and stored.get("schema") == _SPEC_SCHEMA
        ):
            fields, origin = spec_from_json(stored.get("fields")), _origin(stored.get("from"))
            if fields is not None and (trust_fingerprints or origin is not Origin.FINGERPRINT):
                found = (fields, origin)
        if found is None:
            vouched = (
                self._fingerprinted(location, summary, desired) if trust_fingerprints else None
            )
            if vouched is not None:
                found = (vouched, Origin.FINGERPRINT)
            else:
                description = aws_associations.describe(clients, summary.association_id)
                found = (
                    aws_associations.spec_from_description(description, location.region),
                    Origin.DESCRIBED,
                )
            self._store_spec(location, summary.association_id, summary.version, *found)
        self._remember(location, summary.association_id, summary.version, found)
        return found[0]

    def record_written(
        self,
        location: Location,
        association_id: str,
        association_version: str,
        spec: AssociationFields,
    ) -> None:
        """Apply's own Create/UpdateAssociation returned `association_version` for the `spec`
        it sent: that version holds it (one version's fields never change,
        API_UpdateAssociation), as good as a description, so the next pass describes nothing."""
        if not association_version.isdigit():
            return
        self._store_spec(location, association_id, association_version, spec, Origin.WRITTEN)
        self._remember(location, association_id, association_version, (spec, Origin.WRITTEN))

    def _store_spec(
        self,
        location: Location,
        association_id: str,
        version: str,
        spec: AssociationFields,
        origin: Origin,
    ) -> None:
        # Only the newest version is kept: older ones are never asked for again.
        self.store.put(
            "specs",
            _owner_key(location, association_id),
            {
                "version": version,
                "schema": _SPEC_SCHEMA,
                "fields": spec_to_json(spec),
                "from": str(origin),
            },
        )

    def _remember(
        self,
        location: Location,
        association_id: str,
        version: str,
        found: tuple[AssociationFields, Origin],
    ) -> None:
        with self._lock:
            # Older versions of this association will never be asked for again.
            self._specs = {
                k: v
                for k, v in self._specs.items()
                if not (k[0] == location and k[1] == association_id)
            }
            self._specs[(location, association_id, version)] = found

    def _fingerprinted(
        self,
        location: Location,
        summary: aws_associations.AssociationSummary,
        desired: AssociationFields | None,
    ) -> AssociationFields | None:
        """`desired`, when the association's fingerprint tag proves that its listed
        AssociationVersion holds exactly it (apply wrote that version); None otherwise."""
        if desired is None:
            return None
        with self._lock:
            recorded = self._prints.get((location, summary.association_id))
        return desired if spec_matches(recorded, summary.version, desired) else None


def _owner_key(location: Location, association_id: str) -> str:
    return f"{location.account}/{location.region}/{association_id}"


def _owner_from_json(value: object) -> tuple[Claim, str, float] | None:
    if not (isinstance(value, list) and len(value) == 3):
        return None
    whose, source, at = value
    if whose not in set(Claim) or not isinstance(source, str):
        return None
    if not isinstance(at, int | float) or isinstance(at, bool):
        return None
    return Claim(whose), source, float(at)


def spec_to_json(spec: AssociationFields) -> dict[str, Any]:
    """An association's normalised fields as JSON (the lasting store's `specs`)."""
    out: dict[str, Any] = {
        "parameters": [list(pair) for pair in spec.parameters],
        "targets": [[key, list(values)] for key, values in spec.targets],
        "output": list(spec.output) if spec.output else None,
    }
    for name, _declared in scalar_association_fields():
        out[name] = getattr(spec, name)
    return out


def spec_from_json(value: object) -> AssociationFields | None:
    """The fields `spec_to_json` wrote, or None for anything else (a cache miss)."""
    if not isinstance(value, dict):
        return None
    parameters, targets, output = value.get("parameters"), value.get("targets"), value.get("output")
    if not isinstance(parameters, list) or not isinstance(targets, list):
        return None
    if not all(_texts(pair, 2) for pair in parameters):
        return None
    if not all(
        isinstance(t, list) and len(t) == 2 and isinstance(t[0], str) and _texts(t[1])
        for t in targets
    ):
        return None
    if output is not None and not _texts(output, 3):
        return None
    scalars: dict[str, Any] = {}
    for name, declared in scalar_association_fields():
        found = value.get(name)
        if isinstance(declared.aws_default, bool):
            if not isinstance(found, bool):
                return None
        elif found is not None and not isinstance(found, str):
            return None
        scalars[name] = found
    return AssociationFields(
        parameters=tuple((str(k), str(v)) for k, v in parameters),
        targets=tuple((str(k), tuple(str(v) for v in values)) for k, values in targets),
        output=(str(output[0]), str(output[1]), str(output[2])) if output else None,
        **scalars,
    )


def _texts(value: object, length: int | None = None) -> bool:
    return (
        isinstance(value, list)
        and (length is None or len(value) == length)
        and all(isinstance(item, str) for item in value)
    )
