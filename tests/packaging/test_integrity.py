"""A built zip is checked against its recorded sha256 right before upload (issue 11).

The build cache reuses a zip whose stamp matches its sources without reading the zip, so
a byte flipped in the cache (same size) used to go up to S3 and be published.
`verify_artifact` re-hashes it, streamed, and rebuilds it once; only a rebuild that gives
the recorded sha256 passes.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from controller.packaging import (
    ArtifactMismatch,
    build_version,
    integrity,
    verify_artifact,
    verify_fresh_build,
    verify_manifest,
    zips,
)
from controller.packaging.builder import stamp_path
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


# -- before a version's first upload: a zip reused from the cache is rebuilt from git ----


def plant(zip_path: Path, script: str = "#!/bin/sh\necho PWNED\n") -> str:
    """Any zip in place of a cached one, its stamp set to agree (sha256, size)."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("install.sh", script)
    data = zip_path.read_bytes()
    stamp = stamp_path(zip_path)
    record = json.loads(stamp.read_text())
    record.update(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
    stamp.write_text(json.dumps(record))
    return hashlib.sha256(data).hexdigest()


def a_new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget what this process built, as a controller started on an existing cache."""
    monkeypatch.setattr(integrity, "_recipes", {})
    monkeypatch.setattr(integrity, "_built_here", set())
    monkeypatch.setattr(integrity, "_refused", {})


def counting_builds(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The zips the integrity check builds afresh, in order."""
    built: list[Path] = []

    def write_zip(entries: Any, destination: Path) -> tuple[str, int]:
        built.append(destination)
        return zips.write_zip(entries, destination)

    monkeypatch.setattr(integrity, "write_zip", write_zip)
    return built


def test_a_planted_zip_with_a_matching_stamp_is_refused_and_discarded(
    tmp_path: Path, sample_copy: Path
) -> None:
    """Bug (review of issue 11): the sha256 of a reused zip came from its stamp and the
    pre-upload check compared the zip with that same value, so a zip replaced in the cache
    together with its stamp passed every check and was published."""
    repo = load_repository(sample_copy)
    (genuine,) = build_version(repo, "ops-toolkit", "1.1.0", tmp_path).files
    planted = plant(genuine.path)
    reused = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)  # e.g. a new process
    (file,) = reused.files
    assert file.sha256 == planted
    assert verify_artifact(file.path, file.sha256) is False  # the old check was fooled

    with pytest.raises(ArtifactMismatch) as raised:
        verify_fresh_build([(file.path, file.sha256)], reused.manifest)

    message = str(raised.value)
    assert message.startswith(f"{file.name}: cached artifact differs from a fresh build from git")
    assert planted in message and genuine.sha256 in message and "\n" not in message
    assert not file.path.exists() and not stamp_path(file.path).exists()
    assert not list(tmp_path.glob(".fresh-*"))
    rebuilt = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)  # the next pass's
    assert rebuilt.files[0].sha256 == genuine.sha256
    verify_fresh_build([(f.path, f.sha256) for f in rebuilt.files], rebuilt.manifest)


