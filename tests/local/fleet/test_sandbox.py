"""The sandbox really confines scripts: read-only host, own /opt and /var, no network,
no credentials, an output cap."""

from __future__ import annotations

from pathlib import Path

from controller.local.fleet.model import InstanceSpec
from controller.local.fleet.roots import prepare_root
from controller.local.fleet.sandbox import Sandbox

from .conftest import needs_bwrap

pytestmark = needs_bwrap


def _run(tmp_path: Path, text: str, sandbox: Sandbox | None = None) -> tuple[Path, str, int]:
    root = prepare_root(tmp_path / "fleet", "i-0abc", InstanceSpec("ubuntu", "22.04", "arm64"))
    (root / "var/work").mkdir()
    (root / "var/work/run.sh").write_text(text)
    run = (sandbox or Sandbox(timeout=20)).run(root, Path("/var/work"), "run.sh", {})
    assert run.ran
    assert run.exit_code is not None
    return root, run.stdout + run.stderr, run.exit_code


def test_host_is_read_only_and_instance_dirs_are_writable(tmp_path: Path) -> None:
    victim = tmp_path / "host-file"
    root, output, code = _run(
        tmp_path,
        f"touch {victim} 2>/dev/null && echo host-writable\n"
        "touch /etc/ssm-gitops-test 2>/dev/null && echo etc-writable\n"
        "echo ok > /opt/o && echo ok > /var/v && echo ok > /tmp/t && echo wrote\n",
    )
    assert code == 0
    assert "host-writable" not in output and "etc-writable" not in output
    assert "wrote" in output
    assert not victim.exists() and not Path("/etc/ssm-gitops-test").exists()
    assert (root / "opt/o").read_text() == "ok\n" and (root / "var/v").read_text() == "ok\n"


def test_sees_its_platform_os_release_and_no_network(tmp_path: Path) -> None:
    _, output, _ = _run(
        tmp_path,
        '. /etc/os-release; echo "id=$ID version=$VERSION_ID"\n'
        "cat /proc/net/dev | grep -c ':' \n",
    )
    assert "id=ubuntu version=22.04" in output
    # only the loopback interface exists in the sandbox's network namespace
    assert output.strip().splitlines()[-1] == "1"


def test_environment_is_only_path(tmp_path: Path) -> None:
    _, output, _ = _run(tmp_path, "env | cut -d= -f1 | sort\n")
    assert [line for line in output.splitlines() if line not in ("PATH", "PWD", "SHLVL", "_")] == []


def test_output_is_capped(tmp_path: Path) -> None:
    _, output, code = _run(
        tmp_path,
        "i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done\n",
        Sandbox(timeout=20, output_cap=100),
    )
    assert code == 0
    assert output.startswith("0123456789\n")
    assert "---Output truncated: 21900 more bytes---" in output
