"""Stage 1 of a pass: the repository format (models, loading with file:line, checks, schema).

Pure: no AWS, no network. See docs/architecture.md for the interface the later stages use:

    load_repository(root, display_prefix=None) -> Repository   (raises SpecErrors)
"""

from controller.repository.errors import SpecError, SpecErrors
from controller.repository.loader import load_repository
from controller.repository.models import (
    Account,
    Artifacts,
    Association,
    Output,
    Package,
    PackageFile,
    PackageVersion,
    Prune,
    Repository,
    Settings,
    Target,
    reconcile_disabled,
    rollout_paused,
)

__all__ = [
    "Account",
    "Artifacts",
    "Association",
    "Output",
    "Package",
    "PackageFile",
    "PackageVersion",
    "Prune",
    "Repository",
    "Settings",
    "SpecError",
    "SpecErrors",
    "Target",
    "load_repository",
    "reconcile_disabled",
    "rollout_paused",
]
