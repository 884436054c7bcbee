"""Source folders on disk: what cannot live in a git repository is made here."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from controller.repository import SpecErrors, load_repository
from tests.repository.conftest import RepoWriter, package_files, package_yaml


def errors_of(root: Path) -> list[str]:
    with pytest.raises(SpecErrors) as caught:
        load_repository(root, display_prefix="")
    return [str(error) for error in caught.value.errors]


def test_a_fifo_in_a_source_is_refused(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    os.mkfifo(root / "pkg/1.0/pipe")
    assert errors_of(root) == [
        "p.yaml:9:52: source pkg/1.0: pipe is not a regular file (device, FIFO or socket): "
        "remove it"
    ]


def test_a_file_over_one_gigabyte_is_refused(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    with (root / "pkg/1.0/huge.bin").open("wb") as huge:
        huge.truncate(1_000_000_001)  # sparse: no disk space used
    assert errors_of(root) == [
        "p.yaml:9:52: source pkg/1.0: huge.bin is 1000000001 bytes, over Distributor's 1 GB "
        "file limit"
    ]


def test_a_symlinked_source_folder_leading_outside_is_refused(
    write_repo: RepoWriter, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = write_repo({"p.yaml": package_yaml()})
    (root / "pkg").mkdir()
    (root / "pkg/1.0").symlink_to(outside)
    assert errors_of(root) == [
        "p.yaml:9:52: source: 'pkg/1.0' is a symlink leading outside the repository: copy the "
        "files in"
    ]


def test_a_symlink_to_a_folder_inside_a_source_is_refused(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml(), **package_files(), "shared/x.txt": "x"})
    (root / "pkg/1.0/shared").symlink_to(root / "shared")
    assert errors_of(root) == [
        "p.yaml:9:52: source pkg/1.0: shared is a symlink to a folder: copy the folder instead"
    ]


def test_a_symlink_to_a_file_inside_the_repository_is_followed(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml(), "common/install.sh": "#!/bin/sh\n"})
    (root / "pkg/1.0").mkdir(parents=True)
    (root / "pkg/1.0/install.sh").symlink_to(root / "common/install.sh")
    (root / "pkg/1.0/uninstall.sh").symlink_to(root / "common/install.sh")
    assert load_repository(root).packages[0].name == "demo-agent"


def test_a_yaml_symlink_leading_outside_is_refused(write_repo: RepoWriter, tmp_path: Path) -> None:
    (tmp_path / "elsewhere.yaml").write_text(package_yaml())
    root = write_repo(package_files())
    (root / "p.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    assert errors_of(root) == ["p.yaml:1:1: symlink leading outside the repository: copy it in"]
