"""Fingerprints: what apply wrote, recorded in a tag, so a cold read can skip a read.

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

A tag is not proof (whoever may tag the resource can forge one): a fingerprint serves a pass
that only plans (`plan`), never one that acts nor a full resync, and what it stood for is
cached as "fingerprint only" (`controller.reconcile.observe.association`, `Origin`).
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


# -- packages ----------------------------------------------------------------------------------
#
# A package's fingerprint is the document tag `ssm-gitops:versions=1:<default>:<numbers>:<digest>`,
# written by apply after it changed the package's versions or default (one ListDocumentVersions
# to read the result, one AddTagsToResource): the default version's number, every version's
# number in the order of their VersionNames, and a digest of (VersionName, number, content
# Hash) of each and of the default. ListDocuments returns the tags on its page, so a cold read
# gets it for free; when the page's row (DocumentVersion, VersionName: the default version,
# which a hand-moved default moves) and the desired versions (names and content hashes)
# reproduce the digest, the live versions are the desired ones and `plan` skips
# ListDocumentVersions. Only `plan` uses it: a pass that acts (apply, `run`, a heal) and a full
# resync always list the versions (`controller.reconcile.observe.package`).

VERSIONS_TAG = "ssm-gitops:versions"
FINGERPRINT_TAGS = (SPEC_TAG, VERSIONS_TAG)  # not the repository's tags: never planned away
_TAG_VALUE_MAX = 256  # API_Tag


def _numbers_text(numbers: list[str]) -> str:
    """`1.2.5-9`: numbers in order, runs of consecutive ones as ranges (short tag values)."""
    out: list[str] = []
    index = 0
    while index < len(numbers):
        end = index
        while (
            end + 1 < len(numbers)
            and numbers[end + 1].isdigit()
            and numbers[end].isdigit()
            and int(numbers[end + 1]) == int(numbers[end]) + 1
        ):
            end += 1
        out.append(numbers[index] if end == index else f"{numbers[index]}-{numbers[end]}")
        index = end + 1
    return ".".join(out)


def _numbers_from(text: str) -> list[str] | None:
    numbers: list[str] = []
    for part in text.split(".") if text else []:
        first, dash, last = part.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            return None
        if dash:
            if int(last) <= int(first) or int(last) - int(first) > 10_000:
                return None
            numbers += [str(n) for n in range(int(first), int(last) + 1)]
        else:
            numbers.append(first)
    return numbers


def _versions_digest(default: str, versions: list[tuple[str, str, str]]) -> str:
    text = json.dumps([default, sorted(versions)], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:_DIGEST_HEX]


def versions_tag_value(default: str, versions: list[tuple[str, str, str]]) -> str | None:
    """The tag value for live versions (VersionName, number, content Hash) and the default
    number; None when it would not fit a tag value (then no fingerprint is written)."""
    ordered = sorted(versions)
    value = (
        f"{_SCHEME}:{default}:{_numbers_text([number for _, number, _ in ordered])}:"
        f"{_versions_digest(default, ordered)}"
    )
    return value if len(value) <= _TAG_VALUE_MAX else None


def versions_from_tag(
    value: str | None, row_number: str, row_name: str, desired: list[tuple[str, str]]
) -> tuple[str, list[tuple[str, str, str]]] | None:
    """(default number, live versions as (VersionName, number, Hash)) when the tag proves that
    the live versions are exactly `desired` ((VersionName, content Hash)) with the ListDocuments
    row's version as the default; None otherwise (read the versions)."""
    parts = (value or "").split(":")
    if len(parts) != 4 or parts[0] != _SCHEME or parts[1] != row_number:
        return None
    numbers = _numbers_from(parts[2])
    if (
        numbers is None
        or len(numbers) != len(desired)
        or len(set(n for n, _ in desired)) != len(desired)
    ):
        return None
    versions = [
        (name, number, content)
        for (name, content), number in zip(sorted(desired), numbers, strict=True)
    ]
    if (row_name, row_number) not in {(name, number) for name, number, _ in versions}:
        return None
    if _versions_digest(row_number, versions) != parts[3]:
        return None
    return row_number, versions
