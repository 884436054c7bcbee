"""Loading and building are pure: importing them pulls in no AWS and no network client."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.repository.conftest import PROJECT

FORBIDDEN = (
    "boto3",
    "botocore",
    "http.client",
    "urllib.request",
    "requests",
    "pygit2",
    "controller.aws",
    "controller.runtime",
    "controller.reconcile",
    "controller.local",
)


def test_spec_and_build_import_no_network_module() -> None:
    code = (
        "import json, sys\n"
        "import controller.repository, controller.packaging, controller.repository.commands\n"
        "import controller.packaging.commands, controller.repository.schema\n"
        "from controller.repository import load_repository\n"
        "from controller.packaging import build_version\n"
        "import tempfile, pathlib\n"
        "repo = load_repository(pathlib.Path('sample-repo'))\n"
        "with tempfile.TemporaryDirectory() as out:\n"
        "    package = repo.packages[0]\n"
        "    build_version(repo, package, package.versions[0], pathlib.Path(out))\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=True
    )
    loaded = set(json.loads(result.stdout))
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)
