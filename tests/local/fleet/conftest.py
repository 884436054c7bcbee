"""Fixtures for the fleet tests: zips built in the test, an in-memory package source (the
`PackageSource` interface the agent reads documents through), and instances in tmp_path."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from controller.local.fleet.agent import Agent
from controller.local.fleet.model import Instance, InstanceSpec, new_instance_id
from controller.local.fleet.roots import prepare_root
from controller.local.fleet.sandbox import Sandbox
from controller.local.fleet.source import PackageDocument, PackageSourceError

needs_bwrap = pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap not installed")


def make_zip(files: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def manifest_for(
    version: str, entries: Mapping[tuple[str, str, str], str], zips: Mapping[str, bytes]
) -> str:
    """A Distributor manifest: (platform, platformVersion, arch) -> file name."""
    packages: dict[str, dict[str, dict[str, dict[str, str]]]] = {}
    for (platform, platform_version, arch), name in entries.items():
        packages.setdefault(platform, {}).setdefault(platform_version, {})[arch] = {"file": name}
    files = {
        name: {"checksums": {"sha256": hashlib.sha256(data).hexdigest().upper()}}
        for name, data in zips.items()
    }
    return json.dumps(
        {"schemaVersion": "2.0", "version": version, "packages": packages, "files": files}
    )


@dataclass
class MemorySource:
    """Package documents and attachments held in memory, reached by mem:// URLs."""

    documents: dict[tuple[str, str], PackageDocument] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    corrupt_downloads: int = 0  # this many next downloads return wrong bytes
    downloads: int = 0

    def add(
        self,
        name: str,
        version: str,
        scripts: Mapping[str, str],
        *,
        entries: Mapping[tuple[str, str, str], str] | None = None,
        zips: Mapping[str, bytes] | None = None,
        default: bool = True,
    ) -> None:
        """One version whose single zip (`scripts` at its root) serves every platform,
        unless `entries`/`zips` say otherwise."""
        if zips is None:
            zips = {f"{name}-{version}.zip": make_zip(scripts)}
        if entries is None:
            entries = {("_any", "_any", "_any"): next(iter(zips))}
        urls = {}
        for file_name, data in zips.items():
            url = f"mem://{name}/{version}/{file_name}"
            self.blobs[url] = data
            urls[file_name] = url
        self.documents[(name, version)] = PackageDocument(
            name, version, manifest_for(version, entries, zips), urls
        )
        if default or name not in self.defaults:
            self.defaults[name] = version

    def package_document(self, name: str, version: str) -> PackageDocument:
        version = version or self.defaults.get(name, "")
        if (name, version) not in self.documents:
            raise PackageSourceError(f"failed to retrieve package document {name}: not found")
        return self.documents[(name, version)]

    def download(self, url: str) -> bytes:
        self.downloads += 1
        if self.corrupt_downloads:
            self.corrupt_downloads -= 1
            return b"corrupt"
        return self.blobs[url]


@pytest.fixture
def source() -> MemorySource:
    return MemorySource()


AgentFactory = Callable[..., Agent]


@pytest.fixture
def make_agent(tmp_path: Path, source: MemorySource) -> AgentFactory:
    def factory(
        platform: str = "amazon",
        version: str = "2023",
        arch: str = "x86_64",
        sandbox: Sandbox | None = None,
    ) -> Agent:
        spec = InstanceSpec(platform, version, arch, {})
        instance_id = new_instance_id()
        root = prepare_root(tmp_path / "fleet", instance_id, spec)
        return Agent(Instance(instance_id, spec, root), source, sandbox or Sandbox(timeout=20))

    return factory


def script(action: str, version: str, *, exit_code: int = 0, extra: str = "") -> str:
    """A lifecycle script that logs itself to /opt/<pkg>/log and echoes a line."""
    return (
        "set -e\n"
        "mkdir -p /opt/demo\n"
        f"echo '{action} {version}' >> /opt/demo/log\n"
        f"echo 'hello from {action} {version}'\n"
        f"{extra}\n"
        f"exit {exit_code}\n"
    )


def lifecycle(version: str, **overrides: str | None) -> dict[str, str]:
    """install/uninstall/validate scripts for `version`; overrides replace or drop one."""
    scripts: dict[str, str | None] = {
        "install.sh": script("install", version, extra=f"echo {version} > /opt/demo/version"),
        "uninstall.sh": script("uninstall", version, extra="rm -f /opt/demo/version"),
        "validate.sh": script("validate", version, extra=f"grep -qx {version} /opt/demo/version"),
    }
    scripts.update(overrides)
    return {name: text for name, text in scripts.items() if text is not None}


def log_of(agent: Agent) -> list[str]:
    path = agent.instance.root / "opt" / "demo" / "log"
    return path.read_text().splitlines() if path.exists() else []


def publish_package(ssm: Any, s3: Any, bucket: str, name: str, scripts: Mapping[str, str]) -> None:
    """Version 1.0 of package `name` on the local endpoint, one zip for every platform, its
    attachment in `bucket` (which must exist)."""
    data = make_zip(scripts)
    s3.put_object(Bucket=bucket, Key=f"{name}/{name}.zip", Body=data)
    manifest = {
        "schemaVersion": "2.0",
        "version": "1.0",
        "packages": {"_any": {"_any": {"_any": {"file": f"{name}.zip"}}}},
        "files": {f"{name}.zip": {"checksums": {"sha256": hashlib.sha256(data).hexdigest()}}},
    }
    ssm.create_document(
        Name=name,
        Content=json.dumps(manifest),
        DocumentType="Package",
        VersionName="1.0",
        Attachments=[{"Key": "SourceUrl", "Values": [f"s3://{bucket}/{name}"]}],
    )
    deadline = time.monotonic() + 10
    while ssm.describe_document(Name=name)["Document"]["Status"] != "Active":
        assert time.monotonic() < deadline, f"package {name} never became Active"
        time.sleep(0.02)


def unique_sleep() -> str:
    """A `sleep` duration no other test (or test run) uses: `processes_running` looks at
    every process of the machine, and two tests sleeping `600` found each other's."""
    return f"600.{uuid.uuid4().int % 10**6:06d}"


def processes_running(argv: bytes) -> list[int]:
    """Pids whose command line is exactly `argv` (NUL-separated, as /proc shows it)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes() == argv:
                found.append(int(entry.name))
        except OSError:
            continue
    return found
