"""A cache file planted by someone else (controller/reconcile/cache.py): the cache folder may
be shared (`plan` in CI, `run` in a pod) and the file names are predictable. Whatever sits
there, the store must load in bounded time and trust only a regular file of our own that no
one else may write: a forged `hashes` entry would make a version whose published content
differs from git read as "same content" (contract: only git's bytes reach the fleet).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from controller.reconcile.cache import LastingStore

GOOD = json.dumps({"format": 1, "hashes": {"k": "forged"}})


def _path(tmp_path: Path) -> Path:
    folder = tmp_path / "observe"
    folder.mkdir()
    return folder / "observe-x.json"


@pytest.mark.timeout(10)
def test_a_fifo_in_place_of_the_file_does_not_hang_the_controller(tmp_path: Path) -> None:
    """Bug: `open()` of a FIFO waits for a writer: `plan`, `apply` and `run` hung for good
    on a FIFO planted at the cache file's name."""
    path = _path(tmp_path)
    os.mkfifo(path)
    store = LastingStore(path)
    assert store.get("hashes", "k") is None
    store.put("hashes", "k", "mine")
    store.save()  # never writes through it either


def test_a_symlink_to_someone_elses_file_is_not_trusted(tmp_path: Path) -> None:
    """Bug: the store followed a symlink at its file's name to a file anyone may write."""
    path = _path(tmp_path)
    elsewhere = tmp_path / "planted.json"
    elsewhere.write_text(GOOD)
    path.symlink_to(elsewhere)
    assert LastingStore(path).get("hashes", "k") is None


def test_a_file_others_may_write_is_not_trusted(tmp_path: Path) -> None:
    """Bug: a cache file that another user could write (mode 0666) was read as ours."""
    path = _path(tmp_path)
    path.write_text(GOOD)
    path.chmod(0o666)
    assert LastingStore(path).get("hashes", "k") is None
    path.chmod(0o600)
    assert LastingStore(path).get("hashes", "k") == "forged"  # our own file: read


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_file_of_another_user_is_not_trusted(tmp_path: Path) -> None:
    """Bug: a cache file another user created first (in a shared folder) was read as ours."""
    path = _path(tmp_path)
    path.write_text(GOOD)
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    assert LastingStore(path).get("hashes", "k") is None
