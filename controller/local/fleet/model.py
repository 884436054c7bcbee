"""The simulated fleet's shape: which instances exist, on which platform, with which tags.

First stage of the fleet: `default_fleet(n)` or `load_fleet_file(path)` gives the
`InstanceSpec`s; registration (EC2 + SSM) turns them into `Instance`s with ids, and
`roots.prepare_root` gives each one its own directory. Pure: no AWS, no processes.

Platform names and versions are the ones the SSM Agent detects and matches against a
Distributor manifest (docs/shared design: agent-semantics.md "Which manifest entry an
instance gets"; agent source agent/plugins/configurepackage/envdetect/osdetect/).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from controller.errors import UserError

ARCHITECTURES = ("x86_64", "arm64", "386")


@dataclass(frozen=True)
class PlatformFacts:
    """What an operating system family looks like to the agent and to the SSM APIs."""

    os_release_id: str  # ID= in /etc/os-release ("amzn" is detected as "amazon")
    pretty: str  # NAME= in /etc/os-release, and the start of PlatformName
    platform_type: str  # DescribeInstanceInformation PlatformType: Linux | Windows


# agent-semantics.md: detected names come from /etc/os-release (amzn->amazon, rhel->redhat,
# ol->oracle, sles->suse); Windows is "windows". DescribeInstanceInformation reports
# PlatformType Linux/Windows and PlatformName such as "Amazon Linux" or "Ubuntu"
# (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_InstanceInformation.html).
PLATFORMS: Mapping[str, PlatformFacts] = {
    "amazon": PlatformFacts("amzn", "Amazon Linux", "Linux"),
    "ubuntu": PlatformFacts("ubuntu", "Ubuntu", "Linux"),
    "redhat": PlatformFacts("rhel", "Red Hat Enterprise Linux", "Linux"),
    "debian": PlatformFacts("debian", "Debian GNU/Linux", "Linux"),
    "centos": PlatformFacts("centos", "CentOS Linux", "Linux"),
    "oracle": PlatformFacts("ol", "Oracle Linux Server", "Linux"),
    "suse": PlatformFacts("sles", "SLES", "Linux"),
    "windows": PlatformFacts("", "Microsoft Windows Server", "Windows"),
}


@dataclass(frozen=True)
class InstanceSpec:
    """One instance as the user describes it: platform, version, architecture and tags."""

    platform: str  # the agent's platform name: amazon, ubuntu, redhat, windows, ...
    version: str  # the agent's platform version: "2023", "22.04", "9.4", "10.0.20348"
    arch: str  # x86_64 | arm64 | 386
    tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def facts(self) -> PlatformFacts:
        return PLATFORMS[self.platform]

    @property
    def is_windows(self) -> bool:
        return self.platform == "windows"

    @property
    def platform_name(self) -> str:
        """DescribeInstanceInformation PlatformName."""
        if self.is_windows:
            return _WINDOWS_NAMES.get(self.version, "Microsoft Windows Server")
        return self.facts.pretty

    def os_release(self) -> str:
        """The /etc/os-release this instance's scripts see (Linux only)."""
        facts = self.facts
        return (
            f'NAME="{facts.pretty}"\n'
            f'ID="{facts.os_release_id}"\n'
            f'VERSION_ID="{self.version}"\n'
            f'PRETTY_NAME="{facts.pretty} {self.version}"\n'
        )


# Windows reports its build number as the platform version (10.0.20348 is Server 2022).
_WINDOWS_NAMES = {
    "10.0.20348": "Microsoft Windows Server 2022 Datacenter",
    "10.0.17763": "Microsoft Windows Server 2019 Datacenter",
    "10.0.14393": "Microsoft Windows Server 2016 Datacenter",
}


@dataclass(frozen=True)
class Instance:
    """A registered instance: an EC2-style id, its spec and its root directory."""

    instance_id: str
    spec: InstanceSpec
    root: Path

    @property
    def tags(self) -> Mapping[str, str]:
        return self.spec.tags


def new_instance_id() -> str:
    """An id shaped like EC2's (i- and 17 hex digits), for fleets not registered in EC2."""
    return "i-0" + secrets.token_hex(8)


