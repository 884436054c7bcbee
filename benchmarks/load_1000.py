"""Benchmark (not a test): CPU time to load and validate a 1,000-package repository.

Contract budget: load, validate and plan a 1,000-package repository in under a second of
CPU. This measures the load + validate part (`controller.repository.load_repository`) on a
generated repository: N packages of 2 versions x 2 files each (own source folder with
install/uninstall scripts), one association per package, one Settings.

    python benchmarks/load_1000.py [--packages 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from controller.repository import load_repository  # noqa: E402

PACKAGE = """# yaml-language-server: $schema=../schema/ssm-gitops-v1.json
apiVersion: ssm-gitops/v1
kind: Package
metadata:
  name: agent-{i:04d}
  tags: {{team: team-{team}}}
spec:
  description: Generated agent {i}
  defaultVersion: "1.0.{i}"
  shareWith: ["111122223333"]
  versions:
    - name: "1.0.{i}"
      files:
        - {{platform: amazon, arch: x86_64, source: agent-{i:04d}/linux}}
        - {{platform: windows, arch: x86_64, source: agent-{i:04d}/windows}}
    - name: "1.1.{i}"
      files:
        - {{platform: amazon, arch: x86_64, source: agent-{i:04d}/linux}}
        - {{platform: windows, arch: x86_64, source: agent-{i:04d}/windows}}
---
apiVersion: ssm-gitops/v1
kind: Association
metadata:
  name: agent-{i:04d}-prod
spec:
  package: agent-{i:04d}
  targets: [{{key: "tag:env", values: [prod]}}]
  schedule: rate(1 day)
  maxConcurrency: "10%"
  maxErrors: "1"
"""

SETTINGS = """apiVersion: ssm-gitops/v1
kind: Settings
metadata: {name: settings}
spec:
  artifacts: {bucket: bench-artifacts}
  regions: [us-east-1]
"""


def make_repository(root: Path, packages: int) -> None:
    (root / "settings.yaml").write_text(SETTINGS)
    folder = root / "packages"
    for i in range(packages):
        (folder / f"agent-{i:04d}.yaml").parent.mkdir(parents=True, exist_ok=True)
        (folder / f"agent-{i:04d}.yaml").write_text(PACKAGE.format(i=i, team=i % 7))
        for platform, extension in (("linux", ".sh"), ("windows", ".ps1")):
            source = folder / f"agent-{i:04d}" / platform
            source.mkdir(parents=True)
            for action in ("install", "uninstall"):
                (source / f"{action}{extension}").write_text("echo ok\n")
            (source / "payload.bin").write_bytes(b"x" * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        make_repository(root, args.packages)
        cpu: list[float] = []
        wall: list[float] = []
        for _ in range(args.repeat):
            started_cpu, started_wall = time.process_time(), time.perf_counter()
            repo = load_repository(root)
            cpu.append(time.process_time() - started_cpu)
            wall.append(time.perf_counter() - started_wall)
        assert len(repo.packages) == args.packages
    print(
        f"load+validate {args.packages} packages, {2 * args.packages} versions, "
        f"{args.packages} associations ({args.repeat} runs): "
        f"CPU median {statistics.median(cpu):.3f} s (min {min(cpu):.3f} s), "
        f"wall median {statistics.median(wall):.3f} s; budget: < 1 s CPU"
    )


if __name__ == "__main__":
    main()
