"""The same sources always build the same bytes: twice, elsewhere, whatever the mtimes."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest

from controller.packaging import BuildError, build_version
from controller.repository import Repository, load_repository
from tests.packaging.conftest import SAMPLE_REPO


def build_all(repo: Repository, out: Path) -> dict[str, str]:
    """zip name -> sha256 of every zip, plus each manifest's sha256."""
    digests = {}
    for package in repo.packages:
        for version in package.versions:
            built = build_version(repo, package, version, out / package.name / version.name)
            for file in built.files:
                assert hashlib.sha256(file.path.read_bytes()).hexdigest() == file.sha256
                assert file.path.stat().st_size == file.size
                digests[file.name] = file.sha256
            digests[f"{package.name}/{version.name}/manifest"] = hashlib.sha256(
                built.manifest
            ).hexdigest()
    return digests


def test_building_twice_gives_identical_bytes(tmp_path: Path) -> None:
    repo = load_repository(SAMPLE_REPO)
    assert build_all(repo, tmp_path / "one") == build_all(repo, tmp_path / "two")


def test_another_checkout_with_other_mtimes_and_modes_gives_identical_bytes(
    tmp_path: Path, sample_copy: Path
) -> None:
    for path in sample_copy.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.utime(path, (1_900_000_000, 1_900_000_000))
            # umask differences between checkouts: group/other bits must not matter
            path.chmod(path.stat().st_mode & 0o700)
    here = build_all(load_repository(SAMPLE_REPO), tmp_path / "here")
    there = build_all(load_repository(sample_copy), tmp_path / "there")
    assert here == there


def test_zip_entries_are_sorted_with_fixed_time_and_normalised_modes(tmp_path: Path) -> None:
    repo = load_repository(SAMPLE_REPO)
    package = repo.package("ops-toolkit")
    assert package is not None
    built = build_version(repo, package, "1.1.0", tmp_path)
    (zip_file,) = built.files
    with zipfile.ZipFile(zip_file.path) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert names == [
        "bin/ops-toolkit",
        "install.sh",
        "uninstall.sh",
        "update.sh",
        "validate.sh",
    ]
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100755}
    datadog = repo.package("datadog-agent")
    assert datadog is not None
    built = build_version(repo, datadog, "6.9.0", tmp_path)
    with zipfile.ZipFile(built.files[0].path) as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert modes["datadog.yaml.example"] == 0o100644
    assert modes["install.sh"] == 0o100755


def test_a_changed_source_changes_the_zip_and_the_cache_notices(
    tmp_path: Path, sample_copy: Path
) -> None:
    repo = load_repository(sample_copy)
    out = tmp_path / "out"
    first = build_version(repo, "ops-toolkit", "1.1.0", out)
    written = first.files[0].path.stat().st_mtime_ns
    again = build_version(repo, "ops-toolkit", "1.1.0", out)
    assert again == first
    assert first.files[0].path.stat().st_mtime_ns == written  # reused, not rewritten
    script = sample_copy / "packages/ops-toolkit/1.1.0/bin/ops-toolkit"
    script.write_text(script.read_text() + "# changed\n")
    changed = build_version(repo, "ops-toolkit", "1.1.0", out)
    assert changed.files[0].sha256 != first.files[0].sha256
    assert changed.manifest != first.manifest
    assert hashlib.sha256(changed.files[0].path.read_bytes()).hexdigest() == changed.files[0].sha256


def test_a_tampered_cached_zip_is_rebuilt(tmp_path: Path) -> None:
    repo = load_repository(SAMPLE_REPO)
    first = build_version(repo, "ops-toolkit", "1.0.0", tmp_path)
    first.files[0].path.write_bytes(b"not a zip")
    again = build_version(repo, "ops-toolkit", "1.0.0", tmp_path)
    assert again == first
    assert hashlib.sha256(again.files[0].path.read_bytes()).hexdigest() == first.files[0].sha256


def test_a_source_changed_after_validation_is_a_build_error(
    tmp_path: Path, sample_copy: Path
) -> None:
    repo = load_repository(sample_copy, display_prefix="")
    script = sample_copy / "packages/ops-toolkit/1.1.0/update.sh"
    script.unlink()
    os.mkfifo(script)  # now something the zip cannot hold
    with pytest.raises(BuildError, match=r"update.sh is not a regular file"):
        build_version(repo, "ops-toolkit", "1.1.0", tmp_path)


def test_an_unwritable_output_is_a_build_error_not_a_traceback(tmp_path: Path) -> None:
    repo = load_repository(SAMPLE_REPO, display_prefix="")
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output folder should go")
    with pytest.raises(
        BuildError, match=r"packages/ops-toolkit.yaml:\d+: cannot build ops-toolkit"
    ):
        build_version(repo, "ops-toolkit", "1.1.0", blocker)


def test_concurrent_builds_into_one_folder_agree(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    repo = load_repository(SAMPLE_REPO)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda _: build_version(repo, "datadog-agent", "6.10.0", tmp_path), range(8))
        )
    assert all(result == results[0] for result in results)
    for file in results[0].files:
        assert hashlib.sha256(file.path.read_bytes()).hexdigest() == file.sha256
    hidden = [path.name for path in tmp_path.iterdir() if path.name.startswith(".")]
    assert all(name.endswith(".zip.build.json") for name in hidden), hidden  # no temporaries
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith(".")) == [
        file.name for file in results[0].files
    ]