def test_a_refused_zip_planted_again_is_refused_and_discarded_again(
    tmp_path: Path, sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = load_repository(sample_copy)
    (genuine,) = build_version(repo, "ops-toolkit", "1.1.0", tmp_path).files
    plant(genuine.path)
    reused = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    files = [(f.path, f.sha256) for f in reused.files]
    with pytest.raises(ArtifactMismatch):
        verify_fresh_build(files, reused.manifest)
    builds = counting_builds(monkeypatch)
    build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    plant(genuine.path)
    again = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    builds.clear()
    with pytest.raises(ArtifactMismatch, match="cached artifact differs"):
        verify_fresh_build([(f.path, f.sha256) for f in again.files], again.manifest)
    assert builds == []  # the same planted bytes: known already
    assert not genuine.path.exists()


def test_a_zip_reused_from_its_stamp_is_rebuilt_once_and_a_fresh_one_never(
    tmp_path: Path, sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Publishing stays cheap: only a sha256 read from a stamp costs a rebuild, once."""
    repo = load_repository(sample_copy)
    builds = counting_builds(monkeypatch)
    written = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    files = [(f.path, f.sha256) for f in written.files]
    verify_fresh_build(files, written.manifest)
    assert builds == []  # this process wrote it: its sha256 is the one writing computed
    again = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)  # the next revision
    verify_fresh_build(files, again.manifest)
    assert builds == []  # the same entries, proven to give that sha256 by this process

    a_new_process(monkeypatch)
    reused = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    assert reused == written
    verify_fresh_build(files, reused.manifest)
    verify_fresh_build(files, reused.manifest)  # another location: proven already
    assert [path.name for path in builds] == [written.files[0].name]
    assert hashlib.sha256(written.files[0].path.read_bytes()).hexdigest() == files[0][1]
    assert not list(tmp_path.glob(".fresh-*"))


def test_a_flipped_byte_in_a_zip_reused_from_its_stamp_is_repaired_by_the_fresh_build(
    tmp_path: Path, sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = load_repository(sample_copy)
    build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    a_new_process(monkeypatch)
    reused = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    (file,) = reused.files
    flip_a_byte(file.path)
    verify_fresh_build([(file.path, file.sha256)], reused.manifest)
    assert hashlib.sha256(file.path.read_bytes()).hexdigest() == file.sha256


def test_a_version_published_to_many_locations_at_once_is_rebuilt_once(
    tmp_path: Path, sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = load_repository(sample_copy)
    build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    a_new_process(monkeypatch)
    reused = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    files = [(f.path, f.sha256) for f in reused.files]
    builds = counting_builds(monkeypatch)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: verify_fresh_build(files, reused.manifest), range(8)))
    assert len(builds) == 1


def test_a_manifest_that_does_not_carry_the_files_sha256_is_refused(
    tmp_path: Path, sample_copy: Path
) -> None:
    repo = load_repository(sample_copy)
    built = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    (file,) = built.files
    other = built.manifest.replace(file.sha256.encode(), b"0" * 64)
    with pytest.raises(ArtifactMismatch, match=f"{file.name}: the manifest to publish says"):
        verify_fresh_build([(file.path, file.sha256)], other)
    with pytest.raises(ArtifactMismatch, match="the manifest to publish cannot be read"):
        verify_fresh_build([(file.path, file.sha256)], b"{not json")


def test_a_reused_zip_whose_recipe_this_process_lost_is_refused_not_trusted(
    tmp_path: Path, sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = load_repository(sample_copy)
    build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    reused = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    (file,) = reused.files
    monkeypatch.setattr(integrity, "_recipes", {})  # as when the bounded memo is cleared
    with pytest.raises(ArtifactMismatch, match="no longer knows what the zip was built from"):
        verify_fresh_build([(file.path, file.sha256)], reused.manifest)
    assert not file.path.exists()


def test_a_planted_sha256_is_refused_even_after_the_zip_was_built_again_meanwhile(
    tmp_path: Path, sample_copy: Path
) -> None:
    """A plan that took a planted stamp's sha256 stays refused when another build wrote the
    zip afresh before apply: only the sha256 these entries gave in this process passes."""
    repo = load_repository(sample_copy)
    (genuine,) = build_version(repo, "ops-toolkit", "1.1.0", tmp_path).files
    planted = plant(genuine.path)
    poisoned = build_version(repo, "ops-toolkit", "1.1.0", tmp_path)
    genuine.path.unlink()
    (again,) = build_version(repo, "ops-toolkit", "1.1.0", tmp_path).files
    assert again.sha256 == genuine.sha256
    with pytest.raises(ArtifactMismatch, match="cached artifact differs from a fresh build"):
        verify_fresh_build([(genuine.path, planted)], poisoned.manifest)
