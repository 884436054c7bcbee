"""The fleet model: the default mix, the --fleet-file format and each instance's root."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.local.fleet.model import (
    FleetFileError,
    InstanceSpec,
    default_fleet,
    load_fleet_file,
    new_instance_id,
)
from controller.local.fleet.osdetect import detect_platform
from controller.local.fleet.roots import prepare_root


def test_default_fleet_mixes_platforms_envs_and_rings() -> None:
    fleet = default_fleet(6)
    assert {spec.platform for spec in fleet} == {"amazon", "ubuntu", "redhat", "windows"}
    assert {(s.platform, s.version) for s in fleet} >= {("amazon", "2023"), ("amazon", "2")}
    assert {spec.tags["env"] for spec in fleet} == {"prod", "staging"}
    assert {spec.tags["ring"] for spec in fleet} == {"canary", "1", "2"}
    assert len({spec.tags["Name"] for spec in fleet}) == 6


def test_default_fleet_matches_the_sample_repo_targets_on_platforms_its_packages_ship() -> None:
    fleet = default_fleet(8)
    prod = [s for s in fleet if s.tags["env"] == "prod"]
    web = [s for s in fleet if s.tags["role"] == "web"]
    managed = [s for s in fleet if s.tags["managed-by"] == "platform-team"]
    canary = [s for s in fleet if s.tags["ring"] == "canary"]
    # datadog-agent 6.9.0 ships for Amazon Linux 2 and 2023 on x86_64 (and Windows)
    assert len(prod) == 3 and {(s.platform, s.arch) for s in prod} == {("amazon", "x86_64")}
    assert len(canary) == 1 and canary[0].platform == "amazon"
    # metrics-exporter is a .deb; the web tier is Ubuntu, in staging only
    assert [(s.platform, s.tags["env"]) for s in web] == [("ubuntu", "staging")]
    # ops-toolkit: every Linux instance, none of the Windows ones
    assert len(managed) == 7 and all(not s.is_windows for s in managed)


def test_instance_ids_look_like_ec2() -> None:
    instance_id = new_instance_id()
    assert instance_id.startswith("i-0") and len(instance_id) == 19
    int(instance_id[2:], 16)


def test_fleet_file_keeps_versions_as_written(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(
        "instances:\n"
        "  - {platform: redhat, version: 9.10, arch: x86_64, tags: {env: prod, ring: 1}}\n"
        "  - platform: ubuntu\n"
        "    version: 22.04\n"
        "    count: 2\n"
    )
    specs = load_fleet_file(path)
    assert specs == (
        InstanceSpec("redhat", "9.10", "x86_64", {"env": "prod", "ring": "1"}),
        InstanceSpec("ubuntu", "22.04", "x86_64", {}),
        InstanceSpec("ubuntu", "22.04", "x86_64", {}),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("instances:\n  - {platform: beos, version: '5'}\n", ":2: platform 'beos' is not one of"),
        ("instances:\n  - {platform: amazon}\n", ":2: `version` is required"),
        ("instances:\n  - {platform: amazon, version: 2, arch: sparc}\n", ":2: arch 'sparc'"),
        ("instances:\n  - {platform: amazon, version: 2, colour: red}\n", "unknown key 'colour'"),
        ("instances:\n  - {platform: amazon, version: 2, count: 0}\n", "`count` must be"),
        ("instances: []\n", ":1: `instances` must be a non-empty list"),
        ("hosts: []\n", ":1: expected a key `instances:`"),
        ("instances: [\n", "not valid YAML"),
        ("", ":1: the fleet file is empty"),
    ],
)
def test_fleet_file_mistakes_are_one_line_with_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(text)
    with pytest.raises(FleetFileError) as caught:
        load_fleet_file(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_fleet_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FleetFileError, match="cannot read the fleet file"):
        load_fleet_file(tmp_path / "nope.yaml")


def test_root_has_writable_opt_var_and_the_platform_os_release(tmp_path: Path) -> None:
    spec = InstanceSpec("amazon", "2023", "x86_64", {})
    root = prepare_root(tmp_path, "i-0123", spec)
    assert root == tmp_path / "i-0123"
    assert (root / "opt").is_dir() and (root / "var").is_dir()
    os_release = (root / "etc" / "os-release").read_text()
    assert 'ID="amzn"' in os_release and 'VERSION_ID="2023"' in os_release
    windows = prepare_root(tmp_path, "i-0456", InstanceSpec("windows", "10.0.20348", "x86_64"))
    assert not (windows / "etc" / "os-release").exists()


@pytest.mark.parametrize(
    ("platform", "version"),
    [
        ("amazon", "2023"),
        ("amazon", "2"),
        ("ubuntu", "22.04"),
        ("redhat", "9.4"),
        ("oracle", "8.9"),
        ("suse", "15.5"),
        ("debian", "12"),
        ("centos", "7"),
    ],
)
def test_the_agent_detects_the_platform_from_the_roots_os_release(
    tmp_path: Path, platform: str, version: str
) -> None:
    root = prepare_root(tmp_path, "i-0123", InstanceSpec(platform, version, "x86_64"))
    assert detect_platform(root) == (platform, version)


def test_windows_is_detected_without_os_release(tmp_path: Path) -> None:
    root = prepare_root(tmp_path, "i-0w", InstanceSpec("windows", "10.0.20348", "x86_64"))
    assert detect_platform(root, windows_version="10.0.20348") == ("windows", "10.0.20348")


def test_default_fleet_extra_tags_go_on_every_instance() -> None:
    fleet = default_fleet(3, extra_tags={"role": "web"})
    assert {spec.tags["role"] for spec in fleet} == {"web"}
    assert {spec.tags["ring"] for spec in fleet} == {"canary", "1"}
