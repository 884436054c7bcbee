"""Stage 2 of a pass: deterministic package zips, manifests and generated installer scripts.

Pure: reads the repository's source folders, writes only to the output directory.

    build_version(repo, package, version, out_dir) -> BuiltVersion
"""

from controller.build.builder import BuildError, BuiltFile, BuiltVersion, build_version

__all__ = ["BuildError", "BuiltFile", "BuiltVersion", "build_version"]
