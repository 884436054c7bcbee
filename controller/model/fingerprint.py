"""Fingerprints: what the controller wrote, recorded in a tag, so a cold read can skip a description.

Shared by apply (`controller.aws.associations` writes the tag with every create and update)
and observe (`controller.reconcile.observe.association` reads it with the owner tags, in the
same ListTagsForResource). A neutral module below both, like `controller.model.ownership`.

An association's fingerprint is the tag `ssm-gitops:spec=1:<AssociationVersion>:<digest>`:
the AssociationVersion the controller's Create/UpdateAssociation produced, and a digest of
every field `AssociationFields` declares, as sent. One AssociationVersion's fields never
change, and every update moves it (API_UpdateAssociation); a tag change does not. So while
ListAssociations shows the recorded AssociationVersion, the live fields are those the digest
was taken of: a desired spec with the same digest is in sync without a DescribeAssociation.
A hand edit moves AssociationVersion, the fingerprint no longer matches, and the association
is described as before; so is one without a fingerprint (written by an older controller).

The digest covers the field names too: a field added later changes every digest, so an old
fingerprint is a miss (a description), never a field taken as unset.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

from controller.model.state import AssociationFields

SPEC_TAG = "ssm-gitops:spec"
# The first AssociationVersion of a new association (API_CreateAssociation returns "1"); a
# different one only makes the fingerprint a miss.
FIRST_ASSOCIATION_VERSION = "1"
# The format of the value; another prefix is a miss.
_SCHEME = "1"
# 128 bits of sha256, as hex: the value stays short and within a tag value's characters
# (letters, digits, `_ . : / = + - @`, at most 256;
# https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html).
_DIGEST_HEX = 32


def spec_digest(spec: AssociationFields) -> str:
    """A digest of every declared field of `spec` (names and normalised values)."""
    text = json.dumps(asdict(spec), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_HEX]


def spec_tag_value(association_version: str, spec: AssociationFields) -> str:
    """The `ssm-gitops:spec` tag value for `spec` written as `association_version`."""
    return f"{_SCHEME}:{association_version}:{spec_digest(spec)}"


def parse_spec_tag(value: str | None) -> tuple[str, str] | None:
    """(AssociationVersion, digest) of a tag value `spec_tag_value` wrote; None otherwise."""
    parts = (value or "").split(":")
    if len(parts) != 3 or parts[0] != _SCHEME:
        return None
    version, digest = parts[1], parts[2]
    if not version.isdigit() or len(digest) != _DIGEST_HEX:
        return None
    return version, digest


def spec_matches(value: str | None, association_version: str, spec: AssociationFields) -> bool:
    """True when the tag certifies that `association_version` holds exactly `spec`."""
    parsed = parse_spec_tag(value)
    return parsed is not None and parsed == (association_version, spec_digest(spec))
