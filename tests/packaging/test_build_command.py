"""`ssm-gitops build PATH --out DIR`: one line per zip, manifests on disk, exit codes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests.packaging.conftest import PROJECT


def build(path: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", "build", path, "--out", str(out)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_build_prints_package_version_file_sha256(tmp_path: Path) -> None:
    result = build("sample-repo", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 8
    for line in lines:
        package, version, name, sha256 = line.split(" ")
        zip_path = tmp_path / package / version / name
        assert hashlib.sha256(zip_path.read_bytes()).hexdigest() == sha256
        manifest = json.loads((tmp_path / package / version / "manifest.json").read_text())
        assert manifest["files"][name]["checksums"]["sha256"] == sha256
        assert manifest["version"] == version


def test_build_of_an_invalid_repository_prints_the_errors_and_exits_1(tmp_path: Path) -> None:
    result = build("tests/repository/broken/missing-uninstall-script/repo", tmp_path / "out")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.endswith(
        "package.yaml:12:19: source pkg/1.0: the source has no uninstall.sh: add it (amazon runs "
        "uninstall.sh)\n"
    )
    assert not (tmp_path / "out").exists()


def test_an_unwritable_out_names_out_not_the_yaml(tmp_path: Path) -> None:
    """Regression: `build --out /proc/x` blamed the first package's YAML line."""
    result = build("sample-repo", Path("/proc/x"))
    assert result.returncode == 1
    assert result.stderr == (
        "ssm-gitops: --out /proc/x: cannot write there (No such file or directory): "
        "give a writable folder\n"
    )
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    result = build("sample-repo", a_file)
    assert result.returncode == 1
    assert result.stderr == (
        f"ssm-gitops: --out {a_file}: is a file, not a folder: give a folder to write into\n"
    )


def test_build_out_holds_exactly_the_zips_and_manifests(tmp_path: Path) -> None:
    """Bug (issue 10): `build --out` left hidden `.<zip>.build.json` stamps among the files
    a user syncs to S3. The output holds the zips and one manifest.json per version, and
    a second build into the same folder adds nothing either."""
    out = tmp_path / "out"
    for _ in range(2):
        result = build("sample-repo", out)
        assert result.returncode == 0, result.stderr
        expected = {
            f"{package}/{version}/{name}"
            for package, version, name, _ in map(str.split, result.stdout.splitlines())
        } | {
            f"{package}/{version}/manifest.json"
            for package, version, _, _ in map(str.split, result.stdout.splitlines())
        }
        written = {path.relative_to(out).as_posix() for path in out.rglob("*") if not path.is_dir()}
        assert written == expected
