"""Hostile YAML through the real commands, each in a child process that may crash:
bounded in memory (RLIMIT_AS) and time, one line on stderr and exit 1 (issue 10).

`run` gets the same files as commits and must keep serving and reporting them.
Before the fix, 100k nested `[` killed `validate` and `plan` with SIGSEGV (libyaml's
composer recursing in C), 5k-20k levels ended in a RecursionError traceback, and an alias
bomb ate gigabytes before a MemoryError traceback.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repository.conftest import SCRIPT, package_yaml
from tests.runtime.gitrepo import GitRepo
from tests.runtime.processes import free_port, http_get, wait_until

PROJECT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 1024 * 1024 * 1024  # address space of the child: far below an alias bomb's
TIME_LIMIT = 60  # seconds; a load of these files takes well under one


def _limit_memory() -> None:  # runs in the child, before exec
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def run_command(args: list[str], cwd: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT),
        "SSM_GITOPS_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # never reach AWS: the load fails first, and a mistake would hit a closed port
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        preexec_fn=_limit_memory,  # noqa: PLW1509 - no threads in the test process matter
        check=False,
    )


def deep(levels: int) -> str:
    return "key: " + "[" * levels + "]" * levels + "\n"


def alias_bomb() -> str:
    lines = ['a0: &a0 "lol"']
    for level in range(1, 10):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


NESTED = (
    "hostile.yaml:1:69: YAML nested more than 64 levels deep: repository documents need far "
    "fewer; flatten the value or remove the file"
)
BOMB = (
    "hostile.yaml:7:10: more than 100000 values in one file (an alias counts as a copy of what "
    "it names): split the file or use fewer aliases"
)
CASES = {
    "nested-100k": (deep(100_000), NESTED),
    "nested-20k": (deep(20_000), NESTED),
    "nested-5k": (deep(5_000), NESTED),
    "alias-bomb": (alias_bomb(), BOMB),
}


def write_repository(root: Path, hostile: str, *, as_payload: bool = False) -> None:
    files = {
        "package.yaml": package_yaml(),
        "pkg/1.0/install.sh": SCRIPT,
        "pkg/1.0/uninstall.sh": SCRIPT,
        ("pkg/1.0/hostile.yaml" if as_payload else "hostile.yaml"): hostile,
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.timeout(TIME_LIMIT + 30)
@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_reports_hostile_yaml_in_one_line(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    root = tmp_path / "repo"
    write_repository(root, text)
    result = run_command(["validate", "."], root, tmp_path)
    assert (result.returncode, result.stderr.splitlines(), result.stdout) == (1, [expected], "")


@pytest.mark.timeout(TIME_LIMIT + 30)
@pytest.mark.parametrize("case", ["nested-100k", "alias-bomb"])
def test_hostile_payload_yaml_in_a_source_folder_is_zipped_not_parsed_further(
    case: str, tmp_path: Path
) -> None:
    """Payload YAML in a source folder is read within the same bounds; its problems are
    not the repository's (it is zipped as it is)."""
    root = tmp_path / "repo"
    write_repository(root, CASES[case][0], as_payload=True)
    result = run_command(["validate", "."], root, tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip().endswith("1 package, 1 version, 0 associations: valid")


@pytest.mark.timeout(TIME_LIMIT + 30)
@pytest.mark.parametrize("case", ["nested-100k", "alias-bomb"])
def test_plan_reports_hostile_yaml_in_one_line(case: str, tmp_path: Path) -> None:
    text, expected = CASES[case]
    root = tmp_path / "repo"
    repo = GitRepo(root)
    write_repository(root, text)
    repo.commit({}, "hostile")
    result = run_command(["plan", "--repo", str(root)], tmp_path, tmp_path)
    assert (result.returncode, result.stderr.splitlines()) == (1, [f"ssm-gitops: {expected}"])


@pytest.mark.timeout(TIME_LIMIT + 60)
def test_run_keeps_serving_and_reports_hostile_commits(tmp_path: Path) -> None:
    """Bug (issue 10): in `run` an alias bomb killed the pass runner (`/healthz` 503 for
    good, `/status` still "config valid"), and 100k nested `[` crashed the whole process."""
    root = tmp_path / "repo"
    repo = GitRepo(root)
    write_repository(root, alias_bomb())
    repo.commit({}, "bomb")
    port = free_port()
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "controller", "run", "--repo", str(root), "--interval", "1s"]
        + ["--listen", f"127.0.0.1:{port}", "--cache-dir", str(tmp_path / "cache")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(PROJECT), "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=_limit_memory,  # noqa: PLW1509
    )
    url = f"http://127.0.0.1:{port}"

    def errors_shown(expected: str) -> dict[str, object] | None:
        assert process.poll() is None, (tmp_path / "run.log").read_text()
        status = json.loads(http_get(url + "/status")[1])
        return status if [e["text"] for e in status["errors"]] == [expected] else None

    try:
        status = wait_until(lambda: errors_shown(BOMB), 60, "the alias bomb reported")
        assert status["config_valid"] is False
        assert http_get(url + "/healthz")[0] == 200
        assert "ssm_gitops_config_valid 0.0" in http_get(url + "/metrics")[1]
        repo.commit({"hostile.yaml": deep(100_000)}, "deeper")
        wait_until(lambda: errors_shown(NESTED), 60, "the next commit reported")
        assert http_get(url + "/healthz")[0] == 200
    finally:
        process.kill()
        process.wait(10)
        log.close()
