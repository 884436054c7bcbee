"""Stage 2 of a pass: deterministic package zips, manifests and generated installer scripts.

Pure: reads the repository's source folders, writes only to the output directory.

    build_version(repo, package, version, out_dir) -> BuiltVersion
"""

from controller.packaging.builder import BuildError, BuiltFile, BuiltVersion, build_version
from controller.packaging.integrity import (
    ArtifactMismatch,
    verify_artifact,
    verify_fresh_build,
    verify_manifest,
)

__all__ = [
    "ArtifactMismatch",
    "BuildError",
    "BuiltFile",
    "BuiltVersion",
    "build_version",
    "verify_artifact",
    "verify_fresh_build",
    "verify_manifest",
]