# The default mix (issue 7): a small, realistic estate whose tags match `sample-repo/`'s
# targets, so that `ssm-gitops demo` (and `local --fleet N` with the sample) converges:
# production is Amazon Linux on x86_64 (the platforms datadog-agent ships for), its first
# instance the canary ring; the web tier is Ubuntu in staging (metrics-exporter is a .deb);
# every Linux box is run by the platform team (ops-toolkit); the Windows server belongs to
# another team and is targeted by nothing here (its PowerShell scripts cannot run locally).
# (platform, version, arch, tags)
_DEFAULT_MIX: tuple[tuple[str, str, str, Mapping[str, str]], ...] = (
    ("amazon", "2023", "x86_64", {"env": "prod", "ring": "canary", "role": "app"}),
    ("ubuntu", "22.04", "x86_64", {"env": "staging", "ring": "1", "role": "web"}),
    ("amazon", "2", "x86_64", {"env": "prod", "ring": "1", "role": "app"}),
    ("redhat", "9.4", "x86_64", {"env": "staging", "ring": "1", "role": "db"}),
    ("amazon", "2023", "arm64", {"env": "staging", "ring": "2", "role": "worker"}),
    ("windows", "10.0.20348", "x86_64", {"env": "staging", "ring": "2", "role": "ad"}),
    ("amazon", "2023", "x86_64", {"env": "prod", "ring": "2", "role": "app"}),
    ("amazon", "2", "arm64", {"env": "staging", "ring": "2", "role": "worker"}),
)
_LINUX_TEAM = "platform-team"
_WINDOWS_TEAM = "windows-team"


def default_fleet(
    count: int, extra_tags: Mapping[str, str] | None = None
) -> tuple[InstanceSpec, ...]:
    """`--fleet N`: N instances cycling through the default mix.

    Tags: `env` (prod | staging), `ring` (canary, 1, 2), `role` (app, web, db, worker, ad),
    `managed-by` (platform-team on Linux, windows-team on Windows) and `Name`. `extra_tags`
    go on every instance (and win over the mix's).
    """
    specs = []
    for index in range(count):
        platform, version, arch, mix_tags = _DEFAULT_MIX[index % len(_DEFAULT_MIX)]
        tags = {
            "Name": f"fleet-{index + 1}-{platform}-{version}",
            **mix_tags,
            "managed-by": _WINDOWS_TEAM if platform == "windows" else _LINUX_TEAM,
            **(extra_tags or {}),
        }
        specs.append(InstanceSpec(platform, version, arch, tags))
    return tuple(specs)


class FleetFileError(UserError):
    """A mistake in a --fleet-file, naming the file and line."""


def load_fleet_file(path: Path) -> tuple[InstanceSpec, ...]:
    """`--fleet-file F`: parse the YAML format described in docs/fleet.md."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise FleetFileError(f"{path}: cannot read the fleet file: {err.strerror}") from err
    try:
        document = yaml.compose(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise FleetFileError(f"{path}{line}: not valid YAML: {problem}") from err
    if document is None:
        raise FleetFileError(f"{path}:1: the fleet file is empty; write `instances: [...]`")
    items = _instance_nodes(path, document)
    specs: list[InstanceSpec] = []
    for node in items:
        specs.extend(_instance(path, node))
    return tuple(specs)


def _where(path: Path, node: yaml.Node) -> str:
    return f"{path}:{node.start_mark.line + 1}"


def _instance_nodes(path: Path, document: yaml.Node) -> list[yaml.Node]:
    if isinstance(document, yaml.MappingNode):
        for key, value in document.value:
            if key.value == "instances":
                document = value
                break
        else:
            raise FleetFileError(f"{_where(path, document)}: expected a key `instances:`")
    if not isinstance(document, yaml.SequenceNode) or not document.value:
        raise FleetFileError(
            f"{_where(path, document)}: `instances` must be a non-empty list of instances"
        )
    return list(document.value)


_KEYS = ("platform", "version", "arch", "tags", "count")


def _instance(path: Path, node: yaml.Node) -> list[InstanceSpec]:
    where = _where(path, node)
    if not isinstance(node, yaml.MappingNode):
        raise FleetFileError(f"{where}: each instance is a mapping with platform, version, arch")
    raw: dict[str, Any] = yaml.safe_load(yaml.serialize(node))
    for key in raw:
        if key not in _KEYS:
            raise FleetFileError(
                f"{where}: unknown key {key!r}; an instance has {', '.join(_KEYS)}"
            )
    platform = str(raw.get("platform", ""))
    if platform not in PLATFORMS:
        raise FleetFileError(f"{where}: platform {platform!r} is not one of {', '.join(PLATFORMS)}")
    # The scalar's text as written: `version: 9.10` must stay "9.10", not the float 9.1.
    version = _scalar_text(node, "version")
    if not version:
        raise FleetFileError(f'{where}: `version` is required (e.g. "2023", "22.04")')
    arch = str(raw.get("arch", "x86_64"))
    if arch not in ARCHITECTURES:
        raise FleetFileError(f"{where}: arch {arch!r} is not one of {', '.join(ARCHITECTURES)}")
    tags = raw.get("tags") or {}
    if not isinstance(tags, dict):
        raise FleetFileError(f"{where}: `tags` must be a mapping of key: value")
    count = raw.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise FleetFileError(f"{where}: `count` must be a whole number of at least 1")
    spec = InstanceSpec(platform, version, arch, {str(k): str(v) for k, v in tags.items()})
    return [spec] * count


def _scalar_text(node: yaml.MappingNode, key: str) -> str:
    for key_node, value_node in node.value:
        if key_node.value == key and isinstance(value_node, yaml.ScalarNode):
            return str(value_node.value)
    return ""
