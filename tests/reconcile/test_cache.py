"""The lasting observe cache on disk (`controller.reconcile.cache`): bounded, atomic, merged
between processes, and never trusted to be well-formed."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from controller.model.state import AssociationFields, ObservedVersion
from controller.reconcile.cache import LastingStore, store_path
from controller.reconcile.observe.association import spec_from_json, spec_to_json
from controller.reconcile.observe.package import _PackageEntry


def _store(tmp_path: Path, **limits: int) -> LastingStore:
    return LastingStore(tmp_path / "observe" / "observe-x.json", **limits)


def test_entries_outlive_the_process(tmp_path: Path) -> None:
    first = _store(tmp_path)
    first.put("hashes", "k", "abc")
    first.put("owners", "o", ["ours", "src", 1.0])
    first.save()
    again = _store(tmp_path)
    assert again.get("hashes", "k") == "abc"
    assert again.get("owners", "o") == ["ours", "src", 1.0]


def test_one_file_per_owner_and_source(tmp_path: Path) -> None:
    assert store_path(tmp_path, "a", "s") != store_path(tmp_path, "a", "t")
    assert store_path(tmp_path, "a", "s").parent == tmp_path / "observe"


@pytest.mark.parametrize(
    "content",
    [
        b'{"format": 1, "hashes": {"k": "ab',  # truncated mid-write (an old, non-atomic writer)
        b"\x00\xff\xfe garbage",
        b"[" * 100_000 + b"]" * 100_000,  # nested to blow the parser's stack
        b'["format", 1]',
        b'{"format": 1, "hashes": ["not", "a", "map"], "owners": 7}',
        b'{"format": 99, "hashes": {"k": "v"}}',
        b"",
    ],
)
def test_a_corrupt_or_hostile_file_is_ignored_and_rebuilt(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression (issue 14): a truncated or hostile cache file must cost reads, never a
    traceback, and the next save replaces it with a good one."""
    store = _store(tmp_path)
    assert store.path is not None
    store.path.parent.mkdir(parents=True)
    store.path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        loaded = _store(tmp_path)
    assert loaded.get("hashes", "k") is None
    loaded.put("hashes", "new", "h")
    loaded.save()
    assert json.loads(store.path.read_text())["hashes"] == {"new": "h"}


def test_a_file_over_the_size_limit_is_not_read(tmp_path: Path) -> None:
    big = _store(tmp_path, max_bytes=10_000_000)
    for i in range(2000):
        big.put("hashes", f"key-{i}", "x" * 64)
    big.save()
    small = _store(tmp_path, max_bytes=1000)
    assert len(small) == 0


def test_bounded_oldest_entries_go_first(tmp_path: Path) -> None:
    store = _store(tmp_path, max_entries=3)
    for i in range(5):
        store.put("hashes", f"k{i}", str(i))
    assert store.keys("hashes") == ["k2", "k3", "k4"]
    store.save()
    assert list(_store(tmp_path, max_entries=3).keys("hashes")) == ["k2", "k3", "k4"]


def test_the_written_file_stays_under_its_byte_limit(tmp_path: Path) -> None:
    store = _store(tmp_path, max_bytes=4000)
    for i in range(200):
        store.put("hashes", f"key-{i:04d}", "h" * 64)
    store.save()
    assert store.path is not None
    size = store.path.stat().st_size
    assert 0 < size <= 4000
    kept = _store(tmp_path, max_bytes=4000).keys("hashes")
    assert kept and kept[-1] == "key-0199"  # the newest survive


def test_writers_merge_and_leave_no_temporary_files(tmp_path: Path) -> None:
    """`plan` and `run` on one cache folder: each save merges with what the other wrote."""
    stores = [_store(tmp_path) for _ in range(6)]
    stores[0].put("hashes", "gone", "x")
    stores[0].save()

    def work(n: int, store: LastingStore) -> None:
        for i in range(30):
            store.put("hashes", f"{n}-{i}", str(i))
            store.save()

    threads = [threading.Thread(target=work, args=(n, s)) for n, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    remover = _store(tmp_path)
    remover.drop("hashes", "gone")
    remover.save()
    final = _store(tmp_path)
    assert {f"{n}-{i}" for n in range(6) for i in range(30)} <= set(final.keys("hashes"))
    assert final.get("hashes", "gone") is None
    assert final.path is not None
    assert [p.name for p in final.path.parent.iterdir() if p.name.startswith(".tmp-")] == []


def test_a_failed_write_leaves_the_old_file_and_says_so_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(tmp_path)
    store.put("hashes", "old", "1")
    store.save()

    def full_disk(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    store.put("hashes", "new", "2")
    with caplog.at_level(logging.WARNING):
        store.save()
        store.save()
    assert len([r for r in caplog.records if "observe cache" in r.getMessage()]) == 1
    monkeypatch.undo()
    assert store.path is not None
    assert json.loads(store.path.read_text())["hashes"] == {"old": "1"}
    assert [p.name for p in store.path.parent.iterdir() if p.name.startswith(".tmp-")] == []


def test_memory_only_without_a_path() -> None:
    store = LastingStore()
    store.put("specs", "k", {"a": 1})
    store.save()  # nothing to write to: a no-op
    assert store.get("specs", "k") == {"a": 1}


def test_association_fields_round_trip_and_bad_ones_are_misses() -> None:
    spec = AssociationFields(
        parameters=(("action", "Install"), ("name", "agent")),
        targets=(("tag:env", ("prod", "staging")),),
        schedule="rate(1 day)",
        max_concurrency="10%",
        compliance_severity="HIGH",
        apply_only_at_cron_interval=True,
        output=("bucket", "prefix/", "us-east-1"),
    )
    assert spec_from_json(json.loads(json.dumps(spec_to_json(spec)))) == spec
    for bad in (
        None,
        [],
        {"parameters": "x", "targets": []},
        {**spec_to_json(spec), "targets": [["k", [1]]]},
        {**spec_to_json(spec), "output": ["only-bucket"]},
        {**spec_to_json(spec), "schedule": 5},
        {**spec_to_json(spec), "apply_only_at_cron_interval": "yes"},
    ):
        assert spec_from_json(bad) is None


def test_package_entries_round_trip_and_bad_ones_are_misses() -> None:
    entry = _PackageEntry("2/1.1", "2", "3", (ObservedVersion("1.0", "1", "h1"),))
    assert _PackageEntry.from_json(json.loads(json.dumps(entry.to_json(5.0)))) == (entry, 5.0)
    good = entry.to_json(5.0)
    for bad in (
        "x",
        {**good, "at": "now"},
        {**good, "versions": [["1.0", "1", "h1"]]},
        {**good, "versions": [["1.0", "1", "h1", "Active", 3]]},
        {**good, "list": None},
    ):
        assert _PackageEntry.from_json(bad) is None
