"""The agent of one instance running AWS-ConfigureAWSPackage, point by point against
../shared/design/agent-semantics.md. Scripts really run under bubblewrap."""

from __future__ import annotations

import io
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest

from controller.local.fleet.agent import (
    IN_PLACE_UPDATE,
    PackageRequest,
    PluginStatus,
    RequestError,
    request_from_parameters,
)
from controller.local.fleet.sandbox import Sandbox
from controller.local.fleet.state import InstallState, installed_packages, load_state

from .conftest import AgentFactory, MemorySource, lifecycle, log_of, make_zip, needs_bwrap, script

pytestmark = needs_bwrap

INSTALL = PackageRequest("Install", "demo")


def test_fresh_install_runs_install_then_validate_inside_the_instance(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    env_dump = "env | sort > /opt/demo/env"
    source.add(
        "demo",
        "1.0",
        lifecycle(
            "1.0",
            **{
                "install.sh": script(
                    "install", "1.0", extra=f"{env_dump}; echo 1.0 > /opt/demo/version"
                )
            },
        ),
    )
    agent = make_agent()
    result = agent.configure_package(
        PackageRequest("Install", "demo", additional_arguments={"SSM_COLOUR": "blue"})
    )
    assert result.status is PluginStatus.SUCCESS, result.output
    assert log_of(agent) == ["install 1.0", "validate 1.0"]
    lines = result.stdout.splitlines()
    assert "Initiating demo 1.0 install" in lines
    assert "install output: hello from install 1.0" in lines
    assert lines[-1] == "Successfully installed demo 1.0"
    root = agent.instance.root
    assert (root / "opt/demo/version").read_text() == "1.0\n"
    assert (root / "var/lib/amazon/ssm/packages/demo/1.0/install.sh").is_file()
    assert installed_packages(root) == {"demo": "1.0"}
    env = dict(line.split("=", 1) for line in (root / "opt/demo/env").read_text().splitlines())
    assert env["BWS_ACTION_NAME"] == "install"
    assert env["BWS_PLATFORM_NAME"] == "amazon"
    assert env["BWS_PLATFORM_VERSION"] == "2023"
    assert env["BWS_ARCHITECTURE"] == "x86_64"
    assert env["BWS_INSTANCE_ID"] == agent.instance.instance_id
    assert env["BWS_REGION"] == "us-east-1" and env["BWS_ACCOUNT_ID"] == "123456789012"
    assert env["SSM_COLOUR"] == "blue"
    # conftest puts fake AWS credentials in this process's environment: none may leak.
    assert not [key for key in env if key.startswith("AWS")]
    assert not Path("/opt/demo").exists()  # the host's /opt is untouched


def test_same_version_again_only_validates(make_agent: AgentFactory, source: MemorySource) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    agent = make_agent()
    agent.configure_package(INSTALL)
    result = agent.configure_package(INSTALL)
    assert result.status is PluginStatus.SUCCESS
    assert "demo 1.0 is already installed" in result.stdout
    assert log_of(agent) == ["install 1.0", "validate 1.0", "validate 1.0"]
    assert source.downloads == 1  # the unpacked version is reused


def test_changing_only_additional_arguments_does_not_reinstall(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    agent = make_agent()
    agent.configure_package(PackageRequest("Install", "demo", additional_arguments={"SSM_A": "1"}))
    result = agent.configure_package(
        PackageRequest("Install", "demo", additional_arguments={"SSM_A": "2"})
    )
    assert result.status is PluginStatus.SUCCESS
    assert log_of(agent) == ["install 1.0", "validate 1.0", "validate 1.0"]


def test_uninstall_and_reinstall_replaces_the_old_version(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    agent = make_agent()
    agent.configure_package(INSTALL)
    source.add("demo", "2.0", lifecycle("2.0"))
    result = agent.configure_package(INSTALL)  # blank version: the new default
    assert result.status is PluginStatus.SUCCESS, result.output
    assert log_of(agent)[2:] == ["uninstall 1.0", "install 2.0", "validate 2.0"]
    assert "Successfully uninstalled demo 1.0" in result.stdout
    packages = agent.instance.root / "var/lib/amazon/ssm/packages/demo"
    assert sorted(p.name for p in packages.iterdir() if p.is_dir()) == ["2.0"]
    state = load_state(agent.instance.root, "demo")
    assert state is not None
    assert (state.version, state.state, state.last_installed_version) == (
        "2.0",
        InstallState.INSTALLED,
        "2.0",
    )


def test_failed_install_rolls_back_and_reports_failed_with_the_output(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    agent = make_agent()
    agent.configure_package(INSTALL)
    source.add(
        "demo",
        "2.0",
        lifecycle(
            "2.0",
            **{
                "install.sh": script("install", "2.0", exit_code=3, extra="echo 'disk on fire' >&2")
            },
        ),
    )
    result = agent.configure_package(INSTALL)
    assert result.status is PluginStatus.FAILED
    assert log_of(agent)[2:] == [
        "uninstall 1.0",
        "install 2.0",
        "uninstall 2.0",
        "install 1.0",
        "validate 1.0",
    ]
    assert "Failed to install demo 2.0, successfully rolled back to demo 1.0" in result.stdout
    assert "install output: hello from install 2.0" in result.stdout
    assert "disk on fire" in result.stderr and "exit code 3" in result.stderr
    assert installed_packages(agent.instance.root) == {"demo": "1.0"}
    assert (agent.instance.root / "opt/demo/version").read_text() == "1.0\n"


def test_failing_old_uninstall_does_not_stop_the_upgrade(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", lifecycle("1.0", **{"uninstall.sh": "exit 1"}))
    agent = make_agent()
    agent.configure_package(INSTALL)
    source.add("demo", "2.0", lifecycle("2.0"))
    result = agent.configure_package(INSTALL)
    assert result.status is PluginStatus.SUCCESS
    assert "Failed to uninstall version 1.0 of package" in result.stderr
    assert installed_packages(agent.instance.root) == {"demo": "2.0"}


def test_first_install_failing_has_nothing_to_roll_back_to(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", lifecycle("1.0", **{"validate.sh": "exit 1"}))
    agent = make_agent()
    result = agent.configure_package(INSTALL)
    assert result.status is PluginStatus.FAILED
    state = load_state(agent.instance.root, "demo")
    assert state is not None and state.state is InstallState.FAILED
    assert installed_packages(agent.instance.root) == {}


def test_in_place_update_runs_update_and_no_uninstall(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    agent = make_agent()
    agent.configure_package(INSTALL)
    source.add(
        "demo",
        "2.0",
        lifecycle(
            "2.0", **{"update.sh": script("update", "2.0", extra="echo 2.0 > /opt/demo/version")}
        ),
    )
    result = agent.configure_package(
        PackageRequest("Install", "demo", installation_type=IN_PLACE_UPDATE)
    )
    assert result.status is PluginStatus.SUCCESS, result.output
    assert log_of(agent)[2:] == ["update 2.0", "validate 2.0"]
    assert installed_packages(agent.instance.root) == {"demo": "2.0"}


def test_in_place_update_failure_rolls_back(make_agent: AgentFactory, source: MemorySource) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    agent = make_agent()
    agent.configure_package(INSTALL)
    source.add("demo", "2.0", lifecycle("2.0", **{"update.sh": "exit 7"}))
    result = agent.configure_package(
        PackageRequest("Install", "demo", installation_type=IN_PLACE_UPDATE)
    )
    assert result.status is PluginStatus.FAILED
    assert log_of(agent)[2:] == ["uninstall 2.0", "install 1.0", "validate 1.0"]
    assert "successfully rolled back to demo 1.0" in result.stdout
    assert installed_packages(agent.instance.root) == {"demo": "1.0"}


def test_in_place_update_without_update_script_fails(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    agent = make_agent()
    agent.configure_package(INSTALL)
    source.add("demo", "2.0", lifecycle("2.0"))
    result = agent.configure_package(
        PackageRequest("Install", "demo", installation_type=IN_PLACE_UPDATE)
    )
    assert result.status is PluginStatus.FAILED
    assert "no update script" in result.stderr
    assert installed_packages(agent.instance.root) == {"demo": "1.0"}


def test_uninstall(make_agent: AgentFactory, source: MemorySource) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    agent = make_agent()
    result = agent.configure_package(PackageRequest("Uninstall", "demo"))
    assert result.status is PluginStatus.SUCCESS
    assert "demo is not installed" in result.stdout
    agent.configure_package(INSTALL)
    result = agent.configure_package(PackageRequest("Uninstall", "demo"))
    assert result.status is PluginStatus.SUCCESS, result.output
    assert log_of(agent)[-1] == "uninstall 1.0"
    assert installed_packages(agent.instance.root) == {}
    assert not (agent.instance.root / "var/lib/amazon/ssm/packages/demo/1.0").exists()


def test_exit_194_reboots_and_resumes(make_agent: AgentFactory, source: MemorySource) -> None:
    source.add(
        "demo",
        "1.0",
        lifecycle(
            "1.0",
            **{
                "install.sh": script(
                    "install", "1.0", exit_code=194, extra="echo 1.0 > /opt/demo/version"
                )
            },
        ),
    )
    agent = make_agent()
    result = agent.configure_package(INSTALL)
    assert result.status is PluginStatus.SUCCESS, result.output
    assert "Rebooting to finish installation of demo 1.0" in result.stdout
    assert log_of(agent) == ["install 1.0", "validate 1.0"]
    assert installed_packages(agent.instance.root) == {"demo": "1.0"}


def test_checksum_mismatch_is_retried_once_after_rereading_the_manifest(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    source.corrupt_downloads = 1
    agent = make_agent()
    assert agent.configure_package(INSTALL).status is PluginStatus.SUCCESS
    assert source.downloads == 2
    source.add("demo", "2.0", lifecycle("2.0"))
    source.corrupt_downloads = 2
    result = agent.configure_package(INSTALL)
    assert result.status is PluginStatus.FAILED
    assert "does not match the manifest's" in result.stderr
    assert installed_packages(agent.instance.root) == {"demo": "1.0"}


def test_missing_attachment(make_agent: AgentFactory, source: MemorySource) -> None:
    source.add(
        "demo", "1.0", {}, entries={("_any", "_any", "_any"): "gone.zip"}, zips={"gone.zip": b""}
    )
    source.documents[("demo", "1.0")] = source.documents[("demo", "1.0")].__class__(
        "demo", "1.0", source.documents[("demo", "1.0")].content, {}
    )
    result = make_agent().configure_package(INSTALL)
    assert result.status is PluginStatus.FAILED
    assert result.stderr == "Install attachments for package does not exist"


def test_no_manifest_entry_for_the_platform(make_agent: AgentFactory, source: MemorySource) -> None:
    zips = {"al.zip": make_zip(lifecycle("1.0"))}
    source.add("demo", "1.0", {}, entries={("amazon", "2023", "x86_64"): "al.zip"}, zips=zips)
    result = make_agent("ubuntu", "22.04").configure_package(INSTALL)
    assert result.status is PluginStatus.FAILED
    assert result.stderr == (
        "no manifest found for platform: ubuntu, version 22.04, architecture x86_64"
    )
    assert make_agent().configure_package(INSTALL).status is PluginStatus.SUCCESS


def test_zipped_parent_folder_is_not_supported(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", {"demo/install.sh": "true"})
    result = make_agent().configure_package(INSTALL)
    assert result.status is PluginStatus.FAILED
    assert result.stderr == "Package is not supported (package is missing install action)"


def test_both_sh_and_ps1_for_one_action_is_an_error(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", {"install.sh": "true", "install.ps1": "exit 0"})
    result = make_agent().configure_package(INSTALL)
    assert result.status is PluginStatus.FAILED
    assert "both install.sh and install.ps1" in result.stderr


def test_uppercase_script_names_are_not_scripts(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", {"Install.sh": "true"})
    result = make_agent().configure_package(INSTALL)
    assert result.stderr == "Package is not supported (package is missing install action)"


def test_windows_unpacks_but_says_it_cannot_run_powershell(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", {"install.ps1": "exit 0"})
    agent = make_agent("windows", "10.0.20348")
    result = agent.configure_package(INSTALL)
    assert result.status is PluginStatus.FAILED
    assert "cannot run PowerShell scripts" in result.stderr
    assert (agent.instance.root / "var/lib/amazon/ssm/packages/demo/1.0/install.ps1").is_file()
    assert installed_packages(agent.instance.root) == {}


def test_without_bubblewrap_nothing_runs_and_the_result_says_why(
    make_agent: AgentFactory, source: MemorySource
) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    agent = make_agent(sandbox=Sandbox(find_bwrap=False))
    result = agent.configure_package(INSTALL)
    assert result.status is PluginStatus.FAILED
    assert "bubblewrap (bwrap) is not installed" in result.stderr
    assert log_of(agent) == []


def test_one_action_per_package_at_a_time(make_agent: AgentFactory, source: MemorySource) -> None:
    wait_for_go = "i=0; while [ ! -e /opt/go ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done"
    source.add(
        "demo",
        "1.0",
        lifecycle(
            "1.0",
            **{
                "install.sh": script(
                    "install",
                    "1.0",
                    extra=f"touch /opt/started; {wait_for_go}; echo 1.0 > /opt/demo/version",
                )
            },
        ),
    )
    agent = make_agent()
    results = []
    first = threading.Thread(target=lambda: results.append(agent.configure_package(INSTALL)))
    first.start()
    deadline = time.monotonic() + 10
    while not (agent.instance.root / "opt/started").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    second = agent.configure_package(PackageRequest("Uninstall", "demo"))
    (agent.instance.root / "opt/go").touch()
    first.join(timeout=20)
    assert second.status is PluginStatus.FAILED
    assert second.stderr == 'Package "demo" is already in the process of action "Install"'
    assert results[0].status is PluginStatus.SUCCESS


def test_script_timeout_is_reported(make_agent: AgentFactory, source: MemorySource) -> None:
    source.add("demo", "1.0", lifecycle("1.0", **{"install.sh": "sleep 30"}))
    agent = make_agent(sandbox=Sandbox(timeout=0.5))
    started = time.monotonic()
    result = agent.configure_package(INSTALL)
    assert time.monotonic() - started < 10
    assert result.status is PluginStatus.TIMED_OUT
    assert "install timed out after 0.5 seconds" in result.stderr


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        (
            {"action": ["Install"], "name": ["demo"], "additionalArguments": ['{"KEY": "v"}']},
            "additionalArguments key 'KEY' must start with SSM_",
        ),
        ({"action": ["Reinstall"], "name": ["demo"]}, "action 'Reinstall' must be Install"),
        ({"action": ["Install"], "name": [""]}, "invalid input: empty name field"),
    ],
)
def test_bad_parameters_fail_before_anything_runs(
    make_agent: AgentFactory, source: MemorySource, parameters: dict[str, list[str]], message: str
) -> None:
    source.add("demo", "1.0", lifecycle("1.0"))
    result = make_agent().configure_package(request_from_parameters(parameters))
    assert result.status is PluginStatus.FAILED
    assert message in result.stderr
    assert source.downloads == 0


def test_additional_arguments_must_be_json() -> None:
    with pytest.raises(RequestError, match="not a JSON map"):
        request_from_parameters({"name": ["demo"], "additionalArguments": ["{nope"]})


def test_a_simple_mode_deb_installs_into_the_ubuntu_instance(
    make_agent: AgentFactory, source: MemorySource, tmp_path: Path
) -> None:
    """The build's generated scripts for a .deb (dpkg -i / dpkg --remove) work in the
    instance's own dpkg database."""
    tree = tmp_path / "deb"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "opt/hello/bin").mkdir(parents=True)
    (tree / "opt/hello/bin/hello").write_text("#!/bin/sh\necho hello\n")
    (tree / "DEBIAN/control").write_text(
        "Package: hello\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.com>\n"
        "Description: test\n"
    )
    deb = tmp_path / "hello_1.0_all.deb"
    subprocess.run(
        ["dpkg-deb", "--build", "--root-owner-group", str(tree), str(deb)],
        check=True,
        capture_output=True,
    )
    uninstall = (
        'name=$(dpkg-deb --field "./hello_1.0_all.deb" Package)\n'
        'if dpkg-query --status "$name" >/dev/null 2>&1; then dpkg --remove "$name"; '
        'else echo "$name is not installed"; fi\n'
    )
    zipped = make_zip(
        {"install.sh": 'set -eu\ndpkg -i "./hello_1.0_all.deb"\n', "uninstall.sh": uninstall}
    )
    buffer = io.BytesIO(zipped)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.write(deb, deb.name)
    source.add("hello", "1.0", {}, zips={"hello.zip": buffer.getvalue()})
    agent = make_agent("ubuntu", "22.04")
    result = agent.configure_package(PackageRequest("Install", "hello"))
    assert result.status is PluginStatus.SUCCESS, result.output
    assert (agent.instance.root / "opt/hello/bin/hello").is_file()
    result = agent.configure_package(PackageRequest("Uninstall", "hello"))
    assert result.status is PluginStatus.SUCCESS, result.output
    assert not (agent.instance.root / "opt/hello").exists()
