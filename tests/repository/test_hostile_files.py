"""Hostile files in a repository: each is one line naming the file, never a hang or a
traceback (issue 10). What git cannot hold (FIFOs, sockets, devices) is made here."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from controller.repository import SpecErrors, load_repository
from controller.repository.loader import MAX_YAML_BYTES
from tests.repository.conftest import RepoWriter, package_files, package_yaml

ASSOCIATION = """apiVersion: ssm-gitops/v1
kind: Association
metadata: {name: demo-agent-prod}
spec:
  package: demo-agent
  targets: [{key: "tag:env", values: [prod]}]
"""


def errors_of(root: Path) -> list[str]:
    with pytest.raises(SpecErrors) as caught:
        load_repository(root, display_prefix="")
    return [str(error) for error in caught.value.errors]


@pytest.mark.timeout(20)
def test_a_fifo_named_yaml_is_one_line_not_a_hang(write_repo: RepoWriter) -> None:
    """Bug: a FIFO named `x.yaml` in a local repository hung `validate` forever."""
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    os.mkfifo(root / "x.yaml")
    assert errors_of(root) == [
        "x.yaml:1:1: not a regular file (a FIFO, device or socket): remove it, or rename it so "
        "that it does not end in .yaml/.yml"
    ]


@pytest.mark.timeout(20)
def test_a_symlink_to_a_fifo_named_yaml_is_one_line(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    os.mkfifo(root / "pipe")
    (root / "x.yaml").symlink_to(root / "pipe")
    assert errors_of(root)[0].startswith("x.yaml:1:1: not a regular file (a FIFO")


@pytest.mark.timeout(20)
def test_a_socket_named_yaml_is_one_line(write_repo: RepoWriter, tmp_path: Path) -> None:
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    # AF_UNIX paths are limited to ~108 bytes: bind from inside the folder.
    cwd = os.getcwd()
    os.chdir(root)
    try:
        with socket.socket(socket.AF_UNIX) as listening:
            listening.bind("s.yaml")
            assert errors_of(root)[0].startswith("s.yaml:1:1: not a regular file")
    finally:
        os.chdir(cwd)


@pytest.mark.timeout(20)
def test_a_device_named_yaml_is_one_line(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    try:
        os.mknod(root / "zero.yaml", stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero
    except PermissionError:
        pytest.skip("making a device file needs CAP_MKNOD")
    assert errors_of(root)[0].startswith("zero.yaml:1:1: not a regular file")


def test_a_symlink_loop_between_two_yaml_files_is_one_line_each(write_repo: RepoWriter) -> None:
    """Bug: a.yaml -> b.yaml -> a.yaml raised RuntimeError (Symlink loop) as a traceback."""
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    (root / "a.yaml").symlink_to("b.yaml")
    (root / "b.yaml").symlink_to("a.yaml")
    loop = "symlink loop (the link leads back to itself): fix or remove the link"
    assert errors_of(root) == [f"a.yaml:1:1: {loop}", f"b.yaml:1:1: {loop}"]


def test_a_dangling_yaml_symlink_is_one_line(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    (root / "gone.yaml").symlink_to("nowhere.yaml")
    assert errors_of(root) == [
        "gone.yaml:1:1: symlink to a file that does not exist: fix or remove the link"
    ]


def test_a_symlink_loop_in_a_source_folder_is_one_line(write_repo: RepoWriter) -> None:
    """Bug: a symlink loop inside a source folder raised RuntimeError as a traceback."""
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    (root / "pkg/1.0/a").symlink_to("b")
    (root / "pkg/1.0/b").symlink_to("a")
    loop = "a symlink loop (the link leads back to itself): fix or remove the link"
    assert errors_of(root) == [
        f"p.yaml:9:52: source pkg/1.0: a: {loop}",
        f"p.yaml:9:52: source pkg/1.0: b: {loop}",
    ]


def test_a_source_that_is_a_symlink_loop_is_one_line(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml()})
    (root / "pkg").mkdir()
    (root / "pkg/1.0").symlink_to("1.0")
    assert errors_of(root) == [
        "p.yaml:9:52: source: 'pkg/1.0' is a symlink loop (it leads back to itself): fix the link"
    ]


def test_a_repository_folder_that_is_a_symlink_loop_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "loop").symlink_to("loop")
    assert errors_of(tmp_path / "loop") == [
        f"{tmp_path / 'loop'}: no such directory: give the repository folder"
    ]


def test_a_yaml_file_over_the_size_limit_is_not_read(write_repo: RepoWriter) -> None:
    root = write_repo({"p.yaml": package_yaml(), **package_files()})
    with (root / "big.yaml").open("wb") as big:
        big.truncate(MAX_YAML_BYTES + 1)  # sparse
    assert errors_of(root) == [
        f"big.yaml:1:1: {MAX_YAML_BYTES + 1} bytes, over the 4 MiB limit for a YAML file: split "
        "it into several files"
    ]


def test_payload_yaml_is_bounded_and_ignored(write_repo: RepoWriter) -> None:
    """Payload YAML in a source folder is parsed (to find documents of ours) within the same
    bounds; hitting one there is no error: the file is zipped as it is."""
    deep = "a: " + "[" * 100_000 + "]" * 100_000 + "\n"
    root = write_repo({"p.yaml": package_yaml(), **package_files(), "pkg/1.0/deep.yaml": deep})
    with (root / "pkg/1.0/big.yaml").open("wb") as big:
        big.truncate(MAX_YAML_BYTES + 1)
    os.mkfifo(root / "pkg/1.0/conf")  # a FIFO in a source is still refused (not zippable)
    assert errors_of(root) == [
        "p.yaml:9:52: source pkg/1.0: conf is not a regular file (device, FIFO or socket): "
        "remove it"
    ]
    (root / "pkg/1.0/conf").unlink()
    assert load_repository(root).packages[0].name == "demo-agent"


def test_a_broken_repository_file_inside_a_source_folder_is_still_reported(
    write_repo: RepoWriter,
) -> None:
    root = write_repo(
        {
            "p.yaml": package_yaml(),
            **package_files(),
            "pkg/1.0/more.yaml": "apiVersion: ssm-gitops/v1\nkind: Package\nmetadata: [x\n",
        }
    )
    assert errors_of(root)[0].startswith("pkg/1.0/more.yaml:3:11: invalid YAML")


def test_a_syntax_error_comes_first_and_hides_what_it_causes(write_repo: RepoWriter) -> None:
    """Bug: the syntax error was listed after the "package is not defined" errors it causes
    (sorted by file name), and one line past the broken line."""
    broken = package_yaml().replace("source: pkg/1.0}", "source: pkg/1.0")
    root = write_repo(
        {"b-package.yaml": broken, "a-association.yaml": ASSOCIATION, **package_files()}
    )
    assert errors_of(root) == [
        "b-package.yaml:9:11: invalid YAML: did not find expected ',' or '}' (while parsing a "
        "flow mapping that starts here, noticed at line 10): fix the syntax"
    ]


@pytest.mark.timeout(30)
def test_a_document_with_thousands_of_wrong_values_lists_the_first_hundred(
    write_repo: RepoWriter,
) -> None:
    """90,000 wrong account ids took 10 s and 390 MB to list one by one."""
    ids = ", ".join(["x"] * 90_000)
    text = package_yaml().replace("spec:\n", f"spec:\n  shareWith: [{ids}]\n")
    root = write_repo({"p.yaml": text, **package_files()})
    errors = errors_of(root)
    assert len(errors) == 101
    assert errors[-1].endswith(": 89900 more problems in this document: fix the above first")


def test_a_folder_that_cannot_be_listed_is_reported_not_skipped(
    write_repo: RepoWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.walk skipped an unreadable folder silently: its documents quietly vanished."""
    root = write_repo({"p.yaml": package_yaml(), **package_files(), "more/a.yaml": ""})
    scandir = os.scandir

    def refuse(path: Any) -> Any:  # what a folder without read permission does (as non-root)
        if Path(path).name == "more":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    assert errors_of(root) == [
        "more: cannot list this folder (Permission denied): its YAML files cannot be read; "
        "fix its permissions"
    ]
