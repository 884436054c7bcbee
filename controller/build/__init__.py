"""Stage 2 of a pass: deterministic package zips, manifests and generated installer scripts.

Pure: reads the repository's source folders, writes only to the output directory.
"""
