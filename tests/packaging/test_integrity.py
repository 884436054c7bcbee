"""A built zip is checked against its recorded sha256 right before upload (issue 11).

The build cache reuses a zip whose stamp matches its sources without reading the zip, so
a byte flipped in the cache (same size) used to go up to S3 and be published.
`verify_artifact` re-hashes it, streamed, and rebuilds it once; only a rebuild that gives
the recorded sha256 passes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from controller.packaging import ArtifactMismatch, build_version, verify_artifact, verify_manifest
from controller.repository import load_repository


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_cached_zip_is_found_and_rebuilt(
    tmp_path: Path, sample_copy: Path
) -> None:
    """Bug: the cache handed back a corrupted zip with the sha256 of the good one."""
    repo = load_repository(sample_copy)
    built = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    (file,) = built.files
    flip_a_byte(file.path)
    again = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    assert again == built  # the cache does not read the zip: this is why upload checks

    assert verify_artifact(file.path, file.sha256) is True
    assert hashlib.sha256(file.path.read_bytes()).hexdigest() == file.sha256
    stamp = json.loads((tmp_path / f".{file.name}.build.json").read_text())
    assert stamp["sha256"] == file.sha256
    assert verify_artifact(file.path, file.sha256) is False  # now it is right


def test_a_zip_whose_sources_changed_is_not_rebuilt_into_something_else(
    tmp_path: Path, sample_copy: Path
) -> None:
    repo = load_repository(sample_copy)
    built = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    (file,) = built.files
    flip_a_byte(file.path)
    script = sample_copy / "packages/ops-toolkit/1.1.0/install.sh"
    script.write_text(script.read_text() + "# edited after the build\n")
    with pytest.raises(ArtifactMismatch) as raised:
        verify_artifact(file.path, file.sha256)
    message = str(raised.value)
    assert file.name in message and "a rebuild from its sources gives" in message
    assert "\n" not in message


def test_a_file_this_process_did_not_build_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stranger.zip"
    path.write_bytes(b"not what the manifest says")
    with pytest.raises(ArtifactMismatch, match=r"stranger.zip: .* cannot rebuild it"):
        verify_artifact(path, hashlib.sha256(b"other").hexdigest())
    missing = tmp_path / "gone.zip"
    with pytest.raises(ArtifactMismatch, match=r"gone.zip: the built file has sha256 unreadable"):
        verify_artifact(missing, hashlib.sha256(b"other").hexdigest())


def test_a_changed_manifest_file_is_rewritten_from_the_content(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_bytes(b'{"version": "1.0"}')
    assert verify_manifest(path, b'{"version": "1.0"}') is False
    path.write_bytes(b'{"version": "6.6"}')
    assert verify_manifest(path, b'{"version": "1.0"}') is True
    assert path.read_bytes() == b'{"version": "1.0"}'
