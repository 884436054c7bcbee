"""Property tests of the loader: valid specs round-trip; garbage only ever gives SpecErrors."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.repository import SpecErrors, load_repository
from controller.repository.rules import LINUX_PLATFORMS

SCRIPT = "#!/bin/sh\necho ok\n"
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("SPEC_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

names = st.from_regex(r"\A[a-z][a-z0-9-]{2,20}\Z")
# VersionName's pattern, less what is refused as a folder name (only dots, a final dot).
version_names = st.from_regex(r"\A[a-zA-Z0-9_.-]{0,11}[a-zA-Z0-9_-]\Z")
accounts = st.from_regex(r"\A[0-9]{12}\Z")
file_entries = st.fixed_dictionaries(
    {
        "platform": st.sampled_from(LINUX_PLATFORMS),
        "platformVersion": st.sampled_from(["_any", "*", "2023", "7.*", "22.04"]),
        "arch": st.sampled_from(["x86_64", "386", "arm64", "_any"]),
    }
)


@st.composite
def packages(draw: st.DrawFn) -> dict[str, Any]:
    version_list = draw(st.lists(version_names, min_size=1, max_size=5, unique=True))
    versions = []
    for version in version_list:
        files = draw(
            st.lists(
                file_entries,
                min_size=1,
                max_size=4,
                unique_by=lambda f: (f["platform"], f["platformVersion"], f["arch"]),
            )
        )
        versions.append({"name": version, "files": [{**f, "source": "src"} for f in files]})
    spec: dict[str, Any] = {"versions": versions}
    if draw(st.booleans()):
        spec["defaultVersion"] = draw(st.sampled_from(version_list))
    spec["shareWith"] = draw(st.lists(accounts, max_size=3, unique=True))
    spec["pruneVersions"] = draw(st.booleans())
    spec["description"] = draw(st.text(max_size=40))
    return {
        "apiVersion": "ssm-gitops/v1",
        "kind": "Package",
        "metadata": {"name": draw(names)},
        "spec": spec,
    }


associations = st.fixed_dictionaries(
    {
        "apiVersion": st.just("ssm-gitops/v1"),
        "kind": st.just("Association"),
        "metadata": st.fixed_dictionaries({"name": names}),
        "spec": st.fixed_dictionaries(
            {
                "package": st.just("arn:aws:ssm:us-east-1:111122223333:document/shared"),
                "targets": st.just([{"key": "tag:env", "values": ["prod"]}]),
                "schedule": st.sampled_from(
                    ["rate(30 minutes)", "rate(2 hours)", "rate(1 day)", "cron(0 2 ? * SUN *)"]
                ),
                "maxConcurrency": st.from_regex(r"\A([1-9][0-9]{0,3}|[1-9][0-9]?%|100%)\Z"),
                "maxErrors": st.from_regex(r"\A([0-9]|[1-9][0-9]{1,3}|[0-9]%|[1-9][0-9]%)\Z"),
            }
        ),
    }
)


def write(root: Path, documents: list[Any]) -> None:
    (root / "src").mkdir(exist_ok=True)
    (root / "src/install.sh").write_text(SCRIPT)
    (root / "src/uninstall.sh").write_text(SCRIPT)
    (root / "repo.yaml").write_text(yaml.safe_dump_all(documents, sort_keys=False))


@PROPERTY_SETTINGS
@given(package=packages(), association=associations)
def test_valid_documents_round_trip(package: dict[str, Any], association: dict[str, Any]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write(root, [package, association])
        repo = load_repository(root)
    loaded = repo.packages[0]
    spec = package["spec"]
    assert loaded.name == package["metadata"]["name"]
    assert loaded.default_version == spec.get("defaultVersion")
    assert loaded.share_with == tuple(spec["shareWith"])
    assert loaded.prune_versions == spec["pruneVersions"]
    assert loaded.description == spec["description"]
    assert [v.name for v in loaded.versions] == [v["name"] for v in spec["versions"]]
    for version, written in zip(loaded.versions, spec["versions"], strict=True):
        assert [(f.platform, f.platform_version, f.arch) for f in version.files] == [
            (f["platform"], f["platformVersion"], f["arch"]) for f in written["files"]
        ]
        assert {f.source for f in version.files} == {root.resolve() / "src"}
    (loaded_association,) = repo.associations
    assert loaded_association.schedule == association["spec"]["schedule"]
    assert loaded_association.max_concurrency == association["spec"]["maxConcurrency"]
    assert loaded_association.max_errors == association["spec"]["maxErrors"]


VOCABULARY = [
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "name",
    "versions",
    "files",
    "platform",
    "arch",
    "source",
    "installer",
    "defaultVersion",
    "package",
    "targets",
    "schedule",
    "artifacts",
    "Package",
    "Association",
    "Settings",
    "ssm-gitops/v1",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.sampled_from(VOCABULARY),
    st.text(max_size=10),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=6)), children, max_size=5
        ),
    ),
    max_leaves=25,
)
documents = st.one_of(
    trees,
    st.fixed_dictionaries(
        {
            "apiVersion": st.just("ssm-gitops/v1"),
            "kind": st.sampled_from(["Package", "Association", "Settings"]),
            "metadata": trees,
            "spec": trees,
        }
    ),
)


def load_or_errors(root: Path) -> None:
    try:
        load_repository(root)
    except SpecErrors as errors:
        assert errors.errors
        assert all(error.path and error.message for error in errors.errors)


@PROPERTY_SETTINGS
@given(st.lists(documents, min_size=1, max_size=3))
def test_structured_garbage_only_gives_spec_errors(garbage: list[Any]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write(root, garbage)
        load_or_errors(root)


@PROPERTY_SETTINGS
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_text_garbage_only_gives_spec_errors(garbage: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        path = root / "garbage.yaml"
        if isinstance(garbage, bytes):
            path.write_bytes(garbage)
        else:
            path.write_text(garbage, encoding="utf-8", errors="surrogatepass")
        load_or_errors(root)


FRAGMENTS = [
    "apiVersion: ssm-gitops/v1\n",
    "kind: Package\n",
    "kind: Association\n",
    "metadata: {name: demo-agent}\n",
    "spec:\n",
    "  versions:\n",
    "    - name: &v '1.0'\n",
    "      files: [{platform: amazon, arch: x86_64, source: src}]\n",
    "  defaultVersion: *v\n",
    "a: &x [1, *x]\n",
    "b: !!int ten\n",
    "c: !!binary aGVsbG8=\n",
    "d: !Ref other\n",
    "? [a, b]\n: c\n",
    "<<: {e: 1}\n",
    "---\n",
    "%YAML 1.1\n---\n",
    "f: 2024-01-01\n",
    "g: .inf\n",
    "h: 0o17\n",
    "  - item\n",
    "{",
    "]",
    "\t",
    "'unterminated\n",
    "i: |\n  block\n",
    "j: !!set {a, b}\n",
    "k: !!omap [a: 1]\n",
]


@PROPERTY_SETTINGS
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12))
def test_yaml_features_and_fragments_only_give_spec_errors(fragments: list[str]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        write(root, [])
        (root / "repo.yaml").write_text("".join(fragments))
        load_or_errors(root)
